"""The transformer exercise's own known mistakes, each declared once (``autograder/mistakes.py``); those of the
attention and the block it shares with other exercises are ``kit.blocks``' (``SHARED_MISTAKES``).

Public: it ships in the student wheel with the exercise's public module, and imports nothing from ``hidden.py``
or ``reference.py`` (the switch values are those of ``reference.py``'s keyword arguments, written out here).
"""

from __future__ import annotations

from ...kit.blocks import SHARED_MISTAKES
from ...mistakes import Mistake, Mistakes

SDPA, MHA, BLOCK, EMBED, CLF = (
    "scaled_dot_product_attention", "MultiHeadAttention", "TransformerBlock", "TokenAndPositionEmbedding",
    "TransformerClassifier",
)

SCALE_BY_VALUE_DIM = Mistake(
    "scale_by_value_dim", SDPA,
    "scaled by the wrong dimension (the value size dv); use the query/key size d",
    ("scale", "sqrt_dv"))
DROPOUT_AFTER_NORM = Mistake(
    "dropout_after_norm", BLOCK,
    "dropout after the LayerNorm: apply dropout1/dropout2 to the sub-layer's output before the residual add, "
    "x = norm1(x + dropout1(attn(x))), so that the output stays normalised")
SUBLAYER_WITHOUT_DROPOUT = Mistake(
    "sublayer_without_dropout", BLOCK,
    "each sub-layer has its own dropout: dropout1 on the attention's output and dropout2 on the feed-forward's, "
    "each before its residual add")
NO_POSITION_EMBEDDING = Mistake(
    "no_position_embedding", EMBED,
    "no position embedding: add pos_emb(positions 0..T-1) to the token embedding",
    ("positions", False))
SINUSOIDAL_POSITIONS = Mistake(
    "sinusoidal_positions", EMBED,
    "a fixed sinusoidal position encoding: the contract's pos_emb is a learned nn.Embedding(max_len, embed_dim)",
    ("positions", "sinusoidal"))
SCALED_TOKEN_EMBEDDING = Mistake(
    "scaled_token_embedding", EMBED,
    "the token embedding is multiplied by sqrt(embed_dim) (as in Vaswani et al.); the contract adds "
    "token_emb(tokens) and pos_emb(positions) unscaled",
    ("token_scale", True))
PADDING_IN_MEAN = Mistake(
    "padding_in_mean", CLF,
    "padding included in the mean: average over the real tokens (id != 0) only",
    ("pool", "all"))
CLF_MASK_NOT_PASSED = Mistake(
    "clf_mask_not_passed", CLF,
    "the blocks are not given the padding mask (tokens != 0), so real tokens attend to padding",
    ("mask_mode", "ignored"))

MISTAKES = SHARED_MISTAKES + Mistakes(
    SCALE_BY_VALUE_DIM, DROPOUT_AFTER_NORM, SUBLAYER_WITHOUT_DROPOUT, NO_POSITION_EMBEDDING, SINUSOIDAL_POSITIONS, SCALED_TOKEN_EMBEDDING,
    PADDING_IN_MEAN, CLF_MASK_NOT_PASSED)
