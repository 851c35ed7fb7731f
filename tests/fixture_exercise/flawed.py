"""A flawed sample of the fixture exercise: the mask applied after the softmax, and no tanh in the scores."""

import torch
import torch.nn as nn


def masked_softmax(scores, mask=None):
    weights = torch.softmax(scores, dim=-1)
    return weights if mask is None else weights * mask


class AttentionPooling(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1)

    def forward(self, x, mask=None):
        weights = masked_softmax(self.score(self.proj(x)).squeeze(-1), mask)
        return torch.einsum("bt,btd->bd", weights, x), weights
