"""Hidden checks of the attention-inside-CNNs exercise: values and gradients against the float64 reference
(``cnn_attention.reference``, written apart from the solution) and PyTorch's built-ins, and training.

Left out of the student install, together with the reference. Each part's known mistakes are one switch table
(``*_SWITCHES``: the reference's switch -> [(wrong value, hint)], built by ``switch_table`` from the
declarations in ``cnn_attention.mistakes``), used alike by its values checks (to name a
mistake), its gradient check and the training check. A part built from others (CBAM from ``ChannelAttention``
and ``SpatialAttention``; ``AttentionCNN`` from the attention it is given) is judged on its own logic: what its
parts compute, found by their probes (``PROBES``, ``Context.function``), is the base of its comparisons.

One known mistake is no switch of the reference: a channel attention with two MLPs, one per descriptor. Its
second MLP is read from the submission (``CHANNEL_SECOND_MLP``: optional contract entries, found by
``param_map`` under the names ``fc1_max``/``fc2_max`` or as the one spare 1x1 convolution of each shape), and
``channel_attention`` here computes it (``mlps``), so that it is charged to ``ChannelAttention`` only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import CheckFailure
from ...compare import as64, close
from ...context import Context, outputs
from ...mistakes import switch_table
from ...stand_ins import StandIn
from . import reference as ref
from . import (  # the public part: its checks, cases and helpers
    CBAM, CBAM_CASES, CHANNEL, CHECKS, CLASSES, CNN, CNN_CASES, GATE_CASES, SE, SELF, SELF_CASES, SPATIAL,
    SPATIAL_CASES, attention_outputs, cbam_params, cnn_case, cnn_images, cnn_kwargs, cnn_params, feature_maps, label,
    mlp_params, run_module, self_params, spatial_params, training_kwargs,
)
from .mistakes import (
    CBAM_PARALLEL, CBAM_SPATIAL_FIRST, CHANNEL_NO_MAX, CHANNEL_NO_MEAN, CHANNEL_SIGMOID_EACH, CHANNEL_TWO_MLPS,
    CNN_DISCARDED, CNN_MAX_HEAD, CNN_POOL_FIRST, NO_RELU, SE_MAX_POOL, SE_NO_SIGMOID, SE_NOT_APPLIED, SELF_COLUMN,
    SELF_GAMMA, SELF_SCALED, SELF_SOFTMAX_QUERIES, SELF_SWAPPED, SPATIAL_NO_SIGMOID, SPATIAL_SWAPPED,
)
from ...kit.common import (
    GradientCase, Reference, Trainable, as_inputs64, contract_params, gradient_check, judge, training_check,
)


# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

# The two-MLP channel attention is no switch of the reference (its declaration has none): this module computes it
# (``channel_attention`` below), the second MLP serving the max descriptor, or the mean's (computable where it
# exists): the declared mistake under both values of ``mlps``.
TWO_MLPS = tuple(dataclasses.replace(CHANNEL_TWO_MLPS, switch=("mlps", value)) for value in ("two_max", "two_mean"))

SE_SWITCHES = switch_table(SE_MAX_POOL, SE_NO_SIGMOID, SE_NOT_APPLIED, NO_RELU)
CHANNEL_SWITCHES = switch_table(CHANNEL_NO_MAX, CHANNEL_NO_MEAN, CHANNEL_SIGMOID_EACH, NO_RELU, *TWO_MLPS)
SPATIAL_SWITCHES = switch_table(SPATIAL_SWAPPED, SPATIAL_NO_SIGMOID)
CBAM_SWITCHES = switch_table(CBAM_SPATIAL_FIRST, CBAM_PARALLEL)
SELF_SWITCHES = switch_table(SELF_SOFTMAX_QUERIES, SELF_GAMMA, SELF_SWAPPED, SELF_COLUMN, SELF_SCALED)
CNN_SWITCHES = switch_table(CNN_POOL_FIRST, CNN_MAX_HEAD, CNN_DISCARDED)

# The parts an AttentionCNN is built from, by its attention: their probes give the base of its comparisons.
CNN_PARTS = {"none": (), "se": (SE,), "cbam": (CHANNEL, SPATIAL, CBAM), "self": (SELF,)}


# ---------------------------------------------------------------------------------------------------------
# The reference, with the two-MLP channel attention added (the reference's own functions otherwise)

SECOND = ("fc1_max", "fc2_max")  # where a second MLP's layers sit among the parameters


def second_mlp_params(channels: int, reduction: int, prefix: str = "") -> dict:
    """Optional contract entries: a second MLP, beside fc1 and fc2, of their shapes (mapped where it exists)."""
    shapes = mlp_params(channels, reduction, prefix)
    return {f"{prefix}{second}.{local}": shapes[f"{prefix}{first}.{local}"]
            for first, second in zip(("fc1", "fc2"), SECOND) for local in ("weight", "bias")}


def channel_shapes(channels: int, reduction: int, prefix: str = "") -> dict:
    return {**mlp_params(channels, reduction, prefix), **second_mlp_params(channels, reduction, prefix)}


def cbam_shapes(channels: int, reduction: int, kernel_size: int, prefix: str = "") -> dict:
    return {**cbam_params(channels, reduction, kernel_size, prefix),
            **second_mlp_params(channels, reduction, f"{prefix}channel.")}


def cnn_shapes(case: dict) -> dict:
    shapes = cnn_params(case["in_channels"], case["num_classes"], case["attention"], case["widths"])
    if case["attention"] == "cbam":
        for i, width in enumerate(case["widths"]):
            shapes.update(second_mlp_params(width, 16, f"attentions.{i}.channel."))
    return shapes


def _second_mlp(p: dict, d: torch.Tensor, prefix: str) -> torch.Tensor:
    h = ref.conv1x1(d, p[ref.name(prefix, f"{SECOND[0]}.weight")], p[ref.name(prefix, f"{SECOND[0]}.bias")])
    return ref.conv1x1(h.clamp(min=0.0), p[ref.name(prefix, f"{SECOND[1]}.weight")], p[ref.name(prefix, f"{SECOND[1]}.bias")])


def channel_attention(p, x, *, mlps="one", prefix="", branches="both", sigmoid="sum", relu=True):
    """The reference's channel attention; ``mlps="two_max"`` (``"two_mean"``): the max (mean) descriptor goes
    through a second MLP (``fc1_max``, ``fc2_max``) instead of the shared one."""
    if mlps == "one":
        return ref.channel_attention(p, x, branches=branches, sigmoid=sigmoid, relu=relu, prefix=prefix)
    shared, second = (lambda d: ref.mlp(p, d, prefix, relu)), (lambda d: _second_mlp(p, d, prefix))
    mean_mlp, max_mlp = (shared, second) if mlps == "two_max" else (second, shared)
    outs = []
    if branches in ("both", "mean"):
        outs.append(mean_mlp(ref.spatial_mean(x)))
    if branches in ("both", "max"):
        outs.append(max_mlp(ref.spatial_max(x)))
    weights = sum(ref.logistic(o) for o in outs) if sigmoid == "each" else ref.logistic(sum(outs))
    return x * weights, weights


def cbam(p, x, *, arrangement="sequential", prefix="", mlps="one", **switches):
    """The reference's CBAM, with the channel attention above when it has two MLPs."""
    if mlps == "one":
        return ref.cbam(p, x, arrangement=arrangement, prefix=prefix, **switches)
    channel_kw = {k: switches[k] for k in ref.CHANNEL_SWITCHES if k in switches}
    spatial_kw = {k: switches[k] for k in ref.SPATIAL_SWITCHES if k in switches}

    def channel(h):
        return channel_attention(p, h, mlps=mlps, prefix=ref.name(prefix, "channel"), **channel_kw)

    def spatial(h):
        return ref.spatial_attention(p, h, prefix=ref.name(prefix, "spatial"), **spatial_kw)

    if arrangement == "sequential":
        return spatial(channel(x)[0])
    if arrangement == "spatial_first":
        refined, weights = spatial(x)
        return channel(refined)[0], weights
    _, channel_weights = channel(x)
    _, weights = spatial(x)
    return x * channel_weights * weights, weights


def attention_cnn(p, images, *, attention, widths, return_attention=False, pool_first=False, head_pool="mean",
                  discard=False, mlps="one", **switches):
    """The reference's classifier; with CBAM stages whose channel attention has two MLPs, the same loop over
    ``cbam`` above (``ref.attention_cnn`` takes the reference's own attention functions only)."""
    if mlps == "one":
        return ref.attention_cnn(p, images, attention=attention, widths=widths, return_attention=return_attention,
                                 pool_first=pool_first, head_pool=head_pool, discard=discard, **switches)
    if attention != "cbam":
        raise TypeError(f"attention_cnn: mlps applies to attention 'cbam', not {attention!r}")
    x, maps = images, []
    for i in range(len(widths)):
        x = ref.conv2d(x, p[f"convs.{i}.weight"], p[f"convs.{i}.bias"], padding=1).clamp(min=0.0)
        if pool_first:
            x = ref.max_pool2x2(x)
        out, w = cbam(p, x, prefix=f"attentions.{i}", mlps=mlps, **switches)
        maps.append(w)
        x = x if discard else out
        if not pool_first:
            x = ref.max_pool2x2(x)
    pooled = (ref.spatial_mean(x) if head_pool == "mean" else ref.spatial_max(x))[:, :, 0, 0]  # (B, widths[-1])
    logits = torch.einsum("bc,kc->bk", pooled, p["head.weight"]) + p["head.bias"]
    return (logits, maps) if return_attention else logits


POINTWISE = ("fc1", "fc2", *SECOND, "query", "key", "value")  # the contract's 1x1 convolutions


def pointwise(p: dict) -> dict:
    """The parameters as the reference takes them: a 1x1 convolution's weight (out, in, 1, 1), also where the
    submission has a linear layer's (out, in), the same map of the channels (the interface check charges the
    layer's type; its values and gradients are still judged, through this view)."""
    return {name: (value[:, :, None, None] if value.dim() == 2 and name.endswith(".weight")
                   and name[: -len(".weight")].rpartition(".")[2] in POINTWISE else value)
            for name, value in p.items()}


def _flat(result) -> list:
    """(logits, [w_1, ...]) -> [logits, w_1, ...]."""
    logits, maps = result
    return [logits, *maps]


SE_REFERENCE = Reference(lambda p, xs, **kw: ref.squeeze_excitation(pointwise(p), xs[0], **kw), SE_SWITCHES)
CHANNEL_REFERENCE = Reference(lambda p, xs, **kw: channel_attention(pointwise(p), xs[0], **kw), CHANNEL_SWITCHES)
SPATIAL_REFERENCE = Reference(lambda p, xs, **kw: ref.spatial_attention(p, xs[0], **kw), SPATIAL_SWITCHES)
CBAM_REFERENCE = Reference(lambda p, xs, **kw: cbam(pointwise(p), xs[0], **kw), CBAM_SWITCHES, parts=(CHANNEL, SPATIAL))
SELF_REFERENCE = Reference(lambda p, xs, **kw: ref.self_attention_2d(pointwise(p), xs[0], **kw), SELF_SWITCHES)


def cnn_reference(attention: str, widths, maps: bool = False) -> Reference:
    """The logits (``maps``: and each stage's weights, flattened after them) of an AttentionCNN."""
    widths = tuple(widths)
    if maps:
        compute = (lambda p, xs, **kw: _flat(attention_cnn(pointwise(p), xs[0], attention=attention, widths=widths,
                                                           return_attention=True, **kw)))
    else:
        compute = lambda p, xs, **kw: attention_cnn(pointwise(p), xs[0], attention=attention, widths=widths, **kw)  # noqa: E731
    return Reference(compute, CNN_SWITCHES, parts=CNN_PARTS[attention])


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes, on inputs where each of its known mistakes shows (``Context.function``):
# a bottleneck of 8 units, H, W > 1 and different, 16 channels for the self-attention (inner 2).

def _identify(ctx: Context, part: str, reference: Reference, args: tuple, kwargs: dict, shape: tuple, shapes: dict,
              seed: int):
    x = feature_maps(seed, shape)
    reply, got = run_module(ctx, part, args, kwargs, x, None, seed=seed)
    p = contract_params(reply, shapes, part)
    return reference.identify(got, p, as_inputs64([x]), ctx.base(*reference.parts))


def se_probe(ctx: Context):
    return _identify(ctx, SE, SE_REFERENCE, (32,), {"reduction": 4}, (2, 32, 5, 6), mlp_params(32, 4), 9000)


def channel_probe(ctx: Context):
    return _identify(ctx, CHANNEL, CHANNEL_REFERENCE, (32,), {"reduction": 4}, (2, 32, 5, 6), channel_shapes(32, 4), 9001)


def spatial_probe(ctx: Context):
    return _identify(ctx, SPATIAL, SPATIAL_REFERENCE, (), {}, (2, 6, 5, 7), spatial_params(7), 9002)


def cbam_probe(ctx: Context):
    return _identify(ctx, CBAM, CBAM_REFERENCE, (32,), {"reduction": 4}, (2, 32, 5, 6), cbam_shapes(32, 4, 7), 9003)


def self_probe(ctx: Context):
    return _identify(ctx, SELF, SELF_REFERENCE, (16,), {}, (2, 16, 3, 5), self_params(16, 8), 9004)


PROBES = {SE: se_probe, CHANNEL: channel_probe, SPATIAL: spatial_probe, CBAM: cbam_probe, SELF: self_probe}


# ---------------------------------------------------------------------------------------------------------
# Stand-ins: each attention computed by the grader in place of a failing one inside CBAM and the CNN
# (``autograder.stand_ins``), so that those are judged on what they do themselves

def _on_x(reference: Reference):
    """``reference``'s (out, weights) on a module's one argument x."""
    return lambda p, xs, module: reference.outputs(p, xs[:1])


STAND_INS = {
    SE: StandIn(SE, ("x",), _on_x(SE_REFERENCE), entries=tuple(mlp_params(32, 4)), within=(CNN,)),
    CHANNEL: StandIn(CHANNEL, ("x",), _on_x(CHANNEL_REFERENCE), entries=tuple(mlp_params(32, 4)), within=(CBAM, CNN)),
    SPATIAL: StandIn(SPATIAL, ("x",), _on_x(SPATIAL_REFERENCE), entries=tuple(spatial_params(7)), within=(CBAM, CNN)),
    CBAM: StandIn(CBAM, ("x",), _on_x(CBAM_REFERENCE), entries=tuple(cbam_params(32, 4, 7)), within=(CNN,)),
    SELF: StandIn(SELF, ("x",), _on_x(SELF_REFERENCE), entries=tuple(self_params(16, 8)), within=(CNN,)),
}


# ---------------------------------------------------------------------------------------------------------
# Built-ins composed in float64: a second opinion beside the reference, where PyTorch has the pieces

def builtin_squeeze_excitation(p: dict, x: torch.Tensor) -> list:
    w = torch.sigmoid(F.conv2d(F.relu(F.conv2d(F.adaptive_avg_pool2d(x, 1), p["fc1.weight"], p["fc1.bias"])),
                               p["fc2.weight"], p["fc2.bias"]))
    return [x * w, w]


def builtin_channel_attention(p: dict, x: torch.Tensor) -> list:
    def mlp(d):
        return F.conv2d(F.relu(F.conv2d(d, p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"])

    w = torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))
    return [x * w, w]


def builtin_spatial_attention(p: dict, x: torch.Tensor) -> list:
    weight = p["conv.weight"]
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], dim=1)
    w = torch.sigmoid(F.conv2d(pooled, weight, padding=weight.shape[-1] // 2))
    return [x * w, w]


BUILTINS = {SE: builtin_squeeze_excitation, CHANNEL: builtin_channel_attention, SPATIAL: builtin_spatial_attention}


def second_opinion(label_: str, part: str, got: list, p: dict, x: torch.Tensor, reference: Reference,
                   contract: dict) -> None:
    """The outputs against the same computation made of PyTorch's own layers in float64 (only when the contract's
    parameters all mapped: otherwise the reference's verdict stands alone)."""
    if not all(name in p for name in contract):
        return
    builtin = BUILTINS[part](pointwise(p), x)
    expected = reference.outputs(p, [x])
    assert all(close(a, b, atol=1e-9) for a, b in zip(builtin, expected)), f"{part}: reference and torch disagree"
    if not all(close(g, b) for g, b in zip(got, builtin) if np.shape(g) == tuple(b.shape)):
        raise CheckFailure(f"{label_}: differs from the same computation made of torch's own layers")


def compare_module(ctx: Context, part: str, reference: Reference, cases: list, shapes_of, seed: int,
                   select: tuple[int, ...] | None = None, builtin: bool = False) -> None:
    """Judge ``part`` on each case ``(x shape, args, kwargs)`` with the grader's weights: the outputs ``select``
    (all by default) against the reference, given what the parts it is built from compute."""
    for i, (shape, args, kwargs) in enumerate(cases):
        x = feature_maps(seed + i, shape)
        reply, got = run_module(ctx, part, args, kwargs, x, None, seed=seed + i)
        contract = shapes_of(args, kwargs)
        p = contract_params(reply, contract, part)
        what = f"{label(part, args, kwargs)} on x of shape {shape}"
        mine = got if select is None else [got[j] for j in select]
        which = "" if select is None else f": {' and '.join(['out', 'weights'][j] for j in select)}"
        judge(ctx, f"{what}{which}", mine, reference, p, as_inputs64([x]), select=select)
        if builtin and not ctx.base(*reference.parts):
            second_opinion(what, part, got, p, as64(x), reference, {k: v for k, v in contract.items()
                                                                     if not k.startswith(SECOND)})


def gate_cases() -> list:
    return [(shape, (shape[1],), kwargs) for shape, kwargs in GATE_CASES]


def _mlp_args(args, kwargs):
    return args[0], kwargs.get("reduction", 16)


# ---------------------------------------------------------------------------------------------------------
# Values

@CHECKS.check("se.values", SE, 5, "out and weights match a float64 reference and torch's own layers", kind="values",
              hidden=True)
def se_values(ctx: Context) -> None:
    compare_module(ctx, SE, SE_REFERENCE, gate_cases(), lambda a, k: mlp_params(*_mlp_args(a, k)), 200, builtin=True)


@CHECKS.check("channel.values", CHANNEL, 5, "out and weights match a float64 reference and torch's own layers",
              kind="values", hidden=True)
def channel_values(ctx: Context) -> None:
    compare_module(ctx, CHANNEL, CHANNEL_REFERENCE, gate_cases(), lambda a, k: channel_shapes(*_mlp_args(a, k)), 210,
                   builtin=True)


def _kernel(args) -> int:
    return args[0] if args else 7


@CHECKS.check("spatial.values", SPATIAL, 5, "out and weights match a float64 reference and torch's own layers",
              kind="values", hidden=True)
def spatial_values(ctx: Context) -> None:
    cases = [(shape, args, {}) for shape, args in SPATIAL_CASES]
    compare_module(ctx, SPATIAL, SPATIAL_REFERENCE, cases, lambda a, k: spatial_params(_kernel(a)), 220, builtin=True)


def _cbam_shapes(args, kwargs):
    return cbam_shapes(args[0], kwargs.get("reduction", 16), kwargs.get("kernel_size", 7))


@CHECKS.check("cbam.values", CBAM, 5, "channel attention, then spatial attention on its output: a float64 reference",
              kind="values", hidden=True)
def cbam_values(ctx: Context) -> None:
    cases = [(shape, (shape[1],), kwargs) for shape, kwargs in CBAM_CASES]
    compare_module(ctx, CBAM, CBAM_REFERENCE, cases, _cbam_shapes, 230)


def _self_cases() -> list:
    return [(shape, (shape[1],), kwargs) for shape, kwargs in SELF_CASES]


def _self_shapes(args, kwargs):
    return self_params(args[0], kwargs.get("reduction", 8))


@CHECKS.check("self.values", SELF, 5, "out = x + gamma * attended matches a float64 reference", kind="values",
              hidden=True)
def self_values(ctx: Context) -> None:
    compare_module(ctx, SELF, SELF_REFERENCE, _self_cases(), _self_shapes, 240, select=(0,))


@CHECKS.check("self.weights", SELF, 3, "the weights (row-major positions, softmax over the keys) match the reference",
              kind="values", hidden=True)
def self_weights(ctx: Context) -> None:
    compare_module(ctx, SELF, SELF_REFERENCE, _self_cases(), _self_shapes, 250, select=(1,))


@CHECKS.check("cnn.values", CNN, 8, "logits match a float64 reference for every attention (and the returned weights)",
              kind="values", hidden=True)
def cnn_values(ctx: Context) -> None:
    for attention in ("none", "se", "cbam", "self"):
        for i, (shape, widths) in enumerate(CNN_CASES[:2]):
            kwargs = cnn_kwargs(attention, widths)
            seed = 260 + 10 * i
            images = cnn_images(seed, shape)
            case = cnn_case({"in_channels": shape[1], "num_classes": CLASSES, **kwargs})
            what = f"{label(CNN, (shape[1], CLASSES), kwargs)} on images of shape {shape}"
            reference = cnn_reference(attention, widths)
            reply = ctx.run(CNN, init_args=[shape[1], CLASSES], init_kwargs=kwargs, inputs=[images], seed=seed,
                            contract=cnn_shapes(case))
            (logits,) = outputs(reply, 1, f"{what}: forward")
            p = contract_params(reply, cnn_shapes(case), CNN)
            judge(ctx, f"{what}: logits", [logits], reference, p, as_inputs64([images]))
            reply = ctx.run(CNN, init_args=[shape[1], CLASSES], init_kwargs=kwargs, inputs=[images], seed=seed,
                            call_kwargs={"return_attention": True}, contract=cnn_shapes(case))
            try:
                logits, maps = attention_outputs(reply, 0 if attention == "none" else len(widths),
                                                 f"{what}: forward(images, return_attention=True)")
            except CheckFailure:
                continue  # what it returns is the attention check's to charge; its logits were judged above
            if maps is None:
                judge(ctx, f"{what}: logits with return_attention=True", [logits], reference, p,
                      as_inputs64([images]))
            else:  # the stages' weights travelled (see ``attention_outputs``)
                judge(ctx, f"{what}: logits and weights with return_attention=True", [logits, *maps],
                      cnn_reference(attention, widths, maps=True), p, as_inputs64([images]))


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

@CHECKS.check("se.gradients", SE, 2, "gradients of fc1, fc2 and x match float64 autograd", kind="gradients", hidden=True)
def se_gradients(ctx: Context) -> None:
    shape, kwargs = GATE_CASES[0]
    gradient_check(ctx, GradientCase(SE, label(SE, (shape[1],), kwargs), SE_REFERENCE, [feature_maps(300, shape)], ("x",),
                                     mlp_params(shape[1], kwargs["reduction"]), init_args=[shape[1]],
                                     init_kwargs=kwargs, seed=300))


@CHECKS.check("channel.gradients", CHANNEL, 2, "gradients of the shared MLP and of x match float64 autograd",
              kind="gradients", hidden=True)
def channel_gradients(ctx: Context) -> None:
    shape, kwargs = GATE_CASES[0]
    gradient_check(ctx, GradientCase(CHANNEL, label(CHANNEL, (shape[1],), kwargs), CHANNEL_REFERENCE,
                                     [feature_maps(310, shape)], ("x",), channel_shapes(shape[1], kwargs["reduction"]),
                                     init_args=[shape[1]], init_kwargs=kwargs, seed=310))


@CHECKS.check("spatial.gradients", SPATIAL, 2, "gradients of conv and of x match float64 autograd", kind="gradients",
              hidden=True)
def spatial_gradients(ctx: Context) -> None:
    shape, args = SPATIAL_CASES[2]
    gradient_check(ctx, GradientCase(SPATIAL, label(SPATIAL, args, {}), SPATIAL_REFERENCE, [feature_maps(320, shape)],
                                     ("x",), spatial_params(_kernel(args)), init_args=list(args), seed=320))


@CHECKS.check("cbam.gradients", CBAM, 1, "every parameter's gradient matches float64 autograd", kind="gradients",
              hidden=True)
def cbam_gradients(ctx: Context) -> None:
    shape, kwargs = CBAM_CASES[0]
    args = (shape[1],)
    gradient_check(ctx, GradientCase(CBAM, label(CBAM, args, kwargs), CBAM_REFERENCE, [feature_maps(330, shape)], ("x",),
                                     _cbam_shapes(args, kwargs), init_args=list(args), init_kwargs=kwargs, seed=330,
                                     # the channel attention's gradients flow back through the spatial attention
                                     charged_by={"channel.gradients": ("channel.",),
                                                 "spatial.gradients": ("channel.", "spatial.")}))


@CHECKS.check("self.gradients", SELF, 2, "gradients of query, key, value, gamma and x match float64 autograd "
              "(the key's bias has none)", kind="gradients", hidden=True)
def self_gradients(ctx: Context) -> None:
    shape, kwargs = SELF_CASES[0]
    args = (shape[1],)
    gradient_check(ctx, GradientCase(SELF, label(SELF, args, kwargs), SELF_REFERENCE, [feature_maps(340, shape)], ("x",),
                                     _self_shapes(args, kwargs), init_args=list(args), init_kwargs=kwargs, seed=340))


GRADIENT_CNN = ((3, 2, 9, 10), [8, 16])


@CHECKS.check("cnn.gradients", CNN, 2, "every parameter's gradient matches float64 autograd (CBAM stages)",
              kind="gradients", hidden=True)
def cnn_gradients(ctx: Context) -> None:
    shape, widths = GRADIENT_CNN
    kwargs = cnn_kwargs("cbam", widths)
    case = cnn_case({"in_channels": shape[1], "num_classes": CLASSES, **kwargs})
    behind = ("attentions.", "convs.")  # the convolutions' gradients flow back through the attentions
    gradient_check(ctx, GradientCase(CNN, label(CNN, (shape[1], CLASSES), kwargs), cnn_reference("cbam", widths),
                                     [cnn_images(350, shape)], ("images",), cnn_shapes(case),
                                     init_args=[shape[1], CLASSES], init_kwargs=kwargs, seed=350,
                                     charged_by={check: behind for check in
                                                 ("channel.gradients", "spatial.gradients", "cbam.gradients")}))


# ---------------------------------------------------------------------------------------------------------
# Training

def _trained_reference(kwargs: dict) -> Reference:
    case = cnn_case(kwargs)
    return cnn_reference(case["attention"], case["widths"])


TRAINABLE = Trainable(target=CNN, contract=lambda kwargs: cnn_shapes(cnn_case(kwargs)), reference=_trained_reference)


@CHECKS.check("cnn.training", CNN, 20, "AttentionCNN(attention='cbam') trains to the calibrated test accuracy on "
              "held-out images", kind="training", hidden=True)
def cnn_training(ctx: Context) -> None:
    training_check(ctx, TRAINABLE, training_kwargs(ctx.profile))
