"""Judging a composite given its own parts: the grader's float64 reference stands in for a part that failed.

When a part of the submission computes neither the contract nor a known mistake, or crashes, every composite
built from it would lose its values and gradients for that part's fault. Instead, a request that runs a composite
names its failing parts (``Run.stand_ins``). In the child, each instance of such a part's class inside the built
composite (and a function part's name in the submission's namespace, for the request) is replaced by a stand-in
whose forward sends its arguments to the grader (``StandInCall``) and returns what the grader answers
(``StandInAnswer``): the part's float64 reference on the weights the grader drew for it, rounded to float32. Its
backward asks for the reference's vector-Jacobian product the same way. So the composite loses points only for
what it does itself.

No reference code enters the child: only the part's outputs on inputs the child chose, for a part its own checks
have already charged. The grader trusts nothing the child sends: it bounds the calls and their sizes, and judges
the composite's outputs against its own reference as always.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .protocol import message_type

MAX_CALLS = 512  # stand-in calls (forward and backward) one request may make
MAX_ELEMENTS = 1 << 16  # array elements one argument may hold (the grader's inputs hold a few thousand)
MAX_TOTAL_ELEMENTS = 1 << 21  # array elements all the calls of one request may send together
MAX_DIM = 256  # the largest size of one axis of an argument, and the largest integer argument


@message_type
@dataclass
class StandInCall:
    """A stand-in asks the grader: the outputs of ``part`` on these arguments (``backward`` < 0), or the gradients of
    an earlier call's arguments given its outputs' gradients ``grads``."""

    part: str
    path: str = ""  # the sub-module's qualified name in the built module ("" for a function)
    args: list = field(default_factory=list)  # arrays, None, bool, int, float
    kwargs: dict = field(default_factory=dict)
    backward: int = -1  # >= 0: the id of the forward call whose arguments' gradients are asked
    grads: list = field(default_factory=list)  # with backward: per output, its gradient or None


@message_type
@dataclass
class StandInAnswer:
    outputs: list = field(default_factory=list)  # forward: the outputs; backward: per tensor argument, its gradient
    call: int = -1  # forward: this call's id, for its backward
    error: str = ""  # why the grader gives no answer (the stand-in raises it in the child)


@dataclass(frozen=True)
class StandIn:
    """How the grader computes one part in place of the submission's: its contract's forward arguments (to bind a
    call's arguments to the reference's inputs, in order), its contract entries (names relative to the part, as
    the composite's contract holds them under the part's prefix), and ``compute(params, inputs, module)`` -> the
    outputs (a list of float64 tensors; one output is returned bare, several as a tuple). ``module`` is the
    child's description of the instance (its type and hyper-parameters such as ``num_heads``; {} for a
    function): the submission's word, which can only make its own composite's outputs wrong."""

    part: str
    arguments: tuple[str, ...]
    compute: Callable[[dict, list, dict], list]
    entries: tuple[str, ...] = ()  # () for a function part
    defaults: dict = field(default_factory=dict)  # argument -> its default (None where absent)
    within: tuple[str, ...] = ()  # the composites in whose runs it stands in (the parts built from this one)
    name: str = ""  # the class or function name in the submission, where it is not ``part`` (a probe's name)


# ---------------------------------------------------------------------------------------------------------
# In the child

class StandInFailed(RuntimeError):
    """The grader could not stand in for a part (its answer's ``error``)."""


def install(obj, namespace: dict, parts: dict[str, str], ask: Callable) -> contextlib.AbstractContextManager:
    """Replace, for the duration of the block, every instance inside ``obj`` of the classes ``parts`` names (the
    outermost ones) and every function it names in ``namespace`` by a stand-in that asks the grader (``ask``)."""
    import torch

    @contextlib.contextmanager
    def installed():
        saved: dict[str, object] = {}
        try:
            for name, part in parts.items():
                target = namespace.get(name)
                if inspect.isclass(target) and issubclass(target, torch.nn.Module):
                    if isinstance(obj, torch.nn.Module):
                        _replace_modules(obj, target, part, ask)
                elif callable(target):
                    saved[name] = target
                    namespace[name] = _function_stand_in(part, ask)
            yield
        finally:
            namespace.update(saved)

    return installed()


def _replace_modules(obj, cls, part: str, ask: Callable) -> None:
    """Every instance of exactly ``cls`` (a subclass is another part's class, or the submission's own), under each
    name it is registered under, by one stand-in per instance."""
    taken: list[str] = []
    stand_ins: dict[int, object] = {}
    for path, module in list(obj.named_modules(remove_duplicate=False)):
        if not path or type(module) is not cls or any(path.startswith(t + ".") for t in taken):
            continue
        taken.append(path)
        owner_path, _, key = path.rpartition(".")
        owner = obj.get_submodule(owner_path) if owner_path else obj
        owner._modules[key] = stand_ins.setdefault(id(module), _module_stand_in(part, path, ask))


def _module_stand_in(part: str, path: str, ask: Callable):
    import torch

    class StandInModule(torch.nn.Module):
        """The grader's reference in place of this part (see ``autograder.stand_ins``)."""

        def forward(self, *args, **kwargs):
            return _call(ask, part, path, args, kwargs)

    return StandInModule()


def _function_stand_in(part: str, ask: Callable):
    def stand_in(*args, **kwargs):
        return _call(ask, part, "", args, kwargs)

    return stand_in


def _call(ask: Callable, part: str, path: str, args: tuple, kwargs: dict):
    import torch

    values = [*args, *kwargs.values()]
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    outs = _function().apply(_Pending(ask, part, path, args, kwargs), *tensors)
    return outs[0] if len(outs) == 1 else tuple(outs)


class _Pending:
    """A call's data, carried through ``autograd.Function.apply`` (which takes tensors positionally)."""

    def __init__(self, ask, part, path, args, kwargs):
        self.ask, self.part, self.path, self.args, self.kwargs = ask, part, path, args, kwargs


def _sent(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").numpy().copy()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise StandInFailed(f"the grader's stand-in takes tensors, numbers and None; got {type(value).__name__}")


@functools.lru_cache(maxsize=None)
def _function():
    """The autograd function of every stand-in (made on first use: ``torch`` is not imported before)."""
    import torch

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, pending, *tensors):
            answer = pending.ask(StandInCall(part=pending.part, path=pending.path,
                                             args=[_sent(a) for a in pending.args],
                                             kwargs={k: _sent(v) for k, v in pending.kwargs.items()}))
            if answer.error:
                raise StandInFailed(answer.error)
            device = tensors[0].device if tensors else torch.device("cpu")
            ctx.pending, ctx.call, ctx.devices = pending, answer.call, [t.device for t in tensors]
            outs = tuple(torch.from_numpy(np.array(o)).to(device) for o in answer.outputs)
            ctx.mark_non_differentiable(*[o for o in outs if not o.is_floating_point()])
            return outs

        @staticmethod
        def backward(ctx, *grads):
            answer = ctx.pending.ask(StandInCall(part=ctx.pending.part, path=ctx.pending.path, backward=ctx.call,
                                                 grads=[None if g is None else _sent(g) for g in grads]))
            if answer.error:
                raise StandInFailed(answer.error)
            back = list(answer.outputs) + [None] * len(ctx.devices)
            return (None, *[None if g is None else torch.from_numpy(np.array(g)).to(device)
                            for g, device in zip(back, ctx.devices)])

    return Function
