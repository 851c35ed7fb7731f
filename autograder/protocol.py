"""Messages between the grader and the child process that runs a submission.

A message is JSON plus raw array buffers, never pickle: the parent decodes what the child sends without running
any of its code, so a submission that writes to the channel can at worst send wrong data, which the checks
reject. Values may be None, bool, int, float, str, lists, dicts with str keys, dataclasses registered with
``message_type``, and numpy arrays or torch tensors (sent as numpy arrays of a fixed set of dtypes).

Decoding is bounded before anything is parsed: the whole message, its JSON header (length, nesting depth and
number of JSON values, counted by a scan of the header's bytes), the number of buffers, and every array (its
buffer in range, used once, its shape matching the buffer's length exactly). Each decoded dataclass is checked
against its field annotations (``message_types``), and ``expect`` names the types a reply may be. Whatever the
bytes, decoding returns a value or raises ``ProtocolError``.

Frame: ``<Q header length><I buffer count>`` header, then per buffer ``<Q length>`` bytes; nothing after.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import struct

import numpy as np

from .message_types import MessageTypeError, ProtocolError, build, message_type, registered, validate

__all__ = [
    "ARRAY_DTYPES", "MAX_BUFFERS", "MAX_DEPTH", "MAX_HEADER_BYTES", "MAX_MESSAGE_BYTES", "MAX_VALUES",
    "ProtocolError", "decode", "encode", "message_type", "read_message", "validate", "write_message",
    "write_payload",
]

MAX_MESSAGE_BYTES = 1 << 30  # the whole message, header and buffers
# The header carries structure and text only (arrays travel in buffers). The largest legitimate one is the
# submission sent to the child: up to source.MAX_SOURCE_BYTES of code, which JSON escaping can make 6 times longer.
MAX_HEADER_BYTES = 16 << 20
MAX_DEPTH = 32  # JSON nesting levels (a dataclass is 2, a dict 3, an array 2)
MAX_VALUES = 200_000  # JSON values and object keys in the header
MAX_BUFFERS = 65_536
MAX_ARRAY_DIMS = 32
ARRAY_DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"}

_FRAME = struct.Struct("<QI")
_SIZE = struct.Struct("<Q")
_STRING = re.compile(rb'"[^"]*"')  # a JSON string, once escaped backslashes and quotes are removed
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEPS = bytes.maketrans(_BRACKETS, b"\x01\xff\x01\xff")  # open: +1, close: -1 (as int8)


def _to_numpy(value):
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().to("cpu")
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return value


def encode(value) -> bytes:
    """A message for ``value``; raises ``ProtocolError`` for values that cannot travel."""
    buffers: list[bytes] = []

    def walk(v):
        v = _to_numpy(v)
        if isinstance(v, np.ndarray):
            if v.dtype.name not in ARRAY_DTYPES:
                raise ProtocolError(f"arrays of dtype {v.dtype} cannot be sent")
            buffers.append(np.ascontiguousarray(v).tobytes())
            return {"__array__": len(buffers) - 1, "dtype": v.dtype.name, "shape": list(v.shape)}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: walk(getattr(v, f.name)) for f in dataclasses.fields(v)}
            return {"__type__": type(v).__name__, "fields": fields}
        if isinstance(v, dict):
            return {"__dict__": [[str(k), walk(x)] for k, x in v.items()]}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise ProtocolError(f"values of type {type(v).__name__} cannot be sent")

    header = json.dumps(walk(value)).encode()
    out = io.BytesIO()
    out.write(_FRAME.pack(len(header), len(buffers)))
    out.write(header)
    for b in buffers:
        out.write(_SIZE.pack(len(b)))
        out.write(b)
    return out.getvalue()


def _split(data: bytes) -> tuple[bytes, list[memoryview]]:
    """The header and the buffers of a message, after checking the frame's lengths and counts."""
    view = memoryview(data)
    if view.nbytes > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {view.nbytes} bytes is too large (over {MAX_MESSAGE_BYTES})")
    if view.nbytes < _FRAME.size:
        raise ProtocolError("malformed message: shorter than its frame")
    header_len, n_buffers = _FRAME.unpack_from(view, 0)
    if header_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"message header of {header_len} bytes is too large (over {MAX_HEADER_BYTES})")
    if n_buffers > MAX_BUFFERS:
        raise ProtocolError(f"message with {n_buffers} buffers has too many (over {MAX_BUFFERS})")
    pos = _FRAME.size + header_len
    if pos > view.nbytes:
        raise ProtocolError("malformed message: truncated header")
    header = bytes(view[_FRAME.size : pos])
    buffers = []
    for i in range(n_buffers):
        if pos + _SIZE.size > view.nbytes:
            raise ProtocolError(f"malformed message: truncated before buffer {i}")
        (size,) = _SIZE.unpack_from(view, pos)
        pos += _SIZE.size
        if size > view.nbytes - pos:
            raise ProtocolError(f"malformed message: buffer {i} is truncated")
        buffers.append(view[pos : pos + size])
        pos += size
    if pos != view.nbytes:
        raise ProtocolError(f"malformed message: {view.nbytes - pos} stray bytes after the last buffer")
    return header, buffers


def _check_header(header: bytes) -> str:
    """The header as text, after bounding its nesting and its number of values without parsing it.

    Escaped backslashes and quotes are removed, then strings, so that only the JSON outside strings is counted.
    On any valid prefix of JSON this is exact, and json.loads stops at the first invalid byte, so the counts bound
    what it builds. The header must be UTF-8: in UTF-8 a byte below 128 is always that ASCII character.
    """
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"malformed message: header is not UTF-8 ({exc.reason})") from None
    outside = _STRING.sub(b"", header.replace(b"\\\\", b"").replace(b'\\"', b""))
    values = sum(outside.count(c) for c in (b"[", b"{", b",", b":")) + 1
    if values > MAX_VALUES:
        raise ProtocolError(f"message header holds about {values} values, over the limit of {MAX_VALUES}")
    steps = np.frombuffer(outside.translate(_STEPS, _NOT_BRACKETS), dtype=np.int8)
    depth = int(np.cumsum(steps, dtype=np.int32).max(initial=0))
    if depth > MAX_DEPTH:
        raise ProtocolError(f"message header is nested {depth} levels deep, over the limit of {MAX_DEPTH}")
    return text


def _short(value: object) -> str:
    """A value from a header, for an error message: scalars shown (cut short), containers named."""
    return type(value).__name__ if isinstance(value, (list, dict)) else repr(value)[:40]


class _Decoder:
    """Turns a parsed header and its buffers into values, refusing anything the encoder would not produce."""

    def __init__(self, buffers: list[memoryview]):
        self.buffers = buffers
        self.used = [False] * len(buffers)

    def value(self, v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            if "__array__" in v:
                return self.array(v)
            if "__type__" in v:
                return self.message(v)
            if "__dict__" in v:
                return self.mapping(v)
        raise ProtocolError("malformed message: an object that is neither an array, a message nor a dict")

    def array(self, v: dict) -> np.ndarray:
        index, dtype, shape = v["__array__"], v.get("dtype"), v.get("shape")
        if v.keys() != {"__array__", "dtype", "shape"}:
            raise ProtocolError("malformed message: an array needs exactly __array__, dtype and shape")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise ProtocolError(f"malformed message: array buffer index {_short(index)} is out of range")
        if self.used[index]:
            raise ProtocolError(f"malformed message: buffer {index} is used by two arrays")
        self.used[index] = True
        if not isinstance(dtype, str) or dtype not in ARRAY_DTYPES:
            raise ProtocolError(f"array dtype {_short(dtype)} is not allowed")
        sizes_ok = isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)
        # (0, 10**30) holds nothing, yet numpy cannot make it: bound the nonzero sizes too
        if not sizes_ok or len(shape) > MAX_ARRAY_DIMS or math.prod(s for s in shape if s) > MAX_MESSAGE_BYTES:
            shown = str(shape[: MAX_ARRAY_DIMS + 1]) if isinstance(shape, list) else _short(shape)
            raise ProtocolError(f"malformed message: array shape {shown[:80]} is not a list of at most "
                                f"{MAX_ARRAY_DIMS} sizes")
        buffer = self.buffers[index]
        itemsize = np.dtype(dtype).itemsize
        if math.prod(shape) * itemsize != buffer.nbytes:
            raise ProtocolError(f"array of shape {tuple(shape)} and dtype {dtype} does not match its buffer "
                                f"of {buffer.nbytes} bytes")
        if dtype == "bool":  # any nonzero byte is True: numpy bools are then only ever 0 or 1
            return (np.frombuffer(buffer, dtype=np.uint8) != 0).reshape(shape)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()

    def message(self, v: dict):
        name, fields = v["__type__"], v.get("fields")
        if v.keys() != {"__type__", "fields"} or not isinstance(fields, dict):
            raise ProtocolError("malformed message: a message type needs exactly __type__ and a dict of fields")
        cls = registered(name)
        if cls is None:
            raise ProtocolError(f"unknown message type {_short(name)}")
        return build(cls, {k: self.value(x) for k, x in fields.items()})

    def mapping(self, v: dict) -> dict:
        items = v["__dict__"]
        if len(v) != 1 or not isinstance(items, list):
            raise ProtocolError("malformed message: a dict needs exactly __dict__ and a list of pairs")
        out = {}
        for item in items:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise ProtocolError("malformed message: a dict item is not a [str, value] pair")
            out[item[0]] = self.value(item[1])
        return out

    def finish(self) -> None:
        if not all(self.used):
            raise ProtocolError(f"malformed message: buffer {self.used.index(False)} is not used by any array")


def _type_names(expect: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in expect)


def decode(data: bytes, expect: type | tuple[type, ...] | None = None):
    """The value in a message; raises ``ProtocolError`` (and nothing else) for any malformed or oversized message.

    ``expect``: the type (or a tuple of types) the top-level value must be, e.g. ``(RunReply, ErrorReply)``.
    """
    header, buffers = _split(data)
    text = _check_header(header)
    decoder = _Decoder(buffers)
    try:
        value = decoder.value(json.loads(text))
    except (ProtocolError, MessageTypeError):
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        # Unreachable for what the checks above let through, except malformed JSON (ValueError); kept as a net.
        raise ProtocolError(f"malformed message: {type(exc).__name__}: {str(exc)[:200]}") from None
    decoder.finish()
    if expect is not None:
        expect = expect if isinstance(expect, tuple) else (expect,)
        if not isinstance(value, expect):
            raise ProtocolError(f"expected {_type_names(expect)}, got {type(value).__name__}")
    return value


def write_message(stream, value) -> None:
    write_payload(stream, encode(value))


def write_payload(stream, payload: bytes) -> None:
    """Send a message already encoded with ``encode`` (``write_message`` is ``encode``, then this)."""
    stream.write(_SIZE.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_message(stream, expect: type | tuple[type, ...] | None = None):
    """Read one message from a binary stream; raises ``EOFError`` when the other side closed it."""
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        raise EOFError("the other side closed the channel")
    (size,) = _SIZE.unpack(head)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes is too large (over {MAX_MESSAGE_BYTES})")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the channel mid-message")
    return decode(data, expect)
