"""What training means for an exercise: its data, its loss, its metric and which way the threshold points.

The training check is the same for every exercise (``kit.common.training_check``): the child trains the
submission's model on the training split with the exercise's loss, the parent scores the trained weights on the
held-out split with a forward of its own and compares the exercise's metric with the profile's threshold. A
classifier's metric is accuracy (higher is better); a regression's is the mean squared error (lower is better).
The report, the plots and the messages take their words from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class TaskData:
    """A training split and a held-out split; the held-out targets never leave the grader's process."""

    train_inputs: list[np.ndarray]  # the model's positional inputs, each with the examples along axis 0
    train_targets: np.ndarray
    test_inputs: list[np.ndarray]
    test_targets: np.ndarray
    info: dict = field(default_factory=dict)  # what the model's construction needs (vocabulary size, image shape)

    def __len__(self) -> int:
        return len(self.train_targets)


@dataclass(frozen=True)
class Metric:
    """How trained weights are scored: ``total(outputs, targets)`` sums a batch's per-example scores."""

    name: str  # "test accuracy"
    higher_is_better: bool
    total: Callable[[np.ndarray, np.ndarray], float]
    loss_label: str  # the training curve's axis: "cross-entropy loss"

    def passes(self, value: float, threshold: float) -> bool:
        if not np.isfinite(value):
            return False
        return value >= threshold if self.higher_is_better else value <= threshold

    @property
    def short_of(self) -> str:
        """How a failing value stands to the threshold, in words."""
        return "below" if self.higher_is_better else "above"


def _correct(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float((outputs.argmax(-1) == targets).sum())  # outputs (batch, classes), targets (batch,)


def _squared_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    per_example = ((outputs - targets) ** 2).reshape(len(targets), -1).mean(1)  # (batch, ...) -> (batch,)
    return float(per_example.sum())


METRICS = {
    "accuracy": Metric("test accuracy", True, _correct, "cross-entropy loss"),
    "mse": Metric("test mean squared error", False, _squared_error, "mean squared error"),
}


@dataclass(frozen=True)
class TrainingTask:
    """An exercise's training: ``data(name)`` loads both splits of the data set a profile names
    (``TrainingProfile.data``; "" for the exercise's default; cached by the exercise), ``loss`` names the child's
    loss (``training.LOSSES``), ``metric`` the parent's score (``METRICS``). ``probe_inputs(seed, init_kwargs)``
    gives the few inputs on which the grader finds which forward scores the trained weights; by default, a seeded
    sample of the training inputs. ``examples`` is what one example is called in messages ("images"). ``baseline``,
where given, names a simple predictor whose held-out metric the weights must also beat."""

    data: Callable[..., TaskData]
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    examples: str = "examples"
    probe_inputs: Callable[[int, dict], list[np.ndarray]] | None = None
    # A baseline the trained weights must also beat: TaskData -> (its name, its metric on the held-out split)
    baseline: Callable[[TaskData], tuple[str, float]] | None = None

    @property
    def scoring(self) -> Metric:
        return METRICS[self.metric]

    def load(self, profile=None) -> TaskData:
        """The data of ``profile`` (an ``exercises.TrainingProfile``), or the default data."""
        name = getattr(profile, "data", "")
        return self.data(name) if name else self.data()

    def probes(self, seed: int, init_kwargs: dict, count: int, profile=None) -> list[np.ndarray]:
        if self.probe_inputs is not None:
            return self.probe_inputs(seed, init_kwargs)
        data = self.load(profile)
        picked = np.random.default_rng(seed).choice(len(data), size=min(count, len(data)), replace=False)
        return [np.ascontiguousarray(x[np.sort(picked)]) for x in data.train_inputs]
