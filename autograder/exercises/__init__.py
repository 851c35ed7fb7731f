"""Exercises: each is a package ``autograder/exercises/<name>/`` holding its specification (contract, public
checks, training task and profiles) in ``__init__.py``, its hidden checks in ``hidden.py`` and its float64
reference in ``reference.py``, plus a reference solution in ``solutions/<name>.py``.

Adding an exercise means adding such a package, whose ``__init__`` defines ``EXERCISE``; ``registry`` finds it
(``README.md`` beside this file lists every step).
"""

from __future__ import annotations

import functools
import dataclasses
import importlib
import importlib.util
import os
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..checks import CheckSet

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
    timeout: float = 300.0  # seconds for the training request (scaled by the grading's timeout factor)
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
    # part -> stand_ins.StandIn: how the grader computes that part in place of a failing one inside a composite
    # (the hidden module's optional ``STAND_INS``)
    stand_ins: dict = field(default_factory=dict)
    labelled_data: Callable[[], list] | None = None  # () -> paths of labelled data the confined child must not see
    contracts: tuple = ()  # contract.Part of each part: the notebook's table and the interface checks
    mistakes: tuple = ()  # mistakes.Mistake: every known mistake, declared once (the exercise's mistakes.py)
    # An exercise that trains more than one part: part -> "cpu" / "gpu" -> TrainingProfile of each further part
    # (``profiles`` are the first trained part's; the hidden module's ``TRAINABLES`` says how each is scored).
    part_profiles: dict = field(default_factory=dict)

    def check(self, name: str):
        return next(c for c in self.checks if c.name == name)

    def profiles_of(self, part: str | None = None) -> dict:
        """"cpu" / "gpu" -> the TrainingProfile that trains ``part`` (None: the first trained part)."""
        return self.part_profiles.get(part, self.profiles) if part else self.profiles


# The environment variable naming further exercise modules to register, for a process the tests start (the command
# line): comma-separated importable module names, each defining ``EXERCISE`` like a package of this one.
EXERCISE_MODULES_VARIABLE = "AUTOGRADER_EXERCISE_MODULES"
_registered: dict[str, Exercise] = {}  # added in this process by ``register``


class DeclarationError(Exception):
    """An exercise's declaration is incomplete or inconsistent: raised when it is registered, naming what is wrong."""


def declaration_problems(exercise: Exercise) -> list[str]:
    """What is wrong with ``exercise``'s declaration (empty when nothing is)."""
    problems = []
    parts = set(exercise.parts)
    names = [c.name for c in exercise.checks]
    problems += [f"check {n!r} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"check {c.name!r} is of part {c.part!r}, which is not in parts" for c in exercise.checks
                 if c.part not in parts]
    problems += [f"contract {c.name!r} is not in parts" for c in exercise.contracts if c.name not in parts]
    problems += [f"stand-in for {n!r}, which is neither in parts nor probed" for n in exercise.stand_ins
                 if n not in parts and n not in exercise.probes]
    problems += [f"stand-in {n!r} is declared for part {s.part!r}" for n, s in exercise.stand_ins.items()
                 if getattr(s, "part", n) != n]
    problems += [f"mistake {m.name!r} is of part {m.part!r}, which is not in parts" for m in exercise.mistakes
                 if m.part not in parts]
    declared = [m.name for m in exercise.mistakes]
    problems += [f"mistake {n!r} is declared twice" for n in sorted({n for n in declared if declared.count(n) > 1})]
    if exercise.task is not None:
        if set(exercise.profiles) != {"cpu", "gpu"}:
            problems.append(f"a training task needs profiles 'cpu' and 'gpu' (it has {sorted(exercise.profiles)})")
        if exercise.training_kwargs is None:
            problems.append("a training task needs training_kwargs")
    elif exercise.profiles or exercise.part_profiles:
        problems.append("training profiles without a training task")
    return problems


def validated(exercise: Exercise) -> Exercise:
    """``exercise``, once its declaration is found complete and consistent (``DeclarationError`` otherwise)."""
    problems = declaration_problems(exercise)
    if problems:
        raise DeclarationError(f"exercise {exercise.name!r}: " + "; ".join(problems))
    return exercise


def completed(exercise: Exercise, module: str) -> Exercise:
    """``exercise`` (declared in ``module``) with what its hidden module adds, where that is installed (the
    grader's install, not a student's): the hidden checks it declares into the exercise's ``CheckSet``, and its
    ``PROBES`` and ``STAND_INS``. The engine imports ``<module>.hidden`` once the public module is loaded, so no statement order in
    the public module carries it."""
    probes, stand_ins = dict(exercise.probes), dict(exercise.stand_ins)
    package = hasattr(importlib.import_module(module), "__path__")  # a plain module has no hidden.py beside it
    if package and importlib.util.find_spec(f"{module}.hidden") is not None:
        hidden = importlib.import_module(f"{module}.hidden")
        if not isinstance(getattr(hidden, "PROBES", None), dict):
            raise DeclarationError(f"{module}.hidden must define PROBES, a dict: part -> probe(ctx)")
        probes = {**hidden.PROBES, **probes}
        stand_ins = {**getattr(hidden, "STAND_INS", {}), **stand_ins}
    checks = exercise.checks.ordered() if isinstance(exercise.checks, CheckSet) else tuple(exercise.checks)
    return validated(dataclasses.replace(exercise, checks=checks, probes=probes, stand_ins=stand_ins))


def _loaded(module: str, where: str) -> Exercise:
    exercise = getattr(importlib.import_module(module), "EXERCISE", None)
    if not isinstance(exercise, Exercise):
        raise DeclarationError(f"{where} defines no EXERCISE")
    return completed(exercise, module)


@functools.lru_cache(maxsize=1)
def _discovered() -> dict[str, Exercise]:
    """The packages of this one that define ``EXERCISE``, and the modules ``AUTOGRADER_EXERCISE_MODULES`` names."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue  # each exercise is a package; its hidden checks and reference are modules inside it
        exercise = _loaded(f"{__name__}.{info.name}", f"autograder/exercises/{info.name}/__init__.py")
        if exercise.name != info.name:
            raise DeclarationError(f"autograder/exercises/{info.name}/ declares the exercise {exercise.name!r}: a "
                                   "package is named as its exercise")
        found.append(exercise)
    for module in filter(None, (m.strip() for m in os.environ.get(EXERCISE_MODULES_VARIABLE, "").split(","))):
        exercise = _loaded(module, f"{module} (named by {EXERCISE_MODULES_VARIABLE})")
        if any(e.name == exercise.name for e in found):
            raise ValueError(f"{EXERCISE_MODULES_VARIABLE} names {module}, whose exercise {exercise.name!r} is "
                             "already registered")
        found.append(exercise)
    numbers = [e.number for e in found]
    clashes = sorted(e.name for e in found if numbers.count(e.number) > 1)
    if clashes:
        raise DeclarationError(f"exercises {', '.join(clashes)} share a number: each orders the course uniquely")
    return {e.name: e for e in sorted(found, key=lambda e: e.number)}


def registry() -> dict[str, Exercise]:
    """Every exercise, by ``number``: each package of this one that defines ``EXERCISE`` (discovered once), and
    those registered outside it, for the tests' fixture exercise (``tests/fixture_exercise``).

    The demo, the command line's choices, the nbgrader tests and the student wheel iterate over this.

    Registering outside this package, for tests only:

    - in a process: ``register(exercise)``, undone by ``unregister(name)``;
    - in a process started for the purpose (the command line run by a test): the environment variable
      ``AUTOGRADER_EXERCISE_MODULES``, comma-separated importable module names (e.g. ``fixture_exercise``, with
      ``tests/`` on ``PYTHONPATH``), each defining ``EXERCISE``; read once, at the first call.

    Only the grader's own process reads either. The confined child that runs a submission never imports this
    package (``runner.CHILD_MODULES``) and starts with a cleared environment, so a submission reaches neither.
    """
    found = _discovered()
    if not _registered:
        return found
    return {e.name: e for e in sorted([*found.values(), *_registered.values()], key=lambda e: e.number)}


def register(exercise: Exercise, module: str) -> Exercise:
    """Add ``exercise`` to ``registry()`` in this process (the tests' fixture exercise); ``unregister`` undoes it.
    A name already registered, by discovery or by an earlier call, is refused."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"register takes an Exercise, not {type(exercise).__name__}")
    if exercise.name in _discovered() or exercise.name in _registered:
        raise ValueError(f"an exercise named {exercise.name!r} is already registered")
    if any(e.number == exercise.number for e in [*_discovered().values(), *_registered.values()]):
        raise DeclarationError(f"exercise {exercise.name!r}: number {exercise.number} is taken")
    _registered[exercise.name] = completed(exercise, module)
    return _registered[exercise.name]


def unregister(name: str) -> None:
    """Take an exercise added by ``register`` out of ``registry()`` again (no error when it is not there)."""
    _registered.pop(name, None)


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
