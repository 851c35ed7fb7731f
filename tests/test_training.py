"""Is the training check's threshold fair: the reference passes on every seed, a model that cannot learn fails?

The accuracy comes from the grader's own training run (fixed seed and budget) on held-out tweets whose
labels never leave the grader's process; nothing the submission reports is used.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, SOLUTION
from mutations import FROZEN_ENCODER, mutated_source

from autograder.context import Context
from autograder.exercises.transformer import PROFILES, train_and_score
from autograder.grading import default_device, grade_path
from autograder.runner import ChildProcessRunner
from autograder.source import load_submission

pytestmark = pytest.mark.slow
TRAINING_ONLY = dict(device="cpu")


def training_result(report):
    return next(r for r in report.results if r.name == "clf.training")


def test_does_the_reference_pass_the_cpu_profile_on_20_seeds_of_20():
    profile = PROFILES["cpu"]
    with ChildProcessRunner(load_submission(SOLUTION)) as runner:
        ctx = Context(runner=runner, device="cpu", profile=profile, timeout=profile.timeout)
        accuracies = [train_and_score(ctx, profile, seed=seed)["accuracy"] for seed in range(20)]
    assert min(accuracies) >= profile.threshold, accuracies


def test_does_a_model_that_cannot_learn_fail_the_training_check(tmp_path):
    path = tmp_path / "frozen.py"
    path.write_text(mutated_source(FROZEN_ENCODER))
    result = training_result(grade_path(path, "transformer", **TRAINING_ONLY))
    assert result.points == 0 and "below the threshold" in result.message


def test_does_the_flawed_sample_fail_the_training_check():
    report = grade_path(ROOT / "assignments" / "samples" / "transformer_flawed.py", "transformer", **TRAINING_ONLY)
    assert training_result(report).points == 0
    assert report.artifacts["training"]["accuracy"] < PROFILES["cpu"].threshold


@pytest.mark.skipif(default_device() != "cuda", reason="needs a CUDA device")
def test_does_the_reference_pass_the_gpu_profile_on_cuda():
    report = grade_path(SOLUTION, "transformer", device="cuda")
    assert report.score == report.max_score, [(r.name, r.message) for r in report.results if r.points < r.max_points]
    assert report.artifacts["training"]["profile"] == "gpu"
