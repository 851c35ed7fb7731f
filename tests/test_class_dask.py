"""Does a class graded on a Dask cluster keep every grade once, even when a worker dies mid-class?

A real ``distributed.LocalCluster`` with 2 worker processes on loopback grades the tests' fixture exercise;
each worker grades in its own sandbox and sends back result records only; the coordinator alone writes the
gradebook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import FIXTURE, FIXTURE_FLAWED, FIXTURE_SOLUTION, ROOT, TESTS, fixture_env

from autograder.class_engines import DaskEngine
from autograder.class_grading import ClassOptions, grade_class
from autograder.gradebook import grades

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow
FLAWED_SCORE = 55


@pytest.fixture
def cluster(monkeypatch, fixture_exercise):
    """Two worker processes, one thread each, which find the fixture exercise as the grader's command line does
    (registered here first: this process's registry is read before the variable is set)."""
    monkeypatch.setenv("AUTOGRADER_EXERCISE_MODULES", FIXTURE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local, distributed.Client(local) as client:
        yield client


def a_class(tmp_path, n: int):
    folder = tmp_path / "class"
    folder.mkdir()
    codes = {}
    for i in range(n):
        codes[f"s{i}"] = FIXTURE_SOLUTION.read_text() if i % 2 else FIXTURE_FLAWED.read_text()
        (folder / f"s{i}.py").write_text(codes[f"s{i}"])
    return folder, {s: 100 if i % 2 else FLAWED_SCORE for i, s in enumerate(codes)}


def test_does_a_worker_killed_mid_class_lose_and_double_nothing(tmp_path, cluster):
    source, expected = a_class(tmp_path, 4)
    book = tmp_path / "class.sqlite"
    pids = cluster.run(os.getpid)
    victim = sorted(pids)[0]

    killed = []

    def kill_when_busy():  # kill one worker while it grades
        deadline = time.time() + 120
        while time.time() < deadline:
            if cluster.processing().get(victim):
                time.sleep(1.0)  # its grading under way
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    summary = grade_class(source, ClassOptions(exercise=FIXTURE, gradebook=book, skip_training=True, progress=False),
                          engine=DaskEngine(client=cluster))
    killer.join()
    assert killed  # the worker died with a grading under way
    found = grades(book, history=True)
    assert sorted(g.student for g in found) == sorted(expected)  # each once: none lost, none doubled
    assert {g.student: g.score for g in found} == expected
    assert summary.graded == 4 and summary.grader_failures == 0 and "Dask workers" in summary.engine


def without_bwrap() -> None:
    """On a worker: bubblewrap out of reach, as on a cluster node that lacks it."""
    os.environ["PATH"] = "/nonexistent"


def test_does_a_worker_that_cannot_confine_get_named_before_grading(tmp_path, cluster):
    from autograder.class_grading import ClassGradingError

    workers = sorted(cluster.scheduler_info()["workers"])
    assert DaskEngine(client=cluster).check_confinement(True) == []  # both workers can confine
    cluster.run(without_bwrap, workers=workers[1:])
    cluster.run(lambda: __import__("autograder.sandbox").sandbox.probe.cache_clear(), workers=workers[1:])
    source, _ = a_class(tmp_path, 1)
    with pytest.raises(ClassGradingError, match=f"cannot confine submissions on worker {workers[1]}: bubblewrap"):
        grade_class(source, ClassOptions(exercise=FIXTURE, gradebook=tmp_path / "b.sqlite", skip_training=True,
                                         progress=False), engine=DaskEngine(client=cluster))
    assert grades(tmp_path / "b.sqlite") == []  # nothing graded, nothing recorded


def test_does_the_command_line_grade_a_class_on_a_running_scheduler(tmp_path, cluster):
    source, expected = a_class(tmp_path, 2)
    book = tmp_path / "class.sqlite"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(source), "--exercise", FIXTURE,
                           "--gradebook", str(book), "--skip-training", "--no-progress", "--engine", "dask",
                           "--scheduler", cluster.scheduler.address], cwd=ROOT, env=fixture_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 students: 2 graded" in proc.stdout and "2 Dask workers" in proc.stdout
    assert {g.student: g.score for g in grades(book)} == expected
