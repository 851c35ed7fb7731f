"""Does the float64 reference of the attention-in-CNNs exercise agree with the solution and with PyTorch's
built-ins, and does each of its switches reproduce a known mistake, one that can be told apart?"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from float64 import TOL, assert_same, differ
from mistake_edits.cnn_attention import CNN_ATTENTION_DRAFT as CNN_ATTENTION
from mistake_edits.cnn_attention import CNN_ATTENTION_NO_SWITCH as NO_SWITCH

from autograder.exercises.cnn_attention import reference as ref

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "cnn_attention.py"

# (B, C, H, W): non-square and odd sizes; C = 4 gives a hidden width of 1 (reduction 16) and an inner width of 1
# (reduction 8); C = 20 hidden 1, inner 2; C = 40 hidden 2, inner 5.
SHAPES = [(2, 4, 5, 7), (3, 20, 6, 6), (2, 40, 3, 5), (1, 16, 4, 9)]
# (images shape, widths): the last feature map is larger than 1 x 1 in the first two.
CNN_CASES = [((2, 3, 9, 12), (32, 64)), ((2, 2, 16, 11), (8, 16, 24)), ((1, 1, 7, 5), (8, 16))]
KINDS = ("none", "se", "cbam", "self")


def solution_namespace(source: str | None = None) -> dict:
    namespace = {"__name__": "cnn_attention_solution"}
    exec(compile(SOLUTION.read_text() if source is None else source, str(SOLUTION), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def ns():
    return solution_namespace()


# module kind -> (build from the solution's namespace and C, the reference function)
MODULES = {
    "se": (lambda ns, C: ns["SqueezeExcitation"](C), ref.squeeze_excitation),
    "channel": (lambda ns, C: ns["ChannelAttention"](C), ref.channel_attention),
    "spatial": (lambda ns, C: ns["SpatialAttention"](), ref.spatial_attention),
    "cbam": (lambda ns, C: ns["CBAM"](C), ref.cbam),
    "self": (lambda ns, C: ns["SelfAttention2d"](C), ref.self_attention_2d),
}
SWITCHES = {"se": ref.SE_SWITCHES, "channel": ref.CHANNEL_SWITCHES, "spatial": ref.SPATIAL_SWITCHES,
            "cbam": ref.CBAM_SWITCHES, "self": ref.SELF_SWITCHES}
# Which AttentionCNN attention holds each module kind.
IN_CNN = {"se": ("se",), "channel": ("cbam",), "spatial": ("cbam",), "cbam": ("cbam",), "self": ("self",),
          "cnn": ("se", "cbam", "self")}


def randomise(model, seed: int, x: torch.Tensor | None = None) -> dict:
    """Draw every parameter at random in float64 (weights N(0, 1/fan_in), biases and gamma N(0, 0.25), so that
    pre-activations take both signs); gamma is kept away from 0 and 1. Given the model's input ``x``, draw again
    until every bottleneck (each call of an ``fc1``) has a positive unit before its ReLU: a dead bottleneck gives
    the same gate whatever its input, and would hide the mistakes made before it."""
    for attempt in range(100):
        p = _draw(model, seed + 1000 * attempt)
        if x is None or _lively(model, x):
            return p
    raise AssertionError("no draw of the parameters keeps every bottleneck alive")


def _draw(model, seed: int) -> dict:
    model.double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            std = 0.5 if param.dim() <= 1 else 1.0 / math.sqrt(param[0].numel())
            while True:
                param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64) * std)
                if not name.endswith("gamma") or (0.2 < param.abs().item() and abs(param.item() - 1) > 0.2):
                    break
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def _lively(model, x) -> bool:
    seen = []
    hooks = [m.register_forward_hook(lambda module, args, out: seen.append(out))
             for name, m in model.named_modules() if name.split(".")[-1] in ("fc1", "fc1_max")]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return all(bool((out > 0).any()) for out in seen)


def inputs(shape, seed: int) -> torch.Tensor:
    """Random images whose channels have means of their own (as feature maps do), so that the descriptors of a
    channel attention are not all near 0 and its bottleneck's ReLU sees both signs."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.randn(shape[:2] + (1,) * (len(shape) - 2), generator=gen, dtype=torch.float64)
    return torch.randn(shape, generator=gen, dtype=torch.float64) + offsets


def run_cnn(ns, images_shape, widths, attention, seed, source_ns=None, return_attention=True):
    """(solution model's output, parameters, images) for AttentionCNN."""
    model = (source_ns or ns)["AttentionCNN"](images_shape[1], 5, attention=attention, widths=widths)
    images = inputs(images_shape, seed + 1)
    p = randomise(model, seed, images)
    with torch.no_grad():
        return model(images, return_attention=return_attention), p, images, model


# --- (a) the reference with its default switches is the solution --------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_does_the_reference_module_match_the_solution(ns, kind, shape):
    build, reference = MODULES[kind]
    model = build(ns, shape[1])
    x = inputs(shape, 7)
    p = randomise(model, 10 * SHAPES.index(shape) + sorted(MODULES).index(kind), x)
    with torch.no_grad():
        assert_same(model(x), reference(p, x))


@pytest.mark.parametrize("reduction, kernel_size", [(4, 3), (2, 5)])
def test_does_the_reference_match_the_solution_with_other_reductions_and_kernels(ns, reduction, kernel_size):
    x = inputs((2, 12, 5, 6), 3)
    cases = [(ns["SqueezeExcitation"](12, reduction), ref.squeeze_excitation),
             (ns["ChannelAttention"](12, reduction), ref.channel_attention),
             (ns["SpatialAttention"](kernel_size), ref.spatial_attention),
             (ns["CBAM"](12, reduction, kernel_size), ref.cbam),
             (ns["SelfAttention2d"](12, reduction), ref.self_attention_2d)]
    for i, (model, reference) in enumerate(cases):
        p = randomise(model, i, x)
        with torch.no_grad():
            assert_same(model(x), reference(p, x))


@pytest.mark.parametrize("images_shape, widths", CNN_CASES, ids=str)
@pytest.mark.parametrize("attention", KINDS)
def test_does_the_reference_classifier_match_the_solution(ns, attention, images_shape, widths):
    out, p, images, model = run_cnn(ns, images_shape, widths, attention, seed=11)
    assert_same(out, ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=True))
    with torch.no_grad():
        logits = model(images)
    assert_same(logits, ref.attention_cnn(p, images, attention=attention, widths=widths))


# --- (b) every switch changes the output ----------------------------------------------------------------------

def undetectable(kind: str, switch: str, shape) -> bool:
    """Where a mistake cannot change anything: 1/sqrt(inner) is 1 when inner is 1; the column-major order is the
    row-major one when H or W is 1."""
    B, C, H, W = shape
    if kind == "self" and switch == "scale":
        return max(1, C // 8) == 1
    return switch == "positions" and min(H, W) == 1


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_does_each_switch_of_a_module_change_its_output(ns, kind, shape):
    build, reference = MODULES[kind]
    x = inputs(shape, 8)
    p = randomise(build(ns, shape[1]), 5, x)
    right = reference(p, x)
    for switch, values in SWITCHES[kind].items():
        if switch == "relu" and max(1, shape[1] // 16) == 1:
            continue  # one hidden unit: the ReLU shows only on draws where its sign varies (the grader uses 8)
        for value in values[1:]:
            wrong = reference(p, x, **{switch: value})
            assert differ(wrong, right) != undetectable(kind, switch, shape), (switch, value)


def test_are_the_named_undetectable_cases_indeed_undetectable(ns):
    """The grader must use SelfAttention2d with C >= 16 (inner >= 2) and maps with H, W > 1 to see these."""
    p = randomise(ns["SelfAttention2d"](4), 1)
    x = inputs((2, 4, 1, 5), 2)
    right = ref.self_attention_2d(p, x)
    assert not differ(ref.self_attention_2d(p, x, scale="sqrt_d"), right)
    assert not differ(ref.self_attention_2d(p, x, positions="column"), right)


@pytest.mark.parametrize("shape", [s for s in SHAPES if min(s[2:]) > 1], ids=str)
def test_does_column_major_order_change_the_weights_but_not_the_output(ns, shape):
    p = randomise(ns["SelfAttention2d"](shape[1]), 3)
    x = inputs(shape, 4)
    (out, w), (out_c, w_c) = ref.self_attention_2d(p, x), ref.self_attention_2d(p, x, positions="column")
    torch.testing.assert_close(out_c, out, **TOL)
    assert not torch.allclose(w_c, w, atol=1e-6)
    H, W = shape[2:]
    order = torch.arange(H * W).reshape(H, W).t().reshape(-1)  # column-major position -> row-major index
    torch.testing.assert_close(w_c, w[:, order][:, :, order], **TOL)


@pytest.mark.parametrize("images_shape, widths", CNN_CASES[:2], ids=str)
@pytest.mark.parametrize("attention", KINDS[1:])
def test_does_each_switch_of_the_classifier_change_its_output(ns, attention, images_shape, widths):
    _, p, images, _ = run_cnn(ns, images_shape, widths, attention, seed=13)
    right = ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=True)
    switches = {**ref.CNN_SWITCHES, **ref.ATTENTION_SWITCHES[attention]}
    for switch, values in switches.items():
        if switch == "relu" and max(widths) // 16 <= 1:
            continue  # one hidden unit per stage: the ReLU shows only where its sign varies
        for value in values[1:]:
            wrong = ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=True,
                                      **{switch: value})
            assert differ(wrong, right), (switch, value)
            if switch != "positions":  # the column-major order changes the weights only
                logits = ref.attention_cnn(p, images, attention=attention, widths=widths, **{switch: value})
                assert differ(logits, right[0]), (switch, value)


def test_is_head_pooling_undetectable_on_a_1x1_map_and_are_misplaced_switches_refused(ns):
    images_shape, widths = CNN_CASES[2]
    _, p, images, _ = run_cnn(ns, images_shape, widths, "se", seed=2)
    right = ref.attention_cnn(p, images, attention="se", widths=widths)
    assert not differ(ref.attention_cnn(p, images, attention="se", widths=widths, head_pool="max"), right)
    with pytest.raises(TypeError):
        ref.attention_cnn(p, images, attention="se", widths=widths, scale="sqrt_d")


# --- (c) the reference's building blocks are PyTorch's ----------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 6, 6), (3, 2, 2, 3), (1, 1, 1, 1)], ids=str)
def test_do_the_reference_convolutions_and_pooling_match_torch(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    C = shape[1]
    w1 = torch.randn(5, C, 1, 1, generator=gen, dtype=torch.float64)
    b1 = torch.randn(5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ref.conv1x1(x, w1, b1), F.conv2d(x, w1, b1), **TOL)
    torch.testing.assert_close(ref.conv1x1(x, w1), F.conv2d(x, w1), **TOL)
    for k, padding in ((3, 1), (7, 3), (5, 2), (3, 0), (1, 0)):
        if min(shape[2:]) + 2 * padding < k:
            continue
        w = torch.randn(4, C, k, k, generator=gen, dtype=torch.float64)
        b = torch.randn(4, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(ref.conv2d(x, w, b, padding), F.conv2d(x, w, b, padding=padding), **TOL)
        torch.testing.assert_close(ref.conv2d(x, w, padding=padding), F.conv2d(x, w, padding=padding), **TOL)
    if min(shape[2:]) >= 2:
        torch.testing.assert_close(ref.max_pool2x2(x), F.max_pool2d(x, 2), **TOL)
    torch.testing.assert_close(ref.spatial_mean(x), x.mean((2, 3), keepdim=True), **TOL)
    torch.testing.assert_close(ref.spatial_max(x), F.adaptive_max_pool2d(x, 1), **TOL)
    torch.testing.assert_close(ref.logistic(x), torch.sigmoid(x), **TOL)
    torch.testing.assert_close(ref.softmax(x, 3), torch.softmax(x, 3), **TOL)


# --- (d) self-attention: rows sum to 1, identity at gamma 0 -------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_do_self_attention_weights_sum_to_one_and_is_it_the_identity_at_gamma_zero(ns, shape):
    model = ns["SelfAttention2d"](shape[1]).double()
    assert model.gamma.item() == 0.0
    x = inputs(shape, 9)
    with torch.no_grad():
        out, w = model(x)
    assert w.shape == (shape[0], shape[2] * shape[3], shape[2] * shape[3])
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=torch.float64), **TOL)
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    p = randomise(model, 4)
    out, w = ref.self_attention_2d(p, x)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=torch.float64), **TOL)
    p["gamma"] = torch.zeros(1, dtype=torch.float64)
    torch.testing.assert_close(ref.self_attention_2d(p, x)[0], x, rtol=0, atol=0)


# --- (e), (f) the classifier's interface --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "SE", "non-local", "bam", None])
def test_is_an_unknown_attention_refused(ns, name):
    with pytest.raises(ValueError):
        ns["AttentionCNN"](3, 10, attention=name)
    with pytest.raises(ValueError):
        ref.attention_cnn({}, inputs((1, 3, 4, 4), 0), attention=name, widths=(4,))


@pytest.mark.parametrize("images_shape, widths", CNN_CASES, ids=str)
@pytest.mark.parametrize("attention", KINDS)
def test_does_return_attention_give_one_map_per_stage(ns, attention, images_shape, widths):
    (logits, maps), _, images, model = run_cnn(ns, images_shape, widths, attention, seed=3)
    B, _, H, W = images_shape
    assert logits.shape == (B, 5)
    assert isinstance(maps, list) and len(maps) == (0 if attention == "none" else len(widths))
    for i, (w, width) in enumerate(zip(maps, widths)):
        h, v = H // 2 ** i, W // 2 ** i
        expected = {"se": (B, width, 1, 1), "cbam": (B, 1, h, v), "self": (B, h * v, h * v)}[attention]
        assert w.shape == expected, (i, w.shape)
    with torch.no_grad():
        assert isinstance(model(images), torch.Tensor)
    assert len(model.convs) == len(widths)
    assert len(model.attentions) == (0 if attention == "none" else len(widths))


# --- the draft's known mistakes are the reference's switches --------------------------------------------------

def mutated(entry) -> str:
    name, edits = entry[0], entry[1]
    original = text = SOLUTION.read_text()
    for old, new in edits:
        assert original.count(old) == 1, f"{name}: {old!r} occurs {original.count(old)} times in the solution"
        assert text.count(old) == 1, f"{name}: {old!r} occurs {text.count(old)} times after the earlier edits"
        text = text.replace(old, new)
    return text


def test_is_the_draft_well_formed():
    names = [entry[0] for entry in CNN_ATTENTION]
    assert len(set(names)) == len(names)
    for name, edits, failing, hint, switches in CNN_ATTENTION:
        kind = name.split("_")[0]
        assert kind in IN_CNN, name
        assert edits and failing and hint
        if switches is None:
            assert name in NO_SWITCH
        else:
            allowed = ref.CNN_SWITCHES if kind == "cnn" else SWITCHES[kind]
            assert all(k in allowed and v in allowed[k][1:] for k, v in switches.items()), name
    assert set(NO_SWITCH) == {entry[0] for entry in CNN_ATTENTION if entry[4] is None}


MODULE_SHAPES = [(2, 4, 5, 7), (3, 20, 6, 6), (2, 40, 3, 5)]


@pytest.mark.parametrize("entry", [e for e in CNN_ATTENTION if e[4] is not None], ids=lambda e: e[0])
def test_does_each_mutated_solution_match_the_switched_reference(ns, entry):
    name, _, _, _, switches = entry
    kind = name.split("_")[0]
    bad = solution_namespace(mutated(entry))
    if kind != "cnn":
        build, reference = MODULES[kind]
        for shape in MODULE_SHAPES:
            model = build(bad, shape[1])
            x = inputs(shape, 22)
            p = randomise(model, 21, x)
            with torch.no_grad():
                got = model(x)
            assert_same(got, reference(p, x, **switches))
            if not undetectable(kind, next(iter(switches)), shape):
                assert differ(got, reference(p, x)), (name, shape)
    for attention in IN_CNN[kind]:
        for images_shape, widths in CNN_CASES[:2]:
            got, p, images, _ = run_cnn(ns, images_shape, widths, attention, seed=23, source_ns=bad)
            expected = ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=True,
                                         **switches)
            assert_same(got, expected)
            assert differ(got, ref.attention_cnn(p, images, attention=attention, widths=widths,
                                                 return_attention=True)), (name, attention)


def test_do_two_mlps_match_the_reference_only_when_the_second_is_a_copy_of_the_first(ns):
    entry = next(e for e in CNN_ATTENTION if e[0] == "channel_two_mlps")
    bad = solution_namespace(mutated(entry))
    for shape in MODULE_SHAPES:
        model = bad["ChannelAttention"](shape[1])
        x = inputs(shape, 32)
        p = randomise(model, 31, x)
        assert {"fc1_max.weight", "fc1_max.bias", "fc2_max.weight", "fc2_max.bias"} <= set(p)
        with torch.no_grad():
            assert differ(model(x), ref.channel_attention(p, x))
            for layer in ("fc1", "fc2"):
                getattr(model, f"{layer}_max").load_state_dict(getattr(model, layer).state_dict())
            assert_same(model(x), ref.channel_attention(p, x))


def test_does_pooling_over_space_in_the_spatial_attention_crash_its_convolution(ns):
    entry = next(e for e in CNN_ATTENTION if e[0] == "spatial_pool_over_space")
    bad = solution_namespace(mutated(entry))
    model = bad["SpatialAttention"]().double()
    for shape in MODULE_SHAPES:
        with pytest.raises(RuntimeError):
            model(inputs(shape, 1))
    with torch.no_grad():
        _, w = model(inputs((2, 1, 5, 6), 1))  # one channel: it runs, with one gate for the whole map
    assert w.shape == (2, 1, 1, 1)


# --- the flawed sample makes exactly its three named mistakes ---------------------------------------------------

FLAWED = ROOT / "assignments" / "samples" / "cnn_attention_flawed.py"
FLAWED_SWITCHES = {"se": {"pool": "max"}, "channel": {}, "spatial": {}, "cbam": {"arrangement": "parallel"},
                   "self": {"scale": "sqrt_d"}, "none": {}}


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_does_the_flawed_sample_match_the_reference_with_its_three_mistakes(kind):
    sample = {"__name__": "cnn_attention_flawed"}
    exec(compile(FLAWED.read_text(), str(FLAWED), "exec"), sample)
    build, reference = MODULES[kind]
    for shape in MODULE_SHAPES:
        model = build(sample, shape[1])
        x = inputs(shape, 41)
        p = randomise(model, 42, x)
        with torch.no_grad():
            assert_same(model(x), reference(p, x, **FLAWED_SWITCHES[kind]))
    attention = {"channel": "none", "spatial": "none"}.get(kind, kind)
    images_shape, widths = CNN_CASES[0]
    got, p, images, _ = run_cnn(None, images_shape, widths, attention, seed=43, source_ns=sample)
    assert_same(got, ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=True,
                                       **FLAWED_SWITCHES[attention]))
