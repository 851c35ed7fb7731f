"""Does the nbgrader preprocessor score test cells from the confined grader's report, and only from it?

``grade_path`` is replaced by a stand-in returning a fixed report (the real one runs in tests/test_nbgrader.py),
so these tests check how cells are mapped to checks, what each cell shows, and what a failure looks like.
"""

from __future__ import annotations

import logging

import nbformat
import pytest
from nbgrader.preprocessors import Execute, SaveAutoGrades
from nbgrader.utils import determine_grade
from traitlets.config.loader import PyFileConfigLoader

from conftest import ROOT

from autograder import nbgrader_autograde
from autograder.checks import CheckResult, Report, Status
from autograder.nbgrader_autograde import (ConfinedGrading, PartCall, autograde_preprocessors, graded_copy,
                                           read_test_cell)

PUBLIC = 'check_part("transformer", "scaled_dot_product_attention", globals())\n'
HIDDEN = ('### BEGIN HIDDEN TESTS\ncheck_part("transformer", "scaled_dot_product_attention", globals(), hidden=True)\n'
          '### END HIDDEN TESTS\n')


def meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
         points: float = 0) -> dict:
    out = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3,
           "task": False}
    if grade:
        out["points"] = points
    return out


def cell(source: str, **kw) -> nbformat.NotebookNode:
    c = nbformat.v4.new_code_cell(source)
    if kw:
        c.metadata["nbgrader"] = meta(**kw)
    return c


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def student_notebook() -> nbformat.NotebookNode:
    """A sanitized submission: the instructor's cells, a solution cell, a cell of the student's, two test cells."""
    return notebook(
        cell("import torch\n", grade_id="imports", locked=True),
        cell("from autograder.notebook_cell import check_part  # the checks; keep this line\n", grade_id="check_import",
             locked=True),
        cell("check_part = lambda *a, **k: 100.0\nprint(100.0)\n"),
        cell("def scaled_dot_product_attention(q, k, v, mask=None):\n    raise NotImplementedError()\n",
             grade_id="sdpa_solution", solution=True),
        cell(PUBLIC, grade_id="sdpa_public_checks", grade=True, locked=True, points=6),
        cell(HIDDEN, grade_id="sdpa_hidden_checks", grade=True, locked=True, points=9),
    )


def result(name: str, max_points: float, earned: float, hidden: bool = False, hint: str | None = None) -> CheckResult:
    status = Status.PASSED if earned == max_points else Status.FAILED
    return CheckResult(name=name, part="scaled_dot_product_attention", description=f"{name} works", points=earned,
                       max_points=max_points, status=status, message="" if earned == max_points else f"{name} is off",
                       hint=hint, hidden=hidden)


def fixed_report() -> Report:
    return Report(exercise="transformer", submission="x.ipynb", notes=["cell 4: syntax error on line 2"], results=[
        result("sdpa.interface", 1, 1), result("sdpa.shapes", 2, 2), result("sdpa.weights_sum", 2, 0),
        result("sdpa.gradients", 1, 1), result("sdpa.values", 5, 0, hidden=True, hint="no 1/sqrt(d) scaling"),
        result("sdpa.mask", 4, 4, hidden=True)])


@pytest.fixture
def graded(monkeypatch):
    """grade_path replaced by a stand-in; returns the calls it received (each: the notebook it read, kwargs)."""
    calls = []

    def fake_grade_path(path, exercise, **kw):
        calls.append((nbformat.read(str(path), as_version=4), exercise, kw))
        return fixed_report()

    monkeypatch.setattr(nbgrader_autograde, "grade_path", fake_grade_path)
    return calls


def run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out, _ = ConfinedGrading(device="cpu").preprocess(nb, {"nbgrader": {"notebook": "transformer"}})
    return out


def text(c: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in c.outputs if o.output_type == "stream")


def test_does_a_test_cell_name_its_exercise_part_and_hidden_flag():
    assert read_test_cell(PUBLIC).calls == [PartCall("transformer", "scaled_dot_product_attention", False)]
    assert read_test_cell(HIDDEN).calls == [PartCall("transformer", "scaled_dot_product_attention", True)]


@pytest.mark.parametrize("source", ['check_part(EXERCISE, "X", globals())\n',
                                    'check_part("t", "X", globals(), hidden=h)\n', "assert True\n", "check_part(\n"])
def test_is_a_test_cell_that_cannot_be_read_refused_with_a_reason(source):
    test = read_test_cell(source)
    assert not test.calls and test.problem


def test_does_each_test_cell_earn_the_points_of_its_own_checks(graded):
    nb = run(student_notebook())
    public, hidden = nb.cells[4], nb.cells[5]
    assert determine_grade(public) == (4.0, 6.0)  # interface 1 + shapes 2 + gradients 1; weights_sum lost
    assert determine_grade(hidden) == (4.0, 9.0)  # mask 4; values lost
    assert "sdpa.weights_sum is off" in text(public) and "sdpa.values" not in text(public)
    assert "hint: no 1/sqrt(d) scaling" in text(hidden) and "sdpa.shapes" not in text(hidden)


def test_is_the_notebook_graded_once_from_disk_with_fresh_inputs_and_the_training_check(graded):
    run(student_notebook())
    [(nb, exercise, kw)] = graded
    assert exercise == "transformer" and kw["salt"] is None and not kw.get("skip_training", False)
    assert kw["device"] == "cpu"
    assert len(nb.cells) == 6 and "check_part = lambda" in nb.cells[2].source  # the student's cells, as written


def test_does_the_graded_copy_leave_out_only_the_instructors_imports_of_the_grader():
    nb = student_notebook()
    nb.cells[3].source = "import autograder.checks as c\n" + nb.cells[3].source
    copy = graded_copy(nb)
    assert "autograder" not in copy.cells[1].source  # the instructor's check_part import
    assert copy.cells[0].source == "import torch\n"
    assert copy.cells[3].source.startswith("import autograder.checks as c")  # the student's own: graded as written
    assert "from autograder" in nb.cells[1].source  # the notebook itself is unchanged


def test_do_notes_about_the_whole_submission_reach_the_feedback(graded):
    nb = run(student_notebook())
    assert "cell 4: syntax error on line 2" in text(nb.cells[4])


def test_does_a_test_cell_without_check_part_score_zero_with_a_reason(graded):
    nb = student_notebook()
    nb.cells.append(cell("assert True\n", grade_id="extra", grade=True, locked=True, points=3))
    nb = run(nb)
    assert determine_grade(nb.cells[-1]) == (0.0, 3.0)  # without outputs nbgrader would give full marks
    assert "calls no check_part" in text(nb.cells[-1])
    assert determine_grade(nb.cells[4]) == (4.0, 6.0)


def test_are_cells_that_are_not_test_cells_left_alone(graded):
    nb = run(student_notebook())
    assert [c.outputs for c in nb.cells[:4]] == [[], [], [], []]


def test_does_a_grader_failure_score_zero_with_a_message_instead_of_raising(monkeypatch):
    def broken(path, exercise, **kw):
        raise RuntimeError("bubblewrap is missing")

    monkeypatch.setattr(nbgrader_autograde, "grade_path", broken)
    nb = run(student_notebook())
    for c in nb.cells[4:]:
        assert determine_grade(c)[0] == 0
        assert "the grader itself failed (RuntimeError: bubblewrap is missing)" in text(c)


def test_are_points_capped_at_the_cells_maximum_and_the_mismatch_logged(graded, caplog):
    nb = student_notebook()
    nb.cells[4].metadata.nbgrader["points"] = 2  # fewer than the 4 its checks earn
    with caplog.at_level(logging.WARNING):
        assert determine_grade(run(nb).cells[4]) == (2.0, 2.0)  # nbgrader raises on partial credit above the maximum
    assert "sdpa_public_checks is worth 2 points but its checks are worth 6" in caplog.text


def test_does_the_course_configuration_grade_with_confined_grading_instead_of_execute():
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "assignments")).load_config()
    pps = config.Autograde.autograde_preprocessors
    assert ConfinedGrading in pps and Execute not in pps and SaveAutoGrades in pps
    assert pps == autograde_preprocessors()
    assert pps.index(ConfinedGrading) < pps.index(SaveAutoGrades)


def test_does_a_failure_on_one_cell_leave_the_other_cells_scored(graded):
    nb = student_notebook()
    nb.cells.append(cell('check_part("no_such_exercise", "X", globals())\n', grade_id="odd", grade=True, locked=True,
                         points=3))
    nb = run(nb)
    assert determine_grade(nb.cells[-1]) == (0.0, 3.0) and "the grader itself failed" in text(nb.cells[-1])
    assert determine_grade(nb.cells[4]) == (4.0, 6.0)
