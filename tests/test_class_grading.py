"""Does grading a whole class keep every grade, once, whatever happens to the grader or a student's code?

Through the command line, the real sandbox and real SQLite, on the tests' fixture exercise: a second run and
``--regrade`` give the same scores; a changed file is graded again and its old grade kept as history; killing
the command mid-class (SIGKILL) loses no finished grade, doubles none and leaves no grading running; a second
command on the same gradebook is refused; a hostile student costs only that student; a grader process killed
mid-grading is retried.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURE, FIXTURE_FLAWED, FIXTURE_SOLUTION, ROOT, fixture_env

from autograder.checks import Report
from autograder.class_grading import ClassOptions, student_salt
from autograder.class_grading import grade_class as grade
from autograder.exercises import get_exercise
from autograder.gradebook import Gradebook, grades
from autograder.grading import fail_all
from autograder.report import as_record

FLAWED_SCORE = 55  # the fixture's flawed sample (test_cli.py says why)
SOLUTION = FIXTURE_SOLUTION.read_text()
# correct code written differently: the weights by hand instead of torch.softmax
VARIANT = SOLUTION.replace('return torch.softmax(scores, dim=-1)',
                           'e = (scores - scores.amax(-1, keepdim=True)).exp()\n    return e / e.sum(-1, keepdim=True)')
POOL_FORWARD = "        weights = masked_softmax("


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=fixture_env())


def grade_class(source, book, *extra, timeout: float = 600) -> subprocess.CompletedProcess:
    return cli("grade-class", str(source), "--exercise", FIXTURE, "--gradebook", str(book), "--skip-training",
               "--no-progress", *extra, timeout=timeout)


def scores(book) -> dict[str, float]:
    return {g.student: g.score for g in grades(book)}


def rows(book) -> list[tuple]:
    """The gradebook's rows (none while its first command is making it)."""
    with sqlite3.connect(book) as db:
        try:
            return db.execute("SELECT id, student, current, status FROM grades ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # no table yet
            return []


def a_class(folder: Path, students: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for student, code in students.items():
        (folder / f"{student}.py").write_text(code)
    return folder


@pytest.mark.slow
def test_does_a_class_get_the_same_scores_again_and_after_regrade_and_only_changes_graded(tmp_path):
    source = a_class(tmp_path / "class", {"alice": SOLUTION, "bob": FIXTURE_FLAWED.read_text(), "carol": VARIANT})
    book = tmp_path / "class.sqlite"
    first = grade_class(source, book, "--workers", "2")
    assert first.returncode == 0, first.stderr
    assert "3 students: 3 graded" in first.stdout
    assert scores(book) == {"alice": 100, "bob": FLAWED_SCORE, "carol": 100}

    again = grade_class(source, book)
    assert "0 graded, 3 already graded" in again.stdout and len(rows(book)) == 3  # nothing graded twice

    (source / "carol.py").write_text(FIXTURE_FLAWED.read_text())  # carol hands in another file
    changed = grade_class(source, book)
    assert "1 graded, 2 already graded" in changed.stdout
    assert scores(book)["carol"] == FLAWED_SCORE
    assert [(s, c) for _, s, c, _ in rows(book) if s == "carol"] == [("carol", 0), ("carol", 1)]  # history kept

    regrade = grade_class(source, book, "--regrade", "--workers", "2")
    assert "3 graded" in regrade.stdout
    assert scores(book) == {"alice": 100, "bob": FLAWED_SCORE, "carol": FLAWED_SCORE}
    assert len(rows(book)) == 7 and sum(c for _, _, c, _ in rows(book)) == 3  # one current grade each


def test_does_each_student_get_their_own_inputs_from_the_class_seed(tmp_path):
    salts = {s: student_salt(7, FIXTURE, s) for s in ("alice", "bob", "carol")}
    assert len(set(salts.values())) == 3  # no two students see the same inputs
    assert salts == {s: student_salt(7, FIXTURE, s) for s in salts}  # and each sees the same ones again
    assert student_salt(8, FIXTURE, "alice") != salts["alice"]


@pytest.mark.slow  # three command lines
def test_is_a_second_command_on_the_same_gradebook_refused_while_the_first_runs(tmp_path):
    source = a_class(tmp_path / "class", {"alice": SOLUTION})
    book = tmp_path / "class.sqlite"
    (tmp_path / "link.sqlite").symlink_to(book)
    with Gradebook(book):  # another command holds it
        os.link(book, tmp_path / "hard.sqlite")
        for name in (book, tmp_path / "link.sqlite", tmp_path / "hard.sqlite"):  # under any name
            proc = grade_class(source, name)
            assert proc.returncode == 2 and "another command is grading into" in proc.stderr
    assert rows(book) == []


def test_is_another_seed_refused_on_a_gradebook_graded_with_one(tmp_path):
    book = tmp_path / "class.sqlite"
    with Gradebook(book) as held:
        held.set_meta("seed", "5")
    proc = grade_class(a_class(tmp_path / "class", {"alice": SOLUTION}), book, "--seed", "6")
    assert proc.returncode == 2 and "was graded with another seed" in proc.stderr


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (its grader processes, their sandboxes and children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_does_a_sigkill_mid_class_lose_no_grade_double_none_and_leave_no_grading_running(tmp_path):
    students = {f"s{i}": SOLUTION if i % 2 else FIXTURE_FLAWED.read_text() for i in range(5)}
    source = a_class(tmp_path / "class", students)
    book = tmp_path / "class.sqlite"
    command = [sys.executable, "-m", "autograder", "grade-class", str(source), "--exercise", FIXTURE, "--gradebook",
               str(book), "--skip-training", "--no-progress", "--workers", "1"]
    proc = subprocess.Popen(command, cwd=ROOT, env=fixture_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, grading = time.time() + 300, set()
    while time.time() < deadline and not grading:
        time.sleep(0.05)  # after the first grade, and between two students no grader process runs: wait for one
        grading = descendants(proc.pid) if book.exists() and rows(book) else set()  # the next student's, and its sandbox
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows(book)
    assert 1 <= len(before) < 5 and grading
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in grading):
        time.sleep(0.2)
    assert not [p for p in grading if alive(p)]  # no grader process or sandbox outlived the command

    resumed = grade_class(source, book, "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    after = rows(book)
    assert after[: len(before)] == before  # every grade finished before the kill is kept as it was
    assert sorted(s for _, s, _, _ in after) == sorted(students)  # each student once: none lost, none doubled
    assert scores(book) == {s: 100 if code == SOLUTION else FLAWED_SCORE for s, code in students.items()}


HOSTILE = {  # each replaces the pooling's forward (or the whole file's import) with one trick
    "looper": POOL_FORWARD.replace("weights = masked_softmax(", "while True:\n            pass\n        weights = masked_softmax("),
    "exiter": POOL_FORWARD.replace("weights = masked_softmax(", "import os; os._exit(3)\n        weights = masked_softmax("),
    "bomber": POOL_FORWARD.replace("weights = masked_softmax(", "b = bytearray(64 << 30)\n        weights = masked_softmax("),
    "flooder": POOL_FORWARD.replace("weights = masked_softmax(", "import torch as t; self.flood = t.ones(80_000_000)\n        weights = masked_softmax("),
}


def noted_notebook(code: str, broken: int = 4_000) -> str:
    """A notebook of ``broken`` cells that fail when loaded, then ``code``: one note each, unbounded, before."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": f"class _Broken{i}:\n    1 / 0\n"} for i in range(broken)]
    cells.append({"cell_type": "code", "execution_count": None, "id": "code", "metadata": {}, "outputs": [],
                  "source": code})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.slow
def test_does_a_hostile_student_cost_only_that_student(tmp_path):
    """In one class: an endless loop, os._exit, a memory bomb and a 320 MB reply in the pooling's forward; a
    megabyte of crafted source (the scan's budget) and 4,000 load errors (the notes' cap), as in issue 20."""
    students = {name: SOLUTION.replace(POOL_FORWARD, trick) for name, trick in HOSTILE.items()}
    students["flooder"] = students["flooder"].replace("return pooled, weights", "return pooled, weights, self.flood")
    assert all(code != SOLUTION for code in students.values())
    nested = "    x = " + "f(" * 180 + "1" + ")" * 180 + "\n"
    students["crafted"] = SOLUTION + "\n\ndef _unused(f):\n" + nested * (1_000_000 // len(nested))
    students.update(alice=SOLUTION, bob=FIXTURE_FLAWED.read_text())
    source = a_class(tmp_path / "class", students)
    (source / "noted.ipynb").write_text(noted_notebook(SOLUTION))
    book = tmp_path / "class.sqlite"
    proc = grade_class(source, book, "--workers", "2", "--timeout-factor", "0.1")
    assert proc.returncode == 0, proc.stderr
    found = {g.student: g for g in grades(book)}
    assert set(found) == {*students, "noted"} and all(g.status == "graded" for g in found.values())
    assert all(g.attempts == 1 for g in found.values())  # what a student's code does is final, never retried
    assert found["alice"].score == 100 and found["bob"].score == FLAWED_SCORE  # as when graded alone
    for name in HOSTILE:  # the pooling's checks lost, the masked softmax's kept
        lost = {r.part for r in found[name].report.results if r.points < r.max_points}
        assert lost == {"AttentionPooling"}, (name, lost)
    assert found["crafted"].score == 0 and "too large for the grader to read" in found["crafted"].report.results[0].message
    assert found["noted"].score == 100 and len(found["noted"].report.notes) <= 25
    with sqlite3.connect(book) as db:  # the gradebook holds bounded rows, whatever a student sent
        assert db.execute("SELECT max(length(report)) FROM grades").fetchone()[0] < 256 << 10
    assert all(g.seconds < 120 for g in found.values())  # each student's grading bounded in time


@pytest.mark.slow
def test_is_a_grader_process_killed_mid_grading_retried(tmp_path):
    source = a_class(tmp_path / "class", {"alice": SOLUTION, "bob": FIXTURE_FLAWED.read_text()})
    book = tmp_path / "class.sqlite"
    command = [sys.executable, "-m", "autograder", "grade-class", str(source), "--exercise", FIXTURE, "--gradebook",
               str(book), "--skip-training", "--no-progress", "--workers", "1"]
    proc = subprocess.Popen(command, cwd=ROOT, env=fixture_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:
        for pid in descendants(proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"autograder.class_worker" in cmdline:
                os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
                killed = pid
                break
        time.sleep(0.1)
    out, err = proc.communicate(timeout=600)
    assert killed is not None and proc.returncode == 0, err
    assert "1 retries" in out and "0 grader failures" in out
    found = {g.student: g for g in grades(book)}
    assert {s: g.score for s, g in found.items()} == {"alice": 100, "bob": FLAWED_SCORE}
    assert sorted(g.attempts for g in found.values()) == [1, 2]


@pytest.mark.slow
def test_does_a_zip_of_a_class_grade_like_its_folder(tmp_path):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Ada Lovelace_101_assignsubmission_file_/attention.py", SOLUTION)
    book = tmp_path / "class.sqlite"
    proc = grade_class(archive, book)
    assert proc.returncode == 0, proc.stderr
    assert scores(book) == {"Ada Lovelace_101": 100}


class FakeEngine:
    """An engine that grades nothing: every check of the fixture exercise at 0, as a grader process would report."""

    name = "fake"

    def __init__(self):
        self.submitted = 0

    def describe(self) -> str:
        return "a fake engine"

    def check_confinement(self, confine: bool) -> list[str]:
        return []

    def submit(self, job):
        self.submitted += 1
        report = fail_all(Report(exercise=job.exercise, submission=job.filename),
                          get_exercise(job.exercise).checks, "not run")
        future = concurrent.futures.Future()
        future.set_result({"report": as_record(report), "seconds": 0.1, "worker": "w"})
        return future

    def wait_any(self, futures):
        return set(futures)

    def result(self, future):
        return future.result()


def test_is_a_grade_made_with_other_settings_graded_again(tmp_path, fixture_exercise):
    """Grades made with training skipped (or another time factor, device or sandbox) are not final for a run
    that asks for otherwise; the same settings grade nothing again."""
    source = a_class(tmp_path / "class", {"alice": SOLUTION, "bob": SOLUTION + "\n# bob\n"})
    options = ClassOptions(exercise=FIXTURE, gradebook=tmp_path / "c.sqlite", progress=False, device="cpu",
                           skip_training=True)
    assert grade(source, options, engine=FakeEngine()).graded == 2
    assert grade(source, options, engine=FakeEngine()).unchanged == 2
    for changed in (dict(skip_training=False), dict(timeout_factor=2.0)):
        engine = FakeEngine()
        assert grade(source, dataclasses.replace(options, **changed), engine=engine).graded == 2
        assert engine.submitted == 2


class FailingEngine(FakeEngine):
    """An engine whose every grading fails as the grader's own failures do (its process killed)."""

    def submit(self, job):
        self.submitted += 1
        future = concurrent.futures.Future()
        future.set_result({"failure": "the grader process was killed by signal 9 (out of memory?)", "worker": "w1"})
        return future


def test_is_a_grader_that_keeps_failing_recorded_as_a_grader_failure_and_graded_again_next_run(tmp_path,
                                                                                               fixture_exercise):
    source = a_class(tmp_path / "class", {"alice": SOLUTION})
    options = ClassOptions(exercise=FIXTURE, gradebook=tmp_path / "class.sqlite", progress=False, device="cpu")
    engine = FailingEngine()
    summary = grade(source, options, engine=engine)
    assert engine.submitted == 3 and summary.retries == 2 and summary.grader_failures == 1  # tried 3 times
    [row] = grades(options.gradebook)
    assert (row.status, row.attempts, row.score) == ("grader_failure", 3, 0)
    assert "signal 9" in row.reason and "the grader itself failed" in row.report.notes[0]
    assert {r.name for r in row.report.results} == {c.name for c in fixture_exercise.checks}  # every check, at 0
    again = grade(source, options, engine=FailingEngine())
    assert again.grader_failures == 1 and len(grades(options.gradebook, history=True)) == 2  # not taken as final


def test_does_each_gpu_slot_get_its_own_device(monkeypatch):
    from autograder import class_engines
    from autograder.class_worker import Job

    seen = []
    monkeypatch.setattr(class_engines, "visible_gpus", lambda: 2)
    monkeypatch.setattr(class_engines, "run_job", lambda job: seen.append(dict(job.env)["CUDA_VISIBLE_DEVICES"]) or {})
    engine = class_engines.LocalEngine(4, device="cuda", gpu_slots=2)
    try:
        futures = [engine.submit(Job("s", FIXTURE, "s.py", "", 0, 10.0)) for _ in range(8)]
        for f in futures:
            f.result()
    finally:
        engine.close()
    assert sorted(seen) == ["0"] * 4 + ["1"] * 4


def test_does_a_grader_process_whose_parent_is_gone_grade_nothing(tmp_path):
    """The grader process asks to die with its parent; one whose parent died before it could ask exits at once."""
    proc = subprocess.run([sys.executable, "-m", "autograder.class_worker", str(tmp_path / "job.json"),
                           str(tmp_path / "result.json"), "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and not (tmp_path / "result.json").exists()


def test_is_an_unreadable_file_recorded_with_its_reason_not_lost(tmp_path, fixture_exercise):
    source = a_class(tmp_path / "class", {"alice": "#" * (33 << 20)})
    engine = FailingEngine()
    summary = grade(source, ClassOptions(exercise=FIXTURE, gradebook=tmp_path / "c.sqlite", progress=False,
                                         device="cpu"), engine=engine)
    [grade_row] = grades(tmp_path / "c.sqlite")
    assert engine.submitted == 0 and summary.graded == 1 and grade_row.status == "graded" and grade_row.score == 0
    assert "over the 32 MiB a submission may have" in grade_row.report.notes[0]


@pytest.mark.slow
def test_does_ctrl_c_stop_the_class_at_once_and_keep_what_finished(tmp_path):
    hang = SOLUTION.replace(POOL_FORWARD, POOL_FORWARD.replace("weights = masked_softmax(",
                                                                "import time; time.sleep(600)\n        weights = masked_softmax("))
    source = a_class(tmp_path / "class", {"alice": SOLUTION, "hang": hang})
    book = tmp_path / "class.sqlite"
    command = [sys.executable, "-m", "autograder", "grade-class", str(source), "--exercise", FIXTURE, "--gradebook",
               str(book), "--skip-training", "--no-progress", "--workers", "2"]
    # as from a terminal: a test runner's worker may ignore SIGINT, and its children would inherit that
    proc = subprocess.Popen(command, cwd=ROOT, env=fixture_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not (book.exists() and rows(book)):
        time.sleep(0.2)
    grading = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    start = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - start < 15 and proc.returncode == 130, err
    assert "interrupted" in err and [s for _, s, _, _ in rows(book)] == ["alice"]
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in grading):
        time.sleep(0.2)
    assert not [p for p in grading if alive(p)]
