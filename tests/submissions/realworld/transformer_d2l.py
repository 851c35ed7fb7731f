"""d2l.ai's style (chapter 11, "Attention Mechanisms and Transformers"): masked_softmax that fills masked
scores with -1e6, transpose_qkv / transpose_output helpers, projections without biases (d2l's default
bias=False), AddNorm (LayerNorm of dropout(Y) + X). Its embedding is d2l's: the token embedding scaled by
sqrt(embed_dim) plus a fixed sinusoidal encoding. Names adapted to the contract.

Expected: the missing biases cost the attention's interface only (the values are checked with zero biases);
the embedding's two deviations cost the embedding only, with a hint naming both; the classifier is judged on
its own logic and keeps its points."""

import math

import torch
from torch import nn


def masked_softmax(X, mask):
    if mask is None:
        return nn.functional.softmax(X, dim=-1)
    X = torch.where(mask, X, torch.full_like(X, -1e6))
    return nn.functional.softmax(X, dim=-1)


def scaled_dot_product_attention(query, key, value, mask=None):
    d = query.shape[-1]
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(d)
    attention_weights = masked_softmax(scores, mask)
    return torch.matmul(attention_weights, value), attention_weights


def transpose_qkv(X, num_heads):
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)  # (B, T, H, d)
    return X.permute(0, 2, 1, 3)  # (B, H, T, d)


def transpose_output(X):
    X = X.permute(0, 2, 1, 3)  # (B, T, H, d)
    return X.reshape(X.shape[0], X.shape[1], -1)  # (B, T, H * d)


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None, bias=False):
        super().__init__()
        self.num_heads = num_heads
        hidden = num_heads * (key_dim or embed_dim // num_heads)
        self.q_proj = nn.Linear(embed_dim, hidden, bias=bias)
        self.k_proj = nn.Linear(embed_dim, hidden, bias=bias)
        self.v_proj = nn.Linear(embed_dim, hidden, bias=bias)
        self.out_proj = nn.Linear(hidden, embed_dim, bias=bias)

    def forward(self, queries, keys, values, mask=None):
        queries = transpose_qkv(self.q_proj(queries), self.num_heads)
        keys = transpose_qkv(self.k_proj(keys), self.num_heads)
        values = transpose_qkv(self.v_proj(values), self.num_heads)
        output, weights = scaled_dot_product_attention(queries, keys, values, mask)
        return self.out_proj(transpose_output(output)), weights


class TransformerBlock(nn.Module):
    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads, bias=True)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, X, padding_mask=None):
        mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, T)
        Y = self.norm1(self.dropout1(self.attn(X, X, X, mask)[0]) + X)
        return self.norm2(self.dropout2(self.ffn(Y)) + Y)


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, max_len, vocab_size, embed_dim):
        super().__init__()
        self.embed_dim = embed_dim
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        P = torch.zeros((1, max_len, embed_dim))
        X = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1) / torch.pow(
            10000, torch.arange(0, embed_dim, 2, dtype=torch.float32) / embed_dim)
        P[:, :, 0::2] = torch.sin(X)
        P[:, :, 1::2] = torch.cos(X)
        self.register_buffer("P", P)

    def forward(self, tokens):
        X = self.token_emb(tokens) * math.sqrt(self.embed_dim)
        return X + self.P[:, : X.shape[1], :]


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, max_len, num_classes=2, embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1,
                 dropout=0.1):
        super().__init__()
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList([TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks)])
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))

    def forward(self, tokens):
        valid = tokens != 0
        X = self.embedding(tokens)
        for blk in self.blocks:
            X = blk(X, valid)
        valid = valid.unsqueeze(-1).type_as(X)  # (B, T, 1)
        return self.head((X * valid).sum(1) / valid.sum(1))
