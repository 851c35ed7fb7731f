"""A plausible student submission for the trajectory transformer exercise with three classic mistakes, for the
demo and the tests: sin and cos swapped in the position table (computed in log space), the decoder's input
not shifted (the target itself: a model trained on it in the notebook learns to copy; the grader trains on
decoder inputs of its own, so this costs ``decoder_inputs``' checks only), and a greedy ``predict`` that feeds back zeros instead
of its own predictions. Everything else is right, and written differently from the reference (``torch.tril``,
log-space frequencies, an encode/decode split with a list of decoder inputs in ``predict``). The attention and the
encoder block are the notebook's given ones."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key, value and output projections (given: the transformer
    exercise's contract, computed by ``F.multi_head_attention_forward``)."""

    def __init__(self, embed_dim: int, num_heads: int, key_dim: int = None):
        super().__init__()
        if embed_dim % num_heads or (key_dim is not None and key_dim * num_heads != embed_dim):
            raise ValueError("this MultiHeadAttention splits embed_dim into num_heads heads of embed_dim // num_heads")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.key_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query, key, value, mask=None):
        """query (B, Tq, E), key and value (B, Tk, E); mask bool, broadcastable to (B, num_heads, Tq, Tk),
        True = may attend. Returns output (B, Tq, E) and weights (B, num_heads, Tq, Tk)."""
        B, Tq, E = query.shape
        Tk = key.size(1)
        H = self.num_heads
        blocked = None
        if mask is not None:
            if mask.dtype != torch.bool:
                raise TypeError(f"the mask must be a bool tensor, True = may attend (got {mask.dtype}): is causal_mask's "
                                "output bool?")
            mask = torch.broadcast_to(mask, (B, H, Tq, Tk)).reshape(B * H, Tq, Tk)  # (B * H, Tq, Tk)
            blocked = ~mask  # F.multi_head_attention_forward reads True as "may not attend"
        output, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),  # (T, B, E) each
            E, H, None, torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]), None, None, False, 0.0,
            self.out_proj.weight, self.out_proj.bias, training=self.training, need_weights=True,
            attn_mask=blocked, use_separate_proj_weight=True, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight, average_attn_weights=False,
        )
        return output.transpose(0, 1), weights  # (B, Tq, E), (B, H, Tq, Tk)


class TransformerBlock(nn.Module):
    """Post-norm transformer encoder block, as in the course (given: the transformer exercise's contract)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, padding_mask=None):
        """x (B, T, E); padding_mask (B, T) bool, True = real step. Returns (B, T, E)."""
        mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, T)
        x = self.norm1(x + self.dropout1(self.attn(x, x, x, mask)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


def causal_mask(size):
    return torch.tril(torch.ones(size, size, dtype=torch.bool))


def sinusoidal_positions(length, dim):
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.cos(position * div)  # should be sin
    pe[:, 1::2] = torch.sin(position * div)  # should be cos
    return pe


def decoder_inputs(source, target):
    return target  # should be [source[:, -1:], target[:, :-1]]


class DecoderBlock(nn.Module):
    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x, memory, self_mask=None, return_attention=False):
        h, _ = self.self_attn(x, x, x, self_mask)
        x = self.norm1(x + self.dropout1(h))
        h, cross_weights = self.cross_attn(x, memory, memory)
        x = self.norm2(x + self.dropout2(h))
        x = self.norm3(x + self.dropout3(self.ffn(x)))
        if return_attention:
            return x, cross_weights
        return x


class TrajectoryTransformer(nn.Module):
    def __init__(self, input_dim=2, embed_dim=64, num_heads=4, ff_dim=128, num_encoder_blocks=2,
                 num_decoder_blocks=2, dropout=0.1):
        super().__init__()
        self.embed_dim = embed_dim
        self.source_proj = nn.Linear(input_dim, embed_dim)
        self.target_proj = nn.Linear(input_dim, embed_dim)
        self.encoder = nn.ModuleList([TransformerBlock(embed_dim, num_heads, ff_dim, dropout)
                                      for _ in range(num_encoder_blocks)])
        self.decoder = nn.ModuleList([DecoderBlock(embed_dim, num_heads, ff_dim, dropout)
                                      for _ in range(num_decoder_blocks)])
        self.output_proj = nn.Linear(embed_dim, input_dim)

    def encode(self, source):
        memory = self.source_proj(source) + sinusoidal_positions(source.shape[1], self.embed_dim).to(source.device)
        for layer in self.encoder:
            memory = layer(memory)
        return memory

    def decode(self, target_in, memory):
        T = target_in.shape[1]
        h = self.target_proj(target_in) + sinusoidal_positions(T, self.embed_dim).to(target_in.device)
        mask = causal_mask(T).to(target_in.device)
        for layer in self.decoder:
            h = layer(h, memory, mask)
        return self.output_proj(h)

    def forward(self, source, target_in):
        return self.decode(target_in, self.encode(source))

    @torch.no_grad()
    def predict(self, source, steps):
        memory = self.encode(source)
        inputs = [source[:, -1:]]
        outputs = []
        for _ in range(steps):
            out = self.decode(torch.cat(inputs, dim=1), memory)[:, -1:]
            outputs.append(out)
            inputs.append(torch.zeros_like(out))  # should feed back out
        return torch.cat(outputs, dim=1)
