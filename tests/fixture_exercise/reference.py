"""The fixture exercise's float64 reference, with its known mistakes as switches.

Shares no code with ``solution.py``: the softmax is written out (shifted exponentials over their sum), the layers
as einsums over the parameters named as in the contract.
"""

from __future__ import annotations

import torch

MASK_BEFORE, MASK_IGNORED, MASK_AFTER = "before", "ignored", "after"  # the contract's, then two mistakes


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, *, masking: str = MASK_BEFORE):
    """The softmax over the last axis, exactly 0 where ``mask`` is False.

    Mistakes: ``masking="ignored"`` (the mask is not used); ``masking="after"`` (the softmax over every position,
    then the masked weights set to 0: the others no longer sum to 1).
    """
    keep = mask is not None and masking != MASK_IGNORED
    if keep and masking == MASK_BEFORE:
        scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
    shifted = scores - scores.amax(dim=-1, keepdim=True)
    e = shifted.exp()
    weights = e / e.sum(dim=-1, keepdim=True)
    return torch.where(mask, weights, torch.zeros_like(weights)) if keep else weights


def attention_pooling(p: dict, x: torch.Tensor, mask: torch.Tensor | None = None, *, tanh: bool = True,
                      pooled: str = "inputs", **softmax_switches):
    """(pooled (B, D), weights (B, T)): weights = masked_softmax(score(tanh(proj(x)))), pooled = sum_t w_t x_t.

    Mistakes: ``tanh=False``; ``pooled="projected"`` (the weights pool proj(x), not x). ``softmax_switches`` are
    ``masked_softmax``'s (what the submission's masked_softmax computes, when it is judged as a composite).
    """
    projected = torch.einsum("btd,ed->bte", x, p["proj.weight"]) + p["proj.bias"]  # (B, T, D)
    hidden = torch.tanh(projected) if tanh else projected
    scores = torch.einsum("bte,e->bt", hidden, p["score.weight"][0]) + p["score.bias"][0]  # (B, T)
    weights = masked_softmax(scores, mask, **softmax_switches)
    values = x if pooled == "inputs" else projected
    return torch.einsum("bt,btd->bd", weights, values), weights
