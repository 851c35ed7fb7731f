"""The command line: a thin layer over ``grading``, ``report`` and ``authoring``.

    python -m autograder grade PATH... --exercise EXERCISE [--format text|gradescope] [--skip-training]
    python -m autograder grade-class SOURCE --exercise EXERCISE --gradebook FILE [--workers N] [--regrade] ...
    python -m autograder export GRADEBOOK --format csv|canvas|moodle|gradescope|feedback|nbgrader --output PATH
    python -m autograder class-report GRADEBOOK --output report.html
    python -m autograder demo
    python -m autograder sync-notebook EXERCISE [--check]

Exit status 0 whenever grading finished, whatever the submission did; 2 for the grader's own failures.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from . import exercises
from .checks import Report
from .report import as_json_text, as_text, plot_scores

log = logging.getLogger(__name__)


def _grade(args) -> int:
    """Grade each file on its own: whatever happens while grading one, the others still get their reports."""
    from .sandbox import probe

    if not args.unconfined and not probe().confined:
        print(f"refusing to grade: the submissions cannot be confined on this machine ({probe().reason}).\n"
              "Grade elsewhere, or pass --unconfined to grade without the sandbox (each report then says what "
              "is not guaranteed).", file=sys.stderr)
        return 2
    reports = []
    for path in args.paths:
        report = _grade_one(path, args)
        try:
            rendered = _render(report, args)
        except Exception as exc:  # noqa: BLE001 - a reporter's bug costs this file's report, not the batch
            report = _failed_report(path, args, exc)
            rendered = _render(report, args)
        reports.append(report)
        if args.format == "gradescope" and args.output:
            Path(args.output).write_text(rendered)
        else:
            print(rendered, flush=True)
    failures = [e for r in reports for e in r.grader_errors]
    for e in failures:
        print(f"grader error: {e}", file=sys.stderr)
    if args.plot and reports:
        try:
            plot_scores(reports, args.plot)
        except Exception as exc:  # noqa: BLE001 - the reports are out; the plot is the grader's own failure
            log.exception("the score plot failed")
            print(f"grader error: the score plot failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
        print(f"score plot written to {args.plot}")
    return 2 if failures else 0


def _grade_one(path: str, args) -> Report:
    """One file's report; a failure of the grader itself becomes that report (every check 0), never an exception."""
    from .grading import grade_path

    try:
        from .sandbox import Limits

        return grade_path(path, args.exercise, skip_training=args.skip_training, device=args.device,
                          include_hidden=not args.public_only, progress=sys.stderr.isatty(),
                          timeout_factor=args.timeout_factor, salt=args.seed,
                          limits=Limits(confine=not args.unconfined))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything, SystemExit included: the batch goes on
        log.exception("grading %s failed inside the grader", path)
        return _failed_report(path, args, exc)


def _failed_report(path: str, args, exc: BaseException) -> Report:
    """Every check 0 with a note naming the grader's failure, which is also counted as a grader error."""
    reason = f"not graded: the grader itself failed on this file ({type(exc).__name__}); your tutor has been told"
    report = Report(exercise=args.exercise, submission=str(path))
    report.notes.append(reason)
    report.grader_errors.append(f"{path}: {type(exc).__name__}: {exc}")
    try:
        from .grading import fail_all, select_checks

        checks = select_checks(exercises.get_exercise(args.exercise), include_hidden=not args.public_only)
        fail_all(report, checks, reason)
    except Exception:  # noqa: BLE001 - not even the checks can be listed: the report keeps its note only
        log.exception("the checks of %s cannot be listed", args.exercise)
    return report


def _render(report: Report, args) -> str:
    """The report as the chosen format prints it."""
    if args.format == "gradescope":
        return as_json_text(report)
    return as_text(report) + "\n"


def _grade_class(args) -> int:
    from .class_grading import ClassGradingError, ClassOptions, grade_class
    from .gradebook import GradebookBusy
    from .roster import ClassSourceError

    options = ClassOptions(exercise=args.exercise, gradebook=Path(args.gradebook), workers=args.workers,
                           seed=args.seed, skip_training=args.skip_training, device=args.device,
                           timeout_factor=args.timeout_factor, regrade=args.regrade, engine=args.engine,
                           scheduler=args.scheduler, gpu_slots=args.gpu_slots, confine=not args.unconfined,
                           progress=not args.no_progress)
    try:
        summary = grade_class(args.source, options)
    except (ClassGradingError, ClassSourceError, GradebookBusy) as exc:
        print(f"grade-class: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # every finished grade is committed; os._exit takes the grading threads, and with them their grader
        # processes and sandboxes (they die with their parent), instead of waiting for them to finish
        print("grade-class: interrupted; the grades finished so far are in the gradebook (run again to resume)",
              file=sys.stderr, flush=True)
        os._exit(130)
    for note in summary.notes:
        print(f"note: {note}")
    print(summary.line())
    return 2 if summary.grader_failures else 0


def _export(args) -> int:
    from .exports import EXPORTS, ExportError

    try:
        written = EXPORTS[args.format](args.gradebook, args.output, args)
    except (ExportError, FileNotFoundError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


def _class_report(args) -> int:
    from .class_report import write_class_report

    try:
        write_class_report(args.gradebook, args.output)
    except FileNotFoundError as exc:
        print(f"class-report: {exc}", file=sys.stderr)
        return 2
    print(f"class report written to {args.output}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo(skip_training=args.skip_training, workdir=args.workdir)


def _sync(args) -> int:
    from .authoring import sync_notebook

    exercise = exercises.get_exercise(args.exercise)
    root = Path(args.root)
    changed = sync_notebook(root / exercise.notebook, root / exercise.solution, write=not args.check)
    if args.check and changed:
        print(f"{exercise.notebook} differs from {exercise.solution} in: {', '.join(changed)}")
        return 1
    print(f"{exercise.notebook}: {'updated ' + ', '.join(changed) if changed else 'in sync'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log the grader's own progress")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade .py or .ipynb submissions")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--exercise", required=True, choices=exercises.names())
    g.add_argument("--format", choices=["text", "gradescope"], default="text")
    g.add_argument("--output", help="write the Gradescope results.json here (one PATH only)")
    g.add_argument("--skip-training", action="store_true", help="leave out the training check (it scores 0)")
    g.add_argument("--public-only", action="store_true", help="run only the checks students see")
    g.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    g.add_argument("--seed", type=int, default=None,
                   help="fix the checks' random inputs (default: new inputs every run, so cached answers fail)")
    g.add_argument("--timeout-factor", type=float, default=1.0, help="scale every check's time limit")
    g.add_argument("--plot", help="write a PNG of the score distribution and per-check means")
    g.add_argument("--unconfined", action="store_true",
                   help="grade without the sandbox where it is unavailable (not Linux, no bubblewrap); every "
                        "report then says what is not guaranteed")
    g.set_defaults(func=_grade)

    c = sub.add_parser("grade-class", help="grade a whole class into a gradebook (parallel, resumable)")
    c.add_argument("source", metavar="SOURCE",
                   help="a folder of <student>.py/.ipynb files, nbgrader's submitted/ tree, or a Moodle or Canvas zip")
    c.add_argument("--exercise", required=True, choices=exercises.names())
    c.add_argument("--gradebook", required=True, help="the SQLite gradebook (made when missing)")
    c.add_argument("--workers", type=int, help="gradings at once (default: from the cores and the memory)")
    c.add_argument("--seed", type=int, help="the class's seed (default: drawn once and kept in the gradebook)")
    c.add_argument("--skip-training", action="store_true", help="leave out the training checks (they score 0)")
    c.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    c.add_argument("--gpu-slots", type=int, default=1, help="gradings sharing each visible GPU (with cuda)")
    c.add_argument("--engine", choices=["local", "dask"], default="local")
    c.add_argument("--scheduler", help="the Dask scheduler's address, tcp://host:8786 (with --engine dask)")
    c.add_argument("--regrade", action="store_true", help="grade every student again (earlier grades kept as history)")
    c.add_argument("--timeout-factor", type=float, default=1.0, help="scale every check's time limit")
    c.add_argument("--unconfined", action="store_true", help="grade without the sandbox (each report says so)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_grade_class)

    e = sub.add_parser("export", help="export a gradebook: per-check CSV, LMS totals, Gradescope, feedback, nbgrader")
    e.add_argument("gradebook", metavar="GRADEBOOK")
    e.add_argument("--format", required=True, choices=["csv", "canvas", "moodle", "gradescope", "feedback", "nbgrader"])
    e.add_argument("--output", required=True, help="a file (csv, canvas, moodle), a folder (gradescope, feedback), "
                                                   "or nbgrader's database URL or file (nbgrader)")
    e.add_argument("--exercise", help="only this exercise (default: every exercise in the gradebook)")
    e.add_argument("--assignment", help="nbgrader: the assignment's name (default: the exercise's)")
    e.set_defaults(func=_export)

    r = sub.add_parser("class-report", help="one HTML page of class analytics from a gradebook")
    r.add_argument("gradebook", metavar="GRADEBOOK")
    r.add_argument("--output", default="class-report.html")
    r.set_defaults(func=_class_report)

    d = sub.add_parser("demo", help="grade the reference and a flawed sample on the embedded default data")
    d.add_argument("--skip-training", action="store_true")
    d.add_argument("--workdir", default="demo-output", help="where the flawed sample and plots are written")
    d.set_defaults(func=_demo)

    s = sub.add_parser("sync-notebook", help="copy solutions/ into the nbgrader source notebook")
    s.add_argument("exercise", choices=exercises.names())
    s.add_argument("--check", action="store_true", help="only report drift (exit 1 when there is some)")
    s.add_argument("--root", default=".", help="the repository root")
    s.set_defaults(func=_sync)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if args.command == "grade" and args.output and len(args.paths) > 1:
        print("--output takes one PATH", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return args.func(args)
        except KeyboardInterrupt:
            return 130
