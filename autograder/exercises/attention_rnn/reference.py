"""Independent float64 references for the attention-over-LSTM exercise, with its known mistakes as switches.

Shares no code with ``solutions/attention_rnn.py``: the LSTM is written out gate by gate (PyTorch's gate
order i, f, g, o), and the attention from the contract's formulas.
"""

from __future__ import annotations

import torch

from ...kinks import smooth
from ...kit.reference import sub

MASK_KEEP, MASK_IGNORED = "keep", "ignored"


def lstm(x, p, prefix):
    """A one-layer, batch-first LSTM from zero state; returns all hidden states (B, T, H)."""
    w_ih, w_hh = p[f"{prefix}.weight_ih_l0"], p[f"{prefix}.weight_hh_l0"]
    b = p[f"{prefix}.bias_ih_l0"] + p[f"{prefix}.bias_hh_l0"]
    B, T, _ = x.shape
    H = w_hh.shape[1]
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    inputs = torch.einsum("bti,gi->btg", x, w_ih) + b  # (B, T, 4H): every step's input term at once
    outs = []
    for t in range(T):
        gates = inputs[:, t] + torch.einsum("bh,gh->bg", h, w_hh)  # (B, 4H)
        i, f, g, o = gates.split(H, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, dim=1)


def temporal_attention(p, h, mask=None, *, normalise="softmax", tanh=True, axis="time", mask_mode=MASK_KEEP,
                       applied=True):
    """weights = softmax over time of tanh(score(h)) (or sigmoid(score(h))), 0 on padding; weighted = h * weights.

    Mistakes: ``tanh=False``; ``axis="feature"`` (softmax over the size-1 score axis: every weight is 1);
    ``mask_mode="ignored"``; ``applied=False`` (weights computed, h returned unchanged); ``normalise`` swapped.
    """
    scores = torch.einsum("bth,h->bt", h, p["score.weight"][0]) + p["score.bias"][0]  # (B, T)
    real = mask if (mask is not None and mask_mode == MASK_KEEP) else torch.ones_like(scores, dtype=torch.bool)
    if normalise == "softmax":
        if tanh:
            scores = torch.tanh(scores)
        if axis == "feature":
            weights = torch.ones_like(scores)
        else:
            scores = torch.where(real, scores, torch.full_like(scores, float("-inf")))
            with smooth():  # the shift changes no value and no derivative
                scores = scores - scores.amax(dim=1, keepdim=True)
            weights = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
    else:
        weights = 1.0 / (1.0 + torch.exp(-scores))
    weights = torch.where(real, weights, torch.zeros_like(weights))
    weighted = h * weights[..., None] if applied else h
    return weighted, weights


def padded_embedding(weight: torch.Tensor) -> torch.Tensor:
    """The embedding table with row 0 (padding) held constant: nn.Embedding(padding_idx=0) gives it no gradient."""
    return torch.cat([weight[:1].detach(), weight[1:]])


def classifier(p, tokens, *, read="last_real", **attention):
    """Logits and attention weights in eval mode; ``read="last"`` is the mistake of reading the padded end."""
    mask = tokens != 0
    h = lstm(padded_embedding(p["embedding.weight"])[tokens], p, "lstm1")
    weighted, weights = temporal_attention(sub(p, "attention"), h, mask, **attention)
    out = lstm(weighted, p, "lstm2")
    index = mask.sum(1) - 1 if read == "last_real" else torch.full((tokens.shape[0],), tokens.shape[1] - 1)
    final = out[torch.arange(tokens.shape[0]), index]
    logits = torch.einsum("bh,ch->bc", final, p["classifier.weight"]) + p["classifier.bias"]
    return logits, weights
