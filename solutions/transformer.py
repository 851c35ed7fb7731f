"""Reference solution: a post-norm transformer block for tweet sentiment (course Example 2).

Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (https://arxiv.org/abs/1706.03762).

This file is the single source of truth for the exercise's solution code: the nbgrader source notebook
``assignments/source/transformer/transformer.ipynb`` holds these sections verbatim (``# %% [name]`` starts a
section, and nbgrader's BEGIN/END SOLUTION comments mark what its release replaces with a stub), and
``python -m autograder sync-notebook`` rewrites them; a test fails when the two drift.

Masks are boolean everywhere and ``True`` means "may attend" / "is a real token".
"""

# %% [imports]
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# %% [scaled_dot_product_attention]
def scaled_dot_product_attention(query, key, value, mask=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V.

    query (..., Tq, d), key (..., Tk, d), value (..., Tk, dv);
    mask: bool, broadcastable to (..., Tq, Tk), True = query may attend to that key.
    Returns output (..., Tq, dv) and weights (..., Tq, Tk) whose rows sum to 1 over the allowed keys.
    """
    ### BEGIN SOLUTION
    d = query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d)  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk), normalised over the keys
    output = weights @ value  # (..., Tq, dv)
    return output, weights
    ### END SOLUTION


# %% [MultiHeadAttention]
class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key, value and output projections."""

    def __init__(self, embed_dim: int, num_heads: int, key_dim: int = None):
        super().__init__()
        ### BEGIN SOLUTION
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.key_dim = key_dim if key_dim is not None else embed_dim // num_heads
        inner = num_heads * self.key_dim
        self.q_proj = nn.Linear(embed_dim, inner)
        self.k_proj = nn.Linear(embed_dim, inner)
        self.v_proj = nn.Linear(embed_dim, inner)
        self.out_proj = nn.Linear(inner, embed_dim)
        ### END SOLUTION

    def forward(self, query, key, value, mask=None):
        """query (B, Tq, E), key and value (B, Tk, E); mask broadcastable to (B, num_heads, Tq, Tk).

        Returns output (B, Tq, E) and weights (B, num_heads, Tq, Tk).
        """
        ### BEGIN SOLUTION
        B, Tq, E = query.shape
        Tk = key.size(1)
        nh, hs = self.num_heads, self.key_dim
        q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)
        k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        y, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, Tq, hs), (B, nh, Tq, Tk)
        y = y.transpose(1, 2).reshape(B, Tq, nh * hs)  # (B, Tq, nh * hs)
        return self.out_proj(y), weights
        ### END SOLUTION


# %% [TransformerBlock]
class TransformerBlock(nn.Module):
    """Post-norm transformer encoder block, as in the course (and the original paper)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        ### BEGIN SOLUTION
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, padding_mask=None):
        """x (B, T, E); padding_mask (B, T) bool, True = real token. Returns (B, T, E)."""
        ### BEGIN SOLUTION
        mask = None
        if padding_mask is not None:
            mask = padding_mask[:, None, None, :]  # (B, 1, 1, T): every query sees the real keys
        attn_out, _ = self.attn(x, x, x, mask)  # (B, T, E)
        x = self.norm1(x + self.dropout1(attn_out))
        x = self.norm2(x + self.dropout2(self.ffn(x)))
        return x
        ### END SOLUTION


# %% [TokenAndPositionEmbedding]
class TokenAndPositionEmbedding(nn.Module):
    """A learned token embedding plus a learned position embedding."""

    def __init__(self, max_len: int, vocab_size: int, embed_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(max_len, embed_dim)
        ### END SOLUTION

    def forward(self, tokens):
        """tokens (B, T) long with T <= max_len. Returns (B, T, E)."""
        ### BEGIN SOLUTION
        B, T = tokens.shape
        positions = torch.arange(T, device=tokens.device)  # (T,)
        return self.token_emb(tokens) + self.pos_emb(positions)  # (B, T, E)
        ### END SOLUTION


# %% [TransformerClassifier]
class TransformerClassifier(nn.Module):
    """Token and position embedding -> transformer blocks -> mean over real tokens -> MLP head."""

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        num_classes: int = 2,
        embed_dim: int = 128,
        num_heads: int = 2,
        ff_dim: int = 32,
        num_blocks: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList(
            [TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks)]
        )
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))
        ### END SOLUTION

    def forward(self, tokens):
        """tokens (B, T) long, padding id 0. Returns logits (B, num_classes)."""
        ### BEGIN SOLUTION
        padding_mask = tokens != 0  # (B, T), True = real token
        x = self.embedding(tokens)  # (B, T, E)
        for block in self.blocks:
            x = block(x, padding_mask)
        keep = padding_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, E), mean over real tokens
        return self.head(pooled)  # (B, num_classes)
        ### END SOLUTION
