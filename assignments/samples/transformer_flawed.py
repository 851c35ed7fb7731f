"""A plausible student submission with three classic mistakes, for the README's demo and the tests:
no 1/sqrt(d) scaling, heads split without the transpose, and padding included in the mean.
Everything else is right (and written differently from the reference: einsum, a large negative fill)."""

import torch
import torch.nn as nn


def scaled_dot_product_attention(query, key, value, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", query, key)  # forgot to divide by sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = scores.softmax(dim=-1)
    return torch.einsum("...qk,...kv->...qv", weights, value), weights


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, key_dim=None):
        super().__init__()
        self.h = num_heads
        self.d = key_dim or embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, self.h * self.d)
        self.k_proj = nn.Linear(embed_dim, self.h * self.d)
        self.v_proj = nn.Linear(embed_dim, self.h * self.d)
        self.out_proj = nn.Linear(self.h * self.d, embed_dim)

    def forward(self, query, key, value, mask=None):
        B, Tq, _ = query.shape
        Tk = key.shape[1]
        q = self.q_proj(query).reshape(B, self.h, Tq, self.d)  # no transpose: mixes positions and heads
        k = self.k_proj(key).reshape(B, self.h, Tk, self.d)
        v = self.v_proj(value).reshape(B, self.h, Tk, self.d)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(out.reshape(B, Tq, self.h * self.d)), weights


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
        mask = None if padding_mask is None else padding_mask[:, None, None, :]
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
        real = tokens != 0
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x, real)
        return self.head(x.mean(dim=1))  # averages the padding too


# Training code a student left in the file: the grader does not run it.
if __name__ == "__main__":
    model = TransformerClassifier(10_000, 40)
    print(model)
