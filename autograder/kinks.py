"""How close a float64 forward comes to a kink: a point where its derivative jumps (a ReLU's zero, a maximum's
tie). A submission computes in float32; within its rounding of a kink it may take the other branch, and then
its gradients differ from the reference's by a whole branch although both are right. A gradient check draws
again where the reference passes that close (``kit.common.gradient_check``), so that no verdict depends on it.

Every ReLU, clamp, pairwise maximum and max reduction the reference computes is measured, however it is
written (a ``TorchDispatchMode`` sees the ATen operations): reference authors need do nothing, except mark a
maximum that only steadies a softmax (``with smooth():``), whose ties change no derivative. Pooling is measured
when written out as maxima, as a reference writes it (``F.max_pool2d`` is not measured).
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
_SMOOTH = contextvars.ContextVar("kinks_smooth", default=False)


@contextlib.contextmanager
def smooth():
    """Inside: maxima are not measured (a softmax's shift by its maximum: the result does not depend on it)."""
    token = _SMOOTH.set(True)
    try:
        yield
    finally:
        _SMOOTH.reset(token)


class KinkMargin(TorchDispatchMode):
    """Records ``margin``: the smallest distance from a kink, relative to the operands' magnitude, over every
    floating ReLU, clamp, pairwise maximum or minimum and max or min reduction run inside it."""

    def __init__(self):
        super().__init__()
        self.margin = math.inf

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not _SMOOTH.get():  # before an in-place op
            self.margin = min(self.margin, _margin(func.overloadpacket, x, args, kwargs))
        return func(*args, **kwargs)


def _margin(packet, x: torch.Tensor, args: tuple, kwargs: dict) -> float:
    if packet in (aten.relu, aten.relu_):
        return _bound_margin(x, 0.0)
    if packet in (aten.clamp, aten.clamp_):
        low = args[1] if len(args) > 1 else kwargs.get("min")
        high = args[2] if len(args) > 2 else kwargs.get("max")
        return min(_bound_margin(x, low), _bound_margin(x, high))
    if packet in (aten.clamp_min, aten.clamp_max, aten.threshold):
        return _bound_margin(x, args[1] if len(args) > 1 else None)
    other = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("dim"))
    if packet in (aten.maximum, aten.minimum, aten.max, aten.min) and isinstance(other, torch.Tensor):
        a, b = torch.broadcast_tensors(x, other)
        differ = a != b
        return _relative((a - b)[differ], torch.cat([a[differ], b[differ]]))
    if packet in (aten.amax, aten.amin, aten.max, aten.min):  # a reduction, over ``dim`` or everything
        return _tie_margin(x if packet in (aten.amax, aten.max) else -x, other)
    return math.inf


def _relative(gap: torch.Tensor, scale: torch.Tensor) -> float:
    """The smallest finite gap, relative to the largest finite magnitude of the operands."""
    gap, scale = gap.abs(), scale.abs()
    gap, scale = gap[torch.isfinite(gap)], scale[torch.isfinite(scale)]
    if not gap.numel() or not scale.numel() or float(scale.max()) == 0.0:
        return math.inf
    return float(gap.min()) / float(scale.max())


def _bound_margin(x: torch.Tensor, bound) -> float:
    """The closest approach to a bound, exact hits left out: an input exactly at a ReLU's zero (a zero input
    times any weight) is exactly there in float32 too, and takes the same branch."""
    if bound is None or isinstance(bound, torch.Tensor):
        return math.inf
    gap = x - bound
    return _relative(gap[gap != 0], x)


def _tie_margin(x: torch.Tensor, dims) -> float:
    """The gap between each group's maximum and its runner-up. Exact ties are left out: clamped zeros tie
    exactly in float32 too, and no gradient reaches them."""
    if not x.dim():
        return math.inf
    dims = list(range(x.dim())) if dims is None or dims == [] else [int(d) % x.dim() for d in (
        [dims] if isinstance(dims, int) else dims)]
    top = x.amax(dim=dims, keepdim=True)
    runner_up = torch.where(x < top, x, torch.full_like(x, -math.inf)).amax(dim=dims, keepdim=True)
    return _relative(top - runner_up, x)
