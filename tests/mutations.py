"""Every registered exercise's known mistakes, gathered from ``tests/mistake_edits/<exercise>.py``, and the helpers
that grade them (once per worker process: the cascade and reproducibility tests share each grading)."""

from __future__ import annotations

import functools
import importlib

import pytest

from mistake_edits import ROOT, Cases, Mutation, edit_problems, mutated_source  # noqa: F401 - the tests' helpers

from autograder.exercises import names


def _cases(name: str) -> Cases:
    try:
        module = importlib.import_module(f"mistake_edits.{name}")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"the exercise {name!r} has no tests/mistake_edits/{name}.py") from exc
    return module.CASES


CASES = {name: _cases(name) for name in names()}  # every registered exercise
SOURCES = {name: cases.solution for name, cases in CASES.items()}
KNOWN = {name: cases.known for name, cases in CASES.items()}


def sharing_gradings(exercise: str) -> pytest.MarkDecorator:
    """The mark that keeps the tests grading ``exercise``'s known mistakes on one xdist worker, so that each
    mistake is graded once (``graded`` caches per process) for the cascade, the README table and the draws."""
    return pytest.mark.xdist_group(f"known-mistakes-{exercise}")


def graded(exercise: str, name: str, salt: int = 0):
    """The report of the known mistake ``name`` of ``exercise``, graded in process without training (once per
    worker process: the cascade and reproducibility tests share it)."""
    return _graded(exercise, name, salt)


@functools.lru_cache(maxsize=None)
def _graded(exercise: str, name: str, salt: int):
    from conftest import grade_source_in_process

    mutation = next(m for m in KNOWN[exercise] if m.name == name)
    return grade_source_in_process(mutated_source(mutation, SOURCES[exercise]), exercise=exercise, salt=salt)


def lost_points(report) -> dict[str, float]:
    """Points lost per part, leaving out the training checks (not run in process)."""
    lost: dict[str, float] = {}
    for r in report.results:
        if r.points < r.max_points and r.status.value != "skipped":
            lost[r.part] = lost.get(r.part, 0.0) + r.max_points - r.points
    return lost


def cascade_table(exercise: str) -> str:
    """The README's table for ``exercise``: each known mistake, the points it loses and the parts losing them."""
    rows = [f"| {exercise} mistake | points lost | parts that lose them |", "|---|---|---|"]
    for mutation in KNOWN[exercise]:
        lost = lost_points(graded(exercise, mutation.name))
        parts = ", ".join(f"{part} {points:g}" for part, points in lost.items())
        note = f" (cascade: {mutation.cascade})" if mutation.cascade else ""
        rows.append(f"| `{mutation.name}` | {sum(lost.values()):g} | {parts}{note} |")
    return "\n".join(rows)
