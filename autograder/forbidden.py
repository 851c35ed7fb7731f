"""Detect calls to the built-ins an exercise asks students to write themselves.

Three nets, so that an alias, ``getattr`` or a call through ``torch.nn.functional``'s internals is still seen:
a ``TorchFunctionMode`` sees Python-level torch API calls by their function (not their name), a
``TorchDispatchMode`` sees the ATen operators that any route ends in, and a scan of the model's sub-modules
finds built-in layers such as ``nn.MultiheadAttention``.

These nets run inside the child process, beside the submission, which could switch them off; the parent
therefore also reads the submission's source (``autograder.forbidden_source``). Both take the forbidden
built-ins from the tables below: ``DEFAULT_FORBIDDEN`` is their static form (one ``Forbidden`` per name).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

# Python-level functions, by qualified name, and what to call them in a message.
FORBIDDEN_FUNCTIONS = {
    "scaled_dot_product_attention": "torch.nn.functional.scaled_dot_product_attention",
    "multi_head_attention_forward": "torch.nn.functional.multi_head_attention_forward",
    "_native_multi_head_attention": "torch._native_multi_head_attention",
}
# ATen operators (any overload) that only the built-in attention paths use.
FORBIDDEN_OPS = {
    "_scaled_dot_product_attention_math": "torch.nn.functional.scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention": "torch.nn.functional.scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention_for_cpu": "torch.nn.functional.scaled_dot_product_attention",
    "_scaled_dot_product_efficient_attention": "torch.nn.functional.scaled_dot_product_attention",
    "_scaled_dot_product_cudnn_attention": "torch.nn.functional.scaled_dot_product_attention",
    "scaled_dot_product_attention": "torch.nn.functional.scaled_dot_product_attention",
    "_native_multi_head_attention": "torch._native_multi_head_attention",
    "_transformer_encoder_layer_fwd": "torch.nn.TransformerEncoderLayer",
}
FORBIDDEN_MODULES = (
    torch.nn.MultiheadAttention,
    torch.nn.TransformerEncoderLayer,
    torch.nn.TransformerDecoderLayer,
    torch.nn.TransformerEncoder,
    torch.nn.TransformerDecoder,
    torch.nn.Transformer,
)


@dataclass(frozen=True)
class Forbidden:
    """A built-in an exercise asks students to write themselves, as the static source scan looks for it.

    ``attribute`` is the name by which code reaches it (``F.scaled_dot_product_attention``, ``from
    torch.nn import MultiheadAttention``, ``getattr(F, "scaled_dot_product_attention")``); ``shown`` is what
    to call it in a message to the student.
    """

    attribute: str
    shown: str


def module_shown(cls: type) -> str:
    """How a message names a forbidden built-in layer class."""
    return f"torch.nn.{cls.__name__}"


def forbidden_from_tables(
    functions: dict[str, str], ops: dict[str, str], modules: tuple[type, ...]
) -> tuple[Forbidden, ...]:
    """The static form of the runtime tables: one ``Forbidden`` per distinct attribute name, in table order."""
    table = {**functions, **ops}
    table.update({cls.__name__: module_shown(cls) for cls in modules})
    return tuple(Forbidden(attribute=name, shown=shown) for name, shown in table.items())


# The built-ins the existing exercises (transformer, attention_rnn) forbid; an exercise with other built-ins
# to write (say ``torchvision.ops.SqueezeExcitation``) passes its own tuple of ``Forbidden`` to the scan.
DEFAULT_FORBIDDEN: tuple[Forbidden, ...] = forbidden_from_tables(FORBIDDEN_FUNCTIONS, FORBIDDEN_OPS, FORBIDDEN_MODULES)


@dataclass
class CallLog:
    """Names of the forbidden built-ins seen, in first-seen order."""

    seen: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        if name not in self.seen:
            self.seen.append(name)


class _FunctionWatch(TorchFunctionMode):
    def __init__(self, log: CallLog):
        super().__init__()
        self.log = log

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in FORBIDDEN_FUNCTIONS:
            self.log.add(FORBIDDEN_FUNCTIONS[name])
        return func(*args, **(kwargs or {}))


class _OpWatch(TorchDispatchMode):
    def __init__(self, log: CallLog):
        super().__init__()
        self.log = log

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)
        if name in FORBIDDEN_OPS:
            self.log.add(FORBIDDEN_OPS[name])
        return func(*args, **(kwargs or {}))


def scan_modules(module, log: CallLog) -> None:
    if isinstance(module, torch.nn.Module):
        for sub in module.modules():
            if isinstance(sub, FORBIDDEN_MODULES):
                log.add(module_shown(type(sub)))


@contextmanager
def watch(log: CallLog):
    """Record forbidden built-ins called inside the block into ``log``."""
    with ExitStack() as stack:
        stack.enter_context(_FunctionWatch(log))
        stack.enter_context(_OpWatch(log))
        yield log
