"""Is the training check's threshold fair: the reference passes on every seed, a model that cannot learn fails?

The accuracy comes from the grader's own training run (fixed seed and budget) on held-out tweets whose
labels never leave the grader's process; nothing the submission reports is used.
"""

from __future__ import annotations

import pytest

from conftest import ROOT
from mutations import ATTENTION_RNN_FROZEN, ATTENTION_RNN_SOLUTION, FROZEN_ENCODER, mutated_source

from autograder.context import Context
from autograder.exercises import get_exercise, names
from autograder.exercises.common import train_and_score
from autograder.grading import default_device, grade_path
from autograder.runner import ChildProcessRunner
from autograder.source import load_submission

pytestmark = pytest.mark.slow
FROZEN = {"transformer": (FROZEN_ENCODER, ROOT / "solutions" / "transformer.py"),
          "attention_rnn": (ATTENTION_RNN_FROZEN, ATTENTION_RNN_SOLUTION)}


def training_result(report):
    return next(r for r in report.results if r.name.endswith(".training"))


@pytest.mark.parametrize("name", names())
def test_does_the_reference_pass_the_cpu_profile_on_20_seeds_of_20(name):
    exercise = get_exercise(name)
    profile = exercise.profiles["cpu"]
    kwargs = exercise.training_kwargs(profile)
    with ChildProcessRunner(load_submission(ROOT / exercise.solution)) as runner:
        ctx = Context(runner=runner, device="cpu", profile=profile, timeout=profile.timeout)
        accuracies = [train_and_score(ctx, exercise.classifier, kwargs, profile, seed=s)["accuracy"] for s in range(20)]
    assert min(accuracies) >= profile.threshold, accuracies


@pytest.mark.parametrize("name", names())
def test_does_a_model_that_cannot_learn_fail_the_training_check(name, tmp_path):
    mutation, solution = FROZEN[name]
    path = tmp_path / "frozen.py"
    path.write_text(mutated_source(mutation, solution))
    result = training_result(grade_path(path, name, device="cpu"))
    assert result.points == 0 and "below the threshold" in result.message


def test_does_the_flawed_sample_fail_the_training_check():
    profile = get_exercise("transformer").profiles["cpu"]
    report = grade_path(ROOT / "assignments" / "samples" / "transformer_flawed.py", "transformer", device="cpu")
    assert training_result(report).points == 0
    assert report.artifacts["training"]["accuracy"] < profile.threshold


@pytest.mark.skipif(default_device() != "cuda", reason="needs a CUDA device")
@pytest.mark.parametrize("name", names())
def test_does_the_reference_pass_the_gpu_profile_on_cuda(name):
    exercise = get_exercise(name)
    report = grade_path(ROOT / exercise.solution, name, device="cuda")
    assert report.score == report.max_score, [(r.name, r.message) for r in report.results if r.points < r.max_points]
    assert report.artifacts["training"]["profile"] == "gpu"
