"""Numeric comparison of a submission's outputs with float64 references, and naming of known mistakes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from .checks import CheckFailure

# float32 outputs of small layers against a float64 reference: errors are ~1e-6; 1e-4 leaves room for
# other summation orders (einsum, loops over heads) while every known mistake is off by far more.
ATOL = 1e-4
RTOL = 1e-4


def as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x)).to(torch.float64)


def max_error(got, expected) -> tuple[float, tuple]:
    got, expected = as64(got), as64(expected)
    err = (got - expected).abs()
    # NaN anywhere counts as an infinite error at its position.
    err = torch.where(torch.isnan(err) | torch.isnan(expected) ^ torch.isnan(got), torch.full_like(err, float("inf")), err)
    flat = int(torch.argmax(err).item()) if err.numel() else 0
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(err.shape))) if err.numel() else ()
    return (float(err.max()) if err.numel() else 0.0), index


def close(got, expected, atol: float = ATOL, rtol: float = RTOL) -> bool:
    got, expected = as64(got), as64(expected)
    if got.shape != expected.shape:
        return False
    if torch.isnan(expected).any() or torch.isnan(got).any():
        return False
    return bool(((got - expected).abs() <= atol + rtol * expected.abs()).all())


def require_shape(what: str, got, expected_shape: tuple) -> None:
    shape = tuple(np.asarray(got).shape) if got is not None else None
    if shape != tuple(expected_shape):
        raise CheckFailure(f"{what} has shape {shape}; expected {tuple(expected_shape)}")


def require_finite(what: str, got) -> None:
    arr = np.asarray(got)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise CheckFailure(f"{what} contains {bad} values")


@dataclass
class Variant:
    """A known mistake (or several): the hint that names it, and what a float64 reference with it gives."""

    hint: str
    outputs: list
    mistakes: int = 1


def variant_grid(compute, switches: dict, max_mistakes: int = 2) -> list[Variant]:
    """Known mistakes and their combinations (up to ``max_mistakes`` at once).

    ``compute(**kwargs)`` returns the reference's outputs; ``switches`` maps a keyword of ``compute`` to the
    wrong values it can take, each with its hint: ``{"softmax_dim": [(-2, "softmax over the wrong axis")]}``.
    """
    names = list(switches)
    out = []
    for r in range(1, max_mistakes + 1):
        for combo in itertools.combinations(names, r):
            for choice in itertools.product(*(switches[n] for n in combo)):
                kwargs = {n: value for n, (value, _) in zip(combo, choice)}
                result = compute(**kwargs)
                outputs = list(result) if isinstance(result, (tuple, list)) else [result]
                out.append(Variant("; and ".join(h for _, h in choice), outputs, mistakes=r))
    return out


def require_close(what: str, got: list, expected: list, variants: list[Variant] = (), context: str = "") -> None:
    """Fail unless every output matches the reference; if a known mistake's outputs match, name it."""
    for g, e in zip(got, expected):
        require_shape(what, g, tuple(np.asarray(e).shape))
    if all(close(g, e) for g, e in zip(got, expected)):
        return
    worst = None
    for i, (g, e) in enumerate(zip(got, expected)):
        err, index = max_error(g, e)
        if worst is None or err > worst[0]:
            worst = (err, index, i, g, e)
    err, index, i, g, e = worst
    g_val = float(np.asarray(g)[index]) if index else float(np.asarray(g))
    e_val = float(np.asarray(e)[index]) if index else float(np.asarray(e))
    names = ["output", "weights", "third output"]
    which = names[i] if len(got) > 1 else "output"
    message = (
        f"{what}: {which} differs from the reference by up to {err:.3g} (tolerance {ATOL:g} + {RTOL:g}*|ref|), "
        f"e.g. at index {index}: got {g_val:.6g}, expected {e_val:.6g}{context}"
    )
    matched = [v for v in variants if len(v.outputs) == len(got) and all(close(g, o) for g, o in zip(got, v.outputs))]
    fewest = min((v.mistakes for v in matched), default=0)
    hints = list(dict.fromkeys(v.hint for v in matched if v.mistakes == fewest))
    raise CheckFailure(message, hint=" | or: ".join(hints) if hints else None)
