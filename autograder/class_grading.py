"""Grade a whole class into a gradebook: in parallel, resumable, each student's inputs their own.

``grade_class(source, options)`` reads the class (``roster``), works out which students still need a grade,
runs their gradings on an engine (``class_engines``) and records each result in the gradebook (``gradebook``)
as it arrives: this process is the gradebook's only writer.

- **Resumable**: a student is graded again only when their grade is missing, their file changed (another
  hash), their grade came from another grader version, or it was a grader failure; ``regrade`` grades everyone
  again (earlier grades stay as history). A killed run loses no committed grade.
- **Reproducible**: each student's checks draw their inputs from a salt derived from the gradebook's seed (drawn
  once, when the gradebook is made, unless ``seed`` is given), the exercise and the student: grading again gives
  the same scores, and no two students see the same inputs.
- **Faults**: what a student's code does (a crash, a timeout, hostile code) is in that student's report and final.
  The grader's own failure (its process killed, out of memory, a worker lost) is retried up to twice, then
  recorded as a grader failure with its reason: never a silent 0, never a lost student.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .checks import Report
from .class_worker import Job, job_timeout
from .exercises import get_exercise
from .gradebook import GRADED, GRADER_FAILURE, Gradebook, Outcome
from .report import from_record
from .roster import read_class

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a grader failure is retried twice


class ClassGradingError(Exception):
    """The class cannot be graded as asked (a clear message for the tutor; nothing was recorded)."""


@dataclass
class ClassOptions:
    exercise: str
    gradebook: Path
    workers: int | None = None  # None: from the cores and the memory (``class_engines.default_workers``)
    seed: int | None = None  # None: the gradebook's own, drawn when it was made
    skip_training: bool = False
    device: str | None = None
    timeout_factor: float = 1.0
    regrade: bool = False
    engine: str = "local"  # local | dask
    scheduler: str | None = None  # the Dask scheduler's address
    gpu_slots: int = 1
    confine: bool = True
    progress: bool = True


@dataclass
class ClassSummary:
    students: int = 0
    graded: int = 0
    unchanged: int = 0  # already graded by this grader version, same file
    grader_failures: int = 0
    retries: int = 0
    seconds: float = 0.0
    grading_seconds: float = 0.0  # the gradings' own time, summed
    recording_seconds: float = 0.0  # the gradebook's own time, summed
    notes: list[str] = field(default_factory=list)
    engine: str = ""

    def line(self) -> str:
        return (f"{self.students} students: {self.graded} graded, {self.unchanged} already graded, "
                f"{self.grader_failures} grader failures ({self.retries} retries) in {self.seconds:.0f} s "
                f"[{self.engine}]")


def grader_version(exercise=None) -> str:
    """This grader's version: the package version and a hash of its code and of the folders of ``exercise``'s
    modules (an exercise registered from outside the package counts too): any change of a check counts."""
    digest = hashlib.sha256()
    roots = {Path(__file__).resolve().parent}
    for check in getattr(exercise, "checks", ()):
        module = sys.modules.get(getattr(check.run, "__module__", ""))
        if getattr(module, "__file__", None):
            roots.add(Path(module.__file__).resolve().parent)
    for root in sorted(roots):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def settings_key(options: ClassOptions) -> str:
    """What a grading was asked to do, beyond the file and the grader: a grade made otherwise is graded again."""
    return json.dumps({"skip_training": options.skip_training, "device": options.device, "confine": options.confine,
                       "timeout_factor": options.timeout_factor}, sort_keys=True)


def student_salt(seed: int, exercise: str, student: str) -> int:
    """The salt of one student's checks: from the class's seed, the exercise and the student only."""
    digest = hashlib.sha256(f"{seed}\0{exercise}\0{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _class_seed(book: Gradebook, wanted: int | None) -> int:
    stored = book.meta("seed")
    if stored is None:
        seed = secrets.randbits(62) if wanted is None else wanted
        book.set_meta("seed", str(seed))
        return seed
    if wanted is not None and int(stored) != wanted:
        raise ClassGradingError(f"{book.path} was graded with another seed: grading with --seed {wanted} would give "
                                "its students other inputs than their recorded grades. Leave out --seed, or use "
                                "a new gradebook")
    return int(stored)


def make_engine(options: ClassOptions):
    from .class_engines import DaskEngine, LocalEngine, default_workers

    if options.engine == "dask":
        if not options.scheduler:
            raise ClassGradingError("--engine dask needs --scheduler ADDRESS (tcp://host:8786)")
        return DaskEngine(options.scheduler)
    return LocalEngine(options.workers or default_workers(options.device, options.gpu_slots), options.device,
                       options.gpu_slots)


def _not_graded(exercise, student: str, filename: str, note: str, message: str, grader_error: str = "") -> Report:
    """Every check 0 with ``message``, and ``note`` saying why (``grader_error``: the grader's own failure)."""
    from .grading import fail_all

    report = Report(exercise=exercise.name, submission=f"{student}: {filename}")
    report.notes.append(note)
    if grader_error:
        report.grader_errors.append(grader_error)
    return fail_all(report, exercise.checks, message)


def grade_class(source, options: ClassOptions, engine=None) -> ClassSummary:
    """Grade every student of ``source`` who needs it into ``options.gradebook``; see the module's docstring.
    ``engine``: one already made (tests, a Dask client); closed by its maker."""
    from .grading import default_device

    start = time.perf_counter()
    options = dataclasses.replace(options, device=options.device or default_device())
    exercise = get_exercise(options.exercise)
    roster = read_class(source, exercise)
    summary = ClassSummary(students=len(roster.files), notes=list(roster.notes))
    version = grader_version(exercise)
    settings = settings_key(options)
    timeout = job_timeout(exercise, options.skip_training, options.timeout_factor)
    with Gradebook(options.gradebook) as book:
        seed = _class_seed(book, options.seed)
        current = book.current(exercise.name)
        todo = []
        for f in roster.files:
            if not options.regrade and current.get(f.student) == (f.sha256, version, GRADED, settings):
                summary.unchanged += 1
            elif f.problem:  # nothing to grade: recorded as it is, with the reason
                now = time.time()
                book.record(Outcome(student=f.student, exercise=exercise.name, filename=f.filename,
                                    sha256=f.sha256, grader_version=version,
                                    salt=student_salt(seed, exercise.name, f.student), status=GRADED,
                                    report=_not_graded(exercise, f.student, f.filename,
                                                       f"your file could not be read: {f.problem}",
                                                       f"not graded: {f.problem}"), attempts=1,
                                    started=now, finished=now, seconds=0.0, settings=settings))
                summary.graded += 1
            else:
                todo.append(f)
        own_engine = engine is None
        engine = engine or make_engine(options)
        try:
            refusals = engine.check_confinement(options.confine)
            if refusals:
                raise ClassGradingError("cannot confine submissions on " + "; ".join(refusals) + ". Fix those "
                                        "machines (bubblewrap, unprivileged user namespaces), or grade unconfined "
                                        "(--unconfined: every report then says what is not guaranteed)")
            summary.engine = engine.describe()
            _run(book, engine, exercise, todo, options, seed, (version, settings), timeout, summary)
        finally:
            if own_engine:
                engine.close(wait=sys.exc_info()[0] is None)  # interrupted: the gradings are not waited for
    summary.seconds = time.perf_counter() - start
    return summary


def _run(book, engine, exercise, todo, options: ClassOptions, seed, grader, timeout, summary) -> None:
    from tqdm.auto import tqdm

    version, settings = grader
    pending = {}
    for f in todo:
        job = Job(student=f.student, exercise=exercise.name, filename=f.filename,
                  content=base64.b64encode(f.content).decode(), salt=student_salt(seed, exercise.name, f.student),
                  timeout=timeout, skip_training=options.skip_training, device=options.device,
                  timeout_factor=options.timeout_factor, confine=options.confine)
        pending[engine.submit(job)] = (f, job, 1, time.time())
    bar = tqdm(total=len(todo), desc=f"grading {exercise.name}", unit="student", disable=not options.progress)

    def record(future, interrupted: bool = False) -> None:
        f, job, attempt, started = pending.pop(future)
        result = engine.result(future)
        report, failure = _checked(result, exercise)
        if failure and interrupted:
            return  # graded again on the next run
        if failure and attempt < MAX_ATTEMPTS:
            log.warning("%s: %s; trying again (attempt %d of %d)", f.student, failure, attempt + 1, MAX_ATTEMPTS)
            summary.retries += 1
            pending[engine.submit(job)] = (f, job, attempt + 1, started)
            return
        if failure:
            report = _not_graded(exercise, f.student, f.filename, f"not graded: the grader itself failed ({failure}); "
                                 "your tutor has been told", "not graded: the grader itself failed (see the note)",
                                 grader_error=failure)
            summary.grader_failures += 1
        else:
            summary.graded += 1
            summary.grading_seconds += float(result.get("seconds", 0.0))
        outcome = Outcome(student=f.student, exercise=exercise.name, filename=f.filename, sha256=f.sha256,
                          grader_version=version, salt=job.salt, status=GRADER_FAILURE if failure else GRADED,
                          report=report, attempts=attempt, started=started, finished=time.time(),
                          seconds=float(result.get("seconds", 0.0)), source=f.content, reason=failure or "",
                          worker=str(result.get("worker", ""))[:200], settings=settings)
        tick = time.perf_counter()
        book.record(outcome)
        summary.recording_seconds += time.perf_counter() - tick
        bar.update(1)
        bar.set_postfix(failed=summary.grader_failures, refresh=False)

    try:
        while pending:
            for future in engine.wait_any(set(pending)):
                record(future)
    except KeyboardInterrupt:  # keep what finished; the rest is graded on the next run
        for future in [f for f in pending if f.done()]:
            record(future, interrupted=True)
        raise
    finally:
        bar.close()


def _checked(result: dict, exercise) -> tuple[Report | None, str | None]:
    """The report a worker sent, or why there is none (a grader failure)."""
    if "failure" in result:
        return None, str(result["failure"])[:500]
    try:
        report = from_record(result["report"])
    except (KeyError, ValueError) as exc:
        return None, f"the grader process sent no readable report ({exc})"
    if report.exercise != exercise.name or {r.name for r in report.results} != {c.name for c in exercise.checks}:
        return None, "the grader process sent a report of other checks"
    return report, None
