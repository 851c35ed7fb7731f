"""Does the real nbgrader flow work for every exercise: release, autograde, feedback, export?

For each exercise the reference notebook (with stray warnings and stderr output added) scores full marks,
the released stub scores zero without a crash, and a notebook with one known mistake scores in between.
Hostile students start from the stub and try to score without solving anything: they rebind ``check_part``,
patch the grader's ``Report.score``, print a fake score and write to stderr, or rewrite the test cells. The
grades come from the confined grader (``autograder.nbgrader_autograde``), so each scores what the stub scores.
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
from mutations import CASES as EXERCISE_CASES
from mutations import mutated_source

from autograder.authoring import solution_sections
from autograder.exercises import get_exercise, names
from autograder.gradebook import grades

# The module's course fixture releases and autogrades every exercise for three students, and the first for six
# more (each reference and known mistake trains in the confined grader): it is charged to the first test, so the
# module gets more than the default 900 s, and its group keeps all its tests on one worker (built once).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400), pytest.mark.xdist_group("nbgrader_course")]
NOISE = "import sys, warnings\nwarnings.warn('a stray warning')\nprint('a stray message', file=sys.stderr)\n"


def case(name: str) -> dict:
    """The bug carol makes, the hint her feedback must show, and where alice's noise goes."""
    cases = EXERCISE_CASES[name]
    section, anchor = cases.noise
    return dict(bug=next(m for m in cases.known if m.name == cases.nbgrader_bug), hint=cases.nbgrader_hint,
                solution=cases.solution, section=section, anchor=anchor)


CASES = {name: case(name) for name in names()}  # every registered exercise
HOSTILE = ("dave", "erin", "frank", "grace")  # see hostile_students
# Their tricks act on check_part, the grader's classes and the test cells, which every exercise's notebook shares:
# they hand in one exercise (the first), which tests all they can test.
HOSTILE_EXERCISE = names()[0]
MARKER = "frank_was_here"  # a file frank's solution cell writes when it runs
SEED = 20261207  # the class's seed: autograde and grade-class draw each student's inputs from it
EXPORTED = "cnn_attention" if "cnn_attention" in CASES else names()[-1]  # graded again by grade-class (its
# training is the shortest)


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


def code_cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {}, "outputs": [],
            "source": source}


def hostile_students(release: dict, course: Path) -> dict:
    """The stub plus one trick each; none of them solves anything."""
    nb = json.loads(json.dumps(release))
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
    after = ids.index("check_import")
    dave = json.loads(json.dumps(nb))  # rebinds check_part in a cell of his own, after the import
    dave["cells"].insert(after + 1, code_cell("check_part = lambda *a, **k: 100.0\n", "dave"))
    erin = json.loads(json.dumps(nb))  # patches the grader's score
    erin["cells"].insert(after + 1, code_cell(
        "import autograder.checks as c\nc.Report.score = property(lambda self: 100.0)\n", "erin"))
    frank = json.loads(json.dumps(nb))  # a solution cell that rebinds check_part, prints a score, writes stderr
    first = next(c for c in frank["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    first["source"] = (f"import sys\nopen({str(course / MARKER)!r}, 'w').write('ran')\n"
                       "check_part = lambda *a, **k: 100.0\nprint('score 100 / 100')\nprint(100.0)\n"
                       "print('a traceback', file=sys.stderr)\n" + "".join(first["source"]))
    grace = json.loads(json.dumps(nb))  # rewrites every test cell to show full marks
    for cell in grace["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell["source"] = f"{float(meta['points'])}\n"
    return {"dave": dave, "erin": erin, "frank": frank, "grace": grace}


def untidy_students(solved: dict) -> dict:
    """A correct notebook whose nbgrader metadata a student's Jupyter changed: a solution cell copied (the same
    grade id twice; nbgrader stopped the whole run) and every test cell re-flagged as a manually graded answer
    (nbgrader left them to a tutor, with 0). It must score full marks, and the run go on."""
    harry = json.loads(json.dumps(solved))
    first = next(i for i, c in enumerate(harry["cells"]) if c["metadata"].get("nbgrader", {}).get("solution"))
    harry["cells"].insert(first + 1, json.loads(json.dumps(harry["cells"][first])))
    for cell in harry["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            meta["solution"] = True
    return {"harry": harry}


UNTIDY = ("harry",)


@pytest.fixture(scope="session")  # built once per worker: other modules' tests may run between its tests
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
            **(hostile_students(release, course) if name == HOSTILE_EXERCISE else {}),
            **(untidy_students(with_solutions(release, solution_sections(case["solution"])))
               if name == HOSTILE_EXERCISE else {}),
        }
        for student, nb in students.items():
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            (folder / notebook).write_text(json.dumps(nb))
        nbgrader(course, "autograde", name, "--create", "--force", f"--ConfinedGrading.seed={SEED}")
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


def feedback(course: Path, student: str, name: str) -> str:
    html = Path(get_exercise(name).notebook).with_suffix(".html").name
    return (course / "feedback" / student / name / html).read_text()


@pytest.mark.parametrize("student", HOSTILE)
def test_does_a_hostile_stub_score_exactly_what_the_stub_scores(course, student):
    name = HOSTILE_EXERCISE
    assert scores(course)[(name, student)] == scores(course)[(name, "bob")] == 0


@pytest.mark.parametrize("student", UNTIDY)
def test_does_a_correct_notebook_with_changed_metadata_score_full_marks_and_say_what_was_repaired(course, student):
    name = HOSTILE_EXERCISE
    assert scores(course)[(name, student)] == 100  # and the students after them were graded (the run went on)
    said = feedback(course, student, name)
    assert "nbgrader metadata was repaired" in said and "appears 2 times" in said and "changed" in said


def test_does_autograde_run_nothing_the_student_wrote(course):
    assert (course / "submitted" / "frank" / HOSTILE_EXERCISE).is_dir()  # frank handed in
    assert not (course / MARKER).exists()  # frank's solution cell writes it whenever it runs, in any process


def autograded_cells(course: Path, student: str, name: str):
    """(is it a test cell, the cell) for each cell of the student's autograded notebook."""
    notebook = Path(get_exercise(name).notebook).name
    nb = json.loads((course / "autograded" / student / name / notebook).read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        yield bool(meta.get("grade") and not meta.get("solution")), cell


def test_does_the_feedback_show_the_graders_verdict_and_nothing_the_student_printed(course):
    name = HOSTILE_EXERCISE
    for is_test, cell in autograded_cells(course, "frank", name):
        outputs = cell.get("outputs", [])
        if is_test:
            kinds = [(o["output_type"], o.get("name")) for o in outputs]
            assert kinds == [("stream", "stdout"), ("execute_result", None)]
            assert "score 0 / " in "".join(outputs[0]["text"]) and "".join(outputs[1]["data"]["text/plain"]) == "0.0"
        else:
            assert outputs == []  # nothing ran: no printed score, no stderr
    assert "not implemented yet" in feedback(course, "frank", name)


@pytest.mark.parametrize("name", CASES)
def test_does_every_test_cell_of_the_reference_show_its_points(course, name):
    for is_test, cell in autograded_cells(course, "alice", name):
        if is_test:
            result = [o for o in cell["outputs"] if o["output_type"] == "execute_result"]
            points = float(cell["metadata"]["nbgrader"]["points"])
            assert [float("".join(o["data"]["text/plain"])) for o in result] == [points]
            assert not [o for o in cell["outputs"] if o["output_type"] == "error" or o.get("name") == "stderr"]


def test_does_the_nbgrader_export_of_a_class_gradebook_give_the_scores_nbgrader_autograde_gives(course, tmp_path):
    """grade-class grades nbgrader's submitted/ tree in parallel; the export writes its grades into a copy of the
    course through nbgrader's own autograde (nothing graded again), and nbgrader's export shows the same scores
    as the course graded by nbgrader autograde with the same seed."""
    copy = tmp_path / "course"
    shutil.copytree(course, copy)
    book = tmp_path / "class.sqlite"
    graded = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(copy / "submitted"), "--exercise",
                             EXPORTED, "--gradebook", str(book), "--seed", str(SEED), "--workers", "2",
                             "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert graded.returncode == 0, graded.stderr[-3000:]
    assert "3 students: 3 graded" in graded.stdout
    notes = [n for g in grades(book) for n in g.report.notes]
    assert notes == []  # the notebooks are read as autograde reads them: no note about the instructor's imports
    exported = subprocess.run([sys.executable, "-m", "autograder", "export", str(book), "--format", "nbgrader",
                               "--output", str(copy)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "0 notebooks were not in the class gradebook" in exported.stdout
    nbgrader(copy, "generate_feedback", EXPORTED, "--force")
    nbgrader(copy, "export")
    ours = {k: v for k, v in scores(copy).items() if k[0] == EXPORTED}
    assert ours == {k: v for k, v in scores(course).items() if k[0] == EXPORTED}
    assert ours[(EXPORTED, "alice")] == 100 and ours[(EXPORTED, "bob")] == 0 and 0 < ours[(EXPORTED, "carol")] < 100
    assert CASES[EXPORTED]["hint"] in feedback(copy, "carol", EXPORTED)
