"""Are the built-ins a student is asked to write seen by whatever route they are called?"""

import pytest
import torch
import torch.nn.functional as F

from autograder.forbidden import CallLog, scan_modules, watch

q = torch.randn(2, 3, 4)


def alias_call():
    from torch.nn.functional import scaled_dot_product_attention as fast

    return fast(q, q, q)


ROUTES = {
    "functional": lambda: F.scaled_dot_product_attention(q, q, q),
    "alias": alias_call,
    "getattr on torch._C": lambda: getattr(torch._C._nn, "scaled_dot_product_attention")(q, q, q),
    "nn.MultiheadAttention": lambda: torch.nn.MultiheadAttention(4, 2, batch_first=True)(q, q, q),
    "multi_head_attention_forward": lambda: torch.nn.MultiheadAttention(4, 2, batch_first=True)(q, q, q, need_weights=False),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_is_a_forbidden_call_seen(route):
    log = CallLog()
    with watch(log):
        ROUTES[route]()
    assert log.seen, f"{route} went unseen"


def test_is_hand_written_attention_left_alone():
    log = CallLog()
    with watch(log):
        (torch.softmax(q @ q.transpose(-2, -1) / 2.0, -1) @ q).sum().backward
    assert log.seen == []


def test_is_a_built_in_layer_found_among_sub_modules():
    log = CallLog()
    scan_modules(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.TransformerEncoderLayer(4, 2)), log)
    assert "torch.nn.TransformerEncoderLayer" in log.seen and "torch.nn.MultiheadAttention" in log.seen
