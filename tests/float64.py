"""Comparing float64 outputs in the reference tests: a module's output against an independent reference."""

from __future__ import annotations

import torch

TOL = {"rtol": 1e-10, "atol": 1e-10}  # float64 on both sides: only summation order differs


def as_tuple(out) -> tuple:
    """A tensor, or a tuple or list whose items are tensors or lists of tensors, as one flat tuple."""
    if isinstance(out, torch.Tensor):
        return (out,)
    flat = []
    for item in out:
        flat.extend(item if isinstance(item, list) else [item])
    return tuple(flat)


def assert_same(got, expected):
    got, expected = as_tuple(got), as_tuple(expected)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == torch.float64 and b.dtype == torch.float64
        torch.testing.assert_close(a, b, **TOL)


def differ(a, b) -> bool:
    """Whether two outputs differ beyond rounding (in structure, shape or value)."""
    a, b = as_tuple(a), as_tuple(b)
    return len(a) != len(b) or any(x.shape != y.shape or not torch.allclose(x, y, rtol=1e-6, atol=1e-6)
                                   for x, y in zip(a, b))
