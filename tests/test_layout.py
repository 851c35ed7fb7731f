"""Does the layout keep its promises: each exercise one package, the engine free of any exercise's words, no
exercise importing another, the child given only the modules it runs, and every exercise worth 100 points?"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

from autograder.exercises import get_exercise, names
from autograder.runner import CHILD_MODULES

PACKAGE = ROOT / "autograder"
EXERCISES = PACKAGE / "exercises"
# Words of the course's exercises and data sets: none may appear in the engine (autograder/ outside exercises/
# and the data loaders).
COURSE_WORDS = ("tweet", "cifar", "trajector", "lstm", "plaza", "mnist")


def test_is_every_exercise_one_package():
    assert not sorted(p.name for p in EXERCISES.glob("*.py") if p.name != "__init__.py")
    for name in names():
        package = EXERCISES / name
        assert (package / "__init__.py").is_file() and (package / "hidden.py").is_file(), name
        assert (package / "reference.py").is_file(), name


def test_does_the_engine_name_no_exercise_data_set_or_course_word():
    found = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("exercises", "data"):
            continue
        for line in path.read_text().splitlines():
            words = [w for w in COURSE_WORDS if w in line.lower()]
            if words:
                found.append(f"{relative}: {line.strip()}")
    assert not found, "\n".join(found)


def imports_of(path: Path) -> set[str]:
    """The modules a file imports, as absolute names (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parent.parts)
    found = set()
    for dots, module, names_ in re.findall(r"^\s*from (\.*)([\w.]*) import \(?([\w, ]*)", path.read_text(), re.M):
        if not dots:
            found.add(module)
            continue
        base = package.split(".")[: len(package.split(".")) - (len(dots) - 1)]
        absolute = ".".join(base + ([module] if module else []))
        found.add(absolute)
        if not module:
            found.update(f"{absolute}.{n.strip()}" for n in names_.split(",") if n.strip())
    found.update(re.findall(r"^\s*import ([\w.]+)", path.read_text(), re.M))
    return found


@pytest.mark.parametrize("name", names())
def test_does_no_exercise_import_another(name):
    others = [other for other in names() if other != name]
    for path in (EXERCISES / name).rglob("*.py"):
        bad = [m for m in imports_of(path) for other in others
               if m == f"autograder.exercises.{other}" or m.startswith(f"autograder.exercises.{other}.")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_does_the_kit_import_no_exercise():
    for path in (PACKAGE / "kit").rglob("*.py"):
        bad = [m for m in imports_of(path) for other in names() if m.startswith(f"autograder.exercises.{other}")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_is_the_child_given_exactly_the_modules_it_runs():
    closure, todo = set(), ["autograder.child"]
    while todo:
        module = todo.pop()
        if module in closure:
            continue
        closure.add(module)
        path = PACKAGE / f"{module.removeprefix('autograder.')}.py"
        todo += [m for m in imports_of(path) if m.startswith("autograder.") and (PACKAGE / f"{m[11:]}.py").is_file()]
    assert {m.removeprefix("autograder.") for m in closure} | {"__init__"} == set(CHILD_MODULES)


@pytest.mark.parametrize("name", names())
def test_is_every_exercise_worth_100_points(name):
    assert sum(check.points for check in get_exercise(name).checks) == 100


def test_does_an_inconsistent_declaration_fail_at_registration_with_a_message_naming_it():
    import dataclasses

    from autograder.exercises import DeclarationError, validated

    exercise = next(get_exercise(n) for n in names() if get_exercise(n).task is not None)
    with pytest.raises(DeclarationError, match="needs profiles 'cpu' and 'gpu'"):
        validated(dataclasses.replace(exercise, profiles={}))
    with pytest.raises(DeclarationError, match="training profiles without a training task"):
        validated(dataclasses.replace(exercise, task=None))
    stray = dataclasses.replace(exercise.checks[0], part="NoSuchPart")
    with pytest.raises(DeclarationError, match="is of part 'NoSuchPart', which is not in parts"):
        validated(dataclasses.replace(exercise, checks=(*exercise.checks, stray)))
    with pytest.raises(DeclarationError, match=f"check '{exercise.checks[0].name}' is declared twice"):
        validated(dataclasses.replace(exercise, checks=(*exercise.checks, exercise.checks[0])))
    assert validated(exercise) is exercise


def test_does_a_hidden_module_missing_its_probes_fail_at_registration_with_a_message_naming_it(tmp_path, monkeypatch):
    from autograder.exercises import DeclarationError, completed

    package = tmp_path / "probeless"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hidden.py").write_text("TRAINABLE = None  # no PROBES\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    exercise = get_exercise(names()[0])
    with pytest.raises(DeclarationError, match=r"probeless\.hidden must define PROBES"):
        completed(exercise, "probeless")


def test_does_a_training_check_take_its_time_limit_from_its_profile_only():
    from autograder.checks import CheckSet

    checks = CheckSet(("Part",))
    with pytest.raises(ValueError, match="a training check's time limit is its profile's"):
        checks.check("part.training", "Part", 10, "trains", kind="training", hidden=True, timeout=300.0)
    checks.check("part.values", "Part", 10, "values", kind="values")(lambda ctx: None)
    assert checks.ordered()[0].timeout == 60.0


def test_does_the_registry_refuse_a_package_not_named_as_its_exercise(tmp_path, monkeypatch):
    import autograder.exercises as exercises

    stray = tmp_path / "renamed"
    stray.mkdir()
    (stray / "__init__.py").write_text(f"from autograder.exercises.{names()[0]} import EXERCISE\n")
    monkeypatch.setattr(exercises, "__path__", [*exercises.__path__, str(tmp_path)])
    with pytest.raises(exercises.DeclarationError, match="renamed/ declares the exercise .*named as its exercise"):
        exercises._discovered.__wrapped__()


def test_does_the_registry_refuse_two_exercises_with_one_number(tmp_path, monkeypatch):
    import autograder.exercises as exercises

    (tmp_path / "same_number.py").write_text(
        "import dataclasses\nfrom autograder.exercises import get_exercise\n"
        f"EXERCISE = dataclasses.replace(get_exercise({names()[0]!r}), name='same_number')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(exercises.EXERCISE_MODULES_VARIABLE, "same_number")
    with pytest.raises(exercises.DeclarationError, match="share a number"):
        exercises._discovered.__wrapped__()
