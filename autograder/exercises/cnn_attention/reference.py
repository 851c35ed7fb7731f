"""Independent float64 references for the attention-in-CNNs exercise, with its known mistakes as switches.

Written apart from ``solutions/cnn_attention.py`` and sharing no code with it: no ``nn.Module`` and no
``F.conv2d`` or ``F.max_pool2d``. The 1x1 convolutions are einsums over the channels, the k x k convolutions
are written out (zero padding, then a sum over the kernel offsets of shifted slices times the weights), 2x2 max
pooling is a reshape into windows, and sigmoid and softmax are written from their formulas.

Every function takes a dict ``p`` of float64 parameters named as in the exercise's contract
(``p["fc1.weight"]``, ``p["attentions.0.channel.fc1.weight"]``, ``p["gamma"]``) and float64 inputs, and returns
what the solution's ``forward`` returns. ``prefix`` names where a module's parameters sit in ``p``:
``prefix="attentions.1"`` reads ``p["attentions.1.fc1.weight"]``. Every switch defaults to the contract.
"""

from __future__ import annotations

import math

import torch

from ...kit.reference import conv2d, logistic, softmax  # noqa: F401 - logistic: the sigmoid, named apart from a switch

# The switches and their values; the first value of each is the contract's.
SE_SWITCHES = {"pool": ("mean", "max"), "gate": ("sigmoid", "none"), "applied": (True, False), "relu": (True, False)}
CHANNEL_SWITCHES = {"branches": ("both", "mean", "max"), "sigmoid": ("sum", "each"), "relu": (True, False)}
SPATIAL_SWITCHES = {"order": ("mean_max", "max_mean"), "gate": ("sigmoid", "none")}
CBAM_SWITCHES = {"arrangement": ("sequential", "spatial_first", "parallel"), **CHANNEL_SWITCHES, **SPATIAL_SWITCHES}
SELF_SWITCHES = {"softmax_dim": ("keys", "queries"), "gamma": (True, False), "swapped": (False, True),
                 "positions": ("row", "column"), "scale": ("none", "sqrt_d")}
CNN_SWITCHES = {"pool_first": (False, True), "head_pool": ("mean", "max"), "discard": (False, True)}
ATTENTION_SWITCHES = {"none": {}, "se": SE_SWITCHES, "cbam": CBAM_SWITCHES, "self": SELF_SWITCHES}


# --- building blocks ------------------------------------------------------------------------------------

def name(prefix: str, parameter: str) -> str:
    return f"{prefix}.{parameter}" if prefix else parameter


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution: x (B, I, H, W), weight (O, I, 1, 1) -> (B, O, H, W), an einsum over the channels."""
    out = torch.einsum("bihw,oi->bohw", x, weight[:, :, 0, 0])
    return out if bias is None else out + bias[None, :, None, None]


def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling, stride 2; an odd last row or column is dropped (floor), as F.max_pool2d does."""
    B, C, H, W = x.shape
    Ho, Wo = H // 2, W // 2
    windows = x[:, :, : 2 * Ho, : 2 * Wo].reshape(B, C, Ho, 2, Wo, 2)  # (B, C, Ho, 2, Wo, 2): rows, then columns
    return windows.amax(dim=(3, 5))  # (B, C, Ho, Wo)


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over H, W: (B, C, H, W) -> (B, C, 1, 1)."""
    return x.sum(dim=(2, 3), keepdim=True) / (x.shape[2] * x.shape[3])


def spatial_max(x: torch.Tensor) -> torch.Tensor:
    """The max over H, W: (B, C, H, W) -> (B, C, 1, 1)."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H * W).amax(dim=2)[:, :, None, None]  # (B, C, H*W) -> (B, C, 1, 1)


def mlp(p: dict, d: torch.Tensor, prefix: str, relu: bool = True) -> torch.Tensor:
    """The bottleneck MLP fc2(relu(fc1(d))) of 1x1 convolutions: (B, C, 1, 1) -> (B, C, 1, 1); ``relu=False`` is
    the known mistake of leaving the ReLU out."""
    hidden = conv1x1(d, p[name(prefix, "fc1.weight")], p[name(prefix, "fc1.bias")])
    hidden = hidden.clamp(min=0.0) if relu else hidden
    return conv1x1(hidden, p[name(prefix, "fc2.weight")], p[name(prefix, "fc2.bias")])


# --- the modules -----------------------------------------------------------------------------------------

def squeeze_excitation(p, x, *, pool="mean", gate="sigmoid", applied=True, relu=True, prefix=""):
    """Squeeze-and-Excitation: weights = sigmoid(fc2(relu(fc1(mean of x over H, W)))), out = x * weights.

    Mistakes: ``pool="max"`` (max over H, W instead of the mean); ``gate="none"`` (no sigmoid);
    ``applied=False`` (the weights are computed, x is returned unchanged). Returns (out, weights (B, C, 1, 1)).
    """
    squeezed = spatial_mean(x) if pool == "mean" else spatial_max(x)
    weights = mlp(p, squeezed, prefix, relu)
    if gate == "sigmoid":
        weights = logistic(weights)
    return (x * weights if applied else x), weights


def channel_attention(p, x, *, branches="both", sigmoid="sum", relu=True, prefix=""):
    """CBAM's channel attention: weights = sigmoid(mlp(mean over H, W) + mlp(max over H, W)), one shared MLP.

    Mistakes: ``branches="mean"`` or ``"max"`` (one descriptor only); ``sigmoid="each"`` (a sigmoid on each
    branch, then the sum). Returns (out, weights (B, C, 1, 1)).
    """
    outs = []
    if branches in ("both", "mean"):
        outs.append(mlp(p, spatial_mean(x), prefix, relu))
    if branches in ("both", "max"):
        outs.append(mlp(p, spatial_max(x), prefix, relu))
    if sigmoid == "each":
        weights = sum(logistic(o) for o in outs)
    else:
        weights = logistic(sum(outs))
    return x * weights, weights


def spatial_attention(p, x, *, order="mean_max", gate="sigmoid", prefix=""):
    """CBAM's spatial attention: weights = sigmoid(conv([mean over C; max over C])), k x k, padding k // 2.

    Mistakes: ``order="max_mean"`` (the two maps stacked the other way round); ``gate="none"`` (no sigmoid).
    Returns (out, weights (B, 1, H, W)).
    """
    C = x.shape[1]
    mean_map = x.sum(dim=1, keepdim=True) / C  # (B, 1, H, W)
    max_map = x.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    maps = [mean_map, max_map] if order == "mean_max" else [max_map, mean_map]
    weight = p[name(prefix, "conv.weight")]  # (1, 2, k, k)
    weights = conv2d(torch.cat(maps, dim=1), weight, padding=weight.shape[-1] // 2)  # (B, 1, H, W)
    if gate == "sigmoid":
        weights = logistic(weights)
    return x * weights, weights


def _split(switches: dict, names) -> dict:
    return {k: switches[k] for k in names if k in switches}


def cbam(p, x, *, arrangement="sequential", prefix="", **switches):
    """CBAM: channel attention, then spatial attention on its output. Returns (out, spatial weights (B, 1, H, W)).

    Mistakes: ``arrangement="spatial_first"`` (spatial attention on x, then channel attention on its output);
    ``"parallel"`` (both maps from x: out = x * channel weights * spatial weights). ``switches`` holds the
    channel attention's (``branches``, ``sigmoid``) and the spatial attention's (``order``, ``gate``).
    """
    unknown = set(switches) - set(CHANNEL_SWITCHES) - set(SPATIAL_SWITCHES)
    if unknown:
        raise TypeError(f"cbam: unknown switches {sorted(unknown)}")

    def channel(h):
        return channel_attention(p, h, prefix=name(prefix, "channel"), **_split(switches, CHANNEL_SWITCHES))

    def spatial(h):
        return spatial_attention(p, h, prefix=name(prefix, "spatial"), **_split(switches, SPATIAL_SWITCHES))

    if arrangement == "sequential":
        return spatial(channel(x)[0])
    if arrangement == "spatial_first":
        refined, weights = spatial(x)
        return channel(refined)[0], weights
    if arrangement == "parallel":
        _, channel_weights = channel(x)
        _, weights = spatial(x)
        return x * channel_weights * weights, weights
    raise ValueError(f"unknown arrangement {arrangement!r}")


def self_attention_2d(p, x, *, softmax_dim="keys", gamma=True, swapped=False, positions="row", scale="none",
                      prefix=""):
    """SAGAN-style self-attention over positions: weights[b, i, j] = softmax over j of <query_i, key_j>,
    attended_i = sum_j weights[b, i, j] value_j, out = x + gamma * attended.

    Mistakes: ``softmax_dim="queries"`` (softmax over i); ``gamma=False`` (out = x + attended, the parameter
    ignored); ``swapped=True`` (scores[i, j] = <key_i, query_j>); ``positions="column"`` (positions flattened in
    column-major order, i = w * H + h, and unflattened the same way: only the weights change, the output does
    not); ``scale="sqrt_d"`` (scores times 1/sqrt(inner): no change when inner is 1). Returns (out, weights
    (B, H*W, H*W)).
    """
    B, C, H, W = x.shape

    def flat(t):  # (B, D, H, W) -> (B, D, H*W) in the chosen position order
        if positions == "row":
            return t.reshape(B, t.shape[1], H * W)  # (B, D, H*W): i = h * W + w
        return t.permute(0, 1, 3, 2).reshape(B, t.shape[1], W * H)  # (B, D, W*H): i = w * H + h

    def unflat(t):  # the inverse of flat: (B, D, H*W) -> (B, D, H, W)
        if positions == "row":
            return t.reshape(B, t.shape[1], H, W)  # (B, D, H, W)
        return t.reshape(B, t.shape[1], W, H).permute(0, 1, 3, 2)  # (B, D, W, H) -> (B, D, H, W)

    q = flat(conv1x1(x, p[name(prefix, "query.weight")], p[name(prefix, "query.bias")]))  # (B, inner, N)
    k = flat(conv1x1(x, p[name(prefix, "key.weight")], p[name(prefix, "key.bias")]))  # (B, inner, N)
    v = flat(conv1x1(x, p[name(prefix, "value.weight")], p[name(prefix, "value.bias")]))  # (B, C, N)
    if swapped:
        q, k = k, q
    scores = torch.einsum("bdi,bdj->bij", q, k)  # (B, N, N): [b, i, j] = <query_i, key_j>
    if scale == "sqrt_d":
        scores = scores / math.sqrt(q.shape[1])
    weights = softmax(scores, dim=2 if softmax_dim == "keys" else 1)
    attended = unflat(torch.einsum("bij,bcj->bci", weights, v))  # (B, C, N) -> (B, C, H, W)
    g = p[name(prefix, "gamma")] if gamma else 1.0
    return x + g * attended, weights


ATTENTIONS = {"se": squeeze_excitation, "cbam": cbam, "self": self_attention_2d}


def attention_cnn(p, images, *, attention, widths, return_attention=False, pool_first=False, head_pool="mean",
                  discard=False, **switches):
    """The classifier: per stage x = relu(conv3x3(x)); x, w = attention(x); x = max_pool2x2(x); then the mean over
    H, W and the linear head. Returns logits (B, num_classes), or (logits, [each stage's weights]).

    Mistakes: ``pool_first=True`` (the max pooling before the attention); ``head_pool="max"`` (max over H, W
    before the head: no change when the last map is 1 x 1); ``discard=True`` (the attention's output thrown
    away, x kept; its weights still returned). ``switches`` go to every stage's attention (see
    ``ATTENTION_SWITCHES``).
    """
    if attention not in ("none", *ATTENTIONS):
        raise ValueError(f"unknown attention {attention!r}")
    unknown = set(switches) - set(ATTENTION_SWITCHES[attention])
    if unknown:
        raise TypeError(f"attention_cnn: switches {sorted(unknown)} do not apply to attention {attention!r}")
    x = images
    maps = []
    for i in range(len(widths)):
        x = conv2d(x, p[f"convs.{i}.weight"], p[f"convs.{i}.bias"], padding=1).clamp(min=0.0)
        if pool_first:
            x = max_pool2x2(x)
        if attention != "none":
            out, w = ATTENTIONS[attention](p, x, prefix=f"attentions.{i}", **switches)
            maps.append(w)
            if not discard:
                x = out
        if not pool_first:
            x = max_pool2x2(x)
    pooled = (spatial_mean(x) if head_pool == "mean" else spatial_max(x))[:, :, 0, 0]  # (B, widths[-1])
    logits = torch.einsum("bc,kc->bk", pooled, p["head.weight"]) + p["head.bias"]
    return (logits, maps) if return_attention else logits
