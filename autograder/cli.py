"""The command line: a thin layer over ``grading``, ``report`` and ``authoring``.

    python -m autograder grade PATH... --exercise transformer [--format text|gradescope] [--skip-training]
    python -m autograder demo
    python -m autograder sync-notebook transformer [--check]

Exit status 0 whenever grading finished, whatever the submission did; 2 for the grader's own failures.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from . import exercises
from .report import as_gradescope, as_text, plot_scores


def _grade(args) -> int:
    from .grading import grade_path

    reports = []
    for path in args.paths:
        report = grade_path(path, args.exercise, skip_training=args.skip_training, device=args.device,
                            include_hidden=not args.public_only, progress=sys.stderr.isatty(),
                            timeout_factor=args.timeout_factor, salt=args.seed)
        reports.append(report)
        if args.format == "gradescope":
            out = as_gradescope(report)
            if args.output:
                Path(args.output).write_text(json.dumps(out, indent=2))
            else:
                print(json.dumps(out, indent=2))
        else:
            print(as_text(report))
            print()
    failures = [e for r in reports for e in r.grader_errors]
    for e in failures:
        print(f"grader error: {e}", file=sys.stderr)
    if args.plot and reports:
        plot_scores(reports, args.plot)
        print(f"score plot written to {args.plot}")
    return 2 if failures else 0


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
    g.set_defaults(func=_grade)

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
