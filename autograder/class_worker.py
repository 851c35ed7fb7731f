"""One grading of a class, in a process of its own: ``python -m autograder.class_worker JOB RESULT PARENT``.

The coordinator (``class_grading``) never grades in its own process: each job runs in a fresh grader process,
which confines the submission in its sandbox as ``grade_path`` always does. A grader process that dies
(killed, out of memory, a bug that stops the interpreter) costs that job one attempt and nothing else, and a
job whose process outlives its time limit is killed with its whole process group. The grader process dies
with its parent (``PR_SET_PDEATHSIG``), and the sandbox with it (bwrap's ``--die-with-parent``): a killed
coordinator leaves no grading running.

``run_job(job)`` is what both engines call: the local one in a thread of the coordinator, Dask's on a worker.
Jobs and results are JSON, never pickles: a result is data the coordinator checks before it records it.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
STARTUP_SECONDS = 300.0  # the grader process's own start and the child's, beyond the checks' time limits


@dataclass(frozen=True)
class Job:
    """What one grading needs; everything travels as JSON (the file's bytes in base64)."""

    student: str
    exercise: str
    filename: str
    content: str  # base64 of the submission's bytes
    salt: int
    timeout: float  # the whole grading's wall clock, after which its process group is killed
    skip_training: bool = False
    device: str | None = None
    timeout_factor: float = 1.0
    confine: bool = True
    env: tuple = ()  # (name, value) pairs added to the grader process's environment (a GPU slot's device)

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        data = dict(data)
        data["env"] = tuple(tuple(p) for p in data.get("env", ()))
        return cls(**data)


def job_timeout(exercise, skip_training: bool, timeout_factor: float) -> float:
    """An upper bound of one grading's time: its checks run one after another, each within its limit."""
    checks = sum(c.timeout for c in exercise.checks if not (c.training and skip_training))
    training = 0.0 if skip_training else sum(
        p.timeout for profiles in [exercise.profiles, *exercise.part_profiles.values()] for p in profiles.values())
    return (checks + training) * timeout_factor + STARTUP_SECONDS


def safe_name(filename: str) -> str:
    """``filename``'s last component in safe characters, its suffix kept (the report names the file by it)."""
    name = "".join(c if c in SAFE else "_" for c in PurePosixPath(filename).name)[-120:].lstrip(".")
    return name or "submission.py"


def _die_with_parent(parent: int) -> None:
    """Be killed when the process that started this one (``parent``) dies (Linux ``PR_SET_PDEATHSIG``); if it
    died before this process could ask, exit now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent is gone already: nobody would read this grading
        os._exit(1)


def run_job(job: Job | dict) -> dict:
    """Grade ``job`` in a fresh grader process: ``{"report": ..., "seconds": ..., "worker": ...}``, or
    ``{"failure": reason, "worker": ...}`` when the grader process itself failed (never raises for that)."""
    job = job if isinstance(job, Job) else Job.from_dict(job)
    worker = socket.gethostname()
    with tempfile.TemporaryDirectory(prefix="autograder-class-") as tmp:
        job_path, result_path, log_path = (Path(tmp) / n for n in ("job.json", "result.json", "stderr.log"))
        job_path.write_text(json.dumps(asdict(job)))
        env = {**os.environ, **dict(job.env), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        start = time.perf_counter()
        with open(log_path, "wb") as log:  # the grader's own log (a file: however much it writes)
            proc = subprocess.Popen([sys.executable, "-m", "autograder.class_worker", str(job_path),
                                     str(result_path), str(os.getpid())], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=log, start_new_session=True, env=env)
            try:
                proc.wait(timeout=job.timeout)
            except subprocess.TimeoutExpired:
                return {"failure": f"the grader process ran past its {job.timeout:.0f} s limit and was killed",
                        "worker": worker}
            finally:
                if proc.poll() is None:  # past its time, or this thread was interrupted: the grading goes too
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not result_path.exists():
            return {"failure": f"the grader process {_ended(proc.returncode)}; its last words: {_tail(log_path)}",
                    "worker": worker}
        try:
            reply = json.loads(result_path.read_text())
        except ValueError as exc:
            return {"failure": f"the grader process wrote no readable result ({exc})", "worker": worker}
    return {"report": reply["report"], "seconds": seconds, "worker": worker}


def _ended(code: int) -> str:
    if code < 0:
        return f"was killed by signal {-code}" + (" (out of memory?)" if code == -signal.SIGKILL else "")
    return f"exited with status {code}"


def _tail(path: Path, limit: int = 300) -> str:
    """The last line of a log, at most ``limit`` characters."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        lines = f.read().decode("utf-8", "replace").strip().splitlines()
    return (lines[-1] if lines else "")[:limit]


def _grade(job: Job) -> dict:
    import torch

    torch.set_num_threads(1)
    from .grading import grade_path
    from .report import as_record
    from .sandbox import Limits

    with tempfile.TemporaryDirectory(prefix="autograder-submission-") as tmp:
        path = Path(tmp) / safe_name(job.filename)
        path.write_bytes(base64.b64decode(job.content))
        if path.suffix.lower() == ".ipynb":
            try:  # an nbgrader notebook: its instructor cells without the grader's imports, as autograde reads it
                from .nbgrader_autograde import clean_notebook_file
            except ImportError:  # no nbgrader here: graded as it is
                pass
            else:
                clean_notebook_file(path)
        report = grade_path(path, job.exercise, skip_training=job.skip_training, device=job.device,
                            timeout_factor=job.timeout_factor, salt=job.salt, limits=Limits(confine=job.confine))
    report.submission = f"{job.student}: {job.filename}"
    return {"report": as_record(report)}


def main(argv: list[str] | None = None) -> int:
    job_path, result_path, parent = (argv or sys.argv[1:])[:3]
    _die_with_parent(int(parent))
    job = Job.from_dict(json.loads(Path(job_path).read_text()))
    reply = _grade(job)
    partial = Path(f"{result_path}.partial")
    partial.write_text(json.dumps(reply))
    partial.replace(result_path)  # whole or absent
    return 0


if __name__ == "__main__":
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    warnings.simplefilter("ignore")
    sys.exit(main())
