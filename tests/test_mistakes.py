"""Is each known mistake declared once: its name, part, hint and switch in one declaration that everything else reads?

The declarations are ``Mistake``s in each exercise's ``mistakes.py`` (the attention and block several exercises
share theirs in ``autograder/kit/blocks.py``). The tests' edit that makes a mistake is keyed by its name
(``tests/mistake_edits/<exercise>.py``), the cascade tests require its declared hint, and no other file spells the
hint again.
"""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from mutations import CASES

from autograder.exercises import get_exercise, names
from autograder.mistakes import Mistake, Mistakes, switch_table

SOURCES = [p for folder in ("autograder", "tests", "tools", "bench") for p in (ROOT / folder).rglob("*.py")]


def declared_in(mistake_module) -> list[Mistake]:
    return [value for value in vars(mistake_module).values() if isinstance(value, Mistake)]


def flat(text: str) -> str:
    """Text with adjacent string literals joined across line breaks and runs of white space folded (roughly)."""
    return re.sub(r"\s+", " ", re.sub(r'"\s*\n\s*"', "", text))


@pytest.mark.parametrize("name", names())
def test_does_every_declared_mistake_have_the_edit_that_makes_it(name):
    exercise = get_exercise(name)
    assert exercise.mistakes, f"{name} declares no mistakes"
    edits = {m.name for m in CASES[name].known}
    missing = [m.name for m in exercise.mistakes if m.name not in edits]
    assert not missing, f"no edit in tests/mistake_edits/{name}.py makes {missing}"


@pytest.mark.parametrize("name", names())
def test_does_no_edit_of_a_declared_mistake_spell_its_hint_again(name):
    declared = {m.name for m in get_exercise(name).mistakes}
    respelled = [m.name for m in CASES[name].known if m.name in declared and m.hint]
    assert not respelled, f"these edits spell a hint their declaration holds: {respelled}"


def test_is_every_hint_spelled_in_its_declaration_only():
    mistakes = [m for name in names() for m in get_exercise(name).mistakes]
    texts = {path: flat(path.read_text()) for path in SOURCES}
    problems = []
    for mistake in mistakes:
        hint = flat(mistake.hint)
        found = [path.relative_to(ROOT) for path, text in texts.items() if hint in text]
        if len(found) != 1 or found[0].name not in ("mistakes.py", "blocks.py"):
            problems.append(f"{mistake.name}: {hint[:60]!r}... in {[str(f) for f in found]}")
    assert not problems, "\n".join(problems)


def test_are_the_hidden_switch_tables_built_from_declarations():
    """No table of (value, hint) pairs is written out by hand: ``switch_table`` builds each from ``Mistake``s."""
    for path in (ROOT / "autograder").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r'\[\s*\(\s*[^()\]]*,\s*(HINT_\w+|[\w.]+\.hint)\s*\)', text), (
            f"{path.relative_to(ROOT)} writes a switch table by hand")
        assert not re.search(r"^HINT_\w+ = ", text, re.M), f"{path.relative_to(ROOT)} declares a hint outside a Mistake"


def test_does_a_switch_table_list_each_declared_switch_in_order():
    a, b = Mistake("a", "P", "hint a", ("scale", "none")), Mistake("b", "P", "hint b", ("scale", "d"))
    c = Mistake("c", "P", "hint c", ("norm", "pre"))
    assert switch_table(a, b, c) == {"scale": [("none", "hint a"), ("d", "hint b")], "norm": [("pre", "hint c")]}
    with pytest.raises(ValueError, match="has no switch"):
        switch_table(Mistake("d", "P", "hint d"))
    with pytest.raises(ValueError, match="share one hint"):
        Mistakes(a, Mistake("e", "P", "hint a"))
    with pytest.raises(ValueError, match="declared twice"):
        Mistakes(a, a)
