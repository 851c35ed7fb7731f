"""Does the real nbgrader flow work: release, autograde, feedback, export?

The reference notebook (with stray warnings and stderr output added) scores full marks, the released stub
scores zero without a crash, and a notebook with one known mistake scores in between.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from mutations import TRANSFORMER, mutated_source

from autograder.authoring import solution_sections

pytestmark = pytest.mark.slow
NBGRADER = [sys.executable, "-m", "nbgrader"]
NOISE = ("import sys, warnings\nwarnings.warn('a stray warning')\nprint('a stray message', file=sys.stderr)\n")


def nbgrader(course: Path, *args):
    # nbgrader runs tools (alembic) and the kernel from the environment's bin directory
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHONWARNINGS": "default"}
    proc = subprocess.run([*NBGRADER, *args], cwd=course, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def with_solutions(release: dict, sections: dict, noise: bool = False) -> dict:
    """A student's notebook: the released one with every solution cell filled in from ``sections``."""
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        name = cell["metadata"].get("autograder", {}).get("section")
        if name and cell["metadata"]["nbgrader"].get("solution"):
            code = sections[name]
            if noise and name == "TransformerBlock":  # noise at definition time and inside forward
                code = NOISE + code.replace('        mask = None\n', '        warnings.warn("noisy forward")\n        mask = None\n')
            cell["source"] = code
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "assignments" / "source", course / "source")
    nbgrader(course, "generate_assignment", "transformer", "--force")
    release = json.loads((course / "release" / "transformer" / "transformer.ipynb").read_text())
    solution = ROOT / "solutions" / "transformer.py"
    bug = next(m for m in TRANSFORMER if m.name == "no_residual")
    buggy = course / "buggy.py"
    buggy.write_text(mutated_source(bug))
    students = {
        "alice": with_solutions(release, solution_sections(solution), noise=True),
        "bob": release,
        "carol": with_solutions(release, solution_sections(buggy)),
    }
    for student, nb in students.items():
        folder = course / "submitted" / student / "transformer"
        folder.mkdir(parents=True)
        (folder / "transformer.ipynb").write_text(json.dumps(nb))
    nbgrader(course, "autograde", "transformer", "--create", "--force")
    nbgrader(course, "generate_feedback", "transformer", "--force")
    nbgrader(course, "export")
    return course


def scores(course: Path) -> dict:
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


def test_does_the_release_hide_solutions_and_hidden_tests(course):
    text = (course / "release" / "transformer" / "transformer.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text and "math.sqrt(d)" not in text


def test_does_the_reference_score_full_marks_despite_stray_warnings(course):
    assert scores(course)["alice"] == 100


def test_does_the_stub_score_zero(course):
    assert scores(course)["bob"] == 0


def test_does_a_known_mistake_score_in_between(course):
    assert 0 < scores(course)["carol"] < 100


def test_does_feedback_name_the_mistake(course):
    html = (course / "feedback" / "carol" / "transformer" / "transformer.html").read_text()
    assert "no residual connection" in html
