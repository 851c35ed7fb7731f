"""Detect calls to the built-ins an exercise asks students to write themselves.

Four nets, so that an alias, ``getattr`` or a call through ``torch.nn.functional``'s internals is still seen:
a ``TorchFunctionMode`` sees Python-level torch API calls by their function (not their name), a
``TorchDispatchMode`` sees the ATen operators that any route ends in, a scan of the model's sub-modules
finds built-in layers such as ``nn.MultiheadAttention``, and the forward of every forbidden layer class (and
subclass) loaded is wrapped while the submission runs, so that a layer kept out of the module tree is seen
when it computes.

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
    # A layer class: its name may be a plain word ("Attention", "Block", "Transformer"), so a string counts only
    # where it can reach an attribute (getattr, attrgetter, an import, a subscript), never in a label
    # (``classname.find("Attention")``, ``record_function("Attention")``).
    layer: bool = False


def module_shown(cls: type) -> str:
    """How a message names a forbidden built-in layer class."""
    return f"torch.nn.{cls.__name__}"


@dataclass(frozen=True)
class ForbiddenSet:
    """The built-ins one exercise asks students to write themselves, as data: it travels in every request to
    the child (``requests.Run.forbidden``), whose watch and module scan use it, and the parent's source scan
    takes its static form (``static``).

    ``functions``: Python-level function names -> shown; ``ops``: ATen operator names -> shown; ``modules``:
    public class names such as ``torchvision.ops.SqueezeExcitation`` -> shown. A module matches when its class,
    or a class it derives from, has that name and comes from that top-level package (``torchvision.ops.misc``
    defines ``torchvision.ops.SqueezeExcitation``).
    """

    functions: dict = field(default_factory=dict)
    ops: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)

    def static(self) -> tuple[Forbidden, ...]:
        """One ``Forbidden`` per distinct attribute name, in table order (what the source scan looks for)."""
        table = {name: Forbidden(name, shown) for name, shown in {**self.functions, **self.ops}.items()}
        for name, shown in self.modules.items():
            attribute = name.rsplit(".", 1)[-1]
            table.setdefault(attribute, Forbidden(attribute, shown, layer=True))
        return tuple(table.values())

    def as_data(self) -> dict:
        return {"functions": dict(self.functions), "ops": dict(self.ops), "modules": dict(self.modules)}

    @classmethod
    def from_data(cls, data: dict | None) -> ForbiddenSet:
        if not data:
            return ATTENTION_BUILTINS
        return cls(dict(data.get("functions", {})), dict(data.get("ops", {})), dict(data.get("modules", {})))

    def module_shown(self, module) -> str | None:
        """How a message names ``module``'s class if the set forbids it (or a class it derives from), else None."""
        return self.class_shown(type(module))

    def class_shown(self, klass: type) -> str | None:
        """How a message names ``klass`` if the set forbids it (or a class it derives from), else None."""
        by_name = self._by_class_name()
        for cls in klass.__mro__:
            package = (getattr(cls, "__module__", "") or "").split(".")[0]
            shown = by_name.get((package, cls.__name__))
            if shown is not None:
                return shown
        return None

    def _by_class_name(self) -> dict[tuple[str, str], str]:
        """``modules`` keyed by (top-level package, class name), built once per set: every layer of every
        request is looked up here."""
        table = self.__dict__.get("_by_class")
        if table is None:
            table = {}
            for name, shown in self.modules.items():
                table.setdefault((name.split(".")[0], name.rsplit(".", 1)[-1]), shown)
            object.__setattr__(self, "_by_class", table)
        return table


# The built-ins an attention exercise forbids by default: PyTorch's own attention. Another
# exercise declares its own set (``Exercise.forbidden``), say with ``torchvision.ops.SqueezeExcitation``.
ATTENTION_BUILTINS = ForbiddenSet(
    dict(FORBIDDEN_FUNCTIONS), dict(FORBIDDEN_OPS),
    {f"torch.nn.{cls.__name__}": module_shown(cls) for cls in FORBIDDEN_MODULES},
)
DEFAULT_FORBIDDEN: tuple[Forbidden, ...] = ATTENTION_BUILTINS.static()

# PyTorch's transformer layers alone (nn.MultiheadAttention and the attention functions allowed): the set of an
# exercise whose lesson is the block or the model, not attention itself.
TRANSFORMER_LAYERS = ForbiddenSet(
    {}, {"_transformer_encoder_layer_fwd": FORBIDDEN_OPS["_transformer_encoder_layer_fwd"]},
    {f"torch.nn.{cls.__name__}": module_shown(cls) for cls in FORBIDDEN_MODULES if cls is not torch.nn.MultiheadAttention},
)


@dataclass
class CallLog:
    """Names of the forbidden built-ins seen, in first-seen order."""

    seen: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        if name not in self.seen:
            self.seen.append(name)


class _FunctionWatch(TorchFunctionMode):
    def __init__(self, log: CallLog, functions: dict):
        super().__init__()
        self.log = log
        self.functions = functions

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.functions:
            self.log.add(self.functions[name])
        return func(*args, **(kwargs or {}))


class _OpWatch(TorchDispatchMode):
    def __init__(self, log: CallLog, ops: dict):
        super().__init__()
        self.log = log
        self.ops = ops

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)
        if name in self.ops:
            self.log.add(self.ops[name])
        return func(*args, **(kwargs or {}))


def _module_classes() -> list[type]:
    """Every subclass of ``nn.Module`` loaded so far (PyTorch's, third parties', the submission's)."""
    found, seen, stack = [], set(), [torch.nn.Module]
    while stack:
        for sub in stack.pop().__subclasses__():
            if id(sub) not in seen:  # by identity: a submission's metaclass may make its classes unhashable
                seen.add(id(sub))
                found.append(sub)
                stack.append(sub)
    return found


@contextmanager
def watch_layers(log: CallLog, forbidden: ForbiddenSet | None = None):
    """Record every forbidden built-in layer whose ``forward`` runs inside the block, however the layer was
    reached: registered or kept in a plain list, called or its ``forward`` called directly, the class itself or a
    subclass with a forward of its own (``torch.ao.nn.quantizable.MultiheadAttention``). Each such class's own
    ``forward`` is wrapped for the duration of the block."""
    forbidden = forbidden or ATTENTION_BUILTINS
    wrapped: list[tuple[type, object]] = []

    def logged(forward, shown: str):
        def forward_logged(self, *args, **kwargs):
            log.add(shown)
            return forward(self, *args, **kwargs)

        return forward_logged

    try:
        for cls in _module_classes():
            own = cls.__dict__.get("forward")
            shown = forbidden.class_shown(cls) if callable(own) else None
            if shown:
                setattr(cls, "forward", logged(own, shown))
                wrapped.append((cls, own))
        yield log
    finally:
        for cls, own in reversed(wrapped):
            setattr(cls, "forward", own)


def scan_modules(module, log: CallLog, forbidden: ForbiddenSet | None = None) -> None:
    """Record the forbidden built-in layers among ``module``'s sub-modules."""
    forbidden = forbidden or ATTENTION_BUILTINS
    if isinstance(module, torch.nn.Module):
        for sub in module.modules():
            shown = forbidden.module_shown(sub)
            if shown:
                log.add(shown)


@contextmanager
def watch(log: CallLog, forbidden: ForbiddenSet | None = None):
    """Record forbidden built-ins called inside the block into ``log``."""
    forbidden = forbidden or ATTENTION_BUILTINS
    with ExitStack() as stack:
        stack.enter_context(watch_layers(log, forbidden))
        stack.enter_context(_FunctionWatch(log, forbidden.functions))
        stack.enter_context(_OpWatch(log, forbidden.ops))
        yield log
