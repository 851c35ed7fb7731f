"""The full reproducibility run: every correct source, published style and known mistake graded under 30 salts
(CI draws 10 for correct code and 3 for a known mistake), each required to get one verdict per check.

    .venv/bin/python bench/reproducibility.py [--draws 30] [--workers 2] [--fresh] [-- extra pytest arguments]

Run it before resolving any change to the checks, and give its closing line in the note. It runs
``tests/test_reproducible.py`` with ``REPRODUCIBLE_DRAWS`` set, on both cores (pytest-xdist). Every test that
passes is recorded in ``bench/reproducibility.jsonl`` with a fingerprint of what its verdicts depend on
(``bench/reproducibility_record.py``); a later run skips what the record still proves, so the set can be run in
pieces (stop it at any time) and only an exercise that changed is run again. ``--fresh`` runs every test
whatever the record proves, and still records what passes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (a number, or auto)")
    parser.add_argument("--fresh", action="store_true",
                        help="run every test, whatever the record proves (what passes is still recorded)")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    env = {**os.environ, "REPRODUCIBLE_DRAWS": str(args.draws),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))}
    if args.fresh:
        env["REPRODUCIBLE_FRESH"] = "1"
    plugin = ["-p", "reproducibility_record"]
    base = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_reproducible.py"), "-p", "no:cacheprovider"]
    total, left = _count(base, env, args.pytest_args), _count(base + plugin, env, args.pytest_args)
    if total < 0 or left < 0:
        sys.stdout.write("the tests could not be collected: run pytest on tests/test_reproducible.py to see why\n")
        return 2
    sys.stdout.write(f"running all {total} tests (--fresh)\n" if args.fresh else
                     f"{total - left} of {total} tests already proven at {args.draws} draws by the record; "
                     f"running {left}\n")
    start = time.perf_counter()
    code = subprocess.call([*base, *plugin, "-q", "-n", args.workers, *args.pytest_args], cwd=ROOT, env=env) if left else 0
    proven = total - _count(base + plugin, {**env, "REPRODUCIBLE_FRESH": "0"}, args.pytest_args)
    sys.stdout.write(f"reproducibility over {args.draws} draws: exit {code} in {time.perf_counter() - start:.0f} s; "
                     f"{proven} of {total} tests proven by the record\n")
    return code


def _count(command: list[str], env: dict, extra: list[str]) -> int:
    """How many tests ``command`` would run (the record's plugin deselects what it proves)."""
    out = subprocess.run([*command, "--collect-only", "-q", *extra], cwd=ROOT, env=env, capture_output=True,
                         text=True).stdout
    found = re.search(r"(\d+)(?:/\d+)? tests? collected", out) or re.search(r"^(\d+) tests? collected", out, re.M)
    if found is None:
        return 0 if "no tests collected" in out or "deselected" in out else -1
    return int(found.group(1))


if __name__ == "__main__":
    sys.exit(main())
