"""Shared fixtures: paths, submissions written to temporary files, and in-process grading for speed."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from autograder.exercises import get_exercise  # noqa: E402
from autograder.grading import run_checks, select_checks  # noqa: E402
from autograder.runner import InProcessRunner  # noqa: E402
from autograder.source import Submission, SourceCell, namespace_from_source  # noqa: E402

SOLUTION = ROOT / "solutions" / "transformer.py"
_names = itertools.count()


def stub_source(text: str) -> str:
    """The release version of a solution file, made by nbgrader's own ClearSolutions preprocessor."""
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    cell = nbformat.v4.new_code_cell(text)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "x", "locked": False, "schema_version": 3}
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = ClearSolutions(code_stub={"python": "# YOUR CODE HERE\nraise NotImplementedError()"}).preprocess(nb, {})
    return nb.cells[0].source


def grade_source_in_process(source: str, exercise: str = "transformer", skip_training: bool = True, **kw):
    """Grade source text with the in-process runner (fast; the same checks as the child-process path)."""
    submission = Submission(path="<test>", cells=[SourceCell(code=source, label="file")])
    namespace, errors = namespace_from_source(submission, module_name=f"submission_{next(_names)}")
    spec = get_exercise(exercise)
    return run_checks(InProcessRunner(namespace, errors), spec, select_checks(spec), device="cpu",
                      skip_training=skip_training, **kw)


def failed(report) -> dict:
    return {r.name: r for r in report.results if r.points < r.max_points}


@pytest.fixture
def write(tmp_path):
    """Write a submission file: write("name.py", source) -> path (source is dedented)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text) if not text.startswith(("{", "\n{")) else text)
        return path

    return _write


@pytest.fixture(scope="session")
def solution_text() -> str:
    return SOLUTION.read_text()
