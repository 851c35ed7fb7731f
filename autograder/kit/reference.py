"""Float64 references that several exercises share: softmax, the sigmoid, a linear layer, layer norm, scaled
dot-product and multi-head attention, the post-norm transformer block (with their known mistakes as switches).

Written apart from every file in ``solutions/`` and sharing no code with them (einsum and explicit softmax and
layer norm here), so that an error in one is not copied into the other. Every function takes a dict of float64
parameters named as in the exercise's contract, e.g. ``{"q_proj.weight": ...}``; ``sub`` selects a sub-module's.
An exercise's own ``*_reference`` module builds on these.
"""

from __future__ import annotations

import math

import torch

from ..kinks import smooth


def logistic(z: torch.Tensor) -> torch.Tensor:
    """The sigmoid, 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + torch.exp(-z))


def sub(p: dict, prefix: str) -> dict:
    """The parameters under ``prefix`` (a sub-module's), with the prefix taken off their names."""
    return {k[len(prefix) + 1 :]: v for k, v in p.items() if k.startswith(prefix + ".")}


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, padding: int = 0) -> torch.Tensor:
    """A k x k convolution (stride 1, zero padding), written out: x (B, I, H, W), weight (O, I, kh, kw).

    out[b, o, h, w] = sum over i, u, v of padded[b, i, h + u, w + v] * weight[o, i, u, v] (+ bias[o]).
    """
    B, I, H, W = x.shape
    O, _, kh, kw = weight.shape
    padded = x.new_zeros(B, I, H + 2 * padding, W + 2 * padding)  # (B, I, H + 2p, W + 2p)
    padded[:, :, padding : padding + H, padding : padding + W] = x
    windows = padded.unfold(2, kh, 1).unfold(3, kw, 1)  # (B, I, Ho, Wo, kh, kw): the inputs each output sees
    out = torch.einsum("bihwuv,oiuv->bohw", windows, weight)  # (B, O, Ho, Wo)
    return out if bias is None else out + bias[None, :, None, None]


from .blocks import MASK_IGNORED, MASK_INVERTED, MASK_KEEP  # noqa: E402,F401 - the mask switch's values


def softmax(scores: torch.Tensor, dim: int) -> torch.Tensor:
    with smooth():  # the shift changes no value and no derivative
        shifted = scores - scores.amax(dim=dim, keepdim=True)
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)


SCALES = ("sqrt_d", "none", "d", "sqrt_dv", "sqrt_embed")  # the contract's 1/sqrt(d), then known mistakes


def scale_factor(scale: str, d: int, dv: int, embed_dim: int | None = None) -> float:
    """The factor the scores are multiplied by: the contract's 1/sqrt(d), or a known mistake's, by name.

    Mistakes are named, not given as numbers, so that a mistake of the attention function and the same mistake
    seen through a module that calls it (where d is the head size) are recognised as one.
    """
    factors = {"sqrt_d": d ** -0.5, "none": 1.0, "d": 1.0 / d, "sqrt_dv": dv ** -0.5,
               "sqrt_embed": (embed_dim or d) ** -0.5}
    return factors[scale]


def attention(q, k, v, mask=None, *, scale="sqrt_d", softmax_dim=-1, mask_mode=MASK_KEEP, embed_dim=None):
    """softmax(q k^T * scale) v, ``scale`` named as in ``SCALES``. Returns (output, weights)."""
    factor = scale_factor(scale, q.shape[-1], v.shape[-1], embed_dim)
    scores = torch.einsum("...qd,...kd->...qk", q, k) * factor
    if mask is not None and mask_mode != MASK_IGNORED:
        allowed = mask if mask_mode == MASK_KEEP else ~mask
        allowed = torch.broadcast_to(allowed, scores.shape)
        scores = torch.where(allowed, scores, torch.full_like(scores, float("-inf")))
    weights = softmax(scores, softmax_dim)
    return torch.einsum("...qk,...kv->...qv", weights, v), weights


def linear(x, p, name):
    return torch.einsum("...i,oi->...o", x, p[f"{name}.weight"]) + p[f"{name}.bias"]


def multi_head_attention(p, query, key, value, num_heads, mask=None, *, heads_split="transpose", scale="sqrt_d",
                         softmax_dim=-1, mask_mode=MASK_KEEP, out_proj=True):
    """Reference multi-head attention. ``heads_split="view"`` is the known mistake of reshaping (B, T, H*d)
    straight to (B, H, T, d) without the transpose; ``scale`` names the factor (``SCALES``; "sqrt_embed" is
    1/sqrt(embed_dim) instead of 1/sqrt(head size)); ``out_proj=False`` returns the heads' concatenation as is."""
    B, Tq, E = query.shape
    Tk = key.shape[1]
    inner = p["q_proj.weight"].shape[0]
    hs = inner // num_heads

    def heads(x, T):
        if heads_split == "view":
            return x.reshape(B, num_heads, T, hs)  # the mistake: mixes positions and heads
        return x.reshape(B, T, num_heads, hs).permute(0, 2, 1, 3)  # (B, H, T, hs)

    q = heads(linear(query, p, "q_proj"), Tq)
    k = heads(linear(key, p, "k_proj"), Tk)
    v = heads(linear(value, p, "v_proj"), Tk)
    y, w = attention(q, k, v, mask, scale=scale, softmax_dim=softmax_dim, mask_mode=mask_mode, embed_dim=E)
    if heads_split == "view":
        y = y.reshape(B, Tq, inner)  # the same mistake on the way back
    else:
        y = y.permute(0, 2, 1, 3).reshape(B, Tq, inner)  # (B, Tq, H*hs)
    return (linear(y, p, "out_proj") if out_proj else y), w


def layer_norm(x, p, name, eps=1e-6, *, unbiased=False):
    """LayerNorm over the last axis; ``unbiased=True`` is the known mistake of dividing by the unbiased
    standard deviation (x.std(-1), n - 1), as some published blocks do, with eps added to it."""
    mean = x.mean(-1, keepdim=True)
    if unbiased:
        std = ((x - mean) ** 2).sum(-1, keepdim=True).div(x.shape[-1] - 1).sqrt()
        return (x - mean) / (std + eps) * p[f"{name}.weight"] + p[f"{name}.bias"]
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * p[f"{name}.weight"] + p[f"{name}.bias"]


def block(p, x, num_heads, padding_mask=None, *, norm="post", residual=True, activation="relu", unbiased=False,
          mask_mode=MASK_KEEP, **attention):
    """Transformer block in eval mode (dropout is the identity). Known mistakes: ``norm="pre"``,
    ``residual=False``, ``activation="gelu"``, ``unbiased=True`` (LayerNorm by the unbiased std), and
    ``mask_mode`` (the block does not pass the mask on); ``attention`` switches its attention's
    (``heads_split``, ``scale``, ``softmax_dim``)."""
    mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, T)
    act = torch.relu if activation == "relu" else (lambda h: 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0))))

    def attn(h):
        return multi_head_attention(sub(p, "attn"), h, h, h, num_heads, mask, mask_mode=mask_mode, **attention)[0]

    def ffn(h):
        return linear(act(linear(h, p, "ffn.0")), p, "ffn.2")

    def norm_(h, name):
        return layer_norm(h, p, name, unbiased=unbiased)

    r = 1.0 if residual else 0.0
    if norm == "pre":
        x = r * x + attn(norm_(x, "norm1"))
        return r * x + ffn(norm_(x, "norm2"))
    x = norm_(r * x + attn(x), "norm1")
    return norm_(r * x + ffn(x), "norm2")
