"""Messages between the grader and the child process that runs a submission.

A message is JSON plus raw array buffers, never pickle: the parent decodes what the child sends without running
any of its code, so a submission that writes to the channel can at worst send wrong data, which the checks
reject. Values may be None, bool, int, float, str, lists, dicts with str keys, dataclasses registered with
``message_type``, and numpy arrays or torch tensors (sent as numpy arrays of a fixed set of dtypes).
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct

import numpy as np

MAX_MESSAGE_BYTES = 1 << 30
ARRAY_DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"}
_TYPES: dict[str, type] = {}


class ProtocolError(Exception):
    """A message could not be decoded (truncated, malformed or not allowed)."""


def message_type(cls):
    """Class decorator: let instances of this dataclass travel as messages."""
    _TYPES[cls.__name__] = cls
    return cls


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
    out.write(struct.pack("<QI", len(header), len(buffers)))
    out.write(header)
    for b in buffers:
        out.write(struct.pack("<Q", len(b)))
        out.write(b)
    return out.getvalue()


def decode(data: bytes):
    try:
        header_len, n_buffers = struct.unpack_from("<QI", data, 0)
        pos = 12
        header = json.loads(data[pos : pos + header_len])
        pos += header_len
        buffers = []
        for _ in range(n_buffers):
            (size,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            buffers.append(data[pos : pos + size])
            pos += size
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None

    def walk(v):
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            if "__array__" in v:
                dtype = v.get("dtype")
                if dtype not in ARRAY_DTYPES:
                    raise ProtocolError(f"array dtype {dtype!r} is not allowed")
                shape = tuple(int(s) for s in v["shape"])
                arr = np.frombuffer(buffers[int(v["__array__"])], dtype=dtype)
                if arr.size != int(np.prod(shape)):
                    raise ProtocolError("array size does not match its shape")
                return arr.reshape(shape).copy()
            if "__type__" in v:
                cls = _TYPES.get(v["__type__"])
                if cls is None:
                    raise ProtocolError(f"unknown message type {v['__type__']!r}")
                return cls(**{k: walk(x) for k, x in v["fields"].items()})
            if "__dict__" in v:
                return {str(k): walk(x) for k, x in v["__dict__"]}
            raise ProtocolError("malformed message")
        return v

    try:
        return walk(header)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None


def write_message(stream, value) -> None:
    payload = encode(value)
    stream.write(struct.pack("<Q", len(payload)))
    stream.write(payload)
    stream.flush()


def read_message(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the other side closed the channel")
    (size,) = struct.unpack("<Q", head)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes is too large")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the channel mid-message")
    return decode(data)
