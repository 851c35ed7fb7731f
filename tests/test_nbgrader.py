"""Does the real nbgrader flow work for every exercise: release, autograde, feedback, export?

For each exercise the reference notebook (with stray warnings and stderr output added) scores full marks,
the released stub scores zero without a crash, and a notebook with one known mistake scores in between.
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
from mutations import ATTENTION_RNN, ATTENTION_RNN_SOLUTION, TRANSFORMER, mutated_source

from autograder.authoring import solution_sections
from autograder.exercises import get_exercise

pytestmark = pytest.mark.slow
NOISE = "import sys, warnings\nwarnings.warn('a stray warning')\nprint('a stray message', file=sys.stderr)\n"
CASES = {  # the bug carol makes, the hint her feedback must show, and where alice's noise goes
    "transformer": dict(bug=next(m for m in TRANSFORMER if m.name == "no_residual"), hint="no residual connection",
                        solution=ROOT / "solutions" / "transformer.py", section="TransformerBlock",
                        anchor="        mask = None\n"),
    "attention_rnn": dict(bug=next(m for m in ATTENTION_RNN if m.name == "reads_padded_step"),
                          hint="reads a padded step", solution=ATTENTION_RNN_SOLUTION, section="TemporalAttention",
                          anchor="        B, T, H = h.shape\n"),
}


def nbgrader(course: Path, *args):
    # nbgrader runs tools (alembic) and the kernel from the environment's bin directory
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=1500, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def with_solutions(release: dict, sections: dict, noise: tuple | None = None) -> dict:
    """A student's notebook: the released one with every solution cell filled in from ``sections``."""
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        name = cell["metadata"].get("autograder", {}).get("section")
        if name and cell["metadata"]["nbgrader"].get("solution"):
            code = sections[name]
            if noise and name == noise[0]:  # noise at definition time and inside forward
                assert noise[1] in code
                code = NOISE + code.replace(noise[1], '        warnings.warn("noisy forward")\n' + noise[1])
            cell["source"] = code
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "assignments" / "source", course / "source")
    for name, case in CASES.items():
        nbgrader(course, "generate_assignment", name, "--force")
        notebook = Path(get_exercise(name).notebook).name
        release = json.loads((course / "release" / name / notebook).read_text())
        buggy = course / f"{name}_buggy.py"
        buggy.write_text(mutated_source(case["bug"], case["solution"]))
        students = {
            "alice": with_solutions(release, solution_sections(case["solution"]), (case["section"], case["anchor"])),
            "bob": release,
            "carol": with_solutions(release, solution_sections(buggy)),
        }
        for student, nb in students.items():
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            (folder / notebook).write_text(json.dumps(nb))
        nbgrader(course, "autograde", name, "--create", "--force")
        nbgrader(course, "generate_feedback", name, "--force")
    nbgrader(course, "export")
    return course


def scores(course: Path) -> dict:
    with open(course / "grades.csv") as f:
        return {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(f)}


@pytest.mark.parametrize("name", CASES)
def test_does_the_release_hide_solutions_and_hidden_tests(course, name):
    text = (course / "release" / name / Path(get_exercise(name).notebook).name).read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("name", CASES)
def test_does_the_reference_score_full_marks_despite_stray_warnings(course, name):
    assert scores(course)[(name, "alice")] == 100


@pytest.mark.parametrize("name", CASES)
def test_does_the_stub_score_zero(course, name):
    assert scores(course)[(name, "bob")] == 0


@pytest.mark.parametrize("name", CASES)
def test_does_a_known_mistake_score_in_between_and_get_named_in_feedback(course, name):
    assert 0 < scores(course)[(name, "carol")] < 100
    html = (course / "feedback" / "carol" / name / Path(get_exercise(name).notebook).with_suffix(".html").name).read_text()
    assert CASES[name]["hint"] in html
