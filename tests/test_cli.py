"""Does the command line print a report (text or Gradescope JSON) and exit 0 whatever the submission did?"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SOLUTION

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
