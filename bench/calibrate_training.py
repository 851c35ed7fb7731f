"""Calibrate (or re-check) a training profile's threshold: train the reference over many seeds, exactly as
the grader trains a submission, and print the scores (the exercise's metric: accuracy, or an error).

Each seed goes through the training check's own path: a values request identifies the forward (the
contract's, for the reference), the child trains on the training split and returns its weights, and the
grader scores them on the held-out split with that forward, here in this process.

    .venv/bin/python bench/calibrate_training.py --exercise transformer --profile cpu --seeds 20 --write
    .venv/bin/python bench/calibrate_training.py --all --profile cpu --write      # every trained part

The threshold in the exercise's package (``autograder/exercises/<exercise>/__init__.py``) is the worst score seen,
with a margin for machine-to-machine variation. ``--write`` records the run (seeds, scores, minimum, mean, time,
torch version, the profile's fingerprint) in ``autograder/exercises/<exercise>/calibration.json``, which a fast test
holds the threshold to (``tests/test_calibration.py``). A profile's threshold is valid only while the reference
passes it on every seed.
"""

from __future__ import annotations

import argparse
import os
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from autograder.calibration import fingerprint, record_key, write_record  # noqa: E402
from autograder.exercises import get_exercise, names  # noqa: E402
from autograder.kit.common import hidden_trainable, train_and_score  # noqa: E402
from autograder.grading import exercise_context  # noqa: E402
from autograder.runner import ChildProcessRunner  # noqa: E402
from autograder.source import load_submission  # noqa: E402


def calibrate(exercise, part: str | None, profile_name: str, args) -> bool:
    """Train the reference on ``args.seeds`` seeds of one profile; print (and with ``--write``, record) the scores."""
    profile = exercise.profiles_of(part)[profile_name]
    submission = args.submission or str(ROOT / exercise.solution)
    values, seconds = [], []
    trainable = hidden_trainable(exercise.name, part)
    metric = exercise.task.scoring
    label = f"{exercise.name} {record_key(part, profile_name)}"
    with ChildProcessRunner(load_submission(submission)) as runner:
        ctx = exercise_context(runner, exercise, device=args.device, profile=profile,
                               timeout=profile.timeout * args.timeout_factor)
        for seed in tqdm(range(args.first_seed, args.seeds), desc=label):
            start = time.perf_counter()
            result = train_and_score(ctx, trainable, exercise.training_kwargs(profile), profile, seed=seed)
            values.append(result.value)
            seconds.append(time.perf_counter() - start)
            tqdm.write(f"seed {seed:2d}: {metric.name} {result.value:.4f}  ({seconds[-1]:.1f} s; scored with "
                       f"{result.scored_with})")
    passed = sum(metric.passes(v, profile.threshold) for v in values)
    sys.stdout.write(f"{label}: {metric.name} min {min(values):.4f}  mean {statistics.mean(values):.4f}  "
                     f"max {max(values):.4f}  sd {statistics.pstdev(values):.4f}  mean time {statistics.mean(seconds):.1f} s\n"
                     f"threshold {profile.threshold:.4g}: passed on {passed} of {len(values)} seeds\n")
    if args.write and not args.submission:
        import torch

        worst = min(values) if metric.higher_is_better else max(values)
        path = write_record(exercise, record_key(part, profile_name), {
            "fingerprint": fingerprint(profile), "metric": metric.name,
            "seeds": list(range(args.first_seed, args.seeds)), "scores": [round(v, 6) for v in values],
            "worst": round(worst, 6), "mean": round(statistics.mean(values), 6), "sd": round(statistics.pstdev(values), 6),
            "seconds_mean": round(statistics.mean(seconds), 1), "device": args.device, "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": datetime.date.today().isoformat(),
            "source": "bench/calibrate_training.py",
        })
        sys.stdout.write(f"recorded in {path.relative_to(ROOT)}\n")
    return passed == len(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exercise", default="transformer", choices=names())
    parser.add_argument("--all", action="store_true", help="every trained part of every exercise")
    parser.add_argument("--profile", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--part", help="the trained part, where the exercise trains several (default: its first)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="resume an interrupted run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--submission", help="default: the exercise's reference solution (only that is recorded)")
    parser.add_argument("--timeout-factor", type=float, default=1.0,
                        help="scale the profile's time limit per request (a busy machine)")
    parser.add_argument("--write", action="store_true", help="record the run beside the exercise (calibration.json)")
    args = parser.parse_args()
    if args.all:
        targets = [(get_exercise(name), part) for name in names()
                   for part in [None, *get_exercise(name).part_profiles]]
    else:
        targets = [(get_exercise(args.exercise), args.part)]
    results = [calibrate(exercise, part, args.profile, args) for exercise, part in targets]
    return 0 if all(results) else 1

if __name__ == "__main__":
    sys.exit(main())
