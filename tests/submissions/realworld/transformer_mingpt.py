"""minGPT's style (Karpathy, model.py CausalSelfAttention): one fused projection for query, key and value,
split along the features, heads by view and transpose, masked_fill with -inf; names adapted to the contract
except the fused projection (c_attn) and the output projection (c_proj). Correct maths: only the interface
should lose points (the names), the values are checked through the fused weight's rows."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled_dot_product_attention(query, key, value, mask=None):
    att = (query @ key.transpose(-2, -1)) * (1.0 / math.sqrt(key.size(-1)))
    if mask is not None:
        att = att.masked_fill(mask == 0, float("-inf"))
    att = F.softmax(att, dim=-1)
    return att @ value, att


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None):
        super().__init__()
        self.n_head = num_heads
        self.head_size = key_dim or embed_dim // num_heads
        self.c_attn = nn.Linear(embed_dim, 3 * num_heads * self.head_size)
        self.c_proj = nn.Linear(num_heads * self.head_size, embed_dim)

    def forward(self, query, key, value, mask=None):
        B, T, C = query.size()
        S = key.size(1)
        inner = self.n_head * self.head_size
        w_q, w_k, w_v = self.c_attn.weight.split(inner, dim=0)
        b_q, b_k, b_v = self.c_attn.bias.split(inner, dim=0)
        q = F.linear(query, w_q, b_q).view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = F.linear(key, w_k, b_k).view(B, S, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, S, hs)
        v = F.linear(value, w_v, b_v).view(B, S, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, S, hs)
        y, att = scaled_dot_product_attention(q, k, v, mask)
        y = y.transpose(1, 2).contiguous().view(B, T, inner)  # (B, T, nh * hs)
        return self.c_proj(y), att


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
        mask = None if padding_mask is None else padding_mask.unsqueeze(1).unsqueeze(2)  # (B, 1, 1, T)
        x = self.norm1(x + self.dropout1(self.attn(x, x, x, mask)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, max_len, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(max_len, embed_dim)

    def forward(self, tokens):
        pos = torch.arange(0, tokens.size(1), dtype=torch.long, device=tokens.device)  # (T,)
        return self.token_emb(tokens) + self.pos_emb(pos)


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, max_len, num_classes=2, embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1,
                 dropout=0.1):
        super().__init__()
        self.embedding = TokenAndPositionEmbedding(max_len, vocab_size, embed_dim)
        self.blocks = nn.ModuleList(TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_blocks))
        self.head = nn.Sequential(nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes))

    def forward(self, tokens):
        real = tokens != 0
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x, real)
        w = real.float().unsqueeze(-1)  # (B, T, 1)
        return self.head((x * w).sum(dim=1) / w.sum(dim=1))
