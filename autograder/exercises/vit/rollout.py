"""Attention rollout: how much each input token feeds each output token through a stack of attention layers.

Abnar and Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020 (https://arxiv.org/abs/2005.00928).
One layer's attention matrix says how much of each token's value each token gathers, but tokens mix from layer
to layer, so a deeper layer's weights are over mixtures, not over the inputs. Rollout follows the mixing: with
each layer's weights averaged over its heads, and the residual connection counted as attention to oneself
(``0.5 * A + 0.5 * I``, rows renormalised to sum to 1), the product of the layers' matrices, the last layer on
the left, says how much of each input token ends up in each output token.

It reads the attention weights only: the value projections, the MLPs and the norms are left out, and the equal
split between the residual and the attention is the paper's assumption, not something the network learned.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def attention_rollout(maps: Sequence[Tensor], residual: bool = True) -> Tensor:
    """The rolled-out attention of a stack of layers (Abnar and Zuidema, ACL 2020).

    ``maps``: each layer's attention weights (B, heads, N, N), first layer first, rows (queries) summing to 1
    over the keys. Each layer's heads are averaged; with ``residual`` (the paper's rollout) the identity is added
    for the residual connection, ``0.5 * A + 0.5 * I``, and the rows renormalised. The layers are then chained,
    ``R = A_L @ ... @ A_2 @ A_1``. Returns R (B, N, N): row i is how much each input token contributes to output
    token i; rows sum to 1. The result has the first map's dtype and device.
    """
    if len(maps) == 0:
        raise ValueError("attention_rollout needs the attention weights of at least one layer")
    first = maps[0]
    if first.ndim != 4 or first.shape[-1] != first.shape[-2]:
        raise ValueError(f"expected attention weights of shape (B, heads, N, N), got {tuple(first.shape)}")
    B, _, N, _ = first.shape
    eye = torch.eye(N, dtype=first.dtype, device=first.device)  # (N, N)
    rollout = None
    for layer, weights in enumerate(maps):
        if weights.ndim != 4 or weights.shape[0] != B or weights.shape[2:] != (N, N):
            raise ValueError(f"layer {layer}: attention weights of shape {tuple(weights.shape)}; expected "
                             f"(B={B}, heads, N={N}, N={N}) like the first layer's")
        a = weights.to(dtype=first.dtype, device=first.device).mean(1)  # (B, heads, N, N) -> (B, N, N)
        if residual:
            a = 0.5 * a + 0.5 * eye  # (B, N, N): the residual path counted as attention to oneself
            a = a / a.sum(-1, keepdim=True)  # (B, N, N) / (B, N, 1): rows sum to 1 again
        rollout = a if rollout is None else torch.bmm(a, rollout)  # (B, N, N) @ (B, N, N): this layer on the left
    return rollout


def patch_importance(rollout: Tensor, grid: tuple[int, int]) -> Tensor:
    """A per-token importance map from a rollout (B, N, N): the mean over the output tokens (the rows) of how much
    each input token feeds them, reshaped to the tokens' (h, w) grid, row-major, h * w = N. Returns (B, h, w),
    summing to 1 over each map (when the rollout's rows do).

    The choice: a model with a class token is read from the class token's row alone; a model without one that
    flattens all N output states into its classifier (as Keras' ViT example does) reads every row, so each row
    counts equally here. It is not specific to a class: the classifier's own weights, which may favour some
    output tokens, are not looked at.
    """
    B, N, _ = rollout.shape
    h, w = grid
    if h * w != N:
        raise ValueError(f"a ({h}, {w}) grid holds {h * w} tokens, but the rollout has {N}")
    importance = rollout.mean(1)  # (B, N, N) -> (B, N): column j averaged over the rows (output tokens)
    return importance.reshape(B, h, w)  # (B, N) -> (B, h, w): row-major, token n = i * w + j
