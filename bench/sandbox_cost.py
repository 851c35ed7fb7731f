"""What does the confinement cost? The sandbox's start and teardown against one submission's whole grading.

    .venv/bin/python bench/sandbox_cost.py [--repeats 5] [--with-training]

Measured side by side in one run, alternating, on the same submission (the reference solution):
- start and teardown of a confined child (bubblewrap, seccomp, cgroup: load the submission, answer, close)
  against the same child unconfined (rlimits only): the difference is what the sandbox adds per child;
- one whole grading of the reference, confined, with the number of children it started.
It prints the ratio (sandbox overhead x children started) / whole grading. The target is under 5%.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from autograder.grading import grade_path
from autograder.requests import Inspect
from autograder.runner import ChildProcessRunner
from autograder.sandbox import Limits, probe
from autograder.source import load_submission

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "transformer.py"


def start_and_teardown(confine: bool) -> float:
    """Seconds from nothing to a loaded child that has answered one request, and back to nothing."""
    submission = load_submission(SOLUTION)
    start = time.perf_counter()
    runner = ChildProcessRunner(submission, Limits(confine=confine))
    runner.request(Inspect(names=["MultiHeadAttention"]), 120.0)
    runner.close()
    return time.perf_counter() - start


def whole_grading(skip_training: bool) -> tuple[float, int]:
    starts = []
    original = ChildProcessRunner._start

    def counting(self):
        starts.append(1)
        return original(self)

    ChildProcessRunner._start = counting
    try:
        start = time.perf_counter()
        report = grade_path(SOLUTION, "transformer", skip_training=skip_training, device="cpu", salt=0)
        seconds = time.perf_counter() - start
    finally:
        ChildProcessRunner._start = original
    assert report.score == report.max_score - (22 if skip_training else 0), report.score
    return seconds, len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-training", action="store_true", help="include the training check in the grading")
    args = parser.parse_args()
    features = probe()
    if not features.confined:
        raise SystemExit(f"no sandbox on this machine: {features.reason}")
    confined, plain = [], []
    for _ in range(args.repeats):  # alternating, so that drift affects both alike
        confined.append(start_and_teardown(True))
        plain.append(start_and_teardown(False))
    grading, starts = whole_grading(skip_training=not args.with_training)
    overhead = max(statistics.median(confined) - statistics.median(plain), 0.0)
    print(f"child start + teardown, confined:   median {statistics.median(confined):.3f} s over {args.repeats}")
    print(f"child start + teardown, unconfined: median {statistics.median(plain):.3f} s over {args.repeats}")
    print(f"sandbox overhead per child: {overhead * 1000:.0f} ms; children started by one grading: {starts}")
    print(f"one whole grading ({'with' if args.with_training else 'without'} training): {grading:.2f} s")
    print(f"ratio (overhead x children) / whole grading: {overhead * starts / grading:.2%} (target < 5%)")


if __name__ == "__main__":
    main()
