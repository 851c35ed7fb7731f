"""Does the channel between grader and child carry data, refuse anything that could run code, and turn every
malformed, oversized or mistyped reply into a ProtocolError, without the decoding itself blowing up?"""

import dataclasses
import io
import json
import random
import struct
import tracemalloc

import numpy as np
import pytest
import torch

from autograder.message_types import MessageTypeError
from autograder.protocol import (
    MAX_BUFFERS, MAX_DEPTH, MAX_HEADER_BYTES, MAX_MESSAGE_BYTES, MAX_VALUES, ProtocolError, decode, encode,
    message_type, read_message, validate,
)
from autograder.requests import Run, RunReply


def test_does_a_request_survive_the_round_trip():
    run = Run(target="f", inputs=[np.arange(6, dtype=np.float32).reshape(2, 3), None, 3], init_kwargs={"key_dim": 5})
    back = decode(encode(run))
    assert isinstance(back, Run) and back.init_kwargs == {"key_dim": 5} and back.inputs[1:] == [None, 3]
    np.testing.assert_array_equal(back.inputs[0], run.inputs[0])
    assert back.inputs[0].dtype == np.float32


def test_are_tensors_sent_as_arrays():
    reply = decode(encode(RunReply(outputs=[[torch.ones(2, 2, dtype=torch.float64)]])))
    assert isinstance(reply.outputs[0][0], np.ndarray) and reply.outputs[0][0].dtype == np.float64


def test_is_an_object_array_refused():
    with pytest.raises(ProtocolError):
        encode(np.array([object()], dtype=object))


def test_is_an_arbitrary_object_refused():
    with pytest.raises(ProtocolError, match="cannot be sent"):
        encode({"x": object()})


def test_is_an_unknown_message_type_refused_when_decoding():
    data = encode(RunReply()).replace(b'"RunReply"', b'"Evil____"')
    with pytest.raises(ProtocolError, match="unknown message type"):
        decode(data)


def test_is_a_truncated_message_refused():
    with pytest.raises(ProtocolError):
        decode(encode(RunReply(outputs=[[np.ones(100)]]))[:-10])


# -- replies the submission controls: every malformation is a ProtocolError, and decoding stays bounded -------


@message_type
@dataclasses.dataclass
class ProbeInner:
    label: str


@message_type
@dataclasses.dataclass
class ProbeReply:
    count: int
    ratio: float = 0.0
    flag: bool = False
    name: str | None = None
    items: list[str] = dataclasses.field(default_factory=list)
    table: dict[str, float] = dataclasses.field(default_factory=dict)
    array: np.ndarray | None = None
    inner: ProbeInner | None = None


@message_type
@dataclasses.dataclass
class ProbeError:
    kind: str


@message_type
@dataclasses.dataclass
class ProbeRequest:
    target: str


def frame(header, *buffers: bytes) -> bytes:
    """A message with this header (JSON-able value or raw bytes) and these buffers, as a child could write it."""
    header = header if isinstance(header, bytes) else json.dumps(header).encode()
    out = struct.pack("<QI", len(header), len(buffers)) + header
    for b in buffers:
        out += struct.pack("<Q", len(b)) + b
    return out


def array_header(index=0, dtype="float32", shape=(2,)):
    return {"__array__": index, "dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape}


def test_does_a_reply_of_the_wrong_message_type_count_as_a_protocol_error():
    with pytest.raises(ProtocolError, match="expected ProbeReply or ProbeError, got ProbeRequest"):
        decode(encode(ProbeRequest(target="f")), expect=(ProbeReply, ProbeError))
    with pytest.raises(ProtocolError, match="expected ProbeReply, got list"):
        decode(encode([1, 2]), expect=ProbeReply)
    assert decode(encode(ProbeError(kind="ValueError")), expect=(ProbeReply, ProbeError)).kind == "ValueError"


@pytest.mark.parametrize("fields, where", [
    ({"count": "3"}, "ProbeReply.count should be int, got str"),
    ({"count": True}, "ProbeReply.count should be int, got bool"),
    ({"count": 1, "ratio": "0.5"}, "ProbeReply.ratio should be float"),
    ({"count": 1, "flag": 1}, "ProbeReply.flag should be bool, got int"),
    ({"count": 1, "name": 7}, "ProbeReply.name should be str or None"),
    ({"count": 1, "items": ["a", 2]}, r"ProbeReply.items\[1\] should be str, got int"),
    ({"count": 1, "items": "abc"}, r"ProbeReply.items should be list\[str\], got str"),
    ({"count": 1, "table": {"a": "b"}}, r"ProbeReply.table\['a'\] should be float, got str"),
    ({"count": 1, "array": [1.0, 2.0]}, "ProbeReply.array should be array or None, got list"),
    ({"count": 1, "inner": ProbeError(kind="x")}, "ProbeReply.inner should be ProbeInner or None, got ProbeError"),
])
def test_is_a_field_of_the_wrong_type_a_protocol_error(fields, where):
    data = encode(ProbeReply(**fields))  # encode checks nothing: a child can send any of these
    with pytest.raises(ProtocolError, match=where):
        decode(data)


def test_do_well_typed_fields_pass_with_an_int_for_a_float():
    reply = decode(encode(ProbeReply(count=2, ratio=1, flag=True, name=None, items=["a"], table={"x": 3, "y": 0.5},
                                     array=np.zeros(3, np.float32), inner=ProbeInner(label="in"))))
    assert reply.ratio == 1 and reply.table == {"x": 3, "y": 0.5} and reply.inner == ProbeInner(label="in")


@pytest.mark.parametrize("fields, message", [
    ({"count": 1, "evil": 2}, "ProbeReply has no field 'evil'"),
    ({"ratio": 0.5}, "ProbeReply is missing its field 'count'"),
])
def test_are_extra_or_missing_fields_a_protocol_error(fields, message):
    header = {"__type__": "ProbeReply", "fields": fields}
    with pytest.raises(ProtocolError, match=message):
        decode(frame(header))


def test_does_validate_check_a_message_built_in_this_process():
    assert validate(ProbeReply(count=1, inner=ProbeInner(label="x"))).count == 1
    with pytest.raises(ProtocolError, match="ProbeInner.label should be str"):
        validate(ProbeReply(count=1, inner=ProbeInner(label=3)))


def test_is_an_annotation_the_grader_cannot_check_refused_when_the_type_is_declared():
    with pytest.raises(MessageTypeError, match="cannot be checked"):
        @message_type
        @dataclasses.dataclass
        class ProbeWithTuple:
            pair: tuple[int, int]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_does_a_deeply_nested_reply_count_as_a_protocol_error(depth):
    with pytest.raises(ProtocolError, match="nested"):
        decode(frame(b"[" * depth + b"]" * depth))


def test_is_nesting_up_to_the_limit_accepted_and_brackets_in_strings_ignored():
    assert decode(frame(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)) is not None
    text = '"\\\\[[[' + "[" * 100 + '\\"{{'
    assert decode(frame(json.dumps([text, "]]]"]).encode())) == [text, "]]]"]


def test_can_an_escaped_backslash_hide_nesting_from_the_scan():
    # '"\\"' is a string holding one backslash: the brackets after it are outside every string
    with pytest.raises(ProtocolError, match="nested"):
        decode(frame(b'["\\\\", ' + b"[" * 50 + b"]" * 50 + b"]"))


def test_can_a_header_in_utf16_hide_its_nesting():
    with pytest.raises(ProtocolError, match="not UTF-8"):
        decode(frame(("[" * 50 + "]" * 50).encode("utf-16")))


def test_does_decoding_an_amplifying_reply_stay_bounded():
    # 3 bytes per empty list, each of which json would make a 56-byte list (and the decoder a copy): about 40x
    payload = frame(b"[" + b",".join([b"[]"] * MAX_VALUES) + b"]")
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="values"):
            decode(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * len(payload), f"decoding {len(payload)} bytes allocated {peak} before refusing them"


@pytest.mark.parametrize("header_len, n_buffers, message", [
    (MAX_HEADER_BYTES + 1, 0, "header of .* bytes is too large"),
    (2, MAX_BUFFERS + 1, "too many"),
    (1 << 62, 0, "too large"),
    (50, 0, "truncated header"),
    (2, 3, "truncated before buffer 0"),
])
def test_are_huge_or_false_counts_in_the_frame_a_protocol_error(header_len, n_buffers, message):
    with pytest.raises(ProtocolError, match=message):
        decode(struct.pack("<QI", header_len, n_buffers) + b"[]")


def test_is_a_message_announced_over_the_size_limit_refused_before_it_is_read():
    stream = io.BytesIO(struct.pack("<Q", MAX_MESSAGE_BYTES + 1) + b"x" * 100)
    with pytest.raises(ProtocolError, match="too large"):
        read_message(stream)
    assert stream.tell() == 8


def test_are_a_false_buffer_length_and_stray_bytes_protocol_errors():
    good = frame(array_header(), np.ones(2, np.float32).tobytes())
    with pytest.raises(ProtocolError, match="buffer 0 is truncated"):
        decode(good[:-1])
    with pytest.raises(ProtocolError, match="stray bytes"):
        decode(good + b"\0")


@pytest.mark.parametrize("index", [1, -1, "0", True, 0.0, [0], None])
def test_is_a_bad_buffer_index_a_protocol_error(index):
    with pytest.raises(ProtocolError, match="out of range"):
        decode(frame(array_header(index=index), np.ones(2, np.float32).tobytes()))


def test_is_a_buffer_used_by_two_arrays_refused():
    # one 1 MB buffer named by many arrays would make each a copy: amplification
    buffer = np.ones(2, np.float32).tobytes()
    with pytest.raises(ProtocolError, match="used by two arrays"):
        decode(frame([array_header(), array_header()], buffer))
    with pytest.raises(ProtocolError, match="not used"):
        decode(frame([array_header()], buffer, buffer))


@pytest.mark.parametrize("shape, dtype, message", [
    ([-1, -2], "float32", "not a list of"),
    ([3], "float32", "does not match its buffer"),
    ([2.0], "float32", "not a list of"),
    ([True, True], "float32", "not a list of"),
    ("2", "float32", "not a list of"),
    ([0, 10**30], "float32", "not a list of"),
    ([1] * 40, "float32", "not a list of"),
    ([2], "object", "dtype 'object' is not allowed"),
    ([2], ["float32"], "dtype list is not allowed"),
    ([2], "float64", "does not match its buffer"),
])
def test_is_an_array_with_a_bad_shape_or_dtype_a_protocol_error(shape, dtype, message):
    with pytest.raises(ProtocolError, match=message):
        decode(frame(array_header(dtype=dtype, shape=shape), np.ones(2, np.float32).tobytes()))


def test_is_an_empty_array_of_any_listed_shape_decoded():
    assert decode(frame(array_header(shape=[0, 5, 7]), b"")).shape == (0, 5, 7)


def test_are_bool_arrays_only_ever_zero_or_one():
    arr = decode(frame(array_header(dtype="bool", shape=[3]), b"\x00\x02\xff"))
    assert arr.tolist() == [False, True, True] and arr.view(np.uint8).tolist() == [0, 1, 1]


@pytest.mark.parametrize("header", [
    b"{\"__array__\": 0}", b"{\"__type__\": \"ProbeReply\"}", b"{\"__type__\": \"ProbeReply\", \"fields\": [1]}",
    b"{\"__dict__\": [[1, 2]]}", b"{\"__dict__\": [[\"a\"]]}", b"{\"x\": 1}", b"[1, 2", b"1" * 5000, b"\xff",
    b"{\"__type__\": [\"ProbeReply\"], \"fields\": {}}",
])
def test_is_a_malformed_header_a_protocol_error(header):
    with pytest.raises(ProtocolError):
        decode(frame(header))


def test_does_any_corruption_of_a_reply_give_a_value_or_a_protocol_error():
    good = encode(ProbeReply(count=3, items=["a", "b"], table={"k": 1.5}, array=np.arange(6, dtype=np.int64),
                             inner=ProbeInner(label="x")))
    (header_len,) = struct.unpack_from("<Q", good)
    alphabet = b'[]{}",:\\ 0123456789.-eEtrufalsn_'
    gen = random.Random(0)
    outcomes = {"value": 0, "error": 0}
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(gen.randint(1, 4)):  # mostly inside the JSON header, with JSON's own characters
            pos = gen.randrange(12, 12 + header_len) if gen.random() < 0.8 else gen.randrange(len(data))
            data[pos] = gen.choice(alphabet) if gen.random() < 0.7 else gen.randrange(256)
        if gen.random() < 0.1:
            data = data[: gen.randrange(len(data))]
        try:
            decode(bytes(data))
            outcomes["value"] += 1
        except ProtocolError:
            outcomes["error"] += 1
    assert outcomes["error"] > 1000 and outcomes["value"] > 10, outcomes  # both paths were exercised
