"""Does a submission get the same verdict on every check for every input draw?

Each grading run draws its inputs and weights from a salt (``--seed`` fixes it; by default it is random). The
reference, the correct variants written differently and every known mistake are graded under many salts here,
and each must get one verdict per check: a mistake is caught on every draw, correct code passes on every draw.
"""

from __future__ import annotations

import os

import pytest

from conftest import grade_source_in_process
from mutations import CASES, KNOWN, SOURCES, graded, mutated_source, sharing_gradings
from realworld_fixtures import FIXTURES

pytestmark = pytest.mark.slow  # hundreds of gradings (minutes)

# Draws per submission in CI: 10 for correct code and for a mistake no switch names, 3 for a known mistake (the first, salt 0, is the cascade test's
# grading, reused where the same worker ran it). ``bench/reproducibility.py --draws 30`` (REPRODUCIBLE_DRAWS) runs
# the full set: run it before resolving any change to the checks.
DRAWS_CORRECT = int(os.environ.get("REPRODUCIBLE_DRAWS", 10))
DRAWS_MISTAKE = int(os.environ.get("REPRODUCIBLE_DRAWS", 3))
SALTS = [0] + [0x9E3779B1 * i % 2**32 for i in range(1, max(DRAWS_CORRECT, DRAWS_MISTAKE))]

# Every registered exercise's solution and its correct variants written differently (``Cases.correct``).
CORRECT = [(exercise, path) for exercise, cases in CASES.items() for path in cases.correct]


def verdicts(source: str, exercise: str, draws: int, mutation: str = "") -> dict[tuple, list[int]]:
    """The distinct verdicts (check name, passed) over ``draws`` salts, each with the salts that gave it
    (``mutation``: a known mistake's name, whose graded reports are shared with the cascade tests)."""
    seen: dict[tuple, list[int]] = {}
    for salt in SALTS[:draws]:
        report = (graded(exercise, mutation, salt) if mutation
                  else grade_source_in_process(source, exercise=exercise, salt=salt))
        assert not report.grader_errors, report.grader_errors
        key = tuple((r.name, r.points == r.max_points) for r in report.results if r.status.value != "skipped")
        seen.setdefault(key, []).append(salt)
    return seen


def describe(seen: dict) -> str:
    keys = list(seen)
    flips = sorted({name for k in keys for (name, ok) in k if any(dict(other)[name] != ok for other in keys)})
    return f"checks whose verdict depends on the draw: {flips}; salts per verdict: {list(seen.values())}"


@pytest.mark.parametrize("exercise, path", CORRECT, ids=[f"{e}-{p.stem}" for e, p in CORRECT])
def test_does_correct_code_pass_every_check_on_every_draw(exercise, path):
    seen = verdicts(path.read_text(), exercise, DRAWS_CORRECT)
    assert len(seen) == 1, describe(seen)
    assert all(ok for _, ok in next(iter(seen))), next(iter(seen))


MISTAKES = [pytest.param(exercise, m, id=f"{exercise}-{m.name}", marks=sharing_gradings(exercise))
            for exercise, mutations in KNOWN.items() for m in mutations]  # salt 0: the cascade test's grading


@pytest.mark.parametrize("exercise, mutation", MISTAKES)
def test_does_a_known_mistake_get_one_verdict_per_check_on_every_draw(exercise, mutation):
    seen = verdicts(mutated_source(mutation, SOURCES[exercise]), exercise, DRAWS_MISTAKE, mutation=mutation.name)
    assert len(seen) == 1, describe(seen)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.file)
def test_does_a_published_style_get_one_verdict_per_check_on_every_draw(fixture):
    seen = verdicts(fixture.source(), fixture.exercise, DRAWS_CORRECT)
    assert len(seen) == 1, describe(seen)


UNKNOWN = [(exercise, *edit) for exercise, cases in CASES.items() for edit in cases.unknown]  # (exercise, id, old, new)


@pytest.mark.parametrize("exercise, edit, old, new", UNKNOWN, ids=[u[1] for u in UNKNOWN])
def test_does_an_unknown_mistake_inside_a_part_get_one_verdict_per_check_on_every_draw(exercise, edit, old, new):
    """Its composites are judged with the grader's float64 reference standing in for it (``autograder.stand_ins``),
    so they pass on every draw; where none is declared, they fail on every draw instead of on some."""
    source = SOURCES[exercise].read_text()
    assert old in source
    seen = verdicts(source.replace(old, new), exercise, DRAWS_CORRECT)
    assert len(seen) == 1, describe(seen)
