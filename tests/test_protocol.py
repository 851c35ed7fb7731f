"""Does the channel between grader and child carry data, and refuse anything that could run code?"""

import numpy as np
import pytest
import torch

from autograder.protocol import ProtocolError, decode, encode
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
