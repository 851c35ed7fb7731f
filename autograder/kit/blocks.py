"""The known mistakes of the attention and the post-norm block that several exercises share (their float64 forms
are ``kit.reference``'s), each declared once, and the switch tables that name them when the reference with that
switch matches what a submission computes. The parts are named as the attention exercise's contract names them."""

from __future__ import annotations

from ..mistakes import Mistake, Mistakes, switch_table

# Where an attention's output has NaN or inf and the reference has none (``Reference.nan_causes``).
MASKED_ROW_NAN = "a row where every key is masked, an overflow, or a softmax over the wrong axis?"

# The values of the reference's mask switch (``kit.reference``: ``mask_mode``).
MASK_KEEP, MASK_INVERTED, MASK_IGNORED = "keep", "inverted", "ignored"
SDPA, MHA, BLOCK = "scaled_dot_product_attention", "MultiHeadAttention", "TransformerBlock"

NO_SCALING = Mistake(
    "no_scaling", SDPA,
    "no 1/sqrt(d) scaling: divide the scores by sqrt(d), d = the query/key size",
    ("scale", "none"))
SCALED_BY_D = Mistake(
    "scaled_by_d", SDPA,
    "scaled by 1/d instead of 1/sqrt(d)",
    ("scale", "d"))
SCALED_BY_EMBED_DIM = Mistake(
    "scale_by_embed_dim", MHA,
    "scaled by 1/sqrt(embed_dim); scale by 1/sqrt(key_dim), the size of one head",
    ("scale", "sqrt_embed"))
SOFTMAX_WRONG_AXIS = Mistake(
    "softmax_wrong_axis", SDPA,
    "softmax over the wrong axis: the weights must sum to 1 over the keys (dim -1), not dim -2",
    ("softmax_dim", -2))
MASK_INVERTED_MISTAKE = Mistake(
    "mask_inverted", SDPA,
    "mask inverted: True means 'may attend' (fill the scores where the mask is False)",
    ("mask_mode", MASK_INVERTED))
MASK_IGNORED_MISTAKE = Mistake(
    "mask_ignored", SDPA,
    "mask ignored: masked positions still get attention",
    ("mask_mode", MASK_IGNORED))
HEADS_WITHOUT_TRANSPOSE = Mistake(
    "heads_without_transpose", MHA,
    "heads split without the transpose: view (B, T, H*d) as (B, T, H, d), then transpose to (B, H, T, d)",
    ("heads_split", "view"))
NO_OUT_PROJ = Mistake(
    "mha_no_out_proj", MHA,
    "the heads' concatenation is returned without out_proj: return self.out_proj(y)",
    ("out_proj", False))
PRE_NORM = Mistake(
    "pre_norm", BLOCK,
    "pre-norm: this block is post-norm, x = norm1(x + attn(x)), then x = norm2(x + ffn(x))",
    ("norm", "pre"))
NO_RESIDUAL = Mistake(
    "no_residual", BLOCK,
    "no residual connection: add the block's input before each LayerNorm",
    ("residual", False))
FFN_GELU = Mistake(
    "ffn_gelu", BLOCK,
    "GELU in the feed-forward network: the contract's is Linear -> ReLU -> Linear",
    ("activation", "gelu"))
UNBIASED_NORM = Mistake(
    "unbiased_layer_norm", BLOCK,
    "LayerNorm by the unbiased standard deviation (x.std(), n - 1) with eps added to it: use "
    "nn.LayerNorm(embed_dim, eps=1e-6), which divides by sqrt(biased variance + eps)",
    ("unbiased", True))
BLOCK_MASK_NOT_PASSED = Mistake(
    "block_mask_not_passed", BLOCK,
    "mask ignored: the block does not pass its padding mask on to attn (as (B, 1, 1, T))",
    ("mask_mode", MASK_IGNORED))

SHARED_MISTAKES = Mistakes(NO_SCALING, SCALED_BY_D, SCALED_BY_EMBED_DIM, SOFTMAX_WRONG_AXIS, MASK_INVERTED_MISTAKE, MASK_IGNORED_MISTAKE, HEADS_WITHOUT_TRANSPOSE, NO_OUT_PROJ, PRE_NORM, NO_RESIDUAL, FFN_GELU, UNBIASED_NORM, BLOCK_MASK_NOT_PASSED)


def mha_switches(masked: bool) -> dict:
    """Its own mistakes: those of attention written inline as well, since it need not call the function."""
    return switch_table(HEADS_WITHOUT_TRANSPOSE, NO_SCALING, SCALED_BY_EMBED_DIM, SCALED_BY_D, SOFTMAX_WRONG_AXIS,
                        NO_OUT_PROJ, *((MASK_INVERTED_MISTAKE, MASK_IGNORED_MISTAKE) if masked else ()))


def block_switches(masked: bool) -> dict:
    return switch_table(PRE_NORM, NO_RESIDUAL, FFN_GELU, UNBIASED_NORM, *((BLOCK_MASK_NOT_PASSED,) if masked else ()))


def heads_of(module: dict) -> int:
    """The heads of an attention, or of a block's attention, from the child's description of it (its
    ``num_heads``; ``stand_ins.StandIn.compute`` gets the description): a stand-in splits its heads so."""
    for found in [module, *module.get("modules", {}).values()]:
        heads = found.get("num_heads") if isinstance(found, dict) else None
        if isinstance(heads, int) and not isinstance(heads, bool) and heads > 0:
            return heads
    raise LookupError("no num_heads attribute on it or its attention to split the heads by")
