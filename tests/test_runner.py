"""Does a broken or runaway submission cost only the checks it breaks, with a message naming the cause?

These run the real child process (as standalone grading does), with short time limits.
"""

from __future__ import annotations

import pytest

from conftest import SOLUTION
from edits import BLOCK_FORWARD, EMBED_FORWARD, FAST, SDPA_BODY, lost_parts, with_code

from autograder.checks import Status
from autograder.exercises import get_exercise
from autograder.grading import grade_path
from autograder.sandbox import Limits

EXERCISE = get_exercise("transformer")


def test_does_an_endless_loop_in_forward_cost_only_the_checks_that_call_it(write, solution_text):
    path = write("loop.py", with_code(solution_text, EMBED_FORWARD, "while True:\n            pass"))
    report = grade_path(path, "transformer", **FAST)
    timeouts = [r for r in report.results if r.status == Status.TIMEOUT]
    assert timeouts and all("did not finish" in r.message for r in timeouts)
    assert lost_parts(report) == {"TokenAndPositionEmbedding", "TransformerClassifier"}


def test_does_an_endless_loop_at_import_give_a_report(write, solution_text):
    path = write("import_loop.py", solution_text + "\n\nclass Stuck:\n    while True:\n        pass\n")
    report = grade_path(path, "transformer", **{**FAST, "limits": Limits(start_timeout=15)})
    assert report.score == 0 and len(report.results) == len(EXERCISE.checks)
    assert any("could not be loaded" in n and "did not finish" in n for n in report.notes)


@pytest.mark.parametrize("code, cause", [
    ("import os; os._exit(3)", "exit status 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ("import sys; sys.exit(0)", "SystemExit"),
    ("blob = bytearray(64 << 30)", "MemoryError"),
])
def test_does_a_crashing_forward_cost_only_its_parts(write, solution_text, code, cause):
    path = write("crash.py", with_code(solution_text, BLOCK_FORWARD, code))
    report = grade_path(path, "transformer", **FAST)
    assert lost_parts(report) == {"TransformerBlock", "TransformerClassifier"}
    messages = [r.message for r in report.results if r.part == "TransformerBlock" and r.points == 0 and r.name != "block.interface"]
    assert messages and all(cause in m for m in messages), messages


def test_do_printing_warnings_and_stderr_cost_nothing(write, solution_text):
    noise = ("import sys, warnings; print('x' * 100_000); warnings.warn('careful'); "
             "sys.stderr.write('a stray message\\n')")
    path = write("noisy.py", with_code(solution_text, SDPA_BODY, noise))
    report = grade_path(path, "transformer", **{**FAST, "timeout_factor": 1.0})
    assert lost_parts(report) == set()


def test_does_a_missing_class_cost_only_its_part(write, solution_text):
    start = solution_text.index("# %% [TokenAndPositionEmbedding]")
    end = solution_text.index("# %% [TransformerClassifier]")
    path = write("missing.py", solution_text[:start] + solution_text[end:])
    report = grade_path(path, "transformer", **FAST)
    assert lost_parts(report) == {"TokenAndPositionEmbedding", "TransformerClassifier"}
    assert all("not defined" in r.message for r in report.results if r.part == "TokenAndPositionEmbedding")


def test_does_a_syntax_error_give_a_report_naming_the_line(write):
    path = write("syntax.py", "import torch\n\ndef scaled_dot_product_attention(query, key, value, mask=None)\n    pass\n")
    report = grade_path(path, "transformer", **FAST)
    assert report.score == 0 and any("syntax error on line 3" in n for n in report.notes)


def test_is_the_grading_directory_removed_afterwards(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    grade_path(SOLUTION, "transformer", **{**FAST, "timeout_factor": 1.0})
    assert not list(tmp_path.glob("autograder-*"))
