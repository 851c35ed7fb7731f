"""Do requests serve any exercise: a named method, descriptions of any standard layer, training with the
exercise's loss on several inputs, and metrics in either direction?"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from autograder.protocol import decode, encode
from autograder.requests import ErrorReply, Run, RunReply, Train, TrainReply, execute
from autograder.tasks import METRICS, TaskData, TrainingTask


class Forecaster(nn.Module):
    """A model with a method besides forward, two inputs, and a regression output."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, source, target_in):
        return self.proj(torch.cat([source, target_in], -1))

    def predict(self, source, steps: int):
        return source[:, -1:].repeat(1, steps, 1) * 2.0


class Convolutional(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, 8, 3, padding=1), nn.Conv2d(8, 1, 7, stride=2, bias=False)])
        self.norm = nn.GroupNorm(2, 8)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))


def test_does_a_request_call_a_named_method():
    x = np.ones((2, 3, 4), np.float32)
    reply = execute(Run(target="Forecaster", init_args=[4], inputs=[x], call_kwargs={"steps": 5}, method="predict"),
                    {"Forecaster": Forecaster})
    assert isinstance(reply, RunReply), reply
    assert reply.outputs[0][0].shape == (2, 5, 4) and np.all(reply.outputs[0][0] == 2.0)
    missing = execute(Run(target="Forecaster", init_args=[4], inputs=[x], method="sample"), {"Forecaster": Forecaster})
    assert isinstance(missing, ErrorReply) and missing.kind == "AttributeError"


class NumpyDropout(nn.Module):
    """Dropout drawn with numpy's and Python's global generators, as students write it."""

    def forward(self, x):
        import random

        keep = torch.from_numpy(np.random.rand(*x.shape) > 0.5).to(x.dtype)
        return x * keep * random.random()


def test_does_the_same_request_give_the_same_answer_whatever_generator_the_submission_draws_from():
    x = np.ones((3, 8), np.float32)
    request = Run(target="NumpyDropout", init_args=[], inputs=[x], seed=7)
    first, second = (execute(request, {"NumpyDropout": NumpyDropout}) for _ in range(2))
    np.random.seed(123)  # whatever state the process was left in
    third = execute(request, {"NumpyDropout": NumpyDropout})
    assert np.array_equal(first.outputs[0][0], second.outputs[0][0])
    assert np.array_equal(first.outputs[0][0], third.outputs[0][0])
    other = execute(Run(target="NumpyDropout", init_args=[], inputs=[x], seed=8), {"NumpyDropout": NumpyDropout})
    assert not np.array_equal(first.outputs[0][0], other.outputs[0][0])


def test_are_convolutions_and_other_standard_layers_described():
    reply = execute(Run(target="Convolutional", init_args=[3], call=False), {"Convolutional": Convolutional})
    first, second = reply.modules["convs.0"], reply.modules["convs.1"]
    assert first == {**first, "type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": [3, 3],
                     "stride": [1, 1], "padding": [1, 1], "groups": 1, "bias": True}
    assert second["kernel_size"] == [7, 7] and second["stride"] == [2, 2] and second["bias"] is False
    assert reply.modules["convs"]["length"] == 2
    assert reply.modules["norm"]["num_groups"] == 2  # from GroupNorm's own __constants__
    assert reply.modules["pool"]["output_size"] == [1, 1]
    assert isinstance(decode(encode(reply)), RunReply)


def test_does_training_use_the_exercise_s_loss_on_several_inputs():
    gen = np.random.default_rng(0)
    source, target_in = gen.standard_normal((64, 3, 4), np.float32), gen.standard_normal((64, 3, 4), np.float32)
    targets = (source + target_in).astype(np.float32)
    reply = execute(Train(target="Forecaster", init_kwargs={"dim": 4}, inputs=[source, target_in], targets=targets,
                          loss="mse", epochs=30, batch_size=16, lr=1e-2, seed=0), {"Forecaster": Forecaster})
    assert isinstance(reply, TrainReply), reply
    assert reply.epoch_losses[-1] < 0.2 * reply.epoch_losses[0]  # a regression that learns
    unknown = execute(Train(target="Forecaster", init_kwargs={"dim": 4}, inputs=[source, target_in], targets=targets,
                            loss="hinge", epochs=1, batch_size=16, lr=1e-2, seed=0), {"Forecaster": Forecaster})
    assert isinstance(unknown, ErrorReply) and "unknown loss" in unknown.message


def test_does_each_metric_point_its_own_way():
    accuracy, error = METRICS["accuracy"], METRICS["mse"]
    assert accuracy.passes(0.9, 0.85) and not accuracy.passes(0.8, 0.85) and accuracy.short_of == "below"
    assert error.passes(0.01, 0.02) and not error.passes(0.03, 0.02) and error.short_of == "above"
    assert not accuracy.passes(float("nan"), 0.0) and not error.passes(float("nan"), 1.0)
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy.total(logits, np.array([0, 1, 1])) == 2.0
    assert error.total(np.zeros((2, 3, 2)), np.ones((2, 3, 2))) == 2.0  # per example the mean, summed


def test_does_a_task_load_the_data_its_profile_names():
    loaded = []

    def data(name: str = "small") -> TaskData:
        loaded.append(name)
        x = np.arange(12, dtype=np.float32).reshape(6, 2)
        return TaskData([x], np.zeros(6, np.int64), [x], np.zeros(6, np.int64))

    class Profile:
        data = "large"

    task = TrainingTask(data=data)
    task.load(Profile())
    task.load()
    assert loaded == ["large", "small"]
    probes = task.probes(3, {}, 4)
    assert probes[0].shape == (4, 2)
