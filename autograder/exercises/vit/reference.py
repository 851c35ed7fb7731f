"""Independent float64 references for the Vision Transformer exercise, with its known mistakes as switches.

Written apart from ``solutions/vit.py`` and sharing no code with it: no ``nn.Module``, no ``F.unfold``, no
``nn.MultiheadAttention``, no ``F.conv2d`` or ``F.max_pool2d``. Patches are cut out one slice at a time; the
linear layers, layer norm, softmax and multi-head attention are ``kit.reference``'s (einsums and explicit
formulas), with ``nn.MultiheadAttention``'s packed ``in_proj_weight`` / ``in_proj_bias`` split into the query,
key and value projections, in that order; the 3x3 convolution is ``cnn_attention.reference``'s, written out;
max pooling pads with -inf and takes the maximum over the window's offsets; GELU is the exact erf form.

Every function takes a dict ``p`` of float64 parameters named as in the exercise's contract, relative to the
module it models (``vit_block`` reads ``p["norm1.weight"]``, ``p["attn.in_proj_weight"]``;
``vision_transformer`` reads ``p["blocks.0.norm1.weight"]``), and float64 inputs, and returns what the
solution's ``forward`` returns. Everything is in eval mode: dropout is the identity. Every switch defaults to
the contract; the ``*_SWITCHES`` dicts list each switch's values, the contract's first.
"""

from __future__ import annotations

import math

import torch

from ...kit.reference import conv2d, layer_norm, linear, multi_head_attention, softmax, sub

class SizeMismatch(ValueError, RuntimeError):
    """Sizes the computation cannot take (a pooling that leaves nothing, a position table of another token
    count): a ValueError to a caller, and to the grader a variant it cannot compute (``compare.UNCOMPUTABLE``)."""


# The switches and their values; the first value of each is the contract's.
PATCH_SWITCHES = {"order": ("cpp", "ppc", "column")}
ENCODER_SWITCHES = {"positions": ("once", "none", "twice")}
BLOCK_SWITCHES = {"norm": ("pre", "post"), "mlp_activation": ("gelu", "relu", "gelu_tanh")}
TOKENIZER_SWITCHES = {"pool_stride": (2, 1), "pool_padding": (1, 0)}
POOLING_SWITCHES = {"softmax_over": ("tokens", "features")}
VIT_SWITCHES = {**PATCH_SWITCHES, **ENCODER_SWITCHES, **BLOCK_SWITCHES, "head_activation": ("gelu", "relu", "gelu_tanh"),
                "final_norm": (True, False)}
CCT_SWITCHES = {**TOKENIZER_SWITCHES, **ENCODER_SWITCHES, **BLOCK_SWITCHES, "final_norm": (True, False),
                **POOLING_SWITCHES}


# --- building blocks ------------------------------------------------------------------------------------

def gelu(h: torch.Tensor) -> torch.Tensor:
    """GELU, exact form: h * Phi(h) = 0.5 h (1 + erf(h / sqrt(2)))."""
    return 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))


def relu(h: torch.Tensor) -> torch.Tensor:
    return h.clamp(min=0.0)


def gelu_tanh(h: torch.Tensor) -> torch.Tensor:
    """GELU's tanh approximation (``nn.GELU(approximate="tanh")``, Keras' ``approximate=True``):
    0.5 h (1 + tanh(sqrt(2 / pi) (h + 0.044715 h^3)))."""
    return 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h ** 3)))


ACTIVATIONS = {"gelu": gelu, "relu": relu, "gelu_tanh": gelu_tanh}


def image_hw(image_size) -> tuple[int, int]:
    """(H, W) from an int (square) or a pair."""
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def max_pool(x: torch.Tensor, kernel: int = 3, stride: int = 2, padding: int = 1) -> torch.Tensor:
    """Max pooling written out: pad with -inf, then the maximum over the kernel's offsets (u, v) of the strided
    slices padded[:, :, u + stride * i, v + stride * j]. Output size (H + 2 padding - kernel) // stride + 1."""
    B, C, H, W = x.shape
    padded = x.new_full((B, C, H + 2 * padding, W + 2 * padding), float("-inf"))  # (B, C, H + 2p, W + 2p)
    padded[:, :, padding : padding + H, padding : padding + W] = x
    Ho = (H + 2 * padding - kernel) // stride + 1
    Wo = (W + 2 * padding - kernel) // stride + 1
    if Ho < 1 or Wo < 1:
        raise SizeMismatch(f"max pooling {kernel}x{kernel}, stride {stride}, padding {padding} of a {H}x{W} map "
                         "leaves nothing")
    out = x.new_full((B, C, Ho, Wo), float("-inf"))
    for u in range(kernel):
        for v in range(kernel):
            window = padded[:, :, u : u + stride * (Ho - 1) + 1 : stride, v : v + stride * (Wo - 1) + 1 : stride]
            out = torch.maximum(out, window)  # (B, C, Ho, Wo)
    return out


def tokenizer_size(image_size, num_stages: int, pool_stride: int = 2, pool_padding: int = 1) -> tuple[int, int]:
    """(H', W') of the tokenizer's last map: the 3x3 convolutions (padding 1) keep the size, each pooling maps
    a size s to (s + 2 padding - 3) // stride + 1 (ceil(s / 2) with the contract's stride 2 and padding 1)."""
    H, W = image_hw(image_size)
    for _ in range(num_stages):
        H = (H + 2 * pool_padding - 3) // pool_stride + 1
        W = (W + 2 * pool_padding - 3) // pool_stride + 1
    return H, W


def num_tokens(image_size, num_stages: int, **switches) -> int:
    """The number of tokens the tokenizer makes from images of ``image_size`` (an int, or (H, W))."""
    H, W = tokenizer_size(image_size, num_stages, **switches)
    return H * W


def _check(name: str, switches: dict, allowed: dict) -> None:
    unknown = set(switches) - set(allowed)
    if unknown:
        raise TypeError(f"{name}: unknown switches {sorted(unknown)}")


def _pick(switches: dict, allowed: dict) -> dict:
    return {k: v for k, v in switches.items() if k in allowed}


# --- the ViT's parts -------------------------------------------------------------------------------------

def extract_patches(images: torch.Tensor, P: int, *, order: str = "cpp") -> torch.Tensor:
    """images (B, C, H, W), H and W multiples of P -> (B, N, C * P * P): patch n = i * (W // P) + j holds
    images[:, :, i*P : (i+1)*P, j*P : (j+1)*P], flattened in (C, P, P) order.

    Mistakes: ``order="ppc"`` (a patch flattened in (P, P, C) order, channel innermost, as Keras and the
    usual einops pattern do); ``order="column"`` (patches in column-major order, n = j * (H // P) + i, each in
    (C, P, P) order). The first cannot show on images of one channel, the second on a single row or column of
    patches.
    """
    if order not in PATCH_SWITCHES["order"]:
        raise ValueError(f"unknown order {order!r}")
    B, C, H, W = images.shape
    rows, cols = H // P, W // P
    cells = [(i, j) for j in range(cols) for i in range(rows)] if order == "column" else \
        [(i, j) for i in range(rows) for j in range(cols)]
    patches = []
    for i, j in cells:
        patch = images[:, :, i * P : (i + 1) * P, j * P : (j + 1) * P]  # (B, C, P, P)
        if order == "ppc":
            patch = patch.permute(0, 2, 3, 1)  # (B, P, P, C)
        patches.append(patch.reshape(B, C * P * P))
    return torch.stack(patches, dim=1)  # (B, N, C * P * P)


def patch_encoder(p, patches, *, positions: str = "once"):
    """projection(patches) + position_embedding[0 .. N-1]: patches (B, N, patch_dim) -> (B, N, D).

    Mistakes: ``positions="none"`` (no position embedding); ``"twice"`` (added twice).
    """
    out = linear(patches, p, "projection")  # (B, N, D)
    table = None if positions == "none" else p["position_embedding.weight"][: patches.shape[1]]  # (N, D)
    return _add_positions(out, table, positions)


def _add_positions(x, table, positions="once"):
    """x (B, N, D) plus the (N, D) or (1, N, D) position table once, never, or twice (never: ``table`` may be None,
    as for a submission that has no table at all)."""
    if positions not in ENCODER_SWITCHES["positions"]:
        raise ValueError(f"unknown positions {positions!r}")
    times = {"once": 1, "none": 0, "twice": 2}[positions]
    if times == 0:
        return x
    return x + times * table.reshape(1, x.shape[1], x.shape[2])


def attention_parameters(p: dict) -> dict:
    """The block's attention parameters under the shared reference's names: ``nn.MultiheadAttention``'s
    packed in_proj_weight (3D, D) and in_proj_bias (3D,) split in q, k, v order into ``q_proj``, ``k_proj``,
    ``v_proj``, and ``out_proj``; an attention already written with those four projections is taken as is."""
    a = sub(p, "attn")
    if "q_proj.weight" in a:
        return a
    q_w, k_w, v_w = a["in_proj_weight"].chunk(3, dim=0)  # 3 x (D, D)
    q_b, k_b, v_b = a["in_proj_bias"].chunk(3, dim=0)  # 3 x (D,)
    return {"q_proj.weight": q_w, "q_proj.bias": q_b, "k_proj.weight": k_w, "k_proj.bias": k_b,
            "v_proj.weight": v_w, "v_proj.bias": v_b,
            "out_proj.weight": a["out_proj.weight"], "out_proj.bias": a["out_proj.bias"]}


def vit_block(p, x, num_heads, return_attention=False, *, norm: str = "pre", mlp_activation: str = "gelu"):
    """The pre-norm block: x = x + attn(LN1(x)); x = x + mlp(LN2(x)), mlp = Linear, GELU, Linear (``mlp.0``,
    ``mlp.3``), LayerNorm eps 1e-6, heads of D // num_heads. Returns (B, N, D) [, weights (B, heads, N, N)].

    Mistakes: ``norm="post"`` (x = LN1(x + attn(x)); x = LN2(x + mlp(x)), the course's block);
    ``mlp_activation="relu"`` or ``"gelu_tanh"`` (the tanh approximation).
    """
    if norm not in BLOCK_SWITCHES["norm"]:
        raise ValueError(f"unknown norm {norm!r}")
    act = ACTIVATIONS[mlp_activation]
    attn_p = attention_parameters(p)
    maps = []

    def attn(h):
        out, w = multi_head_attention(attn_p, h, h, h, num_heads)  # (B, N, D), (B, heads, N, N)
        maps.append(w)
        return out

    def mlp(h):
        return linear(act(linear(h, p, "mlp.0")), p, "mlp.3")

    if norm == "pre":
        x = x + attn(layer_norm(x, p, "norm1"))
        x = x + mlp(layer_norm(x, p, "norm2"))
    else:
        x = layer_norm(x + attn(x), p, "norm1")
        x = layer_norm(x + mlp(x), p, "norm2")
    return (x, maps[0]) if return_attention else x


def vision_transformer(p, images, patch_size, num_heads, num_blocks, mlp_head_units, return_attention=False,
                       *, head_activation: str = "gelu", final_norm: bool = True, **switches):
    """patches -> patch encoder -> blocks -> LayerNorm -> flatten -> [Linear, GELU] per head unit -> Linear.
    The head's linear layers are ``head.2``, ``head.5``, ... (Flatten and Dropout come first, each unit is
    Linear, GELU, Dropout). Returns logits (B, num_classes) [, list of each block's weights].

    Mistakes: ``head_activation="relu"`` or ``"gelu_tanh"``; ``final_norm=False`` (no LayerNorm before the head); ``order``
    (patches), ``positions`` (encoder), ``norm`` and ``mlp_activation`` (every block).
    """
    _check("vision_transformer", {**switches, "head_activation": head_activation, "final_norm": final_norm},
           VIT_SWITCHES)
    act = ACTIVATIONS[head_activation]
    patches = extract_patches(images, patch_size, **_pick(switches, PATCH_SWITCHES))  # (B, N, C * P * P)
    x = patch_encoder(sub(p, "patch_encoder"), patches, **_pick(switches, ENCODER_SWITCHES))  # (B, N, D)
    maps = []
    for i in range(num_blocks):
        x, w = vit_block(sub(p, f"blocks.{i}"), x, num_heads, True, **_pick(switches, BLOCK_SWITCHES))
        maps.append(w)
    if final_norm:
        x = layer_norm(x, p, "norm")
    B, N, D = x.shape
    h = x.reshape(B, N * D)  # (B, N * D): the patches' states one after another
    for k in range(len(mlp_head_units)):
        h = act(linear(h, p, f"head.{2 + 3 * k}"))
    logits = linear(h, p, f"head.{2 + 3 * len(mlp_head_units)}")  # (B, num_classes)
    return (logits, maps) if return_attention else logits


# --- the CCT's parts -------------------------------------------------------------------------------------

def conv_tokenizer(p, images, channels, *, pool_stride: int = 2, pool_padding: int = 1):
    """Per stage (``convs.i``, one per entry of ``channels``): 3x3 convolution (padding 1, no bias), ReLU, max
    pooling 3x3 with stride 2 and padding 1; then the last map's positions in row-major order as tokens
    (B, H' * W', channels[-1]).

    Mistakes: ``pool_stride`` and ``pool_padding`` other than 2 and 1: the token count changes (stride 1 keeps
    each size, padding 0 takes one off).
    """
    x = images
    for i in range(len(channels)):
        x = relu(conv2d(x, p[f"convs.{i}.weight"], padding=1))  # (B, c, H_i, W_i)
        x = max_pool(x, 3, pool_stride, pool_padding)  # (B, c, H_{i+1}, W_{i+1})
    B, c, H, W = x.shape
    return torch.einsum("bchw->bhwc", x).reshape(B, H * W, c)  # (B, N, c): token n = h * W + w


def sequence_pooling(p, x, *, softmax_over: str = "tokens"):
    """weights = softmax over the N tokens of attention(x) (B, N); pooled = sum_n weights[:, n] x[:, n] (B, D).

    Mistake: ``softmax_over="features"``: the softmax over the score's last axis, of size 1, so every weight is
    1 and the tokens are summed.
    """
    scores = linear(x, p, "attention")  # (B, N, 1)
    if softmax_over == "tokens":
        weights = softmax(scores[..., 0], dim=1)  # (B, N)
    elif softmax_over == "features":
        weights = softmax(scores, dim=-1)[..., 0]  # (B, N): all ones
    else:
        raise ValueError(f"unknown softmax_over {softmax_over!r}")
    return torch.einsum("bn,bnd->bd", weights, x), weights


def compact_transformer(p, images, num_heads, num_blocks, return_attention=False, *, final_norm: bool = True,
                        **switches):
    """tokenizer -> plus position_embedding (1, N, D) -> blocks -> LayerNorm -> sequence pooling -> head.
    The stages are read off ``p`` (``tokenizer.convs.i.weight``). Returns logits (B, num_classes), or (logits,
    [each block's weights], pooling weights (B, N)).

    Mistakes: ``pool_stride``, ``pool_padding`` (tokenizer: a different token count, which the position
    embedding of the contract's count does not fit: ValueError, unless no table is added); ``positions``; ``norm`` and
    ``mlp_activation`` (every block); ``final_norm=False``; ``softmax_over="features"`` (pooling).
    """
    _check("compact_transformer", {**switches, "final_norm": final_norm}, CCT_SWITCHES)
    stages = sum(1 for k in p if k.startswith("tokenizer.convs.") and k.endswith(".weight"))
    channels = [p[f"tokenizer.convs.{i}.weight"].shape[0] for i in range(stages)]
    x = conv_tokenizer(sub(p, "tokenizer"), images, channels, **_pick(switches, TOKENIZER_SWITCHES))  # (B, N, D)
    table = None if switches.get("positions") == "none" else p["position_embedding"]  # (1, N, D)
    if table is not None and table.shape[1] != x.shape[1]:
        raise SizeMismatch(f"the tokenizer makes {x.shape[1]} tokens; the position embedding has {table.shape[1]}")
    x = _add_positions(x, table, **_pick(switches, ENCODER_SWITCHES))
    maps = []
    for i in range(num_blocks):
        x, w = vit_block(sub(p, f"blocks.{i}"), x, num_heads, True, **_pick(switches, BLOCK_SWITCHES))
        maps.append(w)
    if final_norm:
        x = layer_norm(x, p, "norm")
    pooled, pool_weights = sequence_pooling(sub(p, "pool"), x, **_pick(switches, POOLING_SWITCHES))
    logits = linear(pooled, p, "head")  # (B, num_classes)
    return (logits, maps, pool_weights) if return_attention else logits
