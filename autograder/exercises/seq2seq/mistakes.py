"""The known mistakes of the trajectory transformer exercise's own parts, each declared once (``autograder.mistakes``):
its name (the tests' edit that makes it, ``tests/mistake_edits/seq2seq.py``), the part it is charged to, its hint,
and the switch of the float64 reference (``seq2seq.reference``) that reproduces it, where one does.

The given ``MultiHeadAttention`` and ``TransformerBlock`` keep the kit's declarations (``kit.blocks``). Public: it
ships in the student wheel, so it imports nothing from ``hidden.py`` or ``reference.py``.
"""

from __future__ import annotations

import dataclasses

from ...mistakes import Mistake, Mistakes

MASK, POSITIONS, SHIFT, DECODER, MODEL = (
    "causal_mask", "sinusoidal_positions", "decoder_inputs", "DecoderBlock", "TrajectoryTransformer")

# --- causal_mask (the reference's ``mask`` switch) ------------------------------------------------------------
MASK_INVERTED = Mistake(
    "mask_inverted", MASK,
    "the mask is inverted: True must mean 'may attend', on and below the diagonal "
    "(torch.tril(torch.ones(size, size, dtype=torch.bool)))",
    ("mask", "inverted"))
MASK_TRANSPOSED = Mistake(
    "mask_transposed", MASK,
    "the mask is transposed (True on and above the diagonal): step t must see steps 0 .. t, key j <= query i",
    ("mask", "transposed"))
MASK_STRICTLY_LOWER = Mistake(
    "mask_strictly_lower", MASK,
    "the mask is strictly lower: the diagonal is False, so step 0 may attend to nothing (a row of -inf gives NaN); "
    "step t sees steps 0 .. t, itself included",
    ("mask", "strict"))
MASK_ALLOWS_EVERYTHING = Mistake(
    "mask_allows_everything", MASK,
    "the mask allows everything: a causal mask is True on and below the diagonal only",
    ("mask", "missing"))

# The right pattern as an additive float mask (named by the interface check, which charges it: no switch)
MASK_ADDITIVE = Mistake(
    "mask_additive", MASK,
    "the mask is an additive float mask (0 where a step may attend, -inf where not), as "
    "nn.Transformer.generate_square_subsequent_mask gives: the contract's mask is bool, True = may attend",
)

# --- sinusoidal_positions (``positions``) -----------------------------------------------------------------------
POSITIONS_SIN_COS_SWAPPED = Mistake(
    "positions_sin_cos_swapped", POSITIONS,
    "sin and cos are swapped: column 2i is sin(pos / 10000^(2i/dim)), column 2i + 1 its cos",
    ("positions", "cos_sin"))
POSITIONS_FREQUENCY_PER_PAIR = Mistake(
    "positions_frequency_per_pair", POSITIONS,
    "wrong frequencies: the pair of columns 2i, 2i + 1 uses pos / 10000^(2i / dim), not 10000^(i / dim)",
    ("positions", "frequency"))
# The same wrong frequencies counted per column (10000^(c / dim) for the column c): the reference's other value,
# named by the same hint (so not a mistake of its own in MISTAKES, whose hints are each one mistake's).
POSITIONS_FREQUENCY_PER_COLUMN = dataclasses.replace(
    POSITIONS_FREQUENCY_PER_PAIR, name="positions_frequency_per_column", switch=("positions", "column"))

# --- decoder_inputs (named by the public values check: no switch) -----------------------------------------------
DECODER_INPUTS_NOT_SHIFTED = Mistake(
    "decoder_inputs_not_shifted", SHIFT,
    "the decoder's input is not shifted: it is [last observed point, target[:, :-1]], so that step t is predicted "
    "from the true points before it")
DECODER_INPUTS_SHIFTED_TWICE = Mistake(
    "decoder_inputs_shifted_twice", SHIFT,
    "the decoder's input is shifted twice: it is [last observed point, target[:, :-1]], one step behind the target")

# --- DecoderBlock (``norm``, ``cross``) ---------------------------------------------------------------------------
DECODER_PRE_NORM = Mistake(
    "decoder_pre_norm", DECODER,
    "pre-norm: this block is post-norm, as the course's encoder block, x = norm1(x + dropout1(self_attn"
    "(x, x, x, self_mask)[0])), and likewise norm2 and norm3 after the sum",
    ("norm", "pre"))
CROSS_ATTENTION_READS_TARGET = Mistake(
    "cross_attention_reads_target", DECODER,
    "the cross-attention reads the decoder's own states: its keys and values are the encoder's memory, "
    "cross_attn(x, memory, memory)",
    ("cross", "target"))

DECODER_MASK_IGNORED = Mistake(
    "decoder_mask_ignored", DECODER,
    "the decoder block gives its self-attention no mask: self_attn(x, x, x, self_mask), so that step t sees steps "
    "0 .. t only",
    ("dec_mask", "ignored"))

DECODER_UNBIASED_NORM = Mistake(
    "decoder_unbiased_layer_norm", DECODER,
    "the decoder block's LayerNorms divide by the unbiased standard deviation (x.std(), n - 1) with eps added to "
    "it: use its nn.LayerNorm(embed_dim, eps=1e-6) layers, which divide by sqrt(biased variance + eps)",
    ("dec_unbiased", True))

# Named by the block's dropout check (no switch: in eval mode, where the reference runs, dropout is the identity).
DECODER_SUBLAYER_WITHOUT_DROPOUT = Mistake(
    "decoder_sublayer_without_dropout", DECODER,
    "each sub-layer has its own dropout: dropout1 on the self-attention's output, dropout2 on the cross-attention's "
    "and dropout3 on the feed-forward's, each before its residual add")

# --- TrajectoryTransformer: forward (``positions``, ``mask``) and predict (``feed``, ``start``) ----------------------
MODEL_NO_POSITIONS = Mistake(
    "model_no_positions", MODEL,
    "no positions: add sinusoidal_positions(S, E) to the projected source and sinusoidal_positions(T, E) to the "
    "projected target_in",
    ("positions", "missing"))
MASK_NOT_PASSED = Mistake(
    "mask_not_passed", MODEL,
    "forward passes no causal mask to the decoder blocks: step t must not see target_in after t "
    "(self_mask = causal_mask(T))",
    ("mask", "missing"))
PREDICT_FEEDS_ZEROS = Mistake(
    "predict_feeds_zeros", MODEL,
    "predict feeds back zeros: each step's input is the previous step's own prediction",
    ("feed", "zeros"))
PREDICT_FEEDS_FIRST_POINT = Mistake(
    "predict_feeds_first_point", MODEL,
    "predict feeds back the first observed point: each step's input is the previous step's own prediction",
    ("feed", "first"))
PREDICT_STARTS_FROM_FIRST_POINT = Mistake(
    "predict_starts_from_first_point", MODEL,
    "predict starts from the first observed point: the decoder's first input is the last one, source[:, -1:]",
    ("start", "first"))

MISTAKES = Mistakes(
    MASK_INVERTED, MASK_TRANSPOSED, MASK_STRICTLY_LOWER, MASK_ALLOWS_EVERYTHING, MASK_ADDITIVE,
    POSITIONS_SIN_COS_SWAPPED, POSITIONS_FREQUENCY_PER_PAIR, DECODER_INPUTS_NOT_SHIFTED, DECODER_INPUTS_SHIFTED_TWICE,
    DECODER_PRE_NORM, CROSS_ATTENTION_READS_TARGET, DECODER_MASK_IGNORED, DECODER_UNBIASED_NORM, DECODER_SUBLAYER_WITHOUT_DROPOUT,
    MODEL_NO_POSITIONS,
    MASK_NOT_PASSED,
    PREDICT_FEEDS_ZEROS, PREDICT_FEEDS_FIRST_POINT, PREDICT_STARTS_FROM_FIRST_POINT)
