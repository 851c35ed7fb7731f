"""Reference solution: a transformer encoder-decoder for pedestrian trajectories (the course's activity on its
sequence-to-sequence example).

Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (https://arxiv.org/abs/1706.03762): the
encoder-decoder, the causal mask and the sinusoidal positions (section 3.5);
Giuliari et al., "Transformer Networks for Trajectory Forecasting", ICPR 2020 (https://arxiv.org/abs/2003.08111):
the same model on pedestrian tracks, trained with teacher forcing and decoded greedily, one step at a time.

This file is the single source of truth for the exercise's solution code: the nbgrader source notebook
``assignments/source/seq2seq/seq2seq.ipynb`` holds these sections verbatim (``# %% [name]`` starts a section, and
nbgrader's BEGIN/END SOLUTION comments mark what its release replaces with a stub).

Trajectories are (B, T, 2): x / 640 and y / 480 of an overhead camera's view, 25 observed steps in, 25 out.
Masks are boolean and ``True`` means "may attend". ``MultiHeadAttention`` and ``TransformerBlock`` keep the
transformer exercise's contract; the versions here are given (built on ``F.multi_head_attention_forward``, so that
they reveal nothing of that exercise's solution), and a student may paste their own in instead.

Where this model and the course's sources differ:

- The course's text block (and ``TransformerBlock`` here) is post-norm; so is ``DecoderBlock``, as in the
  original paper. Giuliari et al. feed velocities; this model feeds and predicts positions, as the course's
  LSTM encoder-decoder did, so that the two are compared on the same windows and the same loss.
- Teacher forcing: in training the decoder reads the true previous point (``decoder_inputs``); at test time
  ``predict`` feeds back its own outputs. The causal mask keeps the two the same computation step by step.
"""

# %% [imports]
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# %% [MultiHeadAttention]
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
        """query (B, Tq, E), key and value (B, Tk, E); mask broadcastable to (B, num_heads, Tq, Tk): bool, True =
        may attend (a mask of 0s and 1s reads the same; a float mask without 1s is added to the scores, as
        PyTorch's additive masks are: 0 = may attend, -inf = may not). Returns output (B, Tq, E) and weights
        (B, num_heads, Tq, Tk)."""
        B, Tq, E = query.shape
        Tk = key.size(1)
        H = self.num_heads
        blocked = None
        if mask is not None:
            mask = torch.broadcast_to(mask, (B, H, Tq, Tk)).reshape(B * H, Tq, Tk)  # (B * H, Tq, Tk)
            # F.multi_head_attention_forward reads a bool True as "may not attend", and adds a float mask
            additive = mask.is_floating_point() and not (mask == 1).any()
            blocked = mask.to(query.dtype) if additive else ~mask.bool()
        output, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),  # (T, B, E) each
            E, H, None, torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]), None, None, False, 0.0,
            self.out_proj.weight, self.out_proj.bias, training=self.training, need_weights=True,
            attn_mask=blocked, use_separate_proj_weight=True, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight, average_attn_weights=False,
        )
        return output.transpose(0, 1), weights  # (B, Tq, E), (B, H, Tq, Tk)


# %% [TransformerBlock]
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


# %% [causal_mask]
def causal_mask(size: int):
    """(size, size) bool, True on and below the diagonal: step t may attend to steps 0 .. t."""
    ### BEGIN SOLUTION
    steps = torch.arange(size)
    return steps[None, :] <= steps[:, None]  # (size, size): key position <= query position
    ### END SOLUTION


# %% [sinusoidal_positions]
def sinusoidal_positions(length: int, dim: int):
    """The fixed position encoding of Vaswani et al. (section 3.5): (length, dim) float32, dim even, with
    column 2i = sin(pos / 10000^(2i / dim)) and column 2i + 1 = cos(pos / 10000^(2i / dim))."""
    ### BEGIN SOLUTION
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (length, 1)
    frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim / 2,)
    angles = position * frequency  # (length, dim / 2)
    table = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (length, dim / 2, 2): sin, cos of each frequency
    return table.reshape(length, dim)  # (length, dim): sin on even columns, cos on odd
    ### END SOLUTION


# %% [decoder_inputs]
def decoder_inputs(source, target):
    """The decoder's input under teacher forcing: the last observed point, then the target shifted by one.

    source (B, S, 2), target (B, T, 2) -> (B, T, 2) = [source[:, -1], target[:, 0], ..., target[:, T - 2]].
    """
    ### BEGIN SOLUTION
    return torch.cat([source[:, -1:], target[:, :-1]], dim=1)  # (B, 1 + T - 1, 2)
    ### END SOLUTION


# %% [DecoderBlock]
class DecoderBlock(nn.Module):
    """Post-norm transformer decoder block (Vaswani et al. 2017): masked self-attention, cross-attention over the
    encoder's memory, then a ReLU feed-forward, each followed by a residual and LayerNorm."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, memory, self_mask=None, return_attention: bool = False):
        """x (B, T, E), memory (B, S, E); self_mask bool, (T, T) or broadcastable to (B, num_heads, T, T),
        True = may attend. Returns (B, T, E), or with ``return_attention`` also the cross-attention's weights
        (B, num_heads, T, S)."""
        ### BEGIN SOLUTION
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))
        attended, weights = self.cross_attn(x, memory, memory)  # (B, T, E), (B, H, T, S): every observed step
        x = self.norm2(x + self.dropout2(attended))
        x = self.norm3(x + self.dropout3(self.ffn(x)))
        return (x, weights) if return_attention else x
        ### END SOLUTION


# %% [TrajectoryTransformer]
class TrajectoryTransformer(nn.Module):
    """Encoder-decoder transformer from observed steps (B, S, 2) to future steps (B, T, 2).

    The encoder reads ``source_proj(source)`` plus sinusoidal positions; the decoder reads ``target_proj`` of its
    inputs plus positions (both from 0), attends causally to itself and fully to the encoder's memory;
    ``output_proj`` maps its last block's states to points.
    """

    def __init__(self, input_dim: int = 2, embed_dim: int = 64, num_heads: int = 4, ff_dim: int = 128,
                 num_encoder_blocks: int = 2, num_decoder_blocks: int = 2, dropout: float = 0.1):
        super().__init__()
        ### BEGIN SOLUTION
        self.source_proj = nn.Linear(input_dim, embed_dim)
        self.target_proj = nn.Linear(input_dim, embed_dim)
        self.encoder = nn.ModuleList(
            [TransformerBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_encoder_blocks)])
        self.decoder = nn.ModuleList(
            [DecoderBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_decoder_blocks)])
        self.output_proj = nn.Linear(embed_dim, input_dim)
        ### END SOLUTION

    def forward(self, source, target_in):
        """Teacher forcing: source (B, S, 2), target_in (B, T, 2) (``decoder_inputs``) -> predictions (B, T, 2),
        step t predicted from the observed steps and target_in[:, :t + 1]."""
        ### BEGIN SOLUTION
        B, S, _ = source.shape
        T = target_in.size(1)
        E = self.source_proj.out_features
        memory = self.source_proj(source) + sinusoidal_positions(S, E).to(source)  # (B, S, E)
        for block in self.encoder:
            memory = block(memory)
        x = self.target_proj(target_in) + sinusoidal_positions(T, E).to(target_in)  # (B, T, E)
        mask = causal_mask(T).to(target_in.device)  # (T, T): step t sees steps 0 .. t
        for block in self.decoder:
            x = block(x, memory, mask)
        return self.output_proj(x)  # (B, T, 2)
        ### END SOLUTION

    def predict(self, source, steps: int):
        """Greedy, autoregressive: from the last observed point, each step feeds back its own prediction.

        source (B, S, 2), steps >= 1 -> (B, steps, 2). Runs in the model's current mode, without gradients.
        """
        ### BEGIN SOLUTION
        target_in = source[:, -1:]  # (B, 1, 2): the last observed point
        with torch.no_grad():
            for _ in range(steps):
                points = self(source, target_in)  # (B, t, 2)
                target_in = torch.cat([target_in, points[:, -1:]], dim=1)  # (B, t + 1, 2): its own output fed back
        return target_in[:, 1:]  # (B, steps, 2)
        ### END SOLUTION
