"""Does the command line print a report (text or Gradescope JSON) and exit 0 whatever the submission did?"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, SOLUTION

from autograder import grading
from autograder.checks import CheckResult, Report, Status
from autograder.cli import main
from autograder.exercises import get_exercise

TRAINING_POINTS = get_exercise("transformer").check("clf.training").points


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_does_gradescope_format_give_results_json(tmp_path):
    out = tmp_path / "results.json"
    proc = cli("grade", str(SOLUTION), "--exercise", "transformer", "--format", "gradescope", "--skip-training",
               "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["max_score"] == 100 and results["score"] == 100 - TRAINING_POINTS
    test = results["tests"][0]
    assert {"name", "score", "max_score", "status", "output"} <= test.keys()
    assert {t["status"] for t in results["tests"]} == {"passed", "failed"}  # the skipped training check
    assert sum(t["score"] for t in results["tests"]) == results["score"]


def test_does_a_broken_notebook_give_a_report_and_exit_0(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    proc = cli("grade", str(broken), "--exercise", "transformer", "--skip-training")
    assert proc.returncode == 0
    assert "score 0 / 100" in proc.stdout and "not a valid notebook" in proc.stdout


def test_does_the_text_report_name_the_hint(tmp_path):
    proc = cli("grade", str(ROOT / "assignments" / "samples" / "transformer_flawed.py"), "--exercise", "transformer",
               "--skip-training", "--plot", str(tmp_path / "scores.png"))
    assert proc.returncode == 0, proc.stderr
    assert "hint: no 1/sqrt(d) scaling" in proc.stdout and "without the transpose" in proc.stdout
    assert (tmp_path / "scores.png").stat().st_size > 1000


def test_is_an_unknown_exercise_refused():
    proc = cli("grade", str(SOLUTION), "--exercise", "nonesuch")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def fake_grade_path(failure: BaseException):
    """A grade_path that reports quickly, except for b.py, where the grader itself fails with ``failure``."""

    def grade_path(path, exercise, **kw):
        if str(path).endswith("b.py"):
            raise failure
        return Report(exercise=exercise, submission=str(path), results=[
            CheckResult("x.values", "X", "values", 3, 5, Status.FAILED, "off by 1", "no scaling"),
        ])

    return grade_path


@pytest.mark.parametrize("failure", [RuntimeError("bug in a check"), RecursionError("deep"), SystemExit(3)],
                         ids=["RuntimeError", "RecursionError", "SystemExit"])
def test_does_a_grader_failure_on_one_file_of_a_batch_keep_the_other_reports(monkeypatch, capsys, failure):
    monkeypatch.setattr(grading, "grade_path", fake_grade_path(failure))
    status = main(["grade", "a.py", "b.py", "c.py", "--exercise", "transformer"])
    out, err = capsys.readouterr()
    assert status == 2
    assert [line for line in out.splitlines() if line.startswith("score")] == [
        "score 3 / 5", f"score 0 / {sum(c.points for c in get_exercise('transformer').checks):g}", "score 3 / 5"]
    assert "transformer: c.py" in out and "note: not graded: the grader itself failed on this file" in out
    assert f"grader error: b.py: {type(failure).__name__}" in err


def test_does_a_batch_in_gradescope_format_give_every_file_its_json(monkeypatch, capsys):
    monkeypatch.setattr(grading, "grade_path", fake_grade_path(RuntimeError("bug")))
    assert main(["grade", "a.py", "b.py", "c.py", "--exercise", "transformer", "--format", "gradescope"]) == 2
    docs = [json.loads(doc) for doc in re.split(r"\n(?=\{)", capsys.readouterr().out.strip())]  # one per file
    assert [d["score"] for d in docs] == [3, 0, 3]
    assert all(t["score"] == 0 for t in docs[1]["tests"]) and "grader itself failed" in docs[1]["output"]


def test_does_the_grader_refuse_to_grade_where_it_cannot_confine(monkeypatch, capsys, tmp_path):
    from autograder import sandbox

    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Features(reason="bubblewrap (bwrap) is not installed"))
    assert main(["grade", str(SOLUTION), "--exercise", "transformer", "--skip-training"]) == 2
    out = capsys.readouterr()
    assert "refusing to grade" in out.err and "bwrap" in out.err and "--unconfined" in out.err
    assert "score" not in out.out


def test_does_an_unconfined_grading_say_what_is_not_guaranteed(monkeypatch, capsys):
    from autograder import runner, sandbox

    unavailable = lambda: sandbox.Features(reason="bubblewrap (bwrap) is not installed")  # noqa: E731
    monkeypatch.setattr(sandbox, "probe", unavailable)
    monkeypatch.setattr(runner, "probe", unavailable)
    assert main(["grade", str(SOLUTION), "--exercise", "transformer", "--skip-training", "--unconfined",
                 "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "score 78 / 100" in out and "WITHOUT the sandbox" in out and "not guaranteed" in out
