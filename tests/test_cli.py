"""Does the command line print a report (text or Gradescope JSON) and exit 0 whatever the submission did?

On the tests' fixture exercise (``tests/fixture_exercise``): registered in-process by the ``fixture_exercise``
fixture, and in a command line the test starts by ``AUTOGRADER_EXERCISE_MODULES`` (``conftest.fixture_env``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import FIXTURE, FIXTURE_FLAWED, FIXTURE_SOLUTION, ROOT, fixture_env

from autograder import grading
from autograder.checks import CheckResult, Report, Status
from autograder.cli import main

FLAWED_SCORE = 55  # the fixture's flawed sample: the mask applied after the softmax (25 points), no tanh (20)


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=fixture_env())


def test_does_gradescope_format_give_results_json(tmp_path):
    out = tmp_path / "results.json"
    proc = cli("grade", str(FIXTURE_FLAWED), "--exercise", FIXTURE, "--format", "gradescope", "--skip-training",
               "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["max_score"] == 100 and results["score"] == FLAWED_SCORE
    test = results["tests"][0]
    assert {"name", "score", "max_score", "status", "output"} <= test.keys()
    assert {t["status"] for t in results["tests"]} == {"passed", "failed"}
    assert sum(t["score"] for t in results["tests"]) == results["score"]


def test_does_a_broken_notebook_give_a_report_and_exit_0(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    proc = cli("grade", str(broken), "--exercise", FIXTURE, "--skip-training")
    assert proc.returncode == 0
    assert "score 0 / 100" in proc.stdout and "not a valid notebook" in proc.stdout


def test_does_the_text_report_name_the_hint(tmp_path):
    proc = cli("grade", str(FIXTURE_FLAWED), "--exercise", FIXTURE, "--skip-training", "--plot",
               str(tmp_path / "scores.png"))
    assert proc.returncode == 0, proc.stderr
    assert "hint: mask applied after the softmax" in proc.stdout and "hint: no tanh" in proc.stdout
    assert (tmp_path / "scores.png").stat().st_size > 1000


def test_is_an_unknown_exercise_refused():
    proc = cli("grade", str(FIXTURE_SOLUTION), "--exercise", "nonesuch")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_is_the_fixture_exercise_unknown_without_its_registration():
    """The fixture is the tests' own: a command line started without ``AUTOGRADER_EXERCISE_MODULES`` refuses it."""
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(FIXTURE_SOLUTION), "--exercise", FIXTURE],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={k: v for k, v in fixture_env().items() if k != "AUTOGRADER_EXERCISE_MODULES"})
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
def test_does_a_grader_failure_on_one_file_of_a_batch_keep_the_other_reports(monkeypatch, capsys, failure,
                                                                              fixture_exercise):
    monkeypatch.setattr(grading, "grade_path", fake_grade_path(failure))
    status = main(["grade", "a.py", "b.py", "c.py", "--exercise", FIXTURE])
    out, err = capsys.readouterr()
    assert status == 2
    assert [line for line in out.splitlines() if line.startswith("score")] == [
        "score 3 / 5", f"score 0 / {sum(c.points for c in fixture_exercise.checks):g}", "score 3 / 5"]
    assert f"{FIXTURE}: c.py" in out and "note: not graded: the grader itself failed on this file" in out
    assert f"grader error: b.py: {type(failure).__name__}" in err


def test_does_a_batch_in_gradescope_format_give_every_file_its_json(monkeypatch, capsys, fixture_exercise):
    monkeypatch.setattr(grading, "grade_path", fake_grade_path(RuntimeError("bug")))
    assert main(["grade", "a.py", "b.py", "c.py", "--exercise", FIXTURE, "--format", "gradescope"]) == 2
    docs = [json.loads(doc) for doc in re.split(r"\n(?=\{)", capsys.readouterr().out.strip())]  # one per file
    assert [d["score"] for d in docs] == [3, 0, 3]
    assert all(t["score"] == 0 for t in docs[1]["tests"]) and "grader itself failed" in docs[1]["output"]


def test_does_the_grader_refuse_to_grade_where_it_cannot_confine(monkeypatch, capsys, fixture_exercise):
    from autograder import sandbox

    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Features(reason="bubblewrap (bwrap) is not installed"))
    assert main(["grade", str(FIXTURE_SOLUTION), "--exercise", FIXTURE, "--skip-training"]) == 2
    out = capsys.readouterr()
    assert "refusing to grade" in out.err and "bwrap" in out.err and "--unconfined" in out.err
    assert "score" not in out.out


def test_does_an_unconfined_grading_say_what_is_not_guaranteed(monkeypatch, capsys, fixture_exercise):
    from autograder import runner, sandbox

    unavailable = lambda: sandbox.Features(reason="bubblewrap (bwrap) is not installed")  # noqa: E731
    monkeypatch.setattr(sandbox, "probe", unavailable)
    monkeypatch.setattr(runner, "probe", unavailable)
    assert main(["grade", str(FIXTURE_FLAWED), "--exercise", FIXTURE, "--skip-training", "--unconfined",
                 "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert f"score {FLAWED_SCORE} / 100" in out and "WITHOUT the sandbox" in out and "not guaranteed" in out
