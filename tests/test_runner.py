"""Does a broken or runaway submission cost only the checks it breaks, with a message naming the cause?

These run the real child process (as standalone grading does), with short time limits, on the tests' fixture
exercise (``tests/fixture_exercise``): ``masked_softmax``, and ``AttentionPooling`` built from it.
"""

from __future__ import annotations

import pytest

from conftest import FIXTURE_SOLUTION

from autograder.checks import Status
from autograder.exercises import completed
from autograder.grading import grade_path
from autograder.sandbox import Limits
from fixture_exercise import MS, POOL

import fixture_exercise

EXERCISE = completed(fixture_exercise.EXERCISE, "fixture_exercise")  # with its hidden checks and probes

# 15% of each check's time budget (9 s of 60): an endless loop is cut short, while a correct check keeps a
# margin of ten times its time on an idle machine when other jobs share the cores.
FAST = dict(skip_training=True, device="cpu", timeout_factor=0.15, limits=Limits(start_timeout=30))

# Places in the fixture's solution where code can be inserted.
SOFTMAX_BODY = "    if mask is not None:\n        scores = scores.masked_fill"
POOL_FORWARD = "        weights = masked_softmax(self.score("


@pytest.fixture(scope="module")
def solution_text() -> str:
    return FIXTURE_SOLUTION.read_text()


def with_code(solution_text: str, anchor: str, code: str) -> str:
    """Insert ``code`` (indented like ``anchor``) just before ``anchor`` in the reference."""
    assert anchor in solution_text, anchor
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    return solution_text.replace(anchor, f"{indent}{code}\n{anchor}", 1)


def lost_parts(report) -> set[str]:
    """The parts that lost points."""
    return {r.part for r in report.results if r.points < r.max_points}


@pytest.mark.slow  # it waits out the time limit of every check that calls the loop
def test_does_an_endless_loop_in_forward_cost_only_the_checks_that_call_it(write, solution_text):
    path = write("loop.py", with_code(solution_text, POOL_FORWARD, "while True:\n            pass"))
    report = grade_path(path, EXERCISE, **FAST)
    timeouts = [r for r in report.results if r.status == Status.TIMEOUT]
    assert timeouts and all("did not finish" in r.message for r in timeouts)
    assert lost_parts(report) == {POOL}
    assert {r.name for r in timeouts} == {c.name for c in EXERCISE.checks if c.part == POOL} - {"pool.interface"}


def test_does_an_endless_loop_at_import_give_a_report(write, solution_text):
    path = write("import_loop.py", solution_text + "\n\nclass Stuck:\n    while True:\n        pass\n")
    report = grade_path(path, EXERCISE, **{**FAST, "limits": Limits(start_timeout=15)})
    assert report.score == 0 and len(report.results) == len(EXERCISE.checks)
    assert any("could not be loaded" in n and "did not finish" in n for n in report.notes)


@pytest.mark.parametrize("code, cause", [
    ("import os; os._exit(3)", "exit status 3"),
    ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),  # a fault: a signal it sends itself is ignored (PID 1)
    ("import sys; sys.exit(0)", "SystemExit"),
    ("blob = bytearray(64 << 30)", "MemoryError"),
])
def test_does_a_crashing_forward_cost_only_its_parts(write, solution_text, code, cause):
    path = write("crash.py", with_code(solution_text, POOL_FORWARD, code))
    report = grade_path(path, EXERCISE, **FAST)
    assert lost_parts(report) == {POOL}
    messages = [r.message for r in report.results if r.part == POOL and r.points == 0 and r.name != "pool.interface"]
    assert messages and all(cause in m for m in messages), messages


def test_do_printing_warnings_and_stderr_cost_nothing(write, solution_text):
    noise = ("import sys, warnings; print('x' * 100_000); warnings.warn('careful'); "
             "sys.stderr.write('a stray message\\n')")
    path = write("noisy.py", with_code(solution_text, SOFTMAX_BODY, noise))
    report = grade_path(path, EXERCISE, **{**FAST, "timeout_factor": 1.0})
    assert lost_parts(report) == set()


def test_does_a_missing_class_cost_only_its_part(write, solution_text):
    path = write("missing.py", solution_text[: solution_text.index("# %% [AttentionPooling]")])
    report = grade_path(path, EXERCISE, **FAST)
    assert lost_parts(report) == {POOL}
    assert all("not defined" in r.message for r in report.results if r.part == POOL)


def test_does_a_missing_part_cost_the_part_built_from_it_too(write, solution_text):
    start = solution_text.index("# %% [masked_softmax]")
    end = solution_text.index("# %% [AttentionPooling]")
    path = write("missing_part.py", solution_text[:start] + solution_text[end:])
    report = grade_path(path, EXERCISE, **FAST)
    assert lost_parts(report) == {MS, POOL}
    assert all("not defined" in r.message for r in report.results if r.part == MS)


def test_does_a_syntax_error_give_a_report_naming_the_line(write):
    path = write("syntax.py", "import torch\n\ndef masked_softmax(scores, mask=None)\n    pass\n")
    report = grade_path(path, EXERCISE, **FAST)
    assert report.score == 0 and any("syntax error on line 3" in n for n in report.notes)


def test_is_the_grading_directory_removed_afterwards(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    grade_path(FIXTURE_SOLUTION, EXERCISE, **{**FAST, "timeout_factor": 1.0})
    assert not list(tmp_path.glob("autograder-*"))
