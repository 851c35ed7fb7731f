"""Exercises: each is a specification (contract, checks, training profiles) plus a reference in ``solutions/``.

Adding an exercise means adding a module here that builds an ``Exercise`` and registering it below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..weights import WeightRules


@dataclass(frozen=True)
class TrainingProfile:
    """A fixed-seed training budget run inside the grader, with the accuracy it must reach.

    ``threshold`` is calibrated from the reference solution (``bench/calibrate_training.py``): the lowest
    accuracy of the reference over 20 seeds, less a margin.
    """

    name: str
    model_kwargs: dict
    epochs: int
    batch_size: int
    lr: float
    threshold: float
    timeout: float
    seed: int = 0


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    parts: tuple[str, ...]  # the module-level names a submission must define
    checks: tuple = ()
    solution: str = ""  # path of the reference, relative to the repository root
    notebook: str = ""  # path of the nbgrader source notebook, relative to the repository root
    profiles: dict = field(default_factory=dict)  # "cpu" / "gpu" -> TrainingProfile
    classifier: str = ""  # the part the training check trains
    training_kwargs: Callable | None = None  # training_kwargs(profile) -> the classifier's constructor arguments
    weight_rules: WeightRules | None = None  # how the grader draws weights; None: weights.DEFAULT_RULES
    forbidden: tuple | None = None  # the built-ins students must write themselves; None: forbidden.DEFAULT_FORBIDDEN
    probes: dict = field(default_factory=dict)  # part -> probe(ctx): what the part computes (``Context.function``)

    def check(self, name: str):
        return next(c for c in self.checks if c.name == name)


def get_exercise(name: str) -> Exercise:
    if name == "transformer":
        from .transformer import EXERCISE
    elif name == "attention_rnn":
        from .attention_rnn import EXERCISE
    else:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(names())}")
    return EXERCISE


def names() -> list[str]:
    return ["transformer", "attention_rnn"]
