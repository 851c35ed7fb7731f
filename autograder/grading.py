"""Grade a submission: run an exercise's checks through a runner and collect a ``Report``."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Sequence

from .checks import CheckFailure, CheckResult, Report, Status
from .context import SALT, Context
from .exercises import Exercise, get_exercise
from .forbidden import ATTENTION_BUILTINS
from .forbidden_source import SourceFinding, scan_source
from .requests import Inspect
from .runner import ChildProcessRunner, SubmissionError, SubmissionTimeout
from .sandbox import Limits
from .source import SubmissionFormatError, load_submission

log = logging.getLogger(__name__)


UNCONFINED_NOTE = (
    "graded WITHOUT the sandbox (--unconfined): this submission's code could read and write whatever the "
    "grader's user can, reach the network and other processes; its score is not guaranteed against cheating"
)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _result(check, status: Status, message: str = "", hint: str | None = None, seconds: float = 0.0) -> CheckResult:
    earned = check.points if status == Status.PASSED else 0.0
    return CheckResult(name=check.name, part=check.part, description=check.description, points=earned,
                       max_points=check.points, status=status, message=message, hint=hint, hidden=check.hidden,
                       seconds=round(seconds, 3))


def select_checks(exercise: Exercise, parts=None, include_hidden: bool = True, names=None):
    return [
        c for c in exercise.checks
        if (parts is None or c.part in parts) and (include_hidden or not c.hidden) and (names is None or c.name in names)
    ]


MAX_LOAD_NOTES = 20  # the child's load errors shown as notes; the rest are counted


def run_checks(runner, exercise: Exercise, checks, *, device: str | None = None, skip_training: bool = False,
               progress: bool = False, report: Report | None = None, timeout_factor: float = 1.0,
               salt: int = 0, findings: Sequence[SourceFinding] = ()) -> Report:
    """Run ``checks`` against the submission behind ``runner``; never raises for anything the submission does.

    ``timeout_factor`` scales every check's time budget (slower machines, or tests of the time limits);
    ``salt`` varies every check's random inputs (0: the same inputs every run); ``findings`` are what the
    static scan of the source found (``forbidden_source.scan_source``): every check of a part they concern
    fails with their message, whatever the runtime watch in the child says.
    """
    token = SALT.set(salt)
    try:
        return _run_checks(runner, exercise, checks, device=device, skip_training=skip_training, progress=progress,
                           report=report, timeout_factor=timeout_factor, findings=findings)
    finally:
        SALT.reset(token)


def exercise_context(runner, exercise: Exercise, **kwargs) -> Context:
    """A check context for ``exercise``: its training task, its forbidden built-ins, its table of how weights are
    drawn and its probes (``kwargs``: the device, the profile, a timeout, ...)."""
    ctx = Context(runner=runner, task=exercise.task, forbidden=exercise.forbidden, **kwargs)
    if exercise.weight_rules is not None:  # the exercise's own table of how weights are drawn
        ctx.weight_rules = exercise.weight_rules
    ctx.probes = dict(exercise.probes)
    ctx.stand_ins = dict(exercise.stand_ins)
    return ctx


def _run_checks(runner, exercise: Exercise, checks, *, device, skip_training, progress, report, timeout_factor,
                findings):
    device = device or default_device()
    profile = exercise.profiles.get("gpu" if device.startswith("cuda") else "cpu")
    report = report or Report(exercise=exercise.name, submission="")
    ctx = exercise_context(runner, exercise, device=device, profile=profile, artifacts=report.artifacts)
    try:
        ctx.timeout = 120.0
        found = runner.request(Inspect(names=list(exercise.parts)), 120.0)
        kinds = found.kinds
        errors = found.load_errors if isinstance(found.load_errors, list) else []
        report.notes.extend(f"while loading your code: {e}" for e in errors[:MAX_LOAD_NOTES])
        if len(errors) > MAX_LOAD_NOTES:
            report.notes.append(f"... and {len(errors) - MAX_LOAD_NOTES} more errors while loading your code")
    except SubmissionError as exc:
        report.notes.append(f"your code could not be loaded: {exc}")
        return fail_all(report, checks, "not run: your code could not be loaded (see the note above)")
    iterator = checks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(checks, desc=f"grading {exercise.name}", unit="check", leave=False)
    for check in iterator:
        result = _run_one(ctx, check, kinds, findings, skip_training, profile, timeout_factor, report)
        report.results.append(result)
        ctx.verdicts[check.name] = result.status == Status.PASSED
    return report


def _run_one(ctx: Context, check, kinds: dict, findings, skip_training: bool, profile, timeout_factor: float,
             report: Report) -> CheckResult:
    """One check's result; never raises for anything the submission does."""
    start = time.perf_counter()
    if kinds.get(check.part, "missing") == "missing":
        return _result(check, Status.FAILED, f"{check.part} is not defined")
    concerning = [f.message for f in findings if f.concerns(check.part)]
    if concerning:
        return _result(check, Status.FAILED, "; ".join(dict.fromkeys(concerning)))
    if check.training and skip_training:
        return _result(check, Status.SKIPPED, "training check skipped (--skip-training)")
    try:
        ctx.timeout = (profile.timeout if check.training and profile else check.timeout) * timeout_factor
        ctx.check = check
        check.run(ctx)
        if check.kind == "values":  # the engine's rule: what passed here is what the part's probe must have seen
            seen = ctx.disagreeing(check.part)
            if seen is not None:
                raise CheckFailure(f"{check.part} computes the contract's function on these inputs but a known "
                                   "mistake on others: it computes no one function", hint=seen.hint or None)
        if check.kind == "behaviour" and ctx.unrecognised(check.part):  # the engine's rule, for every such check:
            # a behaviour pays only for a recognised function; its own message, where it fails, says more
            raise CheckFailure(f"{check.part} computes neither the contract's function nor a known mistake (see its "
                               "values check): its behaviour is judged once it does")
    except CheckFailure as exc:
        return _result(check, Status.FAILED, exc.message, exc.hint, time.perf_counter() - start)
    except SubmissionTimeout as exc:
        return _result(check, Status.TIMEOUT, str(exc), None, time.perf_counter() - start)
    except SubmissionError as exc:
        return _result(check, Status.ERROR, str(exc), None, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a bug in the grader must not stop the other checks
        log.exception("check %s failed inside the grader", check.name)
        report.grader_errors.append(f"{check.name}: {type(exc).__name__}: {exc}")
        message = f"the grader itself failed on this check ({type(exc).__name__}); your tutor has been told"
        return _result(check, Status.ERROR, message, None, time.perf_counter() - start)
    return _result(check, Status.PASSED, "", None, time.perf_counter() - start)


def fail_all(report: Report, checks, message: str) -> Report:
    for check in checks:
        report.results.append(_result(check, Status.ERROR, message))
    return report


def grade_path(path: str | Path, exercise: str | Exercise, *, skip_training: bool = False, device: str | None = None,
               include_hidden: bool = True, progress: bool = False, limits: Limits | None = None,
               timeout_factor: float = 1.0, salt: int | None = 0) -> Report:
    """Grade a ``.py`` or ``.ipynb`` file with the submission in a confined child process.

    ``salt=None`` draws random inputs. Raises ``ConfinementUnavailable`` when this machine cannot confine the
    child and ``limits.confine`` is set (the default): the caller decides whether to grade unconfined.
    """
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    checks = select_checks(exercise, include_hidden=include_hidden)
    report = Report(exercise=exercise.name, submission=str(path))
    try:
        submission = load_submission(path)
    except SubmissionFormatError as exc:
        report.notes.append(str(exc))
        return fail_all(report, checks, f"not graded: {exc}")
    report.notes.extend(submission.notes)
    device = device or default_device()
    limits = limits or Limits()
    if not limits.confine:
        report.notes.append(UNCONFINED_NOTE)
    findings = scan_source(submission.cells, exercise.parts, (exercise.forbidden or ATTENTION_BUILTINS).static())
    with ChildProcessRunner(submission, limits, use_cuda=device.startswith("cuda")) as runner:
        return run_checks(runner, exercise, checks, device=device, skip_training=skip_training, progress=progress,
                          report=report, timeout_factor=timeout_factor,
                          salt=secrets.randbits(32) if salt is None else salt, findings=findings)
