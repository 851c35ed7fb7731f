"""nbgrader's autograde step without running the student's kernel: the confined grader scores every test cell.

Under ``nbgrader autograde`` the preprocessor ``ConfinedGrading`` takes the place of nbgrader's ``Execute``
(``assignments/nbgrader_config.py``: ``c.Autograde.autograde_preprocessors = autograde_preprocessors()``).
It runs in nbgrader's own process and executes nothing from the notebook:

1. each test cell's ``check_part("<exercise>", "<part>", globals(), hidden=True)`` call is read with ``ast``
   (literal arguments only; a test cell is a grade cell that is not a solution cell). nbgrader's sanitizing step
   (``OverwriteCells``) has put the instructor's source back into every such cell, so the calls can be trusted;
2. the notebook is graded once per exercise by ``grading.grade_path``: the submission runs in a confined child
   process, the hidden checks draw fresh random inputs, the training check trains in the child. The grader reads
   a copy of the notebook in which the instructor's locked cells do not import this package (the child has no
   grader to import; those imports serve students' kernels);
3. each test cell gets the outputs nbgrader's ``SaveAutoGrades`` reads: a stdout stream with the feedback of the
   part's public (``hidden=False``) or hidden checks, as ``check_part`` prints it, and an ``execute_result``
   holding the points those checks earned, at most the cell's points (nbgrader's partial credit). Notes about
   the whole submission (syntax errors, code that failed to load) go to the first test cell and to every cell
   that lost points.

A test cell that calls no ``check_part`` with literal arguments scores 0 with a message saying so (left without
outputs, nbgrader would give it full marks). When the grader fails, every test cell it should have scored shows
"the grader itself failed (...)" and scores 0; nbgrader goes on with the other students.
"""

from __future__ import annotations

import ast
import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, Unicode

from .checks import Report, one_line
from .exercises import get_exercise
from .grading import grade_path
from .report import as_text

GRADER_PACKAGE = "autograder"


@dataclass(frozen=True)
class PartCall:
    """One ``check_part(exercise, part, globals(), hidden=...)`` call of a test cell."""

    exercise: str
    part: str
    hidden: bool = False


@dataclass
class CellCalls:
    """What a test cell asks for: its ``check_part`` calls, or why it cannot be graded."""

    calls: list[PartCall] = field(default_factory=list)
    problem: str = ""


@dataclass
class CellGrade:
    """What a graded test cell shows: its feedback text and the points it earns (of its checks' ``checks_max``)."""

    points: float
    feedback: str
    checks_max: float | None = None  # None: not graded by checks


def _literal(node: ast.expr | None, kind: type):
    return node.value if isinstance(node, ast.Constant) and type(node.value) is kind else None


def _is_check_part(node: ast.AST) -> bool:
    func = getattr(node, "func", None)
    return isinstance(node, ast.Call) and (
        (isinstance(func, ast.Name) and func.id == "check_part")
        or (isinstance(func, ast.Attribute) and func.attr == "check_part"))


def read_test_cell(source: str) -> CellCalls:
    """The ``check_part`` calls in a test cell's source (read, never run)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, SyntaxError) else type(exc).__name__
        return CellCalls(problem=f"the test cell does not parse ({where})")
    cell = CellCalls()
    for node in ast.walk(tree):
        if not _is_check_part(node):
            continue
        args = node.args
        keywords = {k.arg: k.value for k in node.keywords}
        exercise = _literal(args[0] if args else keywords.get("exercise"), str)
        part = _literal(args[1] if len(args) > 1 else keywords.get("part"), str)
        hidden_node = args[3] if len(args) > 3 else keywords.get("hidden")
        hidden = False if hidden_node is None else _literal(hidden_node, bool)
        if exercise is None or part is None or hidden is None:
            return CellCalls(problem=f"check_part on line {node.lineno} does not name its exercise, part and "
                                     "hidden flag with literals")
        cell.calls.append(PartCall(exercise, part, hidden))
    if not cell.calls:
        cell.problem = "the test cell calls no check_part(...)"
    return cell


def is_test_cell(cell: NotebookNode) -> bool:
    """A grade cell that is not a solution: nbgrader scores it from its outputs."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _without_grader_imports(code: str) -> str:
    """``code`` without its top-level imports of this package (the confined child has no grader to import)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    body = [node for node in tree.body if not (
        (isinstance(node, ast.Import) and any(a.name.split(".")[0] == GRADER_PACKAGE for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.level == 0
            and (node.module or "").split(".")[0] == GRADER_PACKAGE))]
    if len(body) == len(tree.body):
        return code
    try:
        return ast.unparse(ast.Module(body=body, type_ignores=[]))
    except (RecursionError, MemoryError):
        return code


def graded_copy(nb: NotebookNode) -> NotebookNode:
    """The notebook the confined grader reads: outputs cleared; instructor cells without imports of the grader.

    Those imports (``check_part``, the training helpers) serve the notebook in a student's kernel; in the
    confined child they would only fail and put a note about the instructor's code in every student's feedback.
    """
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        if utils.is_locked(cell) and not utils.is_grade(cell):
            cell.source = _without_grader_imports(cell.source)
    return out


def clean_notebook_file(path: Path) -> bool:
    """Rewrite an nbgrader notebook at ``path`` as ``graded_copy`` makes it (grade-class reads a student's notebook
    as nbgrader autograde would); False, and the file unchanged, for anything else or anything unreadable."""
    from .source import MAX_NOTEBOOK_BYTES

    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return False
        nb = nbformat.reads(path.read_text(), as_version=4)
        if not any("nbgrader" in cell.get("metadata", {}) for cell in nb.cells):
            return False
        nbformat.write(graded_copy(nb), str(path))
        return True
    except Exception:  # noqa: BLE001 - not a notebook the grader can clean: graded as the student sent it
        return False


def _part_feedback(call: PartCall, report: Report, with_notes: bool) -> Report:
    """The checks of one ``check_part`` call as a report of their own (the text students see in their kernel)."""
    results = [r for r in report.results if r.part == call.part and r.hidden == call.hidden]
    training = {c.name for c in get_exercise(call.exercise).checks if c.training}
    lost = any(r.points < r.max_points for r in results)
    return Report(exercise=report.exercise, submission=f"{call.part} ({'hidden' if call.hidden else 'public'} checks)",
                  results=results, notes=list(report.notes) if with_notes or lost else [],
                  artifacts=report.artifacts if any(r.name in training for r in results) else {})


def grade_cell(calls: list[PartCall], reports: dict[str, Report | str], max_points: float,
               with_notes: bool) -> CellGrade:
    """A test cell's feedback and points from the whole notebook's reports (a str: why the grader failed).

    Notes about the whole submission (syntax errors, code that failed to load) are shown when ``with_notes``
    (the first test cell) and in every cell that lost points.
    """
    texts, points, checks_max = [], 0.0, 0.0
    for call in calls:
        report = reports[call.exercise]
        if isinstance(report, str):
            texts.append(f"{call.exercise}: {call.part}: not graded: {report}. This cell scores 0.")
            continue
        part = _part_feedback(call, report, with_notes)
        texts.append(as_text(part) if part.results else f"{call.exercise}: {call.part} has no such checks")
        points += part.score
        checks_max += part.max_score
    return CellGrade(points=round(min(max(points, 0.0), max_points), 6), feedback="\n\n".join(texts),
                     checks_max=round(checks_max, 6))


def cell_outputs(grade: CellGrade) -> list[NotebookNode]:
    """The outputs nbgrader scores: feedback on stdout, then the points as the cell's result."""
    return [nbformat.v4.new_output("stream", name="stdout", text=grade.feedback.rstrip("\n") + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(grade.points))},
                                   execution_count=None)]


REPAIRS_KEY = "autograder_repairs"  # notebook metadata: what RepairMetadata repaired, for the feedback
MAX_REPAIRS = 20


class RepairMetadata(NbGraderPreprocessor):
    """nbgrader sanitizing step, before its own: the student's nbgrader metadata made the assignment's again.

    A student's notebook may carry metadata that stops ``nbgrader autograde`` for the whole class or zeroes a
    gradable notebook: a cell copied in Jupyter (the same grade id twice: nbgrader empties the earlier copy's
    metadata, then refuses it as an old format and aborts the run), test cells re-flagged as solutions (left for
    manual grading with 0), flags or points edited. Each cell that names one of the assignment's cells gets that
    cell's flags and points from the gradebook; of several copies, the last one is the cell and the others are
    ordinary code; metadata naming no cell of the assignment is dropped. What was repaired is recorded in the
    notebook's metadata, which ``ConfinedGrading`` shows in the feedback (and which a student cannot forge:
    this step replaces it)."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            points = {c.name: float(c.max_score) for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
            locked = {c.name: bool(c.locked) for c in notebook.source_cells}
        nb.metadata.pop(REPAIRS_KEY, None)
        ids = [self._grade_id(cell) for cell in nb.cells]
        last = {grade_id: i for i, grade_id in enumerate(ids) if grade_id is not None}
        repairs: list[str] = []
        for i, (cell, grade_id) in enumerate(zip(nb.cells, ids)):
            if "nbgrader" not in cell.metadata:
                continue
            if grade_id not in locked:
                del cell.metadata["nbgrader"]
                repairs.append(f"a cell carried nbgrader metadata of no cell of this assignment ({grade_id!r}): "
                               "graded as ordinary code")
                continue
            if last[grade_id] != i:
                del cell.metadata["nbgrader"]
                repairs.append(f"cell {grade_id!r} appears {ids.count(grade_id)} times: the last copy is that cell, "
                               "the others are ordinary code")
                continue
            meta = dict(cell.metadata["nbgrader"])
            wanted = {"grade": grade_id in points, "solution": grade_id in solutions, "task": grade_id in tasks,
                      "locked": locked[grade_id], "grade_id": grade_id, "schema_version": 3}
            if grade_id in points:
                wanted["points"] = points[grade_id]
            changed = [k for k in ("grade", "solution", "task", "locked", "points")
                       if (meta.get(k) != wanted.get(k)) and not (k == "points" and _same_points(meta.get(k), wanted.get(k)))]
            if changed:
                repairs.append(f"cell {grade_id!r} had its nbgrader {', '.join(changed)} changed: the assignment's "
                               "are used")
            meta.update(wanted)
            if grade_id not in points:
                meta.pop("points", None)
            cell.metadata["nbgrader"] = meta
        if repairs:
            more = [f"and {len(repairs) - MAX_REPAIRS} more repairs"] if len(repairs) > MAX_REPAIRS else []
            nb.metadata[REPAIRS_KEY] = [one_line(r) for r in repairs[:MAX_REPAIRS]] + more
            for repair in repairs[:MAX_REPAIRS]:
                self.log.warning("%s: repaired: %s", info["notebook"], one_line(repair))
        return nb, resources

    @staticmethod
    def _grade_id(cell: NotebookNode) -> str | None:
        meta = cell.metadata.get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        return grade_id if isinstance(grade_id, str) else None


def _same_points(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


class ConfinedGrading(NbGraderPreprocessor):
    """nbgrader preprocessor: score each test cell with the confined grader instead of executing the notebook."""

    device = Unicode("", help="Device for the checks and training: cpu, cuda, or '' (CUDA when present).").tag(
        config=True)
    timeout_factor = Float(1.0, help="Scale every check's time limit (slow machines).").tag(config=True)
    seed = Integer(None, allow_none=True, help="The class's seed: each student's checks draw their inputs from it "
                   "and the student's name (as grade-class does). None: fresh inputs every run.").tag(config=True)
    class_gradebook = Unicode("", help="A grade-class gradebook: a student whose submitted notebook it graded "
                              "(the same file) gets that grade instead of a new grading; the others are graded "
                              "with its seed.").tag(config=True)
    course_root = Unicode("", help="The course directory holding submitted/ (default: the current "
                          "directory), where class_gradebook's files are compared.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        cells = {i: read_test_cell(cell.source) for i, cell in enumerate(nb.cells) if is_test_cell(cell)}
        exercises = sorted({call.exercise for cell in cells.values() for call in cell.calls})
        name = resources.get("nbgrader", {}).get("notebook") or "submission"
        reports = {exercise: self._recorded(exercise, resources) or self._grade(nb, exercise, name, resources)
                   for exercise in exercises}
        repairs = nb.metadata.get(REPAIRS_KEY)  # written by RepairMetadata, never by the student
        if isinstance(repairs, list):
            for report in reports.values():
                if isinstance(report, Report):
                    report.notes.extend(f"your notebook's nbgrader metadata was repaired: {r}" for r in repairs)
        first = True  # the first gradable test cell shows the notes about the whole submission
        for i, test in cells.items():
            cell = nb.cells[i]
            cell.outputs = cell_outputs(self._cell_grade(cell, test, reports, first))
            cell.execution_count = None
            first = first and bool(test.problem)
        return nb, resources

    def _cell_grade(self, cell: NotebookNode, test: CellCalls, reports: dict[str, Report | str],
                    with_notes: bool) -> CellGrade:
        grade_id = cell.metadata.nbgrader.get("grade_id")
        if test.problem:
            self.log.warning("test cell %s scores 0: %s", grade_id, test.problem)
            return CellGrade(0.0, f"Not graded automatically: {test.problem}. This cell scores 0; the confined "
                                  "grader grades only cells that call check_part(...).")
        max_points = float(cell.metadata.nbgrader.get("points", 0))
        try:
            grade = grade_cell(test.calls, reports, max_points, with_notes)
        except Exception as exc:  # noqa: BLE001 - one cell's failure must not stop the others
            self.log.error("could not score test cell %s", grade_id, exc_info=True)
            return CellGrade(0.0, f"Not graded: the grader itself failed on this cell ({type(exc).__name__}: "
                                  f"{exc}); your tutor has been told. This cell scores 0.")
        if grade.checks_max and grade.checks_max != max_points:  # the cell's points and the checks disagree
            self.log.warning("test cell %s is worth %g points but its checks are worth %g (scores above the cell's "
                             "points are cut); make the notebook's points match the checks", grade_id, max_points,
                             grade.checks_max)
        return grade

    def _student(self, resources) -> str:
        return str(resources.get("nbgrader", {}).get("student") or "")

    def _salt(self, exercise: str, resources) -> int | None:
        from .class_grading import student_salt

        seed = self.seed
        if self.class_gradebook:
            from .gradebook import read_meta

            stored = read_meta(self.class_gradebook, "seed")
            seed = int(stored) if stored is not None else seed
        return None if seed is None else student_salt(seed, exercise, self._student(resources))

    def _recorded(self, exercise: str, resources) -> Report | None:
        """The class gradebook's grade of this student's submitted notebook, where it graded this very file."""
        if not self.class_gradebook:
            return None
        import hashlib

        from .gradebook import GRADED, grades

        info = resources.get("nbgrader", {})
        submitted = (Path(self.course_root or ".") / "submitted" / str(info.get("student")) /
                     str(info.get("assignment")) / f"{info.get('notebook')}.ipynb")
        if not submitted.is_file():
            return None
        digest = hashlib.sha256(submitted.read_bytes()).hexdigest()
        found = [g for g in grades(self.class_gradebook, exercise, student=self._student(resources))
                 if g.sha256 == digest and g.status == GRADED]
        if not found:
            self.log.warning("%s: not in the class gradebook (or another file): graded now", submitted)
            return None
        return found[0].report

    def _grade(self, nb: NotebookNode, exercise: str, name: str, resources=None) -> Report | str:
        """Grade the notebook once for ``exercise``; a str says why the grader failed (never raises)."""
        try:
            with tempfile.TemporaryDirectory(prefix="nbgrader-confined-") as tmp:
                path = Path(tmp) / f"{Path(name).name}.ipynb"
                nbformat.write(graded_copy(nb), str(path))
                report = grade_path(path, exercise, device=self.device or None,
                                    salt=self._salt(exercise, resources or {}), timeout_factor=self.timeout_factor)
        except Exception as exc:  # noqa: BLE001 - one notebook's failure must not stop the other students
            self.log.error("the grader failed on %s (%s)", name, exercise, exc_info=True)
            return f"the grader itself failed ({type(exc).__name__}: {exc}); your tutor has been told"
        for error in report.grader_errors:
            self.log.error("grader error on %s (%s): %s", name, exercise, error)
        return report


def sanitize_preprocessors() -> list:
    """nbgrader's sanitizing preprocessors, with ``RepairMetadata`` first."""
    from nbgrader.converters import Autograde

    return [RepairMetadata, *Autograde.class_traits()["sanitize_preprocessors"].default()]


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with ``Execute`` replaced by ``ConfinedGrading``."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in default:
        raise RuntimeError("nbgrader's autograde preprocessors no longer include Execute; check this configuration")
    return [ConfinedGrading if pp is Execute else pp for pp in default]
