"""Does the kink meter see how close a float64 forward passes to a ReLU's zero or a maximum's tie, however the
forward is written, and leave out what changes no derivative?"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.kinks import KinkMargin, smooth

X = torch.tensor([[1.0, -2.0, 4e-9, 2.0]], dtype=torch.float64)  # 4e-9 from a ReLU's zero: 2e-9 relative to 2


def margin(compute) -> float:
    with KinkMargin() as kinks:
        compute()
    return kinks.margin


@pytest.mark.parametrize("relu", [torch.relu, F.relu, lambda x: x.clamp(min=0.0), lambda x: x.clamp_min(0.0),
                                  lambda x: torch.maximum(x, torch.zeros_like(x)), lambda x: x.relu_()],
                         ids=["torch.relu", "F.relu", "clamp", "clamp_min", "maximum", "relu_"])
def test_is_a_relu_input_near_zero_measured_however_it_is_written(relu):
    assert margin(lambda: relu(X.clone())) == pytest.approx(2e-9)


@pytest.mark.parametrize("reduce", [lambda x: x.amax(-1), lambda x: x.max(-1).values, lambda x: x.max(),
                                    lambda x: x.amax((0, 1)), lambda x: -(-x).amin(-1), lambda x: -(-x).min(-1).values],
                         ids=["amax", "max.dim", "max", "amax over dims", "amin", "min.dim"])
def test_is_a_near_tie_of_a_maximum_or_minimum_measured(reduce):
    x = torch.tensor([[3.0, 3.0 + 3e-9, -1.0, 0.5]], dtype=torch.float64)  # 3e-9 apart: 1e-9 relative to 3
    assert margin(lambda: reduce(x)) == pytest.approx(1e-9, rel=1e-3)


def test_are_exact_ties_and_smooth_maxima_left_out():
    zeros = torch.relu(torch.tensor([[-1.0, -2.0, -0.5, -3.0]], dtype=torch.float64))  # clamped zeros tie exactly
    assert margin(lambda: zeros.amax(-1)) == math.inf
    near = torch.tensor([[1.0, 1.0 + 1e-12]], dtype=torch.float64)
    with KinkMargin() as kinks:
        with smooth():
            near.amax(-1)  # a softmax's shift: its ties change no derivative
    assert kinks.margin == math.inf
    assert margin(lambda: near.amax(-1)) < 1e-11  # the same maximum, outside smooth()


def test_does_a_forward_far_from_kinks_measure_its_distance():
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    assert margin(lambda: torch.relu(x) + torch.tanh(x).exp()) == pytest.approx(0.25)
    assert margin(lambda: torch.tanh(x).exp()) == math.inf  # nothing with a kink
