"""Weights the grader draws for a submission's modules, so that no verdict rests on the submission's own.

Before a check compares values, the parent draws every floating parameter of the module it builds (and the
buffers the table names, such as a batch norm's running statistics) and sends them to be loaded with
``load_state_dict``; the references then use the very same values. A submission's own initialisation, a
zeroed projection or a hand-picked constant, never reaches a comparison, and one that ignores the loaded
weights simply fails.

How an entry is drawn depends on the type of the module that owns it: ``DEFAULT_RULES`` below is the one
table; an exercise extends or overrides it with ``WeightRules.extend`` (``Exercise.weight_rules``). Entries no
rule names fall back by kind: a parameter with two or more dimensions like a linear weight, any other
parameter like a bias; a buffer no rule names is sent back unchanged and never used by a reference.
"""

from __future__ import annotations

import fnmatch
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]  # (generator, shape) -> float64 array


def fan_in_normal(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, 1/fan_in), fan_in = the product of all but the first dimension (a linear or convolution weight)."""
    fan_in = max(math.prod(shape[1:]), 1)
    return gen.standard_normal(shape) / math.sqrt(fan_in)


def signed(low: float, high: float) -> Draw:
    """Magnitudes uniform in [low, high] with random signs: biases that are never ~0 and take both signs."""

    def draw(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return gen.uniform(low, high, shape) * gen.choice([-1.0, 1.0], size=shape)

    return draw


def normal(mean: float, std: float) -> Draw:
    def draw(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return mean + std * gen.standard_normal(shape)

    return draw


def uniform(low: float, high: float) -> Draw:
    def draw(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return gen.uniform(low, high, shape)

    return draw


def recurrent_uniform(gates: int) -> Draw:
    """PyTorch's default for recurrent layers: U(-1/sqrt(H), 1/sqrt(H)), H = first dimension / gates (an exercise
    adds the rule of each recurrent type it uses, e.g. ``WeightRule("GRU", "*", recurrent_uniform(3))``)."""

    def draw(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        bound = 1.0 / math.sqrt(max(shape[0] // gates, 1))
        return gen.uniform(-bound, bound, shape)

    return draw


@dataclass(frozen=True)
class WeightRule:
    """Entries named ``pattern`` (fnmatch, e.g. ``weight_ih_l*``) of modules of type ``module_type``."""

    module_type: str
    pattern: str
    draw: Draw


BIAS = signed(0.1, 0.5)
NORM_WEIGHT, NORM_BIAS = normal(1.0, 0.2), normal(0.0, 0.2)


@dataclass(frozen=True)
class WeightRules:
    """An ordered table of rules (the first that matches wins) with fallbacks for entries none names."""

    rules: tuple[WeightRule, ...]
    matrix: Draw = fan_in_normal  # a parameter with two or more dimensions
    vector: Draw = BIAS  # any other parameter

    def extend(self, *rules: WeightRule) -> WeightRules:
        """These rules first, then this table's: how an exercise adds module types or overrides a default."""
        return WeightRules(tuple(rules) + self.rules, self.matrix, self.vector)

    def rule(self, module_type: str, name: str, shape: tuple[int, ...], is_buffer: bool) -> Draw | None:
        """How to draw entry ``name`` of a ``module_type`` module; None: leave it as the submission made it."""
        for r in self.rules:
            if r.module_type == module_type and fnmatch.fnmatchcase(name, r.pattern):
                return r.draw
        if is_buffer:
            return None
        return self.matrix if len(shape) >= 2 else self.vector


DEFAULT_RULES = WeightRules((
    WeightRule("Linear", "weight", fan_in_normal),
    WeightRule("Linear", "bias", BIAS),
    *(WeightRule(conv, "weight", fan_in_normal) for conv in ("Conv1d", "Conv2d", "Conv3d")),
    *(WeightRule(conv, "bias", BIAS) for conv in ("Conv1d", "Conv2d", "Conv3d")),
    WeightRule("LayerNorm", "weight", NORM_WEIGHT),
    WeightRule("LayerNorm", "bias", NORM_BIAS),
    *(WeightRule(bn, "weight", NORM_WEIGHT) for bn in ("BatchNorm1d", "BatchNorm2d")),
    *(WeightRule(bn, "bias", NORM_BIAS) for bn in ("BatchNorm1d", "BatchNorm2d")),
    *(WeightRule(bn, "running_mean", normal(0.0, 0.2)) for bn in ("BatchNorm1d", "BatchNorm2d")),
    *(WeightRule(bn, "running_var", uniform(0.5, 1.5)) for bn in ("BatchNorm1d", "BatchNorm2d")),
    WeightRule("Embedding", "weight", normal(0.0, 1.0)),
))


@dataclass
class DrawnWeights:
    """A state for ``load_state_dict`` and the float64 values the references use."""

    state: dict[str, np.ndarray] = field(default_factory=dict)  # every entry: drawn, or the submission's own
    params: dict[str, torch.Tensor] = field(default_factory=dict)  # the drawn entries only, exactly as sent


def entry_rng(identity: str, name: str, seed: int, salt: int) -> np.random.Generator:
    """The generator of one entry: fixed by what is built, the entry's name, the check's seed and the salt."""
    return np.random.default_rng([zlib.crc32(b"weights"), zlib.crc32(identity.encode()), zlib.crc32(name.encode()),
                                  seed, salt])


def draw_weights(metadata, rules: WeightRules, identity: str, seed: int, salt: int) -> DrawnWeights:
    """Draw the floating entries of the state described by ``metadata`` (a reply to a ``Run`` with call=False).

    The reply only tells names, shapes, dtypes, buffers and module types; its values are never used except
    to send back entries that no rule draws (integer counters, buffers the table does not know).
    """
    drawn = DrawnWeights()
    buffers = set(metadata.buffers)
    aliases = getattr(metadata, "aliases", None) or {}
    for name, value in metadata.params.items():
        canonical = aliases.get(name) if isinstance(aliases.get(name), str) else None
        if canonical in drawn.state:  # the same tensor under another name: the same values
            drawn.state[name] = drawn.state[canonical]
            if canonical in drawn.params:
                drawn.params[name] = drawn.params[canonical]
            continue
        arr = np.asarray(value)
        owner, _, local = name.rpartition(".")
        module = metadata.modules.get(owner)
        module_type = str(module.get("type", "")) if isinstance(module, dict) else ""
        draw = rules.rule(module_type, local, arr.shape, name in buffers) if arr.dtype.kind == "f" else None
        if draw is None:
            drawn.state[name] = arr
            continue
        values = draw(entry_rng(identity, name, seed, salt), arr.shape).astype(arr.dtype)
        drawn.state[name] = values
        drawn.params[name] = torch.from_numpy(values.astype(np.float64))
    return drawn
