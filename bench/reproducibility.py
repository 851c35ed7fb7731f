"""The full reproducibility run: every correct source, published style and known mistake graded under 30 salts
(CI draws 10 for correct code and 3 for a known mistake), each required to get one verdict per check.

    .venv/bin/python bench/reproducibility.py [--draws 30] [--workers 2] [-- extra pytest arguments]

Run it before resolving any change to the checks, and give its closing line in the note. It runs
``tests/test_reproducible.py`` with ``REPRODUCIBLE_DRAWS`` set, on both cores (pytest-xdist).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (a number, or auto)")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    env = {**os.environ, "REPRODUCIBLE_DRAWS": str(args.draws)}
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_reproducible.py"), "-q",
                            "-n", args.workers, "-p", "no:cacheprovider", *args.pytest_args], cwd=ROOT, env=env)
    sys.stdout.write(f"reproducibility over {args.draws} draws: exit {code} in {time.perf_counter() - start:.0f} s\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
