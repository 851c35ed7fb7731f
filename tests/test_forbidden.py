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


# --- each exercise declares its own forbidden built-ins -----------------------------------------------------

from autograder.forbidden import ATTENTION_BUILTINS, ForbiddenSet  # noqa: E402
from autograder.requests import Run, RunReply, execute  # noqa: E402

CONV_ONLY = ForbiddenSet(modules={"torch.nn.Conv2d": "torch.nn.Conv2d"})


class Subclassed(torch.nn.Conv2d):
    """A student's subclass of a forbidden layer is still the layer."""


def test_does_an_exercise_s_own_set_decide_which_layers_are_refused():
    model = torch.nn.Sequential(Subclassed(2, 2, 1), torch.nn.MultiheadAttention(4, 2))
    own, default = CallLog(), CallLog()
    scan_modules(model, own, CONV_ONLY)
    scan_modules(model, default)
    assert own.seen == ["torch.nn.Conv2d"]  # the subclass is found; attention is allowed in this exercise
    assert default.seen == ["torch.nn.MultiheadAttention"]


def test_does_a_layer_of_the_same_name_from_another_package_pass():
    class Conv2d(torch.nn.Module):  # the student's own, defined in this test module
        def forward(self, x):
            return x

    log = CallLog()
    scan_modules(Conv2d(), log, CONV_ONLY)
    assert log.seen == []


def test_does_the_set_travel_in_the_request_to_the_child():
    namespace = {"Attend": lambda: torch.nn.MultiheadAttention(4, 2, batch_first=True)}

    def attend(x):
        return F.scaled_dot_product_attention(x, x, x)

    namespace["attend"] = attend
    x = torch.randn(2, 3, 4).numpy()
    allowed = execute(Run(target="attend", inputs=[x], forbidden=ForbiddenSet().as_data()), namespace)
    refused = execute(Run(target="attend", inputs=[x], forbidden=ATTENTION_BUILTINS.as_data()), namespace)
    assert isinstance(allowed, RunReply) and allowed.forbidden == []
    assert refused.forbidden == ["torch.nn.functional.scaled_dot_product_attention"]


# --- layers kept out of the module tree are seen when they compute ------------------------------------------

from autograder.forbidden import TRANSFORMER_LAYERS, watch_layers  # noqa: E402


class Hidden(torch.nn.Module):
    """A built-in layer kept in a plain list (not a sub-module, so no scan of the tree finds it)."""

    def __init__(self, layer: torch.nn.Module, direct: bool):
        super().__init__()
        self.kept = [layer]
        self.direct = direct

    def forward(self, x):
        layer = self.kept[0]
        return layer.forward(x, x, x)[0] if self.direct and isinstance(layer, torch.nn.MultiheadAttention) else \
            layer.forward(x) if self.direct else layer(x)


@pytest.mark.parametrize("direct", [False, True], ids=["called", "forward-called"])
def test_is_a_layer_outside_the_module_tree_seen_when_it_runs(direct):
    model = Hidden(torch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, batch_first=True), direct)
    log = CallLog()
    scan_modules(model, log, TRANSFORMER_LAYERS)
    assert log.seen == []  # the scan of the tree cannot find it
    with watch(log, TRANSFORMER_LAYERS):
        model(q)
    assert log.seen == ["torch.nn.TransformerEncoderLayer"]
    assert torch.nn.TransformerEncoderLayer.forward.__name__ == "forward"  # the class is left as it was


def test_is_a_subclass_with_its_own_forward_seen():
    from torch.ao.nn.quantizable import MultiheadAttention as Quantizable

    model = Hidden(Quantizable(4, 2, batch_first=True), direct=True)
    log = CallLog()
    with watch_layers(log, ATTENTION_BUILTINS):
        model(q)
    assert log.seen == ["torch.nn.MultiheadAttention"]


def test_does_a_layer_the_set_allows_run_unseen():
    log = CallLog()
    with watch_layers(log, TRANSFORMER_LAYERS):  # the ViT's set allows nn.MultiheadAttention
        Hidden(torch.nn.MultiheadAttention(4, 2, batch_first=True), direct=True)(q)
    assert log.seen == []


class _Unhashable(type(torch.nn.Module)):
    """A metaclass that defines ``__eq__`` (and so no hash): a submission's classes may be anything."""

    def __eq__(cls, other):
        return cls is other

    __hash__ = None


def test_does_a_module_class_that_cannot_be_hashed_leave_the_watch_working():
    class Odd(torch.nn.Module, metaclass=_Unhashable):
        def forward(self, x):
            return F.scaled_dot_product_attention(x, x, x)

    log = CallLog()
    with watch(log, ATTENTION_BUILTINS):
        Odd()(q)
    assert log.seen == ["torch.nn.functional.scaled_dot_product_attention"]
