"""Message types: the dataclasses that may travel between grader and child, and their strict validation.

A class registered with ``message_type`` can be decoded from a message; decoding builds it only from fields it
declares, of the types its annotations name (``validate_fields``). Supported annotations: ``int``, ``float``
(an int is accepted), ``bool`` (never an int), ``str``, ``None``, unions and ``Optional``, ``list`` and
``list[X]``, ``dict`` and ``dict[str, X]``, ``numpy.ndarray``, ``typing.Any`` and other message types. Anything
else is refused when the class is registered, so that a class the grader cannot check never reaches a reply.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass

import numpy as np

_TYPES: dict[str, type] = {}
_SCALARS: dict[type, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


class ProtocolError(Exception):
    """A message could not be decoded (truncated, malformed, too large, or not of the expected types)."""


class MessageTypeError(TypeError):
    """A message type the grader declared cannot be checked (a bug in the grader, never in a submission)."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a message type: its annotation and whether a message must carry it."""

    name: str
    hint: object
    required: bool


def message_type(cls: type) -> type:
    """Class decorator: let instances of this dataclass travel as messages (their annotations are checked)."""
    if not dataclasses.is_dataclass(cls):
        raise MessageTypeError(f"{cls.__name__} is not a dataclass; apply @dataclass below @message_type")
    if any(not f.init for f in dataclasses.fields(cls)):
        raise MessageTypeError(f"{cls.__name__} has a field with init=False, which a message cannot rebuild")
    try:
        field_specs(cls)
    except NameError:  # an annotation naming a class defined later in its module: resolved on first use
        pass
    _TYPES[cls.__name__] = cls
    return cls


def registered(name: object) -> type | None:
    """The message type registered under ``name``, or None."""
    return _TYPES.get(name) if isinstance(name, str) else None


@functools.lru_cache(maxsize=None)
def field_specs(cls: type) -> dict[str, FieldSpec]:
    """The fields of a message type with their resolved annotations; raises ``MessageTypeError`` if unsupported."""
    hints = typing.get_type_hints(cls)
    specs = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name, typing.Any)
        _require_supported(hint, f"{cls.__name__}.{f.name}")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        specs[f.name] = FieldSpec(f.name, hint, required)
    return specs


def _is_union(hint: object) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _require_supported(hint: object, where: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (typing.Any, object, None, type(None), np.ndarray, list, dict) or hint in _SCALARS:
        return
    if _is_union(hint) or origin is list:
        for arg in args:
            _require_supported(arg, where)
        return
    if origin is dict:
        if args and args[0] is not str:
            raise MessageTypeError(f"{where}: dict keys in messages are str, not {args[0]!r}")
        if args:
            _require_supported(args[1], where)
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return  # another message type (registered by the time a message uses it)
    raise MessageTypeError(f"{where}: the annotation {hint!r} cannot be checked in a message")


def describe(hint: object) -> str:
    """A short human name for an annotation: ``list[str]``, ``int or None``, ``RunReply``."""
    if hint is None or hint is type(None):
        return "None"
    if hint is typing.Any:
        return "anything"
    if _is_union(hint):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(describe(a) for a in args)}]"
    if hint is np.ndarray:
        return "array"
    return getattr(hint, "__name__", repr(hint))


def _kind(value: object) -> str:
    return "an array" if isinstance(value, np.ndarray) else f"{type(value).__name__}"


def check_value(value: object, hint: object, where: str) -> None:
    """Raise ``ProtocolError`` unless ``value`` has the annotated type (containers are checked item by item)."""
    if hint is typing.Any or hint is object:
        return
    if hint is None or hint is type(None):
        ok = value is None
    elif _is_union(hint):
        ok = any(_matches(value, arg, where) for arg in typing.get_args(hint))
    elif hint in _SCALARS:
        ok = isinstance(value, _SCALARS[hint]) and (hint is bool or not isinstance(value, bool))
    elif hint is np.ndarray:
        ok = isinstance(value, np.ndarray)
    elif hint is list or typing.get_origin(hint) is list:
        if not isinstance(value, list):
            ok = False
        else:
            for i, item in enumerate(value):
                for arg in typing.get_args(hint):
                    check_value(item, arg, f"{where}[{i}]")
            return
    elif hint is dict or typing.get_origin(hint) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            ok = False
        else:
            args = typing.get_args(hint)
            if args:
                for key, item in value.items():
                    check_value(item, args[1], f"{where}[{key[:40]!r}]")
            return
    elif isinstance(hint, type):
        ok = isinstance(value, hint)  # a nested message type: its own fields were checked when it was built
    else:
        raise MessageTypeError(f"{where}: the annotation {hint!r} cannot be checked in a message")
    if not ok:
        raise ProtocolError(f"{where} should be {describe(hint)}, got {_kind(value)}")


def _matches(value: object, hint: object, where: str) -> bool:
    try:
        check_value(value, hint, where)
    except ProtocolError:
        return False
    return True


def validate_fields(cls: type, values: dict) -> None:
    """Raise ``ProtocolError`` unless ``values`` are exactly the fields of ``cls`` (required ones present), typed."""
    specs = field_specs(cls)
    unknown = sorted(k for k in values if k not in specs)
    if unknown:
        raise ProtocolError(f"{cls.__name__} has no field {str(unknown[0])[:40]!r}")
    missing = [name for name, spec in specs.items() if spec.required and name not in values]
    if missing:
        raise ProtocolError(f"{cls.__name__} is missing its field {missing[0]!r}")
    for name, value in values.items():
        check_value(value, specs[name].hint, f"{cls.__name__}.{name}")


def validate(obj: object) -> object:
    """Check every field of a message-type instance, and of those nested in it, against its annotation.

    Returns ``obj``; raises ``ProtocolError`` at the first field of the wrong type.
    """
    cls = type(obj)
    if registered(cls.__name__) is not cls:
        raise ProtocolError(f"{cls.__name__} is not a message type")
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
    validate_fields(cls, values)
    pending = list(values.values())
    while pending:  # nested message types, wherever they sit in lists and dicts
        value = pending.pop()
        if isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value)
    return obj


def build(cls: type, values: dict) -> object:
    """Validate ``values`` against ``cls`` and construct it."""
    validate_fields(cls, values)
    return cls(**values)
