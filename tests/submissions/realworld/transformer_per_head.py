"""The per-head style of Karpathy's "Let's build GPT" lecture: a Head module with its own key, query and value
projections, a ModuleList of heads whose outputs are concatenated, then a projection (proj). Here with biases
and no causal mask, names of the parts adapted to the contract. Correct maths: only the interface should lose
points; the heads' weights are stacked onto the contract's q_proj, k_proj and v_proj by role and index."""

import math

import torch
import torch.nn as nn


def scaled_dot_product_attention(query, key, value, mask=None):
    wei = query @ key.transpose(-2, -1) * key.shape[-1] ** -0.5
    if mask is not None:
        wei = wei.masked_fill(~mask.bool(), float("-inf"))
    wei = torch.softmax(wei, dim=-1)
    return wei @ value, wei


class Head(nn.Module):
    def __init__(self, embed_dim, head_size):
        super().__init__()
        self.key = nn.Linear(embed_dim, head_size)
        self.query = nn.Linear(embed_dim, head_size)
        self.value = nn.Linear(embed_dim, head_size)

    def forward(self, q, k, v, mask=None):
        return scaled_dot_product_attention(self.query(q), self.key(k), self.value(v), mask)


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None):
        super().__init__()
        head_size = key_dim or embed_dim // num_heads
        self.heads = nn.ModuleList([Head(embed_dim, head_size) for _ in range(num_heads)])
        self.proj = nn.Linear(num_heads * head_size, embed_dim)

    def forward(self, query, key, value, mask=None):
        results = []
        for i, h in enumerate(self.heads):
            head_mask = None if mask is None else mask[:, i if mask.size(1) > 1 else 0]  # (B, Tq|1, Tk)
            results.append(h(query, key, value, head_mask))
        out = torch.cat([y for y, _ in results], dim=-1)  # (B, Tq, H * hs)
        weights = torch.stack([w for _, w in results], dim=1)  # (B, H, Tq, Tk)
        return self.proj(out), weights


class TransformerBlock(nn.Module):
    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, padding_mask=None):
        mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, T)
        x = self.norm1(x + self.dropout1(self.attn(x, x, x, mask)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, max_len, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(max_len, embed_dim)

    def forward(self, tokens):
        return self.token_emb(tokens) + self.pos_emb.weight[: tokens.shape[1]]


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, max_len, num_classes=2, embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1,
                 dropout=0.1):
        super().__init__()
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList([TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks)])
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))

    def forward(self, tokens):
        mask = tokens > 0
        x = self.embedding(tokens)
        for blk in self.blocks:
            x = blk(x, mask)
        lengths = mask.sum(1, keepdim=True).clamp(min=1)  # (B, 1)
        return self.head(x.masked_fill(~mask[..., None], 0.0).sum(1) / lengths)
