"""Exercises: each is a specification (contract, checks, training task and profiles) plus a reference in
``solutions/``.

Adding an exercise means adding a module here that defines ``EXERCISE``; ``registry`` finds it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..forbidden import ForbiddenSet
    from ..tasks import TrainingTask
    from ..weights import WeightRules


@dataclass(frozen=True)
class TrainingProfile:
    """A fixed-seed training budget run inside the grader, with the score it must reach.

    ``threshold`` is calibrated from the reference solution (``bench/calibrate_training.py``): the reference's
    worst score over 20 seeds, with a margin (an accuracy must not fall below it, an error must not exceed it).
    """

    name: str
    model_kwargs: dict
    epochs: int
    batch_size: int
    lr: float
    threshold: float
    timeout: float
    seed: int = 0
    data: str = ""  # the data set this profile trains on (``TrainingTask.data``); "": the exercise's default
    schedule: str = "constant"  # the learning rate over the run: constant or "linear" decay to 0 (``training.SCHEDULES``)


@dataclass(frozen=True)
class Exercise:
    """An exercise as the engine sees it: everything exercise-specific is declared here, nowhere in the engine."""

    name: str
    title: str
    number: int  # the course's system number: the order of the demo, the command line and the tests
    parts: tuple[str, ...]  # the module-level names a submission must define
    checks: tuple = ()
    solution: str = ""  # path of the reference, relative to the repository root
    notebook: str = ""  # path of the nbgrader source notebook, relative to the repository root
    demo_sample: str = ""  # path of the flawed sample the demo grades beside the reference
    profiles: dict = field(default_factory=dict)  # "cpu" / "gpu" -> TrainingProfile
    task: TrainingTask | None = None  # what training means: data, loss, metric
    training_kwargs: Callable | None = None  # training_kwargs(profile) -> the trained part's constructor arguments
    # (which part is trained, and how the grader scores it, is the hidden module's ``TRAINABLE``)
    weight_rules: WeightRules | None = None  # how the grader draws weights; None: weights.DEFAULT_RULES
    forbidden: ForbiddenSet | None = None  # the built-ins students write themselves; None: forbidden.ATTENTION_BUILTINS
    probes: dict = field(default_factory=dict)  # part -> probe(ctx): what the part computes (``Context.function``)
    labelled_data: Callable[[], list] | None = None  # () -> paths of labelled data the confined child must not see
    contracts: tuple = ()  # contract.Part of each part: the notebook's table and the interface checks
    # An exercise that trains more than one part: part -> "cpu" / "gpu" -> TrainingProfile of each further part
    # (``profiles`` are the first trained part's; the hidden module's ``TRAINABLES`` says how each is scored).
    part_profiles: dict = field(default_factory=dict)

    def check(self, name: str):
        return next(c for c in self.checks if c.name == name)

    def profiles_of(self, part: str | None = None) -> dict:
        """"cpu" / "gpu" -> the TrainingProfile that trains ``part`` (None: the first trained part)."""
        return self.part_profiles.get(part, self.profiles) if part else self.profiles


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Exercise]:
    """Every exercise, discovered once: each module of this package that defines ``EXERCISE``, by ``number``.

    The demo, the command line's choices, the nbgrader tests and the student wheel iterate over this.
    """
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.endswith(("_hidden", "_reference")) or info.name.startswith("_"):
            continue  # the grader's hidden checks and references (absent from a student install)
        exercise = getattr(importlib.import_module(f"{__name__}.{info.name}"), "EXERCISE", None)
        if isinstance(exercise, Exercise):
            found.append(exercise)
    return {e.name: e for e in sorted(found, key=lambda e: e.number)}


def get_exercise(name: str) -> Exercise:
    exercises = registry()
    if name not in exercises:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(exercises)}")
    return exercises[name]


def names() -> list[str]:
    return list(registry())


def labelled_data_paths() -> list[str]:
    """What every exercise declares as labelled data on this machine: hidden from the confined child."""
    paths = []
    for exercise in registry().values():
        if exercise.labelled_data is not None:
            paths += [str(p) for p in exercise.labelled_data()]
    return sorted(set(paths))
