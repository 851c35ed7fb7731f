"""Does every legitimate PyTorch style get full marks when its maths is right (issue 9), and where a style
cannot be graded, does the message say why instead of blaming a crash?

The styles are the reference solution with one change each (``tests/styles.py``): lazy projections
(``nn.LazyLinear``), TorchScript helpers, outputs in other memory layouts or with ``requires_grad`` set, tensor
subclasses, and sub-modules registered in another order than the reference's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import failed, grade_source_in_process
from styles import STYLES, style, styled_source

from autograder.context import Context
from autograder.grading import grade_path
from autograder.protocol import decode, encode
from autograder.requests import ErrorReply, Run, RunReply, Train, TrainReply, execute
from autograder.runner import InProcessRunner, SubmissionRaised
from autograder.source import SourceCell, Submission, namespace_from_source

STYLE_NAMES = [s.name for s in STYLES]


def namespace(source: str, name: str) -> dict:
    """The names a source defines, loaded as the grader loads a submission (one cell)."""
    found, errors = namespace_from_source(Submission(path="<test>", cells=[SourceCell(code=source, label="file")]),
                                          module_name=f"styles_{name}")
    assert not errors, errors
    return found


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_does_a_correct_solution_in_this_style_pass_every_check(name):
    report = grade_source_in_process(styled_source(style(name)))
    assert not report.grader_errors and not report.notes, (report.grader_errors, report.notes)
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


@pytest.mark.parametrize("name", ["lazy_linear", "torchscript"])
def test_does_the_confined_child_grade_lazy_modules_and_torchscript_alike(name, tmp_path):
    """The child compiles TorchScript from source registered in memory (its working directory is a tmpfs of
    its own) and encodes the states of lazy modules once a first call gave them their shapes."""
    path = tmp_path / f"transformer_{name}.py"
    path.write_text(styled_source(style(name)))
    report = grade_path(path, "transformer", skip_training=True, device="cpu")
    assert not report.grader_errors and not report.notes, (report.grader_errors, report.notes)
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


# --- lazy modules, request by request ---------------------------------------------------------------------

LAZY = """
import torch
from torch import nn


class Projection(nn.Module):
    def __init__(self, out_features):
        super().__init__()
        self.proj = nn.LazyLinear(out_features)

    def forward(self, x):
        return self.proj(x)


class NeverCalled(nn.Module):
    def __init__(self, out_features):
        super().__init__()
        self.proj = nn.LazyLinear(out_features)
        self.unused = nn.LazyLinear(out_features)

    def forward(self, x):
        return self.proj(x)


class RefusesProbes(nn.Module):
    def __init__(self, out_features):
        super().__init__()
        self.proj = nn.LazyLinear(out_features)

    def forward(self, x):
        if x.shape[-1] != 7:
            raise ValueError("this module takes 7 features")
        return self.proj(x)
"""


class CountingRunner(InProcessRunner):
    """An in-process runner that counts the requests it carries."""

    def __init__(self, found: dict):
        super().__init__(found)
        self.requests: list = []

    def request(self, request, timeout: float):
        self.requests.append(request)
        return super().request(request, timeout)


def test_are_lazy_shapes_described_for_the_inputs_of_each_call():
    """A lazy construction's description depends on the inputs: one per input signature, each cached."""
    ctx = Context(runner=CountingRunner(namespace(LAZY, "lazy_shapes")))
    narrow, wide = np.ones((2, 3), np.float32), np.ones((2, 5), np.float32)
    assert ctx.metadata("Projection", [4], inputs=[narrow]).params["proj.weight"].shape == (4, 3)
    assert ctx.metadata("Projection", [4], inputs=[wide]).params["proj.weight"].shape == (4, 5)
    assert ctx.metadata("Projection", [4], inputs=[narrow]).lazy == ["proj.weight", "proj.bias"]
    assert len(ctx.runner.requests) == 2
    # without inputs: as for the latest call
    assert ctx.metadata("Projection", [4]).params["proj.weight"].shape == (4, 5)
    reply = ctx.run("Projection", init_args=[4], inputs=[wide])
    weight, bias = reply.params["proj.weight"].numpy(), reply.params["proj.bias"].numpy()  # the grader's draw
    assert np.allclose(reply.outputs[0][0], wide @ weight.T + bias)


def test_is_a_construction_without_lazy_modules_described_once_whatever_the_inputs(solution_text):
    ctx = Context(runner=CountingRunner(namespace(solution_text, "eager_shapes")))
    for T in (3, 5):
        ctx.metadata("TransformerBlock", [8, 2, 12], inputs=[np.ones((2, T, 8), np.float32)])
    ctx.metadata("TransformerBlock", [8, 2, 12])
    assert len(ctx.runner.requests) == 1 and not ctx.metadata("TransformerBlock", [8, 2, 12]).lazy


def test_is_a_lazy_module_without_inputs_described_on_probe_inputs():
    """An interface check sends no inputs: the child calls the module on sizes its constructor was given."""
    reply = execute(Run(target="Projection", init_args=[6], call=False), namespace(LAZY, "lazy_probe"))
    assert isinstance(reply, RunReply) and reply.params["proj.weight"].shape == (6, 6)
    assert reply.modules["proj"]["type"] == "Linear"
    reply = execute(Run(target="RefusesProbes", init_args=[3], call=False), namespace(LAZY, "lazy_refuses"))
    assert isinstance(reply, ErrorReply) and reply.kind == "ValueError"
    assert "lazy modules could not be initialised" in reply.message and "takes 7 features" in reply.message


def test_does_a_lazy_module_that_cannot_be_initialised_get_a_message_not_a_crash():
    runner = InProcessRunner(namespace(LAZY, "lazy_unused"))
    with pytest.raises(SubmissionRaised) as raised:
        runner.request(Run(target="NeverCalled", init_args=[4], inputs=[np.ones((2, 3), np.float32)]), 30)
    assert "lazy modules could not be initialised: unused.weight, unused.bias still have no shape" in str(raised.value)
    with pytest.raises(SubmissionRaised) as raised:
        runner.request(Run(target="Projection", init_args=[4], inputs=[np.ones((2, 3), np.int64)]), 30)
    assert "lazy modules could not be initialised: a first call failed" in str(raised.value)


def test_does_a_classifier_with_lazy_modules_train():
    found = namespace(styled_source(style("lazy_linear")), "lazy_train")
    gen = np.random.default_rng(0)
    x = gen.integers(1, 20, size=(32, 6)).astype(np.int64)
    kwargs = dict(vocab_size=20, max_len=6, num_classes=2, embed_dim=8, num_heads=2, ff_dim=8)
    reply = execute(Train(target="TransformerClassifier", init_kwargs=kwargs, inputs=[x], targets=x[:, 0] % 2,
                          loss="cross_entropy", epochs=1, batch_size=8, lr=1e-2, seed=0), found)
    assert isinstance(reply, TrainReply), reply
    assert reply.state["blocks.0.attn.q_proj.weight"].shape == (8, 8)
    assert isinstance(decode(encode(reply)), TrainReply)


# --- what a reply carries -----------------------------------------------------------------------------------

class Tagged(torch.Tensor):
    """A tensor subclass, as a submission might return."""


OUTPUTS = {
    "parameter": lambda x: torch.nn.Parameter(x.clone()),
    "subclass": lambda x: x.as_subclass(Tagged),
    "transposed": lambda x: x.t().contiguous().t(),
    "channels_last": lambda x: x.reshape(1, 2, 3, 4).contiguous(memory_format=torch.channels_last).reshape(2, 12),
    "requires_grad": lambda x: x.clone().requires_grad_(),
    "expanded": lambda x: x[:1].expand(2, 12),
    "sparse": lambda x: x.to_sparse(),
    "bfloat16": lambda x: x.bfloat16(),
}


@pytest.mark.parametrize("style", sorted(OUTPUTS))
def test_does_an_output_in_this_form_travel_as_its_values(style):
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    make = OUTPUTS[style]
    reply = decode(encode(execute(Run(target="f", inputs=[x]), {"f": make})), expect=RunReply)
    expected = make(torch.from_numpy(x)).detach()
    expected = expected.to_dense() if expected.is_sparse else expected
    assert reply.structure == "Tensor" and np.array_equal(reply.outputs[0][0], expected.float().numpy())


def test_is_an_output_the_grader_cannot_read_named_by_its_dtype():
    """A complex output travels as its dtype only: the checks say the dtype is wrong."""
    reply = decode(encode(execute(Run(target="f", inputs=[np.ones(3, np.float32)]),
                                  {"f": lambda x: x.to(torch.complex64)})), expect=RunReply)
    assert reply.dtypes == ["complex64"] and reply.outputs == [[None]]


def test_does_a_state_the_grader_cannot_read_give_an_error_reply():
    class Complex(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("phase", torch.ones(2, dtype=torch.complex64))

    reply = execute(Run(target="Complex", init_args=[], call=False), {"Complex": Complex})
    assert isinstance(reply, ErrorReply) and "cannot read" in reply.message


def test_does_torchscript_compile_from_a_cell():
    source = "import torch\n\n@torch.jit.script\ndef twice(x: torch.Tensor) -> torch.Tensor:\n    return 2 * x\n"
    found = namespace(source, "script")
    assert torch.equal(found["twice"](torch.ones(2)), torch.full((2,), 2.0))


def test_does_the_child_answer_a_reply_it_cannot_encode_with_an_error_not_an_exit():
    from autograder.child import _encoded

    reply = decode(_encoded(RunReply(outputs=[[object()]])))
    assert isinstance(reply, ErrorReply) and "could not read back what your code returned" in reply.message
