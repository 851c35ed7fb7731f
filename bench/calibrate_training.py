"""Calibrate (or re-check) a training profile's threshold: train the reference over many seeds, exactly as
the grader trains a submission, and print the scores (the exercise's metric: accuracy, or an error).

Each seed goes through the training check's own path: a values request identifies the forward (the
contract's, for the reference), the child trains on the training split and returns its weights, and the
grader scores them on the held-out split with that forward, here in this process.

    .venv/bin/python bench/calibrate_training.py --exercise transformer --profile cpu --seeds 20

The threshold in the exercise's module (``autograder/exercises/<exercise>.py``) is the worst score seen, with a margin
for machine-to-machine variation; the figures are recorded in ``datasets/README.md``. A profile's threshold is
valid only while the reference passes it on every seed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from autograder.exercises import get_exercise, names  # noqa: E402
from autograder.exercises.common import hidden_trainable, train_and_score  # noqa: E402
from autograder.grading import exercise_context  # noqa: E402
from autograder.runner import ChildProcessRunner  # noqa: E402
from autograder.source import load_submission  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exercise", default="transformer", choices=names())
    parser.add_argument("--profile", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--part", help="the trained part, where the exercise trains several (default: its first)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="resume an interrupted run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--submission", help="default: the exercise's reference solution")
    parser.add_argument("--timeout-factor", type=float, default=1.0,
                        help="scale the profile's time limit per request (a busy machine)")
    args = parser.parse_args()
    exercise = get_exercise(args.exercise)
    profile = exercise.profiles_of(args.part)[args.profile]
    submission = args.submission or str(ROOT / exercise.solution)
    values, seconds = [], []
    trainable = hidden_trainable(exercise.name, args.part)
    metric = exercise.task.scoring
    with ChildProcessRunner(load_submission(submission)) as runner:
        ctx = exercise_context(runner, exercise, device=args.device, profile=profile,
                               timeout=profile.timeout * args.timeout_factor)
        for seed in tqdm(range(args.first_seed, args.seeds), desc=f"{args.profile} profile"):
            start = time.perf_counter()
            result = train_and_score(ctx, trainable, exercise.training_kwargs(profile), profile, seed=seed)
            values.append(result.value)
            seconds.append(time.perf_counter() - start)
            tqdm.write(f"seed {seed:2d}: {metric.name} {result.value:.4f}  ({seconds[-1]:.1f} s; scored with "
                       f"{result.scored_with})")
    passed = sum(metric.passes(v, profile.threshold) for v in values)
    sys.stdout.write(f"profile {args.profile}: {metric.name} min {min(values):.4f}  mean {statistics.mean(values):.4f}  "
                     f"max {max(values):.4f}  sd {statistics.pstdev(values):.4f}  mean time {statistics.mean(seconds):.1f} s\n"
                     f"threshold {profile.threshold:.4g}: passed on {passed} of {len(values)} seeds\n")
    return 0 if passed == len(values) else 1


if __name__ == "__main__":
    sys.exit(main())
