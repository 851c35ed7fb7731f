"""Runners carry requests to a submission and bring replies back.

``ChildProcessRunner`` (standalone grading) keeps the submission in a child process with a time limit per
request, a memory limit, a scrubbed environment and its own temporary directory; a request that times out or
kills the child costs that request, and the next one starts a fresh child. ``InProcessRunner`` (nbgrader, where
the submission already lives in the notebook's kernel) runs requests in this process. Both send every reply
through the same encoding, so the checks see the same data either way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from .protocol import ProtocolError, decode, encode, write_message
from .requests import ErrorReply, Inspect, InspectReply, Run, RunReply, Train, TrainReply, execute
from .sandbox import GRADER, WORK, ConfinementUnavailable, Limits, Sandbox, SandboxSpec, probe
from .source import Submission
from .stand_ins import StandInAnswer, StandInCall

log = logging.getLogger(__name__)
MAX_REPLY_BYTES = 256 << 20  # a reply (outputs, gradients, a trained state); a request may be larger (data)
MAX_GRADING_REPLY_BYTES = 2 << 30  # all the replies of one grading (the exercises' take a few MiB)


class SubmissionError(Exception):
    """The submission failed a request: it raised, timed out, crashed or answered nonsense."""


class SubmissionRaised(SubmissionError):
    def __init__(self, error: ErrorReply):
        where = f" ({error.where})" if error.where else ""
        text = f": {error.message}" if error.message else ""
        if error.kind == "NotImplementedError":
            super().__init__(f"not implemented yet: the stub raises NotImplementedError{where}")
        else:
            super().__init__(f"your code raised {error.kind}{text}{where}")
        self.error = error


class SubmissionTimeout(SubmissionError):
    pass


class SubmissionCrash(SubmissionError):
    pass


# The only replies the grader accepts to each request; anything else counts as a crash of the submission.
REPLIES = {Inspect: (InspectReply, ErrorReply), Run: (RunReply, ErrorReply), Train: (TrainReply, ErrorReply)}


def _check_reply(reply):
    if isinstance(reply, ErrorReply):
        raise SubmissionRaised(reply)
    return reply


class InProcessRunner:
    """Run requests against a namespace in this process (the notebook's kernel under nbgrader)."""

    def __init__(self, namespace: dict, load_errors: list[str] | None = None):
        self.namespace = namespace
        self.load_errors = list(load_errors or [])

    def request(self, request, timeout: float, answer=None):
        """``answer(call)``: the grader's answer to a stand-in's call (``autograder.stand_ins``), which travels
        through the same encoding both ways."""
        ask = None
        if answer is not None:
            def ask(call):
                return decode(encode(answer(decode(encode(call), expect=StandInCall))), expect=StandInAnswer)
        with _quiet(), _alarm(timeout):
            reply = execute(request, self.namespace, self.load_errors, ask=ask)
        return _check_reply(decode(encode(reply), expect=REPLIES[type(request)]))

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _quiet():
    """Keep warnings and printing away from stderr (nbgrader scores a test cell that writes to stderr as 0)."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        saved = None
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        except (OSError, ValueError):
            saved = None
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)


@contextlib.contextmanager
def _alarm(seconds: float):
    """A time limit for in-process requests, where signals allow it (the main thread on POSIX)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise SubmissionTimeout(f"did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# The modules the child runs: its entry point and what it imports, nothing else (no checks, references, data
# loaders or exercises). tests/test_runner.py holds this to the child's import closure.
CHILD_MODULES = ("__init__", "child", "forbidden", "message_types", "protocol", "requests", "source", "source_filter",
                 "stand_ins", "training")


def _package_copy(directory: Path) -> Path:
    """Copy the modules the child runs (``CHILD_MODULES``) beside it, and nothing else of the grader."""
    src = Path(__file__).resolve().parent
    dst = directory / "grader" / "autograder"
    dst.mkdir(parents=True)
    for module in CHILD_MODULES:
        shutil.copy2(src / f"{module}.py", dst / f"{module}.py")
    return dst.parent


class ChildProcessRunner:
    """Run requests in a child process that holds the submission (started lazily, restarted after a failure).

    The child runs inside a ``Sandbox`` (bubblewrap); with ``limits.confine`` and no sandbox on this machine
    the runner refuses (``ConfinementUnavailable``).
    """

    def __init__(self, submission: Submission, limits: Limits | None = None, use_cuda: bool = False):
        self.submission = dataclasses.replace(submission, path="submission")  # no tutor's path in the child
        self.limits = limits or Limits()
        self.use_cuda = use_cuda
        self.received = 0  # reply bytes read in this grading (``MAX_GRADING_REPLY_BYTES``)
        self.proc: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self.sandbox: Sandbox | None = None
        self.load_errors: list[str] = []
        self.starts = 0
        if self.limits.confine and not probe().confined:
            raise ConfinementUnavailable(f"cannot confine the submission: {probe().reason}")

    # -- lifecycle -------------------------------------------------------------------------------------
    def _environment(self, confined: bool) -> dict:
        home = WORK if confined else str(self.workdir / "box")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": "/tmp" if confined else home,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "MPLBACKEND": "Agg",
            "LANG": "C.UTF-8",
        }
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if key in os.environ:
                env[key] = os.environ[key]
        if self.limits.threads:
            env["AUTOGRADER_THREADS"] = str(self.limits.threads)
            env["OMP_NUM_THREADS"] = str(self.limits.threads)
        return env

    def _start(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="autograder-"))
            self.grader_dir = _package_copy(self.workdir)
        features = probe() if self.limits.confine else None
        spec = SandboxSpec(workdir=self.workdir, grader_dir=self.grader_dir, use_cuda=self.use_cuda,
                           separate_user=bool(features and features.separate_user))
        self.sandbox = Sandbox(self.limits, spec, features)
        confined = self.sandbox.confined
        grader = GRADER if confined else str(self.grader_dir)
        argv = [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                "from autograder.child import main; sys.exit(main())", grader]
        env = self._environment(confined)
        self.stderr = open(self.workdir / "child-stderr.log", "wb")  # bwrap's and Python's start-up errors
        self.proc = subprocess.Popen(
            self.sandbox.command(argv, env) if confined else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=self.workdir / "box",
            env={} if confined else env,
            preexec_fn=self.sandbox.preexec,
            pass_fds=self.sandbox.pass_fds,
            start_new_session=True,
        )
        self.starts += 1
        log.info("child %d confined by: %s", self.proc.pid, ", ".join(self.sandbox.features))
        write_message(self.proc.stdin, self.submission)
        try:
            ready = self._read(self.limits.start_timeout, "loading your code", expect=(InspectReply,))
        except SubmissionCrash:
            tail = (self.workdir / "child-stderr.log").read_bytes()[-2000:].decode(errors="replace")
            log.warning("the child ended while loading; its start-up output: %s", tail.strip() or "(none)")
            raise
        self.load_errors = list(getattr(ready, "load_errors", []) or [])

    def _kill(self) -> None:
        if self.proc is None:
            return
        self.sandbox.kill_all(self.proc.pid)
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            with contextlib.suppress(Exception):
                stream.close()
        self.sandbox.close()
        self.proc = None

    def close(self) -> None:
        self._kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests --------------------------------------------------------------------------------------
    def ensure_started(self) -> list[str]:
        if self.proc is None or self.proc.poll() is not None:
            self._kill()
            try:
                self._start()
            except SubmissionError:
                self._kill()
                raise
        return self.load_errors

    def request(self, request, timeout: float, answer=None):
        """Send ``request`` and read its reply; ``answer(call)`` answers the stand-ins' calls that come first
        (``autograder.stand_ins``), within the same time limit."""
        self.ensure_started()
        deadline = time.monotonic() + timeout
        expect = REPLIES[type(request)] + ((StandInCall,) if answer is not None else ())
        message = request
        while True:
            try:
                write_message(self.proc.stdin, message)
            except (BrokenPipeError, OSError):
                code = self.proc.poll()
                self._kill()
                raise SubmissionCrash(f"the process running your code ended (exit status {code})") from None
            reply = self._read(max(deadline - time.monotonic(), 0.0), "this check", expect=expect, budget=timeout)
            if not isinstance(reply, StandInCall):
                return _check_reply(reply)
            try:
                message = answer(reply)
            except Exception as exc:  # noqa: BLE001 - never out of step with the child: it gets an answer
                message = StandInAnswer(error=f"the grader could not answer ({type(exc).__name__})")

    def _read(self, timeout: float, what: str, expect: tuple, budget: float | None = None):
        """The next message, within ``timeout`` seconds (``budget``: the whole request's, as messages name it)."""
        deadline = time.monotonic() + timeout
        timeout = timeout if budget is None else budget
        fd = self.proc.stdout.fileno()
        try:
            (size,) = struct.unpack("<Q", self._read_exact(fd, 8, deadline))
            if size > MAX_REPLY_BYTES:  # read whole into the grader's memory: refused before it is read
                raise ProtocolError(f"a reply of {size / 2**20:.0f} MiB is over the grader's limit of "
                                    f"{MAX_REPLY_BYTES >> 20} MiB")
            if self.received + size > MAX_GRADING_REPLY_BYTES:
                raise ProtocolError(f"the replies of this grading would exceed {MAX_GRADING_REPLY_BYTES >> 30} GiB "
                                    "in all")
            self.received += size
            return decode(self._read_exact(fd, size, deadline), expect=expect)
        except SubmissionTimeout:
            self._kill()
            raise SubmissionTimeout(f"{what} did not finish within {timeout:.0f} s (an endless loop?)") from None
        except EOFError:
            code = self.proc.wait(timeout=10) if self.proc else None
            self._kill()
            cause = _exit_cause(code, self.sandbox is not None and self.sandbox.confined)
            raise SubmissionCrash(f"the process running your code ended during {what} ({cause})") from None
        except ProtocolError as exc:
            self._kill()
            raise SubmissionCrash(f"the process running your code sent an unreadable reply ({exc})") from None

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytearray:
        """``n`` bytes, read in place (never held twice: chunks and their join)."""
        data = bytearray(n)
        view, got = memoryview(data), 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SubmissionTimeout()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise SubmissionTimeout()
            read = os.readv(fd, [view[got : got + min(n - got, 1 << 20)]])
            if not read:
                raise EOFError()
            got += read
        view.release()
        return data


def _exit_cause(code, confined: bool = False) -> str:
    """In words; bwrap reports a child killed by signal N as exit status 128 + N."""
    if code is None:
        return "no exit status"
    if confined and 128 < code < 128 + 65:
        code = -(code - 128)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {code}: sys.exit or os._exit in your code?"
