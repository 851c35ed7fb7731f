"""Does the attention-inside-CNNs exercise's grader give full marks to correct code (the reference and correct
code written differently), zero to the stub, and lose points (with the right named hint, in the mistaken part
only) for each known mistake?"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ROOT, failed, grade_source_in_process, stub_source
from mistake_edits import Mutation, edit_problems, mutated_source
from mistake_edits.cnn_attention import (
    CNN_ATTENTION, CNN_ATTENTION_CHECK_BUGS, CNN_ATTENTION_DRAFT, CNN_ATTENTION_FROZEN,
)

from autograder.checks import CheckFailure, Status
from autograder.exercises import cnn_attention as public
from autograder.exercises.cnn_attention import hidden
from autograder.exercises.cnn_attention import reference as ref
from autograder.exercises import get_exercise
from autograder.grading import grade_path

SOLUTION = ROOT / "solutions" / "cnn_attention.py"
EXERCISE = get_exercise("cnn_attention")
TRAINING = "cnn.training"
SE, CHANNEL, SPATIAL, CBAM, SELF, CNN = public.PARTS

KNOWN = CNN_ATTENTION + CNN_ATTENTION_CHECK_BUGS


def source(mutation: Mutation) -> str:
    return mutated_source(mutation, SOLUTION)


def test_are_the_mutations_edits_of_unique_lines_of_the_solution():
    assert {m.name for m in CNN_ATTENTION} == {entry[0] for entry in CNN_ATTENTION_DRAFT}
    assert not edit_problems(KNOWN + (CNN_ATTENTION_FROZEN,), SOLUTION, [c.name for c in EXERCISE.checks])


def test_do_the_checks_add_up_to_100_with_training_about_20():
    assert sum(c.points for c in EXERCISE.checks) == 100
    assert EXERCISE.check(TRAINING).points == 20 and EXERCISE.check(TRAINING).hidden
    assert [c.part for c in EXERCISE.checks] == sorted((c.part for c in EXERCISE.checks), key=EXERCISE.parts.index)
    assert {p.name for p in EXERCISE.contracts} == set(EXERCISE.parts)


def test_does_the_reference_pass_every_check():
    report = grade_source_in_process(SOLUTION.read_text(), exercise="cnn_attention")
    assert failed(report).keys() == {TRAINING}, {k: v.message for k, v in failed(report).items()}
    assert report.score == report.max_score - EXERCISE.check(TRAINING).points
    assert not report.grader_errors


def test_does_the_stub_score_zero_without_crashing():
    report = grade_source_in_process(stub_source(SOLUTION.read_text()), exercise="cnn_attention")
    assert report.score == 0
    assert not report.grader_errors
    assert all("not implemented yet" in r.message for r in report.results if r.status == Status.ERROR)
    assert all(r.status in (Status.ERROR, Status.SKIPPED) for r in report.results)


def test_do_the_switch_tables_name_every_mistake_of_the_reference():
    """Each wrong value of each switch of the float64 reference has its hint (and so a values check names it)."""
    tables = [(ref.SE_SWITCHES, hidden.SE_SWITCHES), (ref.CHANNEL_SWITCHES, hidden.CHANNEL_SWITCHES),
              (ref.SPATIAL_SWITCHES, hidden.SPATIAL_SWITCHES), (ref.SELF_SWITCHES, hidden.SELF_SWITCHES),
              (ref.CNN_SWITCHES, hidden.CNN_SWITCHES),
              ({"arrangement": ref.CBAM_SWITCHES["arrangement"]}, hidden.CBAM_SWITCHES)]
    for theirs, ours in tables:
        for switch, values in theirs.items():
            assert {v for v, _ in ours[switch]} == set(values[1:]), switch
            assert all(hint for _, hint in ours[switch])


# --- correct code written differently -------------------------------------------------------------------------

ALTERNATIVES = {
    "adaptive_pooling": (
        ("squeezed = x.mean((2, 3), keepdim=True)", "squeezed = F.adaptive_avg_pool2d(x, 1)"),
        ("avg_desc = x.mean((2, 3), keepdim=True)", "avg_desc = F.adaptive_avg_pool2d(x, 1)"),
        ("max_desc = x.amax((2, 3), keepdim=True)", "max_desc = F.adaptive_max_pool2d(x, 1)"),
        ("pooled = x.mean((2, 3))", "pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)")),
    "max_instead_of_amax": (
        ("x.amax(1, keepdim=True)]", "torch.max(x, dim=1, keepdim=True).values]"),
        ("max_desc = x.amax((2, 3), keepdim=True)", "max_desc = x.flatten(2).max(-1).values[:, :, None, None]")),
    "einsum_over_positions": (
        ("scores = torch.bmm(q, k)", "scores = torch.einsum('bid,bdj->bij', q, k)"),
        ("attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, H, W)",
         "attended = torch.einsum('bij,bcj->bci', weights, v).reshape(B, C, H, W)")),
    "einsum_1x1_convolutions": (
        ("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))",
         "h = torch.einsum('oc,bcxy->boxy', self.fc1.weight[:, :, 0, 0], squeezed) + self.fc1.bias[:, None, None]\n"
         "        weights = torch.sigmoid(torch.einsum('oc,bcxy->boxy', self.fc2.weight[:, :, 0, 0], F.relu(h))"
         " + self.fc2.bias[:, None, None])"),
        ("q = self.query(x).view(B, -1, N).transpose(1, 2)",
         "q = (torch.einsum('oc,bcn->bon', self.query.weight[:, :, 0, 0], x.reshape(B, C, N))"
         " + self.query.bias[:, None]).transpose(1, 2)"),
        ("k = self.key(x).view(B, -1, N)",
         "k = torch.einsum('oc,bcn->bon', self.key.weight[:, :, 0, 0], x.reshape(B, C, N)) + self.key.bias[:, None]"),
        ("v = self.value(x).view(B, C, N)",
         "v = torch.einsum('oc,bcn->bon', self.value.weight[:, :, 0, 0], x.reshape(B, C, N)) + self.value.bias[:, None]")),
    "functional_spatial_convolution": (
        ("weights = torch.sigmoid(self.conv(pooled))",
         "weights = torch.sigmoid(F.conv2d(pooled, self.conv.weight, padding=self.conv.padding))"),),
    # softmax ignores a constant added to a row: the key's bias changes nothing, and has no gradient
    "key_bias_left_out": (("k = self.key(x).view(B, -1, N)", "k = F.conv2d(x, self.key.weight).view(B, -1, N)"),),
    "key_bias_times_zero": (("k = self.key(x).view(B, -1, N)",
                             "k = F.conv2d(x, self.key.weight, self.key.bias * 0).view(B, -1, N)"),),
    # an odd kernel's k // 2 zero padding, written as padding="same"
    "padding_same": (("nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)",
                      'nn.Conv2d(2, 1, kernel_size, padding="same", bias=False)'),
                     ("nn.Conv2d(c_in, width, 3, padding=1)", 'nn.Conv2d(c_in, width, 3, padding="same")')),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_does_a_correct_implementation_written_differently_score_full_marks(name):
    report = grade_source_in_process(source(Mutation(name, ALTERNATIVES[name], ())), exercise="cnn_attention")
    assert failed(report).keys() == {TRAINING}, {k: v.message for k, v in failed(report).items()}


# One module under two names: the shared MLP also wrapped in a Sequential (its tensors are drawn once, sent under
# both names); and the common CBAM style of one Sequential MLP and no fc1, fc2 (a naming deviation: the interface
# only, the values mapped by shape).
SEQUENTIAL_ALIAS = (
    ("        self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP, shared by both descriptors\n",
     "        self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP, shared by both descriptors\n"
     "        self.mlp = nn.Sequential(self.fc1, nn.ReLU(), self.fc2)\n"),
    ("avg_out = self.fc2(F.relu(self.fc1(avg_desc)))", "avg_out = self.mlp(avg_desc)"),
    ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.mlp(max_desc)"),
)
SEQUENTIAL_ONLY = (
    ("        self.fc1 = nn.Conv2d(channels, hidden, 1)\n        self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP",
     "        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))  # one MLP"),
    ("avg_out = self.fc2(F.relu(self.fc1(avg_desc)))", "avg_out = self.mlp(avg_desc)"),
    ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.mlp(max_desc)"),
)


def test_does_a_module_registered_under_two_names_score_full_marks():
    report = grade_source_in_process(source(Mutation("alias", SEQUENTIAL_ALIAS, ())), exercise="cnn_attention")
    assert failed(report).keys() == {TRAINING}, {k: v.message for k, v in failed(report).items()}


def test_does_one_sequential_mlp_cost_the_interface_only_without_a_two_mlp_hint():
    report = grade_source_in_process(source(Mutation("sequential", SEQUENTIAL_ONLY, ())), exercise="cnn_attention")
    lost = failed(report)
    assert lost.keys() == {"channel.interface", TRAINING}, {k: v.message for k, v in lost.items()}
    assert lost["channel.interface"].hint is None and "no sub-module 'fc1'" in lost["channel.interface"].message


# Linear layers where the contract has 1x1 convolutions: the same map of the channels, charged by the interface
# checks only (the references view an (out, in) weight as (out, in, 1, 1)).
LINEAR_LAYERS = (
    ("self.fc1 = nn.Conv2d(channels, hidden, 1)\n        self.fc2 = nn.Conv2d(hidden, channels, 1)\n",
     "self.fc1 = nn.Linear(channels, hidden)\n        self.fc2 = nn.Linear(hidden, channels)\n"),
    ("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))",
     "weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed.flatten(1)))))[:, :, None, None]"),
    ("self.query = nn.Conv2d(channels, inner, 1)\n        self.key = nn.Conv2d(channels, inner, 1)\n"
     "        self.value = nn.Conv2d(channels, channels, 1)",
     "self.query = nn.Linear(channels, inner)\n        self.key = nn.Linear(channels, inner)\n"
     "        self.value = nn.Linear(channels, channels)"),
    ("q = self.query(x).view(B, -1, N).transpose(1, 2)", "t = x.flatten(2).transpose(1, 2)  # (B, N, C)\n"
     "        q = self.query(t)"),
    ("k = self.key(x).view(B, -1, N)", "k = self.key(t).transpose(1, 2)"),
    ("v = self.value(x).view(B, C, N)", "v = self.value(t).transpose(1, 2)"),
)


def test_do_linear_layers_instead_of_1x1_convolutions_cost_the_interface_only():
    report = grade_source_in_process(source(Mutation("linear_layers", LINEAR_LAYERS, ())), exercise="cnn_attention")
    lost = failed(report)
    assert lost.keys() == {"se.interface", "self.interface", TRAINING}, {k: v.message for k, v in lost.items()}
    assert "fc1 is a Linear; expected Conv2d" in lost["se.interface"].message


# --- what the checks are made of ---------------------------------------------------------------------------

def test_is_the_two_mlp_channel_attention_of_the_hidden_reference_the_mutated_solution():
    """The one named mistake that is no switch of the reference: computed here, on the mutation's own code."""
    namespace = {"__name__": "two_mlps"}
    exec(compile(source(next(m for m in CNN_ATTENTION if m.name == "channel_two_mlps")), "two_mlps", "exec"), namespace)
    gen = torch.Generator().manual_seed(0)
    model = namespace["CBAM"](16, 4, 3).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    x = torch.randn(2, 16, 5, 6, generator=gen, dtype=torch.float64) + 1.0
    p = {name: value.detach() for name, value in model.named_parameters()}
    with torch.no_grad():
        out, w = model(x)
        expected = hidden.cbam(p, x, mlps="two_max")
        torch.testing.assert_close(out, expected[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(w, expected[1], rtol=1e-10, atol=1e-10)
        assert not torch.allclose(out, ref.cbam(p, x)[0])
        # with one MLP, the hidden module's functions are the reference's own
        for attention in ("cbam", "se"):
            cnn = namespace["AttentionCNN"](2, 3, attention=attention, widths=(8, 16)).double()
            params = {name: value.detach() for name, value in cnn.named_parameters()}
            images = torch.randn(2, 2, 9, 8, generator=gen, dtype=torch.float64)
            mine = hidden.attention_cnn(params, images, attention=attention, widths=(8, 16), return_attention=True)
            theirs = ref.attention_cnn(params, images, attention=attention, widths=(8, 16), return_attention=True)
            torch.testing.assert_close(mine[0], theirs[0], rtol=0, atol=0)
        cnn = namespace["AttentionCNN"](2, 3, attention="cbam", widths=(8, 16)).double()
        params = {name: value.detach() for name, value in cnn.named_parameters()}
        logits, maps = cnn(images, return_attention=True)
        expected_logits, expected_maps = hidden.attention_cnn(params, images, attention="cbam", widths=(8, 16),
                                                              return_attention=True, mlps="two_max")
        torch.testing.assert_close(logits, expected_logits, rtol=1e-10, atol=1e-10)
        for a, b in zip(maps, expected_maps):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_do_the_stages_weights_travel_flattened_after_the_logits():
    from autograder.requests import Run, execute

    namespace = {}
    exec(compile(SOLUTION.read_text(), str(SOLUTION), "exec"), namespace)
    images = np.random.default_rng(0).standard_normal((2, 1, 8, 12)).astype(np.float32)
    for attention, shapes in (("cbam", [(2, 1, 8, 12), (2, 1, 4, 6)]), ("none", [])):
        reply = execute(Run(target="AttentionCNN", init_args=[1, 5], init_kwargs={"attention": attention, "widths": (4, 8)},
                            inputs=[images], call_kwargs={"return_attention": True}), namespace)
        logits, maps = public.attention_outputs(reply, len(shapes), "forward")
        assert logits.shape == (2, 5) and [m.shape for m in maps] == shapes
    with pytest.raises(CheckFailure, match="a list of 2 tensors"):
        public.attention_outputs(reply, 2, "forward")


def test_does_the_training_data_come_as_writable_copies_of_the_digits():
    data = EXERCISE.task.load(EXERCISE.profiles["cpu"])
    assert data.train_inputs[0].shape[1:] == (1, 8, 8) and data.train_inputs[0].dtype == np.float32
    assert all(a.flags.writeable for a in (*data.train_inputs, data.train_targets, *data.test_inputs, data.test_targets))
    kwargs = EXERCISE.training_kwargs(EXERCISE.profiles["cpu"])
    assert kwargs["in_channels"] == 1 and kwargs["num_classes"] == 10 and kwargs["attention"] == "cbam"
    assert EXERCISE.profiles["gpu"].data == "mnist5k"


# --- the child process, and training (each a few seconds) -------------------------------------------------------------------

def test_does_the_child_process_grade_a_mistake_like_the_in_process_runner(tmp_path):
    mutation = next(m for m in CNN_ATTENTION if m.name == "channel_two_mlps")
    path = tmp_path / "sub.py"
    path.write_text(source(mutation))
    child = grade_path(path, "cnn_attention", skip_training=True, device="cpu")
    inproc = grade_source_in_process(path.read_text(), exercise="cnn_attention")
    assert [(r.name, r.status, r.points, r.hint) for r in child.results] == \
           [(r.name, r.status, r.points, r.hint) for r in inproc.results]


def test_does_the_reference_pass_the_training_check_on_the_cpu_profile():
    report = grade_source_in_process(SOLUTION.read_text(), exercise="cnn_attention", skip_training=False,
                                     names=[TRAINING])
    result = report.results[0]
    assert result.status == Status.PASSED, result.message
    assert report.artifacts["training"]["scored_with"] == "the contract"


def test_do_features_that_never_learn_fail_the_training_check():
    report = grade_source_in_process(source(CNN_ATTENTION_FROZEN), exercise="cnn_attention", skip_training=False,
                                     names=[TRAINING, "cnn.gradients"])
    lost = failed(report)
    assert set(CNN_ATTENTION_FROZEN.failing) <= lost.keys()
    assert "below the threshold" in lost[TRAINING].message


def test_does_a_gradient_check_name_the_batchnorm_when_training_mode_changes_the_function():
    """A BatchNorm2d normalises by the batch's statistics in training mode: the gradient check's message says so,
    rather than guessing at dropout."""
    source = SOLUTION.read_text()
    init = "        self.fc2 = nn.Conv2d(hidden, channels, 1)\n        ### END SOLUTION"
    squeeze = "        squeezed = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): squeeze, the mean over H, W\n"
    assert source.count(init) == 1 and source.count(squeeze) == 1
    source = source.replace(init, init.replace("\n", "\n        self.bn = nn.BatchNorm2d(channels, affine=False)\n", 1))
    source = source.replace(squeeze, "        squeezed = self.bn(x.mean((2, 3), keepdim=True))\n")
    message = failed(grade_source_in_process(source, exercise="cnn_attention", names=["se.gradients"]))[
        "se.gradients"].message
    assert "your BatchNorm2d normalises by each batch's own statistics in training mode" in message
    assert "dropout" not in message


def test_is_a_failing_part_inside_a_failing_part_charged_once():
    """The channel attention and CBAM both compute unknown functions: the grader's CBAM stands in for the whole
    inside the CNN, so neither is charged there."""
    source = SOLUTION.read_text()
    edits = (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(avg_out + max_out) * 0.9"),
             ("out, weights = self.spatial(refined)", "out, weights = self.spatial(refined * 0.9)"))
    for old, new in edits:
        assert source.count(old) == 1
        source = source.replace(old, new)
    lost = failed(grade_source_in_process(source, exercise="cnn_attention"))
    assert lost.keys() - {TRAINING} and all(n.startswith(("channel.", "cbam.")) for n in lost.keys() - {TRAINING}), \
        {n: r.message for n, r in lost.items()}
