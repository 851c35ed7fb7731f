"""A correct submission written differently from the reference: einsum everywhere, a large negative number
for masking, F.layer_norm-free code paths unchanged (nn.LayerNorm), pooling by masked_fill and a count."""

import math

import torch
from torch import nn


def scaled_dot_product_attention(query, key, value, mask=None):
    scale = 1.0 / math.sqrt(query.shape[-1])
    scores = torch.einsum("...id,...jd->...ij", query, key) * scale
    if mask is not None:
        scores = scores.masked_fill(torch.logical_not(mask), -1e9)
    weights = torch.nn.functional.softmax(scores, dim=scores.dim() - 1)
    return torch.einsum("...ij,...jv->...iv", weights, value), weights


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim if key_dim else embed_dim // num_heads
        width = num_heads * self.key_dim
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(embed_dim, width) for _ in range(3))
        self.out_proj = nn.Linear(width, embed_dim)

    def _split(self, x):
        B, T, _ = x.shape
        return x.unflatten(-1, (self.num_heads, self.key_dim)).permute(0, 2, 1, 3)  # (B, H, T, d)

    def forward(self, query, key, value, mask=None):
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        out = out.permute(0, 2, 1, 3).flatten(2)  # (B, Tq, H*d)
        return self.out_proj(out), weights


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
        mask = padding_mask.unsqueeze(1).unsqueeze(2) if padding_mask is not None else None
        h = self.norm1(self.dropout1(self.attn(x, x, x, mask=mask)[0]) + x)
        return self.norm2(self.dropout2(self.ffn(h)) + h)


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, max_len, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(max_len, embed_dim)

    def forward(self, tokens):
        return self.token_emb(tokens) + self.pos_emb.weight[: tokens.size(1)].unsqueeze(0)


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, max_len, num_classes=2, embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1,
                 dropout=0.1):
        super().__init__()
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList(TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks))
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))

    def forward(self, tokens):
        real = tokens.ne(0)
        h = self.embedding(tokens)
        for block in self.blocks:
            h = block(h, padding_mask=real)
        summed = h.masked_fill(~real.unsqueeze(-1), 0.0).sum(dim=1)
        return self.head(summed / real.sum(dim=1, keepdim=True))
