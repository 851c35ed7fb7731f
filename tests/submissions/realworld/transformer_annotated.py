"""The Annotated Transformer's style (Harvard NLP): clones of the layers, attention with masked_fill(mask == 0,
-1e9), a hand-written LayerNorm that divides by the unbiased standard deviation with eps added to it
(x.std(-1)), and pre-norm sublayer connections, x + dropout(sublayer(norm(x))). Names adapted to the contract.

Expected: two deviations of the block's own (pre-norm, the unbiased LayerNorm) cost the block's values only,
named together in one hint; its LayerNorm class keeps the contract's type name but has no normalized_shape,
which costs the block's interface; nothing else loses points."""

import copy
import math

import torch
import torch.nn as nn


def clones(module, n):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


def scaled_dot_product_attention(query, key, value, mask=None):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    p_attn = scores.softmax(dim=-1)
    return torch.matmul(p_attn, value), p_attn


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None):
        super().__init__()
        self.d_k = key_dim or embed_dim // num_heads
        self.h = num_heads
        self.q_proj, self.k_proj, self.v_proj = clones(nn.Linear(embed_dim, self.h * self.d_k), 3)
        self.out_proj = nn.Linear(self.h * self.d_k, embed_dim)

    def forward(self, query, key, value, mask=None):
        nbatches = query.size(0)
        query, key, value = [
            lin(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)  # (B, h, T, d_k)
            for lin, x in zip((self.q_proj, self.k_proj, self.v_proj), (query, key, value))
        ]
        x, attn = scaled_dot_product_attention(query, key, value, mask=mask)
        x = x.transpose(1, 2).contiguous().view(nbatches, -1, self.h * self.d_k)  # (B, T, h * d_k)
        return self.out_proj(x), attn


class LayerNorm(nn.Module):
    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


class TransformerBlock(nn.Module):
    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = LayerNorm(embed_dim)
        self.norm2 = LayerNorm(embed_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, padding_mask=None):
        mask = None if padding_mask is None else padding_mask.unsqueeze(1).unsqueeze(1)  # (B, 1, 1, T)
        h = self.norm1(x)
        x = x + self.dropout1(self.attn(h, h, h, mask)[0])
        return x + self.dropout2(self.ffn(self.norm2(x)))


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, max_len, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(max_len, embed_dim)

    def forward(self, tokens):
        positions = torch.arange(tokens.size(1), device=tokens.device).unsqueeze(0)  # (1, T)
        return self.token_emb(tokens) + self.pos_emb(positions)


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, max_len, num_classes=2, embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1,
                 dropout=0.1):
        super().__init__()
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList([TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks)])
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))

    def forward(self, tokens):
        mask = (tokens != 0).unsqueeze(-1)  # (B, T, 1)
        x = self.embedding(tokens)
        for layer in self.blocks:
            x = layer(x, mask.squeeze(-1))
        return self.head((x * mask).sum(1) / mask.sum(1))
