"""The class gradebook: one SQLite file (standard library, WAL) that is the record of a class's grades.

Only the coordinating process writes it, one grade per transaction: a grade and its checks are committed
together or not at all, so killing the grader at any moment (SIGKILL, a power cut) loses no committed grade and
leaves no half row. Each (student, exercise) has at most one current grade; a grade replaced (another file,
another grader version, ``--regrade``) stays as history with ``current = 0``.

A second writer is refused while one runs (an advisory ``flock`` on the database file itself, whatever name or
link reaches it, released by the kernel when its holder dies, however it dies). Readers (exports, the class
report) never take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .checks import Report
from .report import as_record, from_record

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grades (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    exercise TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    salt INTEGER NOT NULL,
    status TEXT NOT NULL,          -- graded | grader_failure
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',  -- a grader failure's reason
    attempts INTEGER NOT NULL,
    report TEXT NOT NULL,          -- the whole report (report.as_record, JSON)
    source BLOB,                   -- the submission's bytes, for the class report's similarity leads
    started REAL NOT NULL,
    finished REAL NOT NULL,
    seconds REAL NOT NULL,         -- the grading's own time (its worker's wall clock)
    worker TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '',  -- what the grading was asked to do (training skipped, ...), JSON
    current INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS one_current ON grades (student, exercise) WHERE current = 1;
CREATE TABLE IF NOT EXISTS checks (
    grade_id INTEGER NOT NULL REFERENCES grades (id),
    name TEXT NOT NULL,
    part TEXT NOT NULL,
    points REAL NOT NULL,
    max_points REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    hint TEXT,
    hidden INTEGER NOT NULL,
    PRIMARY KEY (grade_id, name)
);
"""

GRADED = "graded"
GRADER_FAILURE = "grader_failure"


class GradebookBusy(Exception):
    """Another command is writing this gradebook."""


@dataclass(frozen=True)
class Outcome:
    """What a grading produced, ready to record (the coordinator builds it from a worker's reply)."""

    student: str
    exercise: str
    filename: str
    sha256: str
    grader_version: str
    salt: int
    status: str
    report: Report
    attempts: int
    started: float
    finished: float
    seconds: float
    source: bytes = b""
    reason: str = ""
    worker: str = ""
    settings: str = ""  # the grading's settings as JSON (``class_grading.settings_key``)

    @property
    def score(self) -> float:
        return self.report.score

    @property
    def max_score(self) -> float:
        return self.report.max_score


@dataclass(frozen=True)
class Grade(Outcome):
    """One row of the gradebook, with its report (its source is read by ``sources`` only)."""

    id: int = 0
    current: bool = True


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with full fsync (a committed grade survives a power cut)."""
    if readonly:
        if not Path(path).exists():
            raise FileNotFoundError(f"no gradebook at {path}")
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)  # as_uri escapes # ?
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grades'").fetchone() is None:
            db.close()  # a gradebook being made (its first command has not written its tables yet), or no gradebook
            raise FileNotFoundError(f"no gradebook at {path} (yet)")
    else:
        db = sqlite3.connect(str(path), timeout=30, isolation_level=None)  # explicit transactions only
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    db.execute("PRAGMA foreign_keys=ON")
    return db


class Gradebook:
    """The gradebook as its one writer holds it: ``with Gradebook(path) as book: book.record(outcome)``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self.db: sqlite3.Connection | None = None

    def __enter__(self) -> Gradebook:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # SQLite's own locks are fcntl's: no clash
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GradebookBusy(f"another command is grading into {self.path}; wait for it to finish, or stop it "
                                "first") from None
        self._lock_fd = fd
        self.db = connect(self.path)
        return self

    def __exit__(self, *exc) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def current(self, exercise: str) -> dict[str, tuple[str, str, str, str]]:
        """student -> (sha256, grader version, status, settings) of each current grade of ``exercise``."""
        rows = self.db.execute("SELECT student, sha256, grader_version, status, settings FROM grades "
                               "WHERE exercise = ? AND current = 1", (exercise,))
        return {s: (h, v, st, se) for s, h, v, st, se in rows}

    def record(self, outcome: Outcome) -> int:
        """Commit ``outcome`` as the current grade of its student and exercise (one transaction); the grade it
        replaces stays as history."""
        report = outcome.report
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE grades SET current = 0 WHERE student = ? AND exercise = ? AND current = 1",
                       (outcome.student, outcome.exercise))
            cursor = db.execute(
                "INSERT INTO grades (student, exercise, filename, sha256, grader_version, salt, status, score, "
                "max_score, reason, attempts, report, source, started, finished, seconds, worker, settings, current) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (outcome.student, outcome.exercise, outcome.filename, outcome.sha256, outcome.grader_version,
                 outcome.salt, outcome.status, report.score, report.max_score, outcome.reason, outcome.attempts,
                 json.dumps(as_record(report)), outcome.source, outcome.started, outcome.finished, outcome.seconds,
                 outcome.worker, outcome.settings))
            grade_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO checks (grade_id, name, part, points, max_points, status, message, hint, hidden) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(grade_id, r.name, r.part, r.points, r.max_points, r.status.value, r.message, r.hint, int(r.hidden))
                 for r in report.results])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return grade_id


def grades(path: str | Path, exercise: str | None = None, history: bool = False,
           student: str | None = None) -> list[Grade]:
    """The gradebook's grades (current ones only unless ``history``; of one ``student`` if given), by exercise and
    student."""
    db = connect(path, readonly=True)
    try:
        query = ("SELECT id, student, exercise, filename, sha256, grader_version, salt, status, score, max_score, "
                 "reason, attempts, report, started, finished, seconds, worker, current, settings FROM grades WHERE 1 = 1")
        args: list = []
        if exercise is not None:
            query += " AND exercise = ?"
            args.append(exercise)
        if student is not None:
            query += " AND student = ?"
            args.append(student)
        if not history:
            query += " AND current = 1"
        rows = db.execute(query + " ORDER BY exercise, student, id", args).fetchall()
    finally:
        db.close()
    return [Grade(id=r[0], student=r[1], exercise=r[2], filename=r[3], sha256=r[4], grader_version=r[5], salt=r[6],
                  status=r[7], reason=r[10], attempts=r[11], report=from_record(json.loads(r[12])), started=r[13],
                  finished=r[14], seconds=r[15], worker=r[16], current=bool(r[17]), settings=r[18]) for r in rows]


def read_meta(path: str | Path, key: str) -> str | None:
    """A gradebook's setting (``seed``), read without taking the writer's lock."""
    db = connect(path, readonly=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def sources(path: str | Path, exercise: str) -> dict[str, bytes]:
    """student -> the bytes of the currently graded submission of ``exercise``."""
    db = connect(path, readonly=True)
    try:
        rows = db.execute("SELECT student, source FROM grades WHERE exercise = ? AND current = 1", (exercise,))
        return {s: bytes(b or b"") for s, b in rows}
    finally:
        db.close()
