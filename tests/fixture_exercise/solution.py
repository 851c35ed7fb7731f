"""Reference solution of the tests' fixture exercise: a masked softmax and the attention pooling built from it.

nbgrader's BEGIN/END SOLUTION comments mark what its release (``conftest.stub_source``) replaces with a stub.
"""

# %% [imports]
import torch
import torch.nn as nn


# %% [masked_softmax]
def masked_softmax(scores, mask=None):
    """scores (..., T); mask (..., T) bool, True = keep. The softmax over the last axis, 0 where masked."""
    ### BEGIN SOLUTION
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)
    ### END SOLUTION


# %% [AttentionPooling]
class AttentionPooling(nn.Module):
    """Additive attention over the steps of x, pooled into one vector per sequence."""

    def __init__(self, dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1)
        ### END SOLUTION

    def forward(self, x, mask=None):
        """x (B, T, D); mask (B, T) bool. Returns pooled (B, D) and weights (B, T)."""
        ### BEGIN SOLUTION
        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)
        pooled = torch.einsum("bt,btd->bd", weights, x)  # (B, D)
        return pooled, weights
        ### END SOLUTION
