"""Numeric comparison of a submission's outputs with float64 references, and naming of known mistakes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from .checks import CheckFailure

# float32 outputs of small layers against a float64 reference: errors are ~1e-6; 1e-4 leaves room for
# other summation orders (einsum, loops over heads) while every known mistake is off by far more.
ATOL = 1e-4
RTOL = 1e-4

# Gradients (float32 back-propagation against float64 autograd): an element may be off by GRAD_ATOL times the
# largest reference gradient of its array plus GRAD_RTOL times its own size. Rounding gives ~1e-6 of the
# array's scale; a detached path, a scaled hook or a wrong formula is off by a large fraction of it.
GRAD_ATOL = 1e-4
GRAD_RTOL = 1e-3
# A reference gradient below ZERO_GRADIENT times the check's largest is zero in exact arithmetic (the key
# projection's bias in attention: softmax ignores a constant per row). There the submission may return None,
# zeros, or rounding noise up to GRAD_ATOL times the check's largest gradient.
ZERO_GRADIENT = 1e-9


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
    nan = torch.isnan(expected)
    if not torch.equal(nan, torch.isnan(got)):
        return False  # NaN where the reference has none (or the reverse); the contract's never has any
    got, expected = got[~nan], expected[~nan]  # a known mistake's NaN (softmax over an all-masked row) must coincide
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
    """A known mistake (or several): the hint that names it, and what a float64 reference with it gives.

    ``switches`` are the keyword arguments that switch the mistakes on in the reference; the contract itself
    is the variant with no switches and no mistakes (``contract``).
    """

    hint: str
    outputs: list
    mistakes: int = 1
    switches: dict = field(default_factory=dict)


def contract(outputs: list) -> Variant:
    """The contract's own function, as a variant without mistakes."""
    return Variant(hint="", outputs=list(outputs), mistakes=0)


# A reference that needs a parameter the submission lacks raises KeyError; one given a parameter of another size
# than its other sizes imply raises RuntimeError or IndexError: that function cannot be computed for it.
UNCOMPUTABLE = (KeyError, RuntimeError, IndexError)


def variant_grid(compute, switches: dict, max_mistakes: int = 2, base: dict | None = None) -> list[Variant]:
    """Known mistakes and their combinations (up to ``max_mistakes`` at once), on top of ``base``.

    ``compute(**kwargs)`` returns the reference's outputs; ``switches`` maps a keyword of ``compute`` to the
    wrong values it can take, each with its hint: ``{"softmax_dim": [(-2, "softmax over the wrong axis")]}``.
    ``base`` holds switches that are already on (what the sub-parts compute, see ``common.judge``): a variant
    adds its own mistakes to them, and its hint names only its own. A variant that cannot be computed for the
    submission's parameters (``UNCOMPUTABLE``) is left out.
    """
    base = dict(base or {})
    names = list(switches)
    out = []
    for r in range(1, max_mistakes + 1):
        for combo in itertools.combinations(names, r):
            for choice in itertools.product(*(switches[n] for n in combo)):
                kwargs = {n: value for n, (value, _) in zip(combo, choice)}
                if all(base.get(n, _UNSET) == v for n, v in kwargs.items()):
                    continue  # nothing of its own
                try:
                    result = compute(**{**base, **kwargs})
                except UNCOMPUTABLE:  # needs what the submission lacks
                    continue
                outputs = list(result) if isinstance(result, (tuple, list)) else [result]
                out.append(Variant("; and ".join(h for _, h in choice), outputs, mistakes=r,
                                   switches={**base, **kwargs}))
    return out


_UNSET = object()


def _matches(got: list, outputs: list) -> bool:
    return (len(outputs) == len(got) and all(np.shape(g) == tuple(np.shape(o)) for g, o in zip(got, outputs))
            and all(close(g, o) for g, o in zip(got, outputs)))


def matching(got: list, variants) -> list[Variant]:
    """The variants whose outputs all match ``got``, keeping only those with the fewest mistakes."""
    matched = [v for v in variants if _matches(got, v.outputs)]
    fewest = min((v.mistakes for v in matched), default=0)
    return [v for v in matched if v.mistakes == fewest]


def identify(got: list, expected: list | None, variants) -> Variant | None:
    """Which function the submission computes: the contract (``expected``) or a known mistake; None for neither.

    Of the candidates within tolerance the closest wins: a mistake whose effect on these inputs is below the
    tolerance is still told apart from the contract by its rounding-level match. Candidates about as close as
    the closest (10 times its error) are equivalent here: the fewest mistakes win. ``expected`` None: the
    contract cannot be computed (a parameter it needs is missing); only the variants are candidates.
    """
    first = [contract(expected)] if expected is not None else []
    candidates = [v for v in [*first, *variants] if _matches(got, v.outputs)]
    scored = [(max((max_error(g, o)[0] for g, o in zip(got, v.outputs)), default=0.0), v) for v in candidates]
    if not scored:
        return None
    best = min(err for err, _ in scored)
    near = [v for err, v in scored if err <= max(10 * best, 1e-7)]
    return min(near, key=lambda v: v.mistakes)


def require_close(what: str, got: list, expected: list, variants: list[Variant] = (), context: str = "",
                  nan_causes: str = "") -> None:
    """Fail unless every output matches the reference; if a known mistake's outputs match, name it.
    ``nan_causes``: what the part's NaN or inf most likely comes from, where the reference has none."""
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
    bad = ~np.isfinite(np.asarray(g, dtype=np.float64)) & np.isfinite(np.asarray(e, dtype=np.float64))
    if bad.any():
        kind = "NaN" if np.isnan(np.asarray(g, dtype=np.float64)[bad]).any() else "inf"
        context = (f"; it contains {kind} values where the reference has none "
                   f"({nan_causes or 'a division by zero or an overflow?'}){context}")
    message = (
        f"{what}: {which} differs from the reference by up to {err:.3g} (tolerance {ATOL:g} + {RTOL:g}*|ref|), "
        f"e.g. at index {index}: got {g_val:.6g}, expected {e_val:.6g}{context}"
    )
    hints = list(dict.fromkeys(v.hint for v in matching(got, variants)))
    raise CheckFailure(message, hint=" | or: ".join(hints) if hints else None)


def largest(arrays) -> float:
    """The largest absolute value over some arrays (None entries ignored): a check's scale of gradients."""
    return max((float(as64(a).abs().max()) for a in arrays if a is not None and np.size(a)), default=0.0)


def gradient_problem(name: str, got, expected, scale: float) -> str | None:
    """What is wrong with the submission's gradient of ``name``; None when it matches the reference's.

    ``expected``: the float64 reference's gradient (None where the reference does not use ``name``);
    ``scale``: the largest reference gradient of the whole check, against which "zero" is judged.
    """
    exact_zero = expected is None or largest([expected]) <= ZERO_GRADIENT * scale
    if got is None:
        return None if exact_zero else f"no gradient reaches {name} (detached, computed under no_grad, or unused?)"
    got = as64(got)
    if expected is not None and tuple(got.shape) != tuple(expected.shape):
        return f"the gradient of {name} has shape {tuple(got.shape)}; expected {tuple(expected.shape)}"
    if expected is not None and torch.isnan(as64(expected)).any() and torch.equal(torch.isnan(got), torch.isnan(as64(expected))):
        keep = ~torch.isnan(got)  # a known mistake's NaN gradients, where the reference has them too
        got, expected = got[keep], as64(expected)[keep]
    if not torch.isfinite(got).all():
        return f"the gradient of {name} contains {'NaN' if torch.isnan(got).any() else 'inf'} values"
    if exact_zero:
        worst = largest([got])
        if worst <= GRAD_ATOL * scale:
            return None
        return f"the gradient of {name} should be 0 (it does not change the output) but reaches {worst:.3g}"
    expected = as64(expected)
    if _gradient_close(got, expected):
        return None
    err, index = max_error(got, expected)
    message = (f"the gradient of {name} differs from the reference by up to {err:.3g} (tolerance {GRAD_ATOL:g}"
               f"*max|ref| + {GRAD_RTOL:g}*|ref|), e.g. at index {index}: got {float(got[index]):.6g}, expected "
               f"{float(expected[index]):.6g}")
    factor = float((got * expected).sum() / (expected * expected).sum())
    if abs(factor - 1.0) > 1e-2 and _gradient_close(got, factor * expected):
        message += f"; it is {factor:.3g} times the true gradient"
    return message


def _gradient_close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    if expected.numel() == 0:
        return True
    tolerance = GRAD_ATOL * expected.abs().max() + GRAD_RTOL * expected.abs()
    return bool(((got - expected).abs() <= tolerance).all())
