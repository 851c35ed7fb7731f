"""Independent float64 references for the transformer exercise, with its known mistakes as switches.

Written apart from ``solutions/transformer.py`` and sharing no code with it (einsum and explicit softmax and
layer norm here), so that an error in one is not copied into the other. Every function takes a dict of
float64 parameters named as in the exercise's contract, e.g. ``{"q_proj.weight": ...}``.
"""

from __future__ import annotations

import math

import torch

MASK_KEEP, MASK_INVERTED, MASK_IGNORED = "keep", "inverted", "ignored"


def softmax(scores: torch.Tensor, dim: int) -> torch.Tensor:
    shifted = scores - scores.amax(dim=dim, keepdim=True)
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)


def attention(q, k, v, mask=None, *, scale=None, softmax_dim=-1, mask_mode=MASK_KEEP):
    """softmax(q k^T * scale) v; ``scale`` defaults to 1/sqrt(d). Returns (output, weights)."""
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    scores = torch.einsum("...qd,...kd->...qk", q, k) * scale
    if mask is not None and mask_mode != MASK_IGNORED:
        allowed = mask if mask_mode == MASK_KEEP else ~mask
        allowed = torch.broadcast_to(allowed, scores.shape)
        scores = torch.where(allowed, scores, torch.full_like(scores, float("-inf")))
    weights = softmax(scores, softmax_dim)
    return torch.einsum("...qk,...kv->...qv", weights, v), weights


def linear(x, p, name):
    return torch.einsum("...i,oi->...o", x, p[f"{name}.weight"]) + p[f"{name}.bias"]


def multi_head_attention(p, query, key, value, num_heads, mask=None, *, heads_split="transpose", scale=None,
                         softmax_dim=-1, mask_mode=MASK_KEEP):
    """Reference multi-head attention. ``heads_split="view"`` is the known mistake of reshaping (B, T, H*d)
    straight to (B, H, T, d) without the transpose; ``scale`` replaces 1/sqrt(head size)."""
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
    scale = 1.0 / math.sqrt(hs) if scale is None else scale
    y, w = attention(q, k, v, mask, scale=scale, softmax_dim=softmax_dim, mask_mode=mask_mode)
    if heads_split == "view":
        y = y.reshape(B, Tq, inner)  # the same mistake on the way back
    else:
        y = y.permute(0, 2, 1, 3).reshape(B, Tq, inner)  # (B, Tq, H*hs)
    return linear(y, p, "out_proj"), w


def layer_norm(x, p, name, eps=1e-6):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * p[f"{name}.weight"] + p[f"{name}.bias"]


def sub(p: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1 :]: v for k, v in p.items() if k.startswith(prefix + ".")}


def block(p, x, num_heads, padding_mask=None, *, norm="post", residual=True, mask_mode=MASK_KEEP, **attention):
    """Transformer block in eval mode (dropout is the identity). ``norm="pre"`` and ``residual=False`` are
    the known mistakes; ``attention`` switches the attention's own (``heads_split``, ``scale``, ``softmax_dim``)."""
    mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, T)

    def attn(h):
        return multi_head_attention(sub(p, "attn"), h, h, h, num_heads, mask, mask_mode=mask_mode, **attention)[0]

    def ffn(h):
        return linear(torch.relu(linear(h, p, "ffn.0")), p, "ffn.2")

    r = 1.0 if residual else 0.0
    if norm == "pre":
        x = r * x + attn(layer_norm(x, p, "norm1"))
        return r * x + ffn(layer_norm(x, p, "norm2"))
    x = layer_norm(r * x + attn(x), p, "norm1")
    return layer_norm(r * x + ffn(x), p, "norm2")


def embedding(p, tokens, *, positions=True):
    T = tokens.shape[1]
    out = p["token_emb.weight"][tokens]  # (B, T, E)
    if positions:
        out = out + p["pos_emb.weight"][torch.arange(T)][None]
    return out


def classifier(p, tokens, num_heads, num_blocks, *, positions=True, pool="real", **block_switches):
    """Full forward in eval mode. ``pool="all"`` averages padding too; ``block_switches`` (``mask_mode``,
    ``norm``, ``residual`` and the attention's) apply to every block."""
    real = tokens != 0  # (B, T)
    x = embedding(sub(p, "embedding"), tokens, positions=positions)
    for i in range(num_blocks):
        x = block(sub(p, f"blocks.{i}"), x, num_heads, real, **block_switches)
    if pool == "all":
        pooled = x.mean(1)
    else:
        w = real.to(x.dtype)[..., None]
        pooled = (x * w).sum(1) / w.sum(1)
    return linear(torch.relu(linear(pooled, p, "head.0")), p, "head.2")
