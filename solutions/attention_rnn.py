"""Reference solution: attention over an LSTM's outputs for tweet sentiment (course Example 1).

Learned per-step scores re-weight the first LSTM's outputs before a second LSTM reads them (the course's
model; an instance of the "feed-forward attention" of Raffel and Ellis, "Feed-Forward Networks with Attention
Can Solve Some Long-Term Memory Problems", ICLR 2016 workshop, https://arxiv.org/abs/1512.08756). Two flaws of
the course's Keras notebook are fixed: padded steps get no attention, and the classifier reads each tweet's
last *real* step rather than the last, padded, one.

This file is the single source of truth for the exercise's solution code: the nbgrader source notebook
``assignments/source/attention_rnn/attention_rnn.ipynb`` holds these sections verbatim (``# %% [name]`` starts
a section, and nbgrader's BEGIN/END SOLUTION comments mark what its release replaces with a stub).

Sequences are post-padded with id 0 and hold at least one real token; masks are True at real steps.
"""

# %% [imports]
import torch
import torch.nn as nn


# %% [TemporalAttention]
class TemporalAttention(nn.Module):
    """One learned score per time step, normalised over time (softmax) or per step (sigmoid)."""

    def __init__(self, hidden_dim: int, normalise: str = "softmax"):
        super().__init__()
        ### BEGIN SOLUTION
        if normalise not in ("softmax", "sigmoid"):
            raise ValueError(f"normalise must be 'softmax' or 'sigmoid', not {normalise!r}")
        self.normalise = normalise
        self.score = nn.Linear(hidden_dim, 1)
        ### END SOLUTION

    def forward(self, h, mask=None):
        """h (B, T, H); mask (B, T) bool, True = real step. Returns weighted (B, T, H) and weights (B, T)."""
        ### BEGIN SOLUTION
        B, T, H = h.shape
        scores = self.score(h).squeeze(-1)  # (B, T)
        if self.normalise == "softmax":
            scores = torch.tanh(scores)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1)  # (B, T), over time
        else:
            weights = torch.sigmoid(scores)  # (B, T), each step on its own
            if mask is not None:
                weights = weights.masked_fill(~mask, 0.0)
        weighted = h * weights.unsqueeze(-1)  # (B, T, H)
        return weighted, weights
        ### END SOLUTION


# %% [AttentionLSTMClassifier]
class AttentionLSTMClassifier(nn.Module):
    """Embedding -> LSTM -> temporal attention -> LSTM -> the last real step -> linear classifier."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        embed_dim: int = 128,
        hidden_dim: int = 64,
        normalise: str = "softmax",
    ):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm1 = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.attention = TemporalAttention(hidden_dim, normalise)
        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, num_classes)
        ### END SOLUTION

    def forward(self, tokens, return_attention: bool = False):
        """tokens (B, T) long, post-padded with 0. Returns logits (B, num_classes), and weights (B, T) if asked."""
        ### BEGIN SOLUTION
        mask = tokens != 0  # (B, T), True = real step
        h, _ = self.lstm1(self.embedding(tokens))  # (B, T, H)
        weighted, weights = self.attention(h, mask)  # (B, T, H), (B, T)
        out, _ = self.lstm2(weighted)  # (B, T, H)
        last = mask.sum(1) - 1  # (B,), index of each sequence's last real step
        final = out[torch.arange(out.size(0), device=out.device), last]  # (B, H)
        logits = self.classifier(final)  # (B, num_classes)
        return (logits, weights) if return_attention else logits
        ### END SOLUTION
