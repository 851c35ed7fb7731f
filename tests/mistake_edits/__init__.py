"""The edits of the reference solutions that make each exercise's known mistakes, one module per exercise
(``tests/mistake_edits/<exercise>.py``, with its ``CASES``: what the exercise-wide tests need of it), and what they
share here. ``tests/mutations.py`` gathers every registered exercise's.

Each edit is (old, new); ``edit_problems`` checks that ``old`` occurs once in the solution, so that a change of the
reference cannot silently turn a bug into a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str
    edits: tuple  # ((old, new), ...)
    failing: tuple  # checks that must lose their points
    hint: str = ""  # a substring of a hint that must be named ("" = no named hint required)
    # The parts allowed to lose points (default: those of ``failing``). More only where the mistake makes the
    # submission's own composite unusable (it crashes, or is random in eval mode): ``cascade`` says why.
    parts: tuple = ()
    cascade: str = ""



def edit_problems(mutations, path: Path, checks) -> list[str]:
    """What is wrong with ``mutations`` as edits of ``path``: an edit whose text is not there exactly once (before
    and after the mutation's earlier edits), or a failing check the exercise does not have (``checks``: names)."""
    text, problems = path.read_text(), []
    for mutation in mutations:
        edited = text
        for old, new in mutation.edits:
            if text.count(old) != 1 or edited.count(old) != 1:
                problems.append(f"{mutation.name}: {old!r}")
            edited = edited.replace(old, new)
        problems += [f"{mutation.name}: no check {name}" for name in mutation.failing if name not in set(checks)]
    return problems


def mutated_source(mutation: Mutation, path: Path) -> str:
    text = path.read_text()
    for old, new in mutation.edits:
        if old not in text:
            raise AssertionError(f"mutation {mutation.name}: {old!r} no longer occurs in {path.name}")
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Cases:
    """What the exercise-wide tests need of one exercise: every registered exercise has an entry in ``CASES``
    (a test says so), and the tests that repeat per exercise are parametrised over it."""

    solution: Path
    known: tuple  # every known mistake, textbook and seen in published code: graded by the cascade tests
    frozen: Mutation | None  # a model that cannot learn: fails the training check (None: the exercise trains nothing)
    nbgrader_bug: str  # the known mistake the nbgrader test's student makes (a name in ``known``)
    nbgrader_hint: str  # what her feedback must name
    noise: tuple[str, str]  # (section, line) where the nbgrader test's student adds warnings and stderr output
    # Mistakes no switch names, inside a part that a composite is built from: (id, old, new) edits of the solution,
    # each graded under several draws (tests/test_reproducible.py).
    unknown: tuple = ()
    # Code at the start of the trained model's forward that makes it compute no known function (anchor, code):
    # the training check must then refuse to score it (tests/test_training.py). None: not applicable.
    unverifiable: tuple[str, str] | None = None

    @property
    def correct(self) -> tuple[Path, ...]:
        """The solution and every correct variant written differently: ``tests/submissions/<exercise>_*.py``."""
        name = self.solution.stem
        return (self.solution, *sorted((ROOT / "tests" / "submissions").glob(f"{name}_*.py")))
