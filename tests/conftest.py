"""Shared fixtures: paths, submissions written to temporary files, and in-process grading for speed."""

from __future__ import annotations

import itertools
import os
import sys
import socket
import threading
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One of several workers sharing the cores: one torch thread each, here and in every process a test starts
    # (notebook kernels, nbgrader, the command line). Two processes whose OpenMP threads both spin on the same
    # two cores run tens of times slower: a notebook that trains in 30 s alone took over 250 s beside another.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from autograder.exercises import get_exercise  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):  # torch may have been imported before the variable was set
    import torch

    torch.set_num_threads(1)
from autograder.grading import run_checks, select_checks  # noqa: E402
from autograder.runner import InProcessRunner  # noqa: E402
from autograder.source import Submission, SourceCell, namespace_from_source  # noqa: E402

SOLUTION = ROOT / "solutions" / "transformer.py"
# The tests' fixture exercise (tests/fixture_exercise): the engine's tests grade it, never a course exercise.
FIXTURE = "fixture_exercise"
FIXTURE_SOLUTION = TESTS / "fixture_exercise" / "solution.py"
FIXTURE_FLAWED = TESTS / "fixture_exercise" / "flawed.py"


def fixture_env() -> dict:
    """The environment of a command line a test starts, in which the fixture exercise is registered
    (``autograder.exercises.registry``: ``AUTOGRADER_EXERCISE_MODULES``, with tests/ on the path)."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "AUTOGRADER_EXERCISE_MODULES": FIXTURE, "PYTHONPATH": path}


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


def grade_source_in_process(source: str, exercise: str = "transformer", skip_training: bool = True, names=None, **kw):
    """Grade source text with the in-process runner (fast; the same checks as the child-process path).

    ``names``: only these checks (default: all).
    """
    submission = Submission(path="<test>", cells=[SourceCell(code=source, label="file")])
    namespace, errors = namespace_from_source(submission, module_name=f"submission_{next(_names)}")
    spec = get_exercise(exercise)
    return run_checks(InProcessRunner(namespace, errors), spec, select_checks(spec, names=names), device="cpu",
                      skip_training=skip_training, **kw)


def failed(report) -> dict:
    return {r.name: r for r in report.results if r.points < r.max_points}


@pytest.fixture
def fixture_exercise():
    """The fixture exercise, registered for this test only (``autograder.exercises.register``): ``get_exercise``
    and the command line's choices find it; the course's exercises, and every other test, never see it."""
    from autograder.exercises import register, unregister
    from fixture_exercise import EXERCISE

    exercise = register(EXERCISE, "fixture_exercise")
    try:
        yield exercise
    finally:
        unregister(EXERCISE.name)


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


@dataclass
class Listener:
    """A TCP server on the grader's loopback: ``drained()`` closes it and says what reached it."""

    port: int
    server: socket.socket
    thread: threading.Thread
    received: list

    def drained(self) -> list:
        self.server.close()
        self.thread.join(5)
        return self.received


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(30)
    received: list = []

    def accept():
        try:
            conn, _ = server.accept()
            received.append(conn.recv(100))
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    found = Listener(port=server.getsockname()[1], server=server, thread=thread, received=received)
    yield found
    found.drained()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup``, every test marked ``xdist_group`` must carry its group in its id (pytest-xdist
    adds it; pytest 9 dropped it silently, and the nbgrader course was then built once per worker)."""
    if not getattr(config.option, "loadgroup", False):  # set on each worker under --dist loadgroup
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist could not group {len(lost)} tests (e.g. {lost[0]}): "
                                "run scripts/setup-venv.sh for the pinned pytest")
