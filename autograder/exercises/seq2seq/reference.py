"""Independent float64 references for the trajectory transformer exercise, with its known mistakes as switches.

Written apart from ``solutions/seq2seq.py`` and sharing no code with it: no ``nn.Module`` and no
``F.multi_head_attention_forward``. The linear layers, layer norm, multi-head attention and the post-norm encoder
block are ``kit.reference``'s (einsums and explicit formulas); the positions are built column by column from
the paper's formula; the mask is compared index by index.

Every function takes a dict ``p`` of float64 parameters named as in the exercise's contract, relative to the
module it models (``decoder_block`` reads ``p["self_attn.q_proj.weight"]``, ``trajectory_transformer`` reads
``p["decoder.0.norm1.weight"]``), and float64 inputs, and returns what the solution returns. Everything is in
eval mode: dropout is the identity. Every switch defaults to the contract; the ``*_SWITCHES`` dicts list each
switch's values, the contract's first.
"""

from __future__ import annotations

import torch

from ...kit.reference import block, layer_norm, linear, multi_head_attention, sub

# The switches and their values; the first value of each is the contract's.
MASK_SWITCHES = {"mask": ("lower", "inverted", "transposed", "strict", "missing")}
POSITION_SWITCHES = {"positions": ("sin_cos", "cos_sin", "frequency", "column", "missing")}
SHIFT_SWITCHES = {"shift": ("once", "none", "twice", "repeated")}
DECODER_SWITCHES = {"norm": ("post", "pre"), "cross": ("memory", "target"), "dec_mask": ("used", "ignored"),
                    "dec_unbiased": (False, True)}
PREDICT_SWITCHES = {"feed": ("own", "zeros", "first"), "start": ("last", "first")}
# The encoder's TransformerBlock (the transformer exercise's, given): its own mistakes, as ``kit.reference.block``
# names them, prefixed so that they differ from the decoder block's
ENCODER_SWITCHES = {"enc_norm": ("post", "pre"), "enc_residual": (True, False), "enc_activation": ("relu", "gelu"),
                    "enc_unbiased": (False, True)}
MODEL_SWITCHES = {**MASK_SWITCHES, **POSITION_SWITCHES, **DECODER_SWITCHES, **ENCODER_SWITCHES}
_ALL = {**MODEL_SWITCHES, **SHIFT_SWITCHES, **PREDICT_SWITCHES}


def _known(**switches) -> None:
    """A switch value the reference does not know is a bug of the caller's: never silently the contract."""
    for name, value in switches.items():
        if value not in _ALL[name]:
            raise ValueError(f"unknown value {value!r} of the switch {name!r}; known: {_ALL[name]}")


def causal_mask(size: int, *, mask: str = "lower") -> torch.Tensor:
    """(size, size) bool, True where query i may attend to key j: j <= i. Known mistakes: ``"inverted"`` (j > i),
    ``"transposed"`` (j >= i), ``"strict"`` (j < i), ``"missing"`` (everything allowed)."""
    _known(mask=mask)
    i = torch.arange(size)[:, None]  # (size, 1): the query's step
    j = torch.arange(size)[None, :]  # (1, size): the key's step
    table = {"lower": j <= i, "inverted": j > i, "transposed": j >= i, "strict": j < i,
             "missing": torch.ones(size, size, dtype=torch.bool)}
    return table[mask]


def sinusoidal_positions(length: int, dim: int, *, positions: str = "sin_cos") -> torch.Tensor:
    """(length, dim) float64: column 2i = sin(pos / 10000^(2i / dim)), column 2i + 1 = cos(the same).

    Known mistakes: ``"cos_sin"`` (sin and cos swapped), ``"frequency"`` (10000^(i / dim) for the pair i, not
    10000^(2i / dim)), ``"column"`` (10000^(c / dim) for the column c), ``"missing"`` (zeros: no positions)."""
    _known(positions=positions)
    table = torch.zeros(length, dim, dtype=torch.float64)
    if positions == "missing":
        return table
    pos = torch.arange(length, dtype=torch.float64)
    for column in range(dim):
        pair = column - column % 2  # 2i of the column's pair
        exponent = {"frequency": pair // 2, "column": column}.get(positions, pair) / dim
        angle = pos / 10000.0 ** exponent  # (length,)
        first, second = (torch.cos, torch.sin) if positions == "cos_sin" else (torch.sin, torch.cos)
        table[:, column] = first(angle) if column % 2 == 0 else second(angle)
    return table


def decoder_inputs(source, target, *, shift: str = "once"):
    """[source[:, -1], target[:, 0 .. T-2]] (B, T, 2). Known mistakes: ``"none"`` (the target itself),
    ``"twice"`` (shifted by two: [source[:, -2:], target[:, :-2]]), ``"repeated"`` (the contract's shift applied
    twice: [source[:, -1], source[:, -1], target[:, :-2]])."""
    _known(shift=shift)
    T = target.shape[1]
    if shift == "none":
        return target.clone()
    if shift == "twice":
        shifted = torch.cat([source[:, -2:], target], dim=1)  # (B, T + 2, 2)
    elif shift == "repeated":
        shifted = torch.cat([source[:, -1:], source[:, -1:], target], dim=1)  # (B, T + 2, 2)
    else:
        shifted = torch.cat([source[:, -1:], target], dim=1)  # (B, T + 1, 2)
    return shifted[:, :T]  # the first T steps


def decoder_block(p, x, memory, num_heads, self_mask=None, *, norm="post", cross="memory", dec_mask="used",
                  dec_unbiased=False, **attention):
    """Post-norm decoder block in eval mode: (x (B, T, E), cross-attention weights (B, H, T, S)).

    Known mistakes: ``norm="pre"`` (x + sublayer(norm(x)) for all three), ``cross="target"`` (the
    cross-attention reads the decoder's own states instead of the memory, unmasked), ``dec_mask="ignored"`` (the
    self-attention is given no mask: every step sees every step), ``dec_unbiased=True`` (its LayerNorms divide by
    the unbiased standard deviation plus eps, as the annotated transformer's); ``attention`` switches the attention's
    (``kit.reference.multi_head_attention``), for a pasted-in MultiHeadAttention's mistakes."""
    _known(norm=norm, cross=cross, dec_mask=dec_mask, dec_unbiased=dec_unbiased)
    context = memory if cross == "memory" else None
    self_mask = self_mask if dec_mask == "used" else None

    def normed(h, name):
        return layer_norm(h, p, name, unbiased=dec_unbiased)

    def self_attn(h):
        return multi_head_attention(sub(p, "self_attn"), h, h, h, num_heads, self_mask, **attention)[0]

    def cross_attn(h):
        kv = h if context is None else context
        return multi_head_attention(sub(p, "cross_attn"), h, kv, kv, num_heads, None, **attention)

    def ffn(h):
        return linear(linear(h, p, "ffn.0").clamp(min=0.0), p, "ffn.2")

    if norm == "pre":
        x = x + self_attn(normed(x, "norm1"))
        attended, weights = cross_attn(normed(x, "norm2"))
        x = x + attended
        return x + ffn(normed(x, "norm3")), weights
    x = normed(x + self_attn(x), "norm1")
    attended, weights = cross_attn(x)
    x = normed(x + attended, "norm2")
    return normed(x + ffn(x), "norm3"), weights


def encoder_block(p, x, num_heads, *, enc_norm="post", enc_residual=True, enc_activation="relu", enc_unbiased=False,
                  **attention):
    """The given TransformerBlock without a padding mask (``kit.reference.block``), its switches prefixed."""
    return block(p, x, num_heads, None, norm=enc_norm, residual=enc_residual, activation=enc_activation,
                 unbiased=enc_unbiased, **attention)


def encode(p, source, num_heads, num_blocks, *, positions="sin_cos", **switches):
    """The encoder's memory (B, S, E): the post-norm blocks over source_proj(source) + positions(S)."""
    S = source.shape[1]
    E = p["source_proj.weight"].shape[0]
    x = linear(source, p, "source_proj") + sinusoidal_positions(S, E, positions=positions)[None]  # (B, S, E)
    for i in range(num_blocks):
        x = encoder_block(sub(p, f"encoder.{i}"), x, num_heads, **switches)
    return x


def trajectory_transformer(p, source, target_in, num_heads, num_encoder_blocks, num_decoder_blocks, *,
                           positions="sin_cos", mask="lower", norm="post", cross="memory", dec_mask="used",
                           dec_unbiased=False, **attention):
    """The model's teacher-forced forward: points (B, T, 2). ``positions`` and ``mask`` switch the parts' known
    mistakes; ``norm`` and ``cross`` the decoder blocks'; ``attention`` the encoder blocks' (``enc_*``) and the
    attention's."""
    T = target_in.shape[1]
    E = p["target_proj.weight"].shape[0]
    memory = encode(p, source, num_heads, num_encoder_blocks, positions=positions, **attention)
    attention = {k: v for k, v in attention.items() if k not in ENCODER_SWITCHES}  # the attention's own
    x = linear(target_in, p, "target_proj") + sinusoidal_positions(T, E, positions=positions)[None]  # (B, T, E)
    allowed = causal_mask(T, mask=mask)
    for i in range(num_decoder_blocks):
        x, _ = decoder_block(sub(p, f"decoder.{i}"), x, memory, num_heads, allowed, norm=norm, cross=cross,
                             dec_mask=dec_mask, dec_unbiased=dec_unbiased, **attention)
    return linear(x, p, "output_proj")


def predict(p, source, steps, num_heads, num_encoder_blocks, num_decoder_blocks, *, feed="own", start="last",
            **switches):
    """Greedy autoregressive decoding: (B, steps, 2). Each step runs the teacher-forced forward on the inputs so
    far and appends its last output. Known mistakes: ``feed="zeros"`` / ``"first"`` (zeros, or the first
    observed point, fed back instead of its own outputs), ``start="first"`` (decoding starts from the first
    observed point instead of the last)."""
    _known(feed=feed, start=start)
    first = source[:, :1]  # (B, 1, 2)
    target_in = first if start == "first" else source[:, -1:]  # (B, 1, 2)
    predicted = []
    for _ in range(steps):
        points = trajectory_transformer(p, source, target_in, num_heads, num_encoder_blocks, num_decoder_blocks,
                                        **switches)
        step = points[:, -1:]  # (B, 1, 2)
        predicted.append(step)
        fed = {"own": step, "zeros": torch.zeros_like(step), "first": first}[feed]
        target_in = torch.cat([target_in, fed], dim=1)  # (B, t + 1, 2)
    return torch.cat(predicted, dim=1)
