"""Is the training check fair and unfoolable: the reference passes on every seed, a model that cannot learn
fails, and nothing the submission computes about its training decides the verdict?

The child trains on the training split only and returns its trained weights; the grader scores them on
held-out tweets, whose inputs and labels never leave its process, with its own forward pass (the reference's,
or the reference with the known mistake the classifier's outputs match). The losses the child reports are
shown, never judged.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, failed, grade_source_in_process
from mutations import CASES, mutated_source

from autograder.exercises import get_exercise, names
from autograder.kit.common import hidden_trainable, train_and_score
from autograder.grading import default_device, exercise_context, grade_path
from autograder.runner import ChildProcessRunner
from autograder.source import load_submission

FROZEN = {name: (cases.frozen, cases.solution) for name, cases in CASES.items() if cases.frozen}
# Every trained part of every exercise: (exercise, None) for its first, (exercise, part) for each further one.
TRAINED = [(name, None) for name in names() if get_exercise(name).task] + [
    (name, part) for name in names() for part in get_exercise(name).part_profiles]
# The exercises whose trained model can be made to compute no known function (``Cases.unverifiable``).
UNVERIFIABLE = {name: cases.unverifiable for name, cases in CASES.items() if cases.unverifiable}


def training_result(report):
    return next(r for r in report.results if r.name.endswith(".training"))


def with_code_in_forward(name: str, code: str, anchor: str | None = None) -> str:
    """The reference solution with ``code`` (8-space indented lines) at the start of the trained model's forward
    (``anchor``: the line it goes before; by default that of ``Cases.unverifiable``)."""
    text = CASES[name].solution.read_text()
    anchor = anchor or UNVERIFIABLE[name][0]
    assert anchor in text
    return text.replace(anchor, code + anchor, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name, part", TRAINED, ids=[f"{n}-{p}" if p else n for n, p in TRAINED])
def test_does_the_reference_pass_the_cpu_profile_on_its_first_seed(name, part):
    """One seed here; the 20 seeds of the calibration are a benchmark (``bench/calibrate_training.py``), whose
    record ``tests/test_calibration.py`` holds each threshold to."""
    exercise = get_exercise(name)
    profile = exercise.profiles_of(part)["cpu"]
    kwargs = exercise.training_kwargs(profile)
    with ChildProcessRunner(load_submission(ROOT / exercise.solution)) as runner:
        ctx = exercise_context(runner, exercise, device="cpu", profile=profile, timeout=profile.timeout)
        result = train_and_score(ctx, hidden_trainable(name, part), kwargs, profile, seed=profile.seed)
    assert result.scored_with == "the contract"
    assert exercise.task.scoring.passes(result.value, profile.threshold), result.value


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FROZEN))
def test_does_a_model_that_cannot_learn_fail_the_training_check(name, tmp_path):
    mutation, solution = FROZEN[name]
    path = tmp_path / "frozen.py"
    path.write_text(mutated_source(mutation, solution))
    result = training_result(grade_path(path, name, device="cpu"))
    assert result.points == 0 and f"{get_exercise(name).task.scoring.short_of} the threshold" in result.message


@pytest.mark.slow
def test_does_the_flawed_sample_fail_the_training_check_scored_with_its_own_mistakes():
    profile = get_exercise("transformer").profiles["cpu"]
    report = grade_path(ROOT / "assignments" / "samples" / "transformer_flawed.py", "transformer", device="cpu")
    assert training_result(report).points == 0
    training = report.artifacts["training"]
    assert training["metric"] == "test accuracy" and training["value"] < profile.threshold
    assert "padding included in the mean" in training["scored_with"]  # its forward, not the contract's


# The classifier patches the grader's training loop in the process that runs it (the child), the first time
# it is built, reaching the module that runs it under a name no source scan can read (the scan finds a plain
# ``training.fit = ...``); the parent still scores the weights of the model it asked for.
PATCH = """\
        import sys as _sys
        import autograder.training as _training
        _requests = _sys.modules["".join(reversed("stseuqer.redargotua"))]
        if not getattr(_requests, "patched", False):
            _requests.patched = True
            {body}
"""
SKIP_TRAINING = """_requests.fit = lambda model, *args, **kwargs: _training.History(epoch_losses=[0.01, 0.001])"""
BAG_OF_WORDS = """_real_fit = _requests.fit

            def _fit(model, x_train, y_train, **kwargs):
                tokens = x_train[0] if isinstance(x_train, list) else x_train
                bow = nn.EmbeddingBag(int(tokens.max()) + 1, 2, mode="mean", padding_idx=0)  # logistic regression
                history = _real_fit(bow, x_train, y_train, **kwargs)
                model.__dict__["bag_of_words"] = bow  # not a sub-module: not in the state the grader scores
                return history

            _requests.fit = _fit"""
USE_BAG_OF_WORDS = """\
        if "bag_of_words" in self.__dict__:
            return self.bag_of_words(tokens)
"""


@pytest.mark.slow
@pytest.mark.parametrize("body", [SKIP_TRAINING, BAG_OF_WORDS], ids=["skips_training", "trains_bag_of_words"])
def test_does_patching_the_training_loop_in_the_child_fail_the_training_check(body, write):
    source = with_code_in_forward("transformer", USE_BAG_OF_WORDS)
    init_end = "        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))\n"
    assert init_end in source
    source = source.replace(init_end, init_end + PATCH.format(body=body), 1)
    report = grade_path(write("patcher.py", source), "transformer", device="cpu")
    result = training_result(report)
    assert result.points == 0 and "below the threshold" in result.message, result.message
    assert set(failed(report)) == {"clf.training"}  # everything else is the reference's


@pytest.mark.parametrize("name", sorted(UNVERIFIABLE))
def test_does_a_classifier_matching_no_known_function_fail_the_training_check_as_unverifiable(name):
    """Whatever it would learn, the grader has no forward of its own to score it with: it says so, unrun."""
    source = with_code_in_forward(name, UNVERIFIABLE[name][1])
    training = [c.name for c in get_exercise(name).checks if c.training]
    report = grade_source_in_process(source, exercise=name, skip_training=False, names=training)
    result = training_result(report)
    assert result.points == 0
    assert result.message.startswith("cannot be verified") and "fix" in result.message
    assert "training" not in report.artifacts  # it never trained


@pytest.mark.skipif(default_device() != "cuda", reason="needs a CUDA device")
@pytest.mark.parametrize("name", [name for name, part in TRAINED if part is None])
def test_does_the_reference_pass_the_gpu_profile_on_cuda(name):
    exercise = get_exercise(name)
    report = grade_path(ROOT / exercise.solution, name, device="cuda")
    assert report.score == report.max_score, [(r.name, r.message) for r in report.results if r.points < r.max_points]
    assert report.artifacts["training"]["profile"] == "gpu"


@pytest.mark.slow
def test_does_correct_code_with_another_initialisation_pass_the_cpu_profile(tmp_path):
    """The cnn_attention threshold holds for a reference that creates its head first: the same seed, another
    initialisation (over 20 seeds: ``bench/calibrate_training.py --exercise cnn_attention --submission ...``,
    figures in datasets/README.md beside the reference's)."""
    from mistake_edits.cnn_attention import CNN_ATTENTION_REORDERED, CNN_ATTENTION_SOLUTION

    path = tmp_path / "reordered.py"
    path.write_text(mutated_source(CNN_ATTENTION_REORDERED, CNN_ATTENTION_SOLUTION))
    exercise = get_exercise("cnn_attention")
    profile = exercise.profiles["cpu"]
    with ChildProcessRunner(load_submission(path)) as runner:
        ctx = exercise_context(runner, exercise, device="cpu", profile=profile, timeout=profile.timeout)
        result = train_and_score(ctx, hidden_trainable("cnn_attention"), exercise.training_kwargs(profile), profile,
                                 seed=profile.seed)
    assert result.scored_with == "the contract"
    assert result.value >= profile.threshold, result.value


def test_does_the_linear_schedule_decay_the_learning_rate_to_zero_over_the_run():
    from autograder.training import learning_rate_factor

    assert [learning_rate_factor("linear", step, 4) for step in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert {learning_rate_factor("constant", step, 4) for step in range(4)} == {1.0}
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate_factor("cosine", 0, 4)


def test_does_fit_follow_the_schedule_and_refuse_an_unknown_one_before_training():
    import numpy as np
    import torch

    from autograder.training import fit

    model = torch.nn.Linear(2, 1)
    x, y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append(None))
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        fit(model, x, y, epochs=1, batch_size=4, lr=0.1, seed=0, loss="mse", schedule="cosine")
    assert not seen  # refused before any batch
    before = model.weight.detach().clone()
    fit(model, x, y, epochs=1, batch_size=8, lr=0.1, seed=0, loss="mse", schedule="linear")
    assert not torch.equal(model.weight, before)  # the first step has the full rate (factor 1)


@pytest.mark.slow
def test_does_a_trajectory_model_that_cannot_beat_constant_velocity_fail_even_under_a_loose_threshold(tmp_path):
    """The regression's baseline is a second bar: with the threshold loosened to 1.0, the model whose output
    layer's bias alone learns (its MSE far above constant velocity's) still fails, and the message names the
    baseline."""
    import dataclasses

    from mistake_edits.seq2seq import SEQ2SEQ_FROZEN, SEQ2SEQ_SOLUTION

    from autograder.checks import CheckFailure
    from autograder.kit.common import training_check

    exercise = get_exercise("seq2seq")
    profile = dataclasses.replace(exercise.profiles["cpu"], threshold=1.0, epochs=2)
    path = tmp_path / "frozen.py"
    path.write_text(mutated_source(SEQ2SEQ_FROZEN, SEQ2SEQ_SOLUTION))
    with ChildProcessRunner(load_submission(path)) as runner:
        ctx = exercise_context(runner, exercise, device="cpu", profile=profile, timeout=profile.timeout)
        with pytest.raises(CheckFailure, match="not better than the constant-velocity baseline"):
            training_check(ctx, hidden_trainable("seq2seq"), exercise.training_kwargs(profile), profile)
    record = ctx.artifacts["training"]
    assert record["baseline"] == "constant-velocity" and record["value"] > record["baseline_value"]

