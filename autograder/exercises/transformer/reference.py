"""Independent float64 references for the transformer exercise, with its known mistakes as switches.

Written apart from ``solutions/transformer.py`` and sharing no code with it; attention, the block and layer norm
are the shared ones (``kit.reference``), the embedding and the classifier are this exercise's. Every function takes a dict of
float64 parameters named as in the exercise's contract, e.g. ``{"q_proj.weight": ...}``.
"""

from __future__ import annotations

import math

import torch

from ...kit.reference import (  # noqa: F401 - the transformer's parts, shared with other exercises
    MASK_KEEP, MASK_INVERTED, MASK_IGNORED, SCALES, attention, block, layer_norm, linear, multi_head_attention, scale_factor, softmax, sub,
)


def sinusoidal(T: int, E: int) -> torch.Tensor:
    """Vaswani et al.'s fixed position encoding (T, E): sin on even columns, cos on odd, 10000^(2i/E)."""
    position = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    frequency = torch.exp(torch.arange(0, E, 2, dtype=torch.float64) * (-math.log(10000.0) / E))  # (E/2,)
    table = torch.zeros(T, E, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : E // 2]
    return table


def embedding(p, tokens, *, positions="learned", token_scale=False):
    """token_emb(tokens) + pos_emb(0..T-1). Known mistakes: ``positions=False`` (none), ``"sinusoidal"`` (the
    fixed encoding instead of the learned one), ``token_scale=True`` (token embedding times sqrt(E))."""
    T = tokens.shape[1]
    out = p["token_emb.weight"][tokens]  # (B, T, E)
    if token_scale:
        out = out * math.sqrt(out.shape[-1])
    if positions == "learned":
        out = out + p["pos_emb.weight"][torch.arange(T)][None]
    elif positions == "sinusoidal":
        out = out + sinusoidal(T, out.shape[-1])[None]
    return out


EMBEDDING_SWITCHES = ("positions", "token_scale")


def classifier(p, tokens, num_heads, num_blocks, *, pool="real", **switches):
    """Full forward in eval mode. ``pool="all"`` averages padding too; ``positions`` and ``token_scale`` switch
    the embedding's mistakes, the rest (``mask_mode``, ``norm``, ``residual`` and the attention's) apply to
    every block."""
    real = tokens != 0  # (B, T)
    embedding_switches = {k: switches.pop(k) for k in EMBEDDING_SWITCHES if k in switches}
    x = embedding(sub(p, "embedding"), tokens, **embedding_switches)
    for i in range(num_blocks):
        x = block(sub(p, f"blocks.{i}"), x, num_heads, real, **switches)
    if pool == "all":
        pooled = x.mean(1)
    else:
        w = real.to(x.dtype)[..., None]
        pooled = (x * w).sum(1) / w.sum(1)
    return linear(torch.relu(linear(pooled, p, "head.0")), p, "head.2")
