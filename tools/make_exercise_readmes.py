"""Regenerate the cascade table in each exercise's README from the known mistakes, graded.

Each registered exercise's ``autograder/exercises/<name>/README.md`` holds, between the lines
``<!-- cascade:begin -->`` and ``<!-- cascade:end -->``, the table of what each known mistake costs and in which
parts. The table is made by ``tests/mutations.py``'s ``cascade_table(name)``: every known mistake of the exercise
is graded in process, without training (a few minutes for all five exercises on a 2-core machine). Nothing
outside the two markers is touched.

    .venv/bin/python tools/make_exercise_readmes.py                 # rewrite every exercise's table
    .venv/bin/python tools/make_exercise_readmes.py vit seq2seq     # only these exercises
    .venv/bin/python tools/make_exercise_readmes.py --check         # exit 1 if any table differs; write nothing

Exit status: 0 when every table is (or now is) up to date; 1 with ``--check`` when one differs; 2 when a README
or its markers are missing, an exercise named on the command line is not registered, or the grader itself failed
while grading a known mistake (a table made of the grader's own failures measures nothing: that exercise's table is
left as it is, and the failures are printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for path in (str(ROOT), str(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

BEGIN = "<!-- cascade:begin -->"
END = "<!-- cascade:end -->"


def readme_path(name: str) -> Path:
    return ROOT / "autograder" / "exercises" / name / "README.md"


def split_readme(text: str, path: Path) -> tuple[str, str, str]:
    """(before the block, the block's content, after the block); the markers stay in ``before`` and ``after``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{path}: needs exactly one {BEGIN} and one {END} line")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    return head + BEGIN, block, END + tail


def block_for(table: str) -> str:
    """What goes between the markers: the table, with a blank line on each side (so that Markdown renders it)."""
    return f"\n\n{table.strip()}\n\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exercises", nargs="*", help="exercise names (default: every registered exercise)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any README's table differs from the graded one")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from autograder.exercises import names
    from mutations import KNOWN, cascade_table, graded

    logging.getLogger("autograder.grading").setLevel(logging.CRITICAL)  # the grader's failures are summed up below

    registered = names()
    chosen = args.exercises or registered
    unknown = [n for n in chosen if n not in registered]
    if unknown:
        print(f"not registered: {', '.join(unknown)}; registered: {', '.join(registered)}", file=sys.stderr)
        return 2

    # Every README and its markers first (cheap), so that a missing one is said before minutes of grading.
    readmes, problems = {}, []
    for name in chosen:
        path = readme_path(name)
        if not path.exists():
            problems.append(f"{path.relative_to(ROOT)} does not exist")
            continue
        try:
            readmes[name] = split_readme(path.read_text(), path.relative_to(ROOT))
        except ValueError as e:
            problems.append(str(e))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2

    stale, broken = [], []
    for name in chosen:
        path = readme_path(name)
        head, block, tail = readmes[name]
        print(f"{name}: grading every known mistake ...", file=sys.stderr, flush=True)
        wanted = block_for(cascade_table(name))
        failures = [f"{m.name}: {error}" for m in KNOWN[name] for error in graded(name, m.name).grader_errors]
        if failures:
            broken.append(name)
            more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
            print(f"{name}: the grader itself failed while grading its known mistakes; table left as it is:\n  "
                  + "\n  ".join(failures[:10]) + more, file=sys.stderr)
            continue
        if block == wanted:
            print(f"{name}: up to date", file=sys.stderr)
            continue
        stale.append(name)
        if args.check:
            print(f"{path.relative_to(ROOT)}: the cascade table differs; it should read:{wanted}", file=sys.stderr)
        else:
            path.write_text(head + wanted + tail)
            print(f"{name}: table written to {path.relative_to(ROOT)}", file=sys.stderr)
    if broken:
        return 2
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
