"""The attention-inside-CNNs exercise (course Example 3): checks for each part of the contract.

Contract (``CONTRACTS``, the notebook's table is made from it): ``SqueezeExcitation``, CBAM's
``ChannelAttention`` and ``SpatialAttention``, ``CBAM``, ``SelfAttention2d`` (the non-local block in SAGAN's
form) and ``AttentionCNN``; images are (B, C, H, W). Every attention module returns ``(out, weights)``. This
module holds the contract, the cases and the public checks (interface, shapes, behaviour); the known mistakes,
with their hints, are declared in ``cnn_attention.mistakes``; the hidden checks in ``cnn_attention.hidden``
compare values and gradients with ``cnn_attention.reference`` (float64, written apart from the solution) and
train the classifier. A student install has this module and ``mistakes`` only.
"""

from __future__ import annotations

import re

import numpy as np

from ...checks import CheckFailure, CheckSet
from ...compare import close, max_error, require_shape
from ...context import Context, outputs, randn, rng
from ...contract import Build, Module, Part, check_interface
from ...data import images
from ...forbidden import ATTENTION_BUILTINS, ForbiddenSet
from ...param_map import map_params
from ...runner import SubmissionRaised
from ...tasks import TrainingTask
from .. import Exercise, TrainingProfile
from .mistakes import (
    CHANNEL_HIDDEN_ZERO, CHANNEL_NO_SIGMOID, CHANNEL_REDUCTION_IGNORED, CHANNEL_SIGMOID_EACH, CHANNEL_TWO_MLPS,
    CNN_UNKNOWN, MISTAKES, SE_HIDDEN_ZERO, SE_NO_SIGMOID, SE_NOT_APPLIED, SE_REDUCTION_IGNORED, SELF_GAMMA, SELF_GAMMA_INIT, SELF_SOFTMAX_QUERIES, SPATIAL_NO_SIGMOID, SPATIAL_OVER_SPACE,
)

SE, CHANNEL, SPATIAL, CBAM, SELF, CNN = (
    "SqueezeExcitation", "ChannelAttention", "SpatialAttention", "CBAM", "SelfAttention2d", "AttentionCNN",
)
PARTS = (SE, CHANNEL, SPATIAL, CBAM, SELF, CNN)
CHECKS = CheckSet(PARTS)


def hidden_units(channels: int, reduction: int) -> int:
    """The bottleneck width of SE's and CBAM's MLP and of the self-attention's query and key."""
    return max(1, channels // reduction)


# --- feature maps --------------------------------------------------------------------------------------------

def feature_maps(seed: int, shape: tuple) -> np.ndarray:
    """(B, C, H, W) float32: noise around a mean of each channel's own (as feature maps have), so that the
    descriptors of a channel attention differ from channel to channel and its bottleneck's ReLU sees both signs."""
    gen = rng(seed)
    offsets = randn(gen, shape[0], shape[1], 1, 1)  # (B, C, 1, 1)
    return randn(gen, *shape) + offsets


def label(part: str, args: tuple, kwargs: dict) -> str:
    return Build(tuple(args), dict(kwargs)).label(part)


def run_module(ctx: Context, part: str, args: tuple, kwargs: dict, x: np.ndarray, weights_shape: tuple | None,
               **kw):
    """Run an attention module on ``x``; its outputs must be two float32 tensors. With ``weights_shape``, the
    shapes are checked too (out as x's); without, they are left to the shapes check."""
    what = label(part, args, kwargs)
    reply = ctx.run(part, init_args=list(args), init_kwargs=dict(kwargs), inputs=[x], **kw)
    out, w = outputs(reply, 2, f"{what}.forward")
    if weights_shape is not None:
        require_shape(f"{what}: out for x of shape {x.shape}", out, x.shape)
        require_shape(f"{what}: weights for x of shape {x.shape}", w, weights_shape)
    return reply, [out, w]


def channel_weights_shape(shape) -> tuple:
    return (shape[0], shape[1], 1, 1)


def spatial_weights_shape(shape) -> tuple:
    return (shape[0], 1, shape[2], shape[3])


def self_weights_shape(shape) -> tuple:
    return (shape[0], shape[2] * shape[3], shape[2] * shape[3])


# --- contract shapes (the hidden checks' references take the parameters under these names) -------------------

def mlp_params(channels: int, reduction: int, prefix: str = "") -> dict:
    h = hidden_units(channels, reduction)
    return {f"{prefix}fc1.weight": (h, channels, 1, 1), f"{prefix}fc1.bias": (h,),
            f"{prefix}fc2.weight": (channels, h, 1, 1), f"{prefix}fc2.bias": (channels,)}


def spatial_params(kernel_size: int, prefix: str = "") -> dict:
    return {f"{prefix}conv.weight": (1, 2, kernel_size, kernel_size)}


def cbam_params(channels: int, reduction: int, kernel_size: int, prefix: str = "") -> dict:
    return {**mlp_params(channels, reduction, f"{prefix}channel."), **spatial_params(kernel_size, f"{prefix}spatial.")}


def self_params(channels: int, reduction: int, prefix: str = "") -> dict:
    inner = hidden_units(channels, reduction)
    shapes = {}
    for name, out in (("query", inner), ("key", inner), ("value", channels)):
        shapes[f"{prefix}{name}.weight"], shapes[f"{prefix}{name}.bias"] = (out, channels, 1, 1), (out,)
    shapes[f"{prefix}gamma"] = (1,)
    return shapes


ATTENTIONS = ("none", "se", "cbam", "self")
CNN_DEFAULTS = dict(attention="cbam", widths=(32, 64))


def cnn_own_params(in_channels: int, num_classes: int, widths) -> dict:
    shapes = {}
    for i, (c_in, width) in enumerate(zip([in_channels, *widths[:-1]], widths)):
        shapes[f"convs.{i}.weight"], shapes[f"convs.{i}.bias"] = (width, c_in, 3, 3), (width,)
    shapes["head.weight"], shapes["head.bias"] = (num_classes, widths[-1]), (num_classes,)
    return shapes


def cnn_params(in_channels: int, num_classes: int, attention: str, widths) -> dict:
    """Every parameter of AttentionCNN, its attention modules' (built with their defaults) included."""
    shapes = cnn_own_params(in_channels, num_classes, widths)
    for i, width in enumerate(widths):
        prefix = f"attentions.{i}."
        if attention == "se":
            shapes.update(mlp_params(width, 16, prefix))
        elif attention == "cbam":
            shapes.update(cbam_params(width, 16, 7, prefix))
        elif attention == "self":
            shapes.update(self_params(width, 8, prefix))
    return shapes


def cnn_case(init_kwargs: dict) -> dict:
    """The sizes of ``AttentionCNN(**init_kwargs)``, with the contract's defaults."""
    k = {**CNN_DEFAULTS, **init_kwargs}
    return dict(in_channels=k["in_channels"], num_classes=k["num_classes"], attention=k["attention"],
                widths=tuple(k["widths"]))


# --- the contract ---------------------------------------------------------------------------------------------

def conv_module(path: str, c_in: int, c_out: int, kernel: int, padding: int, bias: bool, text: str) -> Module:
    """A stride-1 convolution; for an odd kernel with k // 2 padding, ``padding="same"`` is the same layer."""
    allowed = (padding, "same") if kernel % 2 == 1 and padding == kernel // 2 else padding
    return Module(path, "Conv2d", dict(in_channels=c_in, out_channels=c_out, kernel_size=kernel, stride=1,
                                       padding=allowed, dilation=1, groups=1, bias=bias), text)


def mlp_modules(channels: int, reduction: int) -> tuple[Module, ...]:
    h = hidden_units(channels, reduction)
    return (conv_module("fc1", channels, h, 1, 0, True, "nn.Conv2d(channels, hidden, 1)"),
            conv_module("fc2", h, channels, 1, 0, True, "nn.Conv2d(hidden, channels, 1)"))


def mlp_builds() -> tuple[Build, ...]:
    """C = 32 with reduction 4 (hidden 8), and C = 8 with the default reduction 16: fewer channels than the
    reduction, hidden = max(1, 8 // 16) = 1."""
    return tuple(Build((c,), kw, mlp_modules(c, kw.get("reduction", 16)), mlp_params(c, kw.get("reduction", 16)))
                 for c, kw in ((32, {"reduction": 4}), (8, {})))


SE_CONTRACT = Part(
    SE, "class", ("channels", "reduction"), "SqueezeExcitation(channels, reduction=16)", "forward(x (B, C, H, W))",
    "(out (B, C, H, W), weights (B, C, 1, 1))", mlp_builds(),
    "hidden = max(1, channels // reduction); weights = sigmoid(fc2(relu(fc1(mean of x over H, W)))); out = x * weights")
CHANNEL_CONTRACT = Part(
    CHANNEL, "class", ("channels", "reduction"), "ChannelAttention(channels, reduction=16)", "forward(x (B, C, H, W))",
    "(out (B, C, H, W), weights (B, C, 1, 1))", mlp_builds(),
    "one MLP fc2(relu(fc1(.))) shared by both descriptors; weights = sigmoid(mlp(mean over H, W) + mlp(max over "
    "H, W)); out = x * weights")


def spatial_build(kernel_size: int | None) -> Build:
    k = 7 if kernel_size is None else kernel_size
    conv = conv_module("conv", 2, 1, k, k // 2, False, "nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)")
    return Build(() if kernel_size is None else (kernel_size,), {}, (conv,), spatial_params(k))


SPATIAL_CONTRACT = Part(
    SPATIAL, "class", ("kernel_size",), "SpatialAttention(kernel_size=7)", "forward(x (B, C, H, W))",
    "(out (B, C, H, W), weights (B, 1, H, W))", (spatial_build(None), spatial_build(3)),
    "weights = sigmoid(conv(cat([mean over C, max over C], dim=1))), the mean first; out = x * weights")
CBAM_BUILD = Build((32,), {"reduction": 4, "kernel_size": 3},
                   (Module("channel", CHANNEL, text="ChannelAttention(channels, reduction)"),
                    Module("spatial", SPATIAL, text="SpatialAttention(kernel_size)")))
CBAM_CONTRACT = Part(
    CBAM, "class", ("channels", "reduction", "kernel_size"), "CBAM(channels, reduction=16, kernel_size=7)",
    "forward(x (B, C, H, W))", "(out (B, C, H, W), spatial weights (B, 1, H, W))", (CBAM_BUILD,),
    "sequential: refined, _ = channel(x); out, weights = spatial(refined)")


def self_build(channels: int, kwargs: dict) -> Build:
    r = kwargs.get("reduction", 8)
    inner = hidden_units(channels, r)
    modules = (conv_module("query", channels, inner, 1, 0, True, "nn.Conv2d(channels, inner, 1)"),
               conv_module("key", channels, inner, 1, 0, True, "nn.Conv2d(channels, inner, 1)"),
               conv_module("value", channels, channels, 1, 0, True, "nn.Conv2d(channels, channels, 1)"))
    return Build((channels,), kwargs, modules, self_params(channels, r))


SELF_CONTRACT = Part(
    SELF, "class", ("channels", "reduction"), "SelfAttention2d(channels, reduction=8)", "forward(x (B, C, H, W))",
    "(out (B, C, H, W), weights (B, H*W, H*W))",
    (self_build(32, {}), self_build(16, {"reduction": 4}), self_build(4, {})),
    "inner = max(1, channels // reduction); gamma = nn.Parameter(torch.zeros(1)); positions row-major "
    "(i = h * W + w); weights[b, i, j] = softmax over j of <query_i, key_j> (no scaling); out = x + gamma * attended")

CNN_BUILD_WIDTHS = [8, 16]
ATTENTION_TYPES = {"none": None, "se": SE, "cbam": CBAM, "self": SELF}


def cnn_build(attention: str) -> Build:
    widths = CNN_BUILD_WIDTHS
    modules = [Module("convs", "ModuleList", {"length": len(widths)},
                      "nn.ModuleList([nn.Conv2d(c_in, width, 3, padding=1) for each width])")]
    modules += [conv_module(f"convs.{i}", c_in, w, 3, 1, True, "") for i, (c_in, w) in enumerate(zip([3, *widths], widths))]
    kind = ATTENTION_TYPES[attention]
    modules.append(Module("attentions", "ModuleList", {"length": 0 if kind is None else len(widths)},
                          "nn.ModuleList of one attention per stage, built with its defaults (empty for 'none')"))
    if kind is not None:
        modules += [Module(f"attentions.{i}", kind) for i in range(len(widths))]
    modules.append(Module("head", "Linear", {"in_features": widths[-1], "out_features": 5, "bias": True},
                          "nn.Linear(widths[-1], num_classes)"))
    return Build((3, 5), {"attention": attention, "widths": list(widths)}, tuple(modules),
                 cnn_own_params(3, 5, widths))


CNN_CONTRACT = Part(
    CNN, "class", ("in_channels", "num_classes", "attention", "widths"),
    "AttentionCNN(in_channels, num_classes, attention='cbam', widths=(32, 64))",
    "forward(images (B, C, H, W), return_attention=False)",
    "logits (B, num_classes), or (logits, [each stage's weights]) with return_attention",
    tuple(cnn_build(a) for a in ATTENTIONS),
    "attention is 'none', 'se', 'cbam' or 'self' (any other name raises ValueError); per stage x = relu(conv(x)), "
    "x, w = attention(x), x = max_pool2d(x, 2); then the mean over H, W and head")

CONTRACTS = (SE_CONTRACT, CHANNEL_CONTRACT, SPATIAL_CONTRACT, CBAM_CONTRACT, SELF_CONTRACT, CNN_CONTRACT)


# ---------------------------------------------------------------------------------------------------------
# SqueezeExcitation and ChannelAttention: a gate per channel

# (B, C, H, W), constructor kwargs: hidden 8 on a non-square map with odd sides; fewer channels than the
# reduction (hidden = max(1, 8 // 16) = 1); the default reduction (hidden 3).
GATE_CASES = [((2, 32, 5, 7), {"reduction": 4}), ((3, 8, 3, 3), {}), ((2, 48, 6, 4), {})]


def gate_shapes(ctx: Context, part: str) -> None:
    for i, (shape, kwargs) in enumerate(GATE_CASES):
        run_module(ctx, part, (shape[1],), kwargs, feature_maps(i, shape), channel_weights_shape(shape), seed=i)


def require_gate(what: str, x, out, w, out_of_range_hint: str, weights_hint: str | None = None,
                 not_applied_hint: str | None = None) -> None:
    """Weights in [0, 1] (a sigmoid's range, 0 and 1 included for float32 saturation) and out = x * weights.
    ``weights_hint`` names weights in [0, 2] (two gates summed), ``out_of_range_hint`` any others."""
    low, high = float(np.min(w)), float(np.max(w))
    if not np.isfinite(w).all() or low < 0.0 or high > 1.0:
        raise CheckFailure(f"{what}: the weights range over [{low:.4g}, {high:.4g}]; a sigmoid gives values in (0, 1)",
                           hint=weights_hint if weights_hint and 0.0 <= low and high <= 2.0 else out_of_range_hint)
    err, index = max_error(out, x * w)
    if not close(out, x * w):
        raise CheckFailure(f"{what}: out differs from x * weights by up to {err:.3g} (at {index}): the weights must "
                           "rescale x", hint=not_applied_hint)


def gate_range(ctx: Context, part: str, hint: str, weights_hint: str | None = None,
               not_applied_hint: str | None = None) -> None:
    shape, kwargs = GATE_CASES[0]
    x = feature_maps(30, shape)
    _, (out, w) = run_module(ctx, part, (shape[1],), kwargs, x, channel_weights_shape(shape), seed=30)
    require_gate(label(part, (shape[1],), kwargs), x, out, w, hint, weights_hint, not_applied_hint)


def bottleneck_hint(ctx: Context, part: str, ignored: str, zero: str) -> str | None:
    """The named mistake a wrong bottleneck width is, read from ``fc1.weight`` in each construction of the
    contract: ``channels`` units (the reduction ignored), or none (``channels // reduction`` without max(1, .))."""
    for build in mlp_builds():
        channels, expected = build.args[0], build.params["fc1.weight"][0]
        try:
            reply = ctx.metadata(part, list(build.args), dict(build.kwargs))
        except Exception:  # noqa: BLE001 - a construction that fails is the interface check's message already
            return None
        shape = np.shape(reply.params.get("fc1.weight")) if "fc1.weight" in reply.params else ()
        hidden = shape[0] if len(shape) else None
        if hidden == 0:
            return zero
        if hidden == channels != expected:
            return ignored
    return None


def mlp_interface(ctx: Context, part: Part, ignored: str, zero: str) -> None:
    """``check_interface``, with the hint a wrong bottleneck width is."""
    try:
        check_interface(ctx, part)
    except CheckFailure as failure:
        raise CheckFailure(failure.message, hint=bottleneck_hint(ctx, part.name, ignored, zero)) from None


@CHECKS.check("se.interface", SE, 1, "fc1, fc2: 1x1 convolutions C -> max(1, C // reduction) -> C", kind="interface")
def se_interface(ctx: Context) -> None:
    mlp_interface(ctx, SE_CONTRACT, SE_REDUCTION_IGNORED.hint, SE_HIDDEN_ZERO.hint)


@CHECKS.check("se.shapes", SE, 2, "out (B, C, H, W) and weights (B, C, 1, 1) on several sizes", kind="shapes")
def se_shapes(ctx: Context) -> None:
    gate_shapes(ctx, SE)


@CHECKS.check("se.range", SE, 2, "weights in (0, 1), applied as out = x * weights", kind="behaviour")
def se_range(ctx: Context) -> None:
    gate_range(ctx, SE, SE_NO_SIGMOID.hint, not_applied_hint=SE_NOT_APPLIED.hint)


def extra_convolutions(ctx: Context, build: Build, part: str) -> list[str]:
    """The convolution and linear layers of ``part`` built as ``build`` beyond the contract's ``fc1``, ``fc2``, when
    it has those two (a module registered twice is listed once); none when it has not (a renamed MLP)."""
    reply = ctx.run(part, init_args=list(build.args), init_kwargs=dict(build.kwargs), call=False)
    if not {"fc1", "fc2"} <= set(reply.modules):
        return []
    return [name for name, m in reply.modules.items()
            if isinstance(m, dict) and m.get("type") in ("Conv2d", "Linear", "Conv1d") and name not in ("fc1", "fc2")]


@CHECKS.check("channel.interface", CHANNEL, 2, "one shared MLP: fc1, fc2, 1x1 convolutions C -> max(1, C // reduction) -> C",
              kind="interface")
def channel_interface(ctx: Context) -> None:
    """The contract's, plus: no second MLP (CBAM shares one MLP between its two descriptors)."""
    failure = None
    try:
        mlp_interface(ctx, CHANNEL_CONTRACT, CHANNEL_REDUCTION_IGNORED.hint, CHANNEL_HIDDEN_ZERO.hint)
    except CheckFailure as exc:
        failure = exc
    build = CHANNEL_CONTRACT.builds[0]
    extra = extra_convolutions(ctx, build, CHANNEL)
    if extra:  # fc1 and fc2 as the contract has them, and more layers: a second MLP
        before = f"{failure.message}; " if failure is not None else f"{build.label(CHANNEL)}: "
        raise CheckFailure(f"{before}layers beyond fc1 and fc2: {', '.join(extra)}", hint=CHANNEL_TWO_MLPS.hint)
    if failure is not None:
        raise failure


@CHECKS.check("channel.shapes", CHANNEL, 2, "out (B, C, H, W) and weights (B, C, 1, 1) on several sizes", kind="shapes")
def channel_shapes(ctx: Context) -> None:
    gate_shapes(ctx, CHANNEL)


@CHECKS.check("channel.range", CHANNEL, 2, "weights in (0, 1), applied as out = x * weights", kind="behaviour")
def channel_range(ctx: Context) -> None:
    gate_range(ctx, CHANNEL, CHANNEL_NO_SIGMOID.hint, weights_hint=CHANNEL_SIGMOID_EACH.hint)


# ---------------------------------------------------------------------------------------------------------
# SpatialAttention: a gate per position

SPATIAL_CASES = [((2, 6, 5, 7), ()), ((1, 12, 9, 4), (3,)), ((2, 3, 6, 6), (5,)), ((3, 4, 1, 7), ())]


def over_space(exc: SubmissionRaised) -> bool:
    """Whether the submission's convolution was fed (B, 2C, 1, 1) maps: the mean and max pooled over H, W."""
    message = exc.error.message
    found = re.search(r"expected input\[(\d+), (\d+), (\d+), (\d+)\]", message)
    return "channels" in message and found is not None and found.group(3) == found.group(4) == "1"


@CHECKS.check("spatial.interface", SPATIAL, 1, "conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)",
              kind="interface")
def spatial_interface(ctx: Context) -> None:
    check_interface(ctx, SPATIAL_CONTRACT)


@CHECKS.check("spatial.shapes", SPATIAL, 2, "out (B, C, H, W) and weights (B, 1, H, W) on several sizes and kernels",
              kind="shapes")
def spatial_shapes(ctx: Context) -> None:
    for i, (shape, args) in enumerate(SPATIAL_CASES):
        what = label(SPATIAL, args, {})
        x = feature_maps(40 + i, shape)
        try:
            _, (out, w) = run_module(ctx, SPATIAL, args, {}, x, None, seed=i)
        except SubmissionRaised as exc:
            if over_space(exc):
                raise CheckFailure(f"{what} on x of shape {shape}: {exc}", hint=SPATIAL_OVER_SPACE.hint) from None
            raise
        if np.shape(w) == (shape[0], 1, 1, 1) and shape[2] * shape[3] > 1:
            raise CheckFailure(f"{what}: weights for x of shape {shape} have shape (B, 1, 1, 1), one gate for the "
                               f"whole map; expected {spatial_weights_shape(shape)}", hint=SPATIAL_OVER_SPACE.hint)
        require_shape(f"{what}: out for x of shape {shape}", out, shape)
        require_shape(f"{what}: weights for x of shape {shape}", w, spatial_weights_shape(shape))


@CHECKS.check("spatial.range", SPATIAL, 2, "weights in (0, 1), applied as out = x * weights", kind="behaviour")
def spatial_range(ctx: Context) -> None:
    shape, args = SPATIAL_CASES[0]
    x = feature_maps(50, shape)
    _, (out, w) = run_module(ctx, SPATIAL, args, {}, x, spatial_weights_shape(shape), seed=50)
    require_gate(label(SPATIAL, args, {}), x, out, w, SPATIAL_NO_SIGMOID.hint)


# ---------------------------------------------------------------------------------------------------------
# CBAM

CBAM_CASES = [((2, 32, 5, 7), {"reduction": 4}), ((1, 48, 6, 5), {"kernel_size": 3}),
              ((2, 8, 3, 4), {"kernel_size": 5})]


@CHECKS.check("cbam.interface", CBAM, 2, "channel = ChannelAttention, spatial = SpatialAttention, built with CBAM's arguments",
              kind="interface")
def cbam_interface(ctx: Context) -> None:
    """Its own sub-modules, and that it passes ``reduction`` and ``kernel_size`` on (the sub-modules' own layers
    are their checks': a deviation there is not charged again here)."""
    check_interface(ctx, CBAM_CONTRACT)
    build = CBAM_BUILD
    reply = ctx.run(CBAM, init_args=list(build.args), init_kwargs=dict(build.kwargs), call=False)
    problems = []
    C, r, k = build.args[0], build.kwargs["reduction"], build.kwargs["kernel_size"]
    fc1 = reply.modules.get("channel.fc1")
    fc1 = fc1 if isinstance(fc1, dict) else {}
    if not ctx.failed("channel.interface") and fc1.get("out_channels") != hidden_units(C, r):
        problems.append(f"channel.fc1 has {fc1.get('out_channels')} output channels; with reduction={r} it must have "
                        f"{hidden_units(C, r)}: pass reduction on to ChannelAttention")
    conv = reply.modules.get("spatial.conv")
    conv = conv if isinstance(conv, dict) else {}
    if not ctx.failed("spatial.interface") and conv.get("kernel_size") != [k, k]:
        problems.append(f"spatial.conv has kernel_size {conv.get('kernel_size')}; expected [{k}, {k}]: pass "
                        "kernel_size on to SpatialAttention")
    if problems:
        raise CheckFailure(f"{build.label(CBAM)}: " + "; ".join(problems))


@CHECKS.check("cbam.shapes", CBAM, 1, "out (B, C, H, W) and the spatial weights (B, 1, H, W)", kind="shapes")
def cbam_shapes(ctx: Context) -> None:
    for i, (shape, kwargs) in enumerate(CBAM_CASES):
        run_module(ctx, CBAM, (shape[1],), kwargs, feature_maps(60 + i, shape), spatial_weights_shape(shape), seed=i)


# ---------------------------------------------------------------------------------------------------------
# SelfAttention2d

# (B, C, H, W), kwargs: inner 2, 8 and 3 (1/sqrt(inner) is not 1), H, W > 1 (the order of positions shows)
SELF_CASES = [((2, 16, 3, 5), {}), ((1, 32, 4, 4), {"reduction": 4}), ((2, 24, 5, 3), {})]


@CHECKS.check("self.interface", SELF, 1, "query, key (C -> max(1, C // reduction)), value (C -> C), gamma (1,)",
              kind="interface")
def self_interface(ctx: Context) -> None:
    check_interface(ctx, SELF_CONTRACT)


@CHECKS.check("self.shapes", SELF, 2, "out (B, C, H, W) and weights (B, H*W, H*W) on several sizes", kind="shapes")
def self_shapes(ctx: Context) -> None:
    for i, (shape, kwargs) in enumerate(SELF_CASES + [((3, 8, 1, 6), {})]):
        run_module(ctx, SELF, (shape[1],), kwargs, feature_maps(70 + i, shape), self_weights_shape(shape), seed=i)


@CHECKS.check("self.weights_sum", SELF, 2, "weights are non-negative and each row sums to 1 over the keys",
              kind="behaviour")
def self_weights_sum(ctx: Context) -> None:
    shape, kwargs = SELF_CASES[0]
    _, (_, w) = run_module(ctx, SELF, (shape[1],), kwargs, feature_maps(80, shape), self_weights_shape(shape), seed=80)
    if not np.isfinite(w).all() or (w < -1e-6).any():
        raise CheckFailure(f"weights range down to {np.nanmin(w):.3g} (or are not finite); a softmax gives weights >= 0")
    rows = w.sum(-1)
    if not np.allclose(rows, 1.0, atol=1e-4):
        i = np.unravel_index(np.abs(rows - 1).argmax(), rows.shape)
        hint = SELF_SOFTMAX_QUERIES.hint if np.allclose(w.sum(-2), 1.0, atol=1e-4) else None
        raise CheckFailure(f"weights do not sum to 1 over the keys (dim -1): e.g. row {tuple(int(j) for j in i)} sums "
                           f"to {rows[i]:.4g}", hint=hint or "the weights are softmax(scores) over the keys j, dim -1")


@CHECKS.check("self.identity", SELF, 2, "gamma starts at 0, and out equals x whenever gamma is 0",
              kind="behaviour")
def self_identity(ctx: Context) -> None:
    shape, kwargs = SELF_CASES[0]
    args = (shape[1],)
    x = feature_maps(90, shape)
    drawn = ctx.draw(SELF, list(args), kwargs, 90)
    meta = ctx.metadata(SELF, list(args), kwargs)
    where = map_params(drawn.state, meta.modules, {"gamma": (1,)}).sources.get("gamma")
    if not where:
        raise CheckFailure(f"{label(SELF, args, kwargs)} has no parameter gamma of shape (1,) (see the interface check)")
    state = {name: np.array(value, copy=True) for name, value in drawn.state.items()}
    state[where[0].name][...] = 0.0
    _, (out, _) = run_module(ctx, SELF, args, kwargs, x, None, state=state)
    err, index = max_error(out, x)
    if not close(out, x, atol=1e-6, rtol=0.0):
        raise CheckFailure(f"with the grader's weights and gamma = 0, out differs from x by up to {err:.3g} (at {index}): "
                           "out = x + gamma * attended", hint=SELF_GAMMA.hint)
    _, (out, _) = run_module(ctx, SELF, args, kwargs, x, None, draw_weights=False)
    err, index = max_error(out, x)
    if not close(out, x, atol=1e-6, rtol=0.0):
        raise CheckFailure(f"a newly built {label(SELF, args, kwargs)} changes x (by up to {err:.3g}): it must start as "
                           "the identity", hint=SELF_GAMMA_INIT.hint)


# ---------------------------------------------------------------------------------------------------------
# AttentionCNN

CNN_CASES = [  # images (B, C, H, W), widths: non-square, odd sides; three stages; a last map of 1 x 1
    ((2, 3, 9, 12), [16, 32]),
    ((2, 2, 16, 11), [8, 16, 24]),
    ((1, 1, 7, 5), [8, 16]),
]
CLASSES = 5


def cnn_kwargs(attention: str, widths) -> dict:
    return {"attention": attention, "widths": list(widths)}


def cnn_images(seed: int, shape) -> np.ndarray:
    return randn(rng(seed), *shape)


def attention_outputs(reply, stages: int, what: str) -> tuple[np.ndarray, list]:
    """The logits and the stages' weights of a call with ``return_attention=True``: ``(logits, [w_1, ...])``.

    Its structure must be a pair of a tensor and a list of ``stages`` tensors; the runner brings the arrays back
    flattened, depth first (``requests._flatten``): the logits, then each stage's weights.
    """
    maps = f"list({', '.join(['Tensor'] * stages)})"
    accepted = (f"tuple(Tensor, {maps})", f"list(Tensor, {maps})")
    if reply.structure not in accepted:
        raise CheckFailure(f"{what} should return (logits, a list of {stages} tensor{'s' if stages != 1 else ''}, one "
                           f"per stage); it returned {reply.structure or 'nothing'}")
    if reply.dtypes[0] != "float32":
        raise CheckFailure(f"{what} returned {reply.dtypes[0]} logits; expected float32, the dtype of the images")
    got = list(reply.outputs[0])
    return got[0], got[1:]


STAGE_SHAPES = {"se": "se.shapes", "cbam": "cbam.shapes", "self": "self.shapes"}  # who returns each stage's weights


def stage_weights_shape(attention: str, images_shape, width: int, stage: int) -> tuple:
    B, _, H, W = images_shape
    h, w = H // 2 ** stage, W // 2 ** stage
    return {"se": (B, width, 1, 1), "cbam": (B, 1, h, w), "self": (B, h * w, h * w)}[attention]


@CHECKS.check("cnn.interface", CNN, 2, "convs (3x3, padding 1), attentions (one per stage, by name), head",
              kind="interface")
def cnn_interface(ctx: Context) -> None:
    check_interface(ctx, CNN_CONTRACT)


@CHECKS.check("cnn.shapes", CNN, 2, "logits (B, num_classes) for every attention, on several sizes", kind="shapes")
def cnn_shapes(ctx: Context) -> None:
    for attention in ATTENTIONS:
        for i, (shape, widths) in enumerate(CNN_CASES):
            kwargs = cnn_kwargs(attention, widths)
            reply = ctx.run(CNN, init_args=[shape[1], CLASSES], init_kwargs=kwargs,
                            inputs=[cnn_images(100 + i, shape)], seed=i)
            (logits,) = outputs(reply, 1, f"{label(CNN, (shape[1], CLASSES), kwargs)}.forward")
            require_shape(f"{label(CNN, (shape[1], CLASSES), kwargs)}: logits for images of shape {shape}", logits,
                          (shape[0], CLASSES))


@CHECKS.check("cnn.attention", CNN, 2, "return_attention gives the list of each stage's weights (empty for 'none')",
              kind="behaviour")
def cnn_attention(ctx: Context) -> None:
    for attention in ATTENTIONS:
        for i, (shape, widths) in enumerate(CNN_CASES[:2]):
            kwargs = cnn_kwargs(attention, widths)
            what = f"{label(CNN, (shape[1], CLASSES), kwargs)}.forward(images, return_attention=True)"
            reply = ctx.run(CNN, init_args=[shape[1], CLASSES], init_kwargs=kwargs, inputs=[cnn_images(110 + i, shape)],
                            call_kwargs={"return_attention": True}, seed=i)
            stages = 0 if attention == "none" else len(widths)
            logits, maps = attention_outputs(reply, stages, what)
            require_shape(f"{what}: logits", logits, (shape[0], CLASSES))
            if ctx.failed(STAGE_SHAPES.get(attention, "")):
                continue  # the attention module's own weights have the wrong shape: charged by its shapes check
            for stage, w in enumerate(maps):
                require_shape(f"{what}: the weights of stage {stage}", w,
                              stage_weights_shape(attention, shape, widths[stage], stage))


@CHECKS.check("cnn.unknown_name", CNN, 1, "an unknown attention name raises ValueError", kind="behaviour")
def cnn_unknown_name(ctx: Context) -> None:
    for name in ("bogus", "non-local"):
        what = label(CNN, (3, CLASSES), {"attention": name})
        try:
            ctx.run(CNN, init_args=[3, CLASSES], init_kwargs={"attention": name}, call=False)
        except SubmissionRaised as exc:
            if exc.error.kind == "ValueError":
                continue
            if exc.error.kind == "NotImplementedError":
                raise
            raise CheckFailure(f"{what} raised {exc.error.kind}: {exc.error.message}; expected ValueError",
                               hint=CNN_UNKNOWN.hint) from None
        raise CheckFailure(f"{what} was built without an error; an unknown attention name must raise ValueError",
                           hint=CNN_UNKNOWN.hint)


# ---------------------------------------------------------------------------------------------------------
# Training: digits 8x8 on a CPU, MNIST-5k 28x28 on a GPU

DEFAULT_DATA = "digits"


def training_kwargs(profile: TrainingProfile) -> dict:
    info = images.task_data(profile.data or DEFAULT_DATA).info
    return dict(in_channels=info["in_channels"], num_classes=info["num_classes"], attention="cbam",
                **profile.model_kwargs)


PROFILES = {
    # Calibrated with bench/calibrate_training.py --exercise cnn_attention (figures in datasets/README.md).
    # CPU: digits 8x8 (1,437 training images), two stages of 16 and 32 channels, about 2.5 s per run on 2 cores.
    # The reference over seeds 0-19: 0.9472-0.9833 (mean 0.9692, sd 0.0104); the same with its head created first
    # (another initialisation from the same seed): 0.9472-0.9833 (mean 0.9669).
    "cpu": TrainingProfile("cpu", dict(widths=(16, 32)), epochs=20, batch_size=64, lr=3e-3, threshold=0.92, data="digits"),
    # GPU: MNIST-5k 28x28 (4,000 training images), three stages (28 -> 14 -> 7 -> 3). Calibrated by running it on
    # a CPU (about 25 s per run): the reference over seeds 0-19 scored 0.9190-0.9660 (mean 0.9476, sd 0.0102).
    "gpu": TrainingProfile("gpu", dict(widths=(16, 32, 64)), epochs=12, batch_size=64, lr=2e-3, threshold=0.89, data="mnist5k"),
}


# What students write themselves here: the built-in attention (F.scaled_dot_product_attention and PyTorch's
# attention layers), torchvision's squeeze-and-excitation and timm's attention layers.
TIMM_ATTENTION = ("SEModule", "EffectiveSEModule", "SqueezeExcite", "CbamModule", "LightCbamModule", "ChannelAttn",
                  "LightChannelAttn", "SpatialAttn", "LightSpatialAttn", "EcaModule", "CecaModule", "GatherExcite",
                  "GlobalContext", "NonLocalAttn", "BatNonLocalAttn", "SelectiveKernel", "SplitAttn")
FORBIDDEN = ForbiddenSet(
    functions=dict(ATTENTION_BUILTINS.functions), ops=dict(ATTENTION_BUILTINS.ops),
    modules={**ATTENTION_BUILTINS.modules, "torchvision.ops.SqueezeExcitation": "torchvision.ops.SqueezeExcitation",
             **{f"timm.layers.{name}": f"timm.layers.{name}" for name in TIMM_ATTENTION}},
)


EXERCISE = Exercise(
    name="cnn_attention",
    title="Attention inside CNNs: squeeze-and-excitation, CBAM and self-attention on images",
    number=3,
    parts=PARTS,
    checks=CHECKS,  # the hidden checks join it where hidden.py is installed (the registry)
    solution="solutions/cnn_attention.py",
    notebook="assignments/source/cnn_attention/cnn_attention.ipynb",
    demo_sample="assignments/samples/cnn_attention_flawed.py",
    profiles=PROFILES,
    task=TrainingTask(data=images.task_data, loss="cross_entropy", metric="accuracy", examples="images"),
    training_kwargs=training_kwargs,
    forbidden=FORBIDDEN,
    labelled_data=images.labelled_data_paths,
    contracts=CONTRACTS,
    mistakes=tuple(MISTAKES),
)
