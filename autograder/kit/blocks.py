"""The known mistakes of the attention and the post-norm block that several exercises share (the float64 forms are
``kit.reference``'s): each mistake's hint, and the switch tables that name it when the reference with that switch
matches what a submission computes."""

from __future__ import annotations

# The values of the reference's mask switch (``kit.reference``: ``mask_mode``).
MASK_KEEP, MASK_INVERTED, MASK_IGNORED = "keep", "inverted", "ignored"

HINT_NO_SCALE = "no 1/sqrt(d) scaling: divide the scores by sqrt(d), d = the query/key size"
HINT_SCALE_D = "scaled by 1/d instead of 1/sqrt(d)"
HINT_SCALE_E = "scaled by 1/sqrt(embed_dim); scale by 1/sqrt(key_dim), the size of one head"
HINT_SOFTMAX_AXIS = "softmax over the wrong axis: the weights must sum to 1 over the keys (dim -1), not dim -2"
HINT_MASK_INVERTED = "mask inverted: True means 'may attend' (fill the scores where the mask is False)"
HINT_MASK_IGNORED = "mask ignored: masked positions still get attention"
HINT_NO_TRANSPOSE = (
    "heads split without the transpose: view (B, T, H*d) as (B, T, H, d), then transpose to (B, H, T, d)"
)
HINT_PRE_NORM = "pre-norm: this block is post-norm, x = norm1(x + attn(x)), then x = norm2(x + ffn(x))"
HINT_NO_RESIDUAL = "no residual connection: add the block's input before each LayerNorm"
HINT_NO_OUT_PROJ = "the heads' concatenation is returned without out_proj: return self.out_proj(y)"
HINT_BLOCK_MASK = "mask ignored: the block does not pass its padding mask on to attn (as (B, 1, 1, T))"
HINT_GELU = "GELU in the feed-forward network: the contract's is Linear -> ReLU -> Linear"
HINT_UNBIASED_NORM = ("LayerNorm by the unbiased standard deviation (x.std(), n - 1) with eps added to it: use "
                      "nn.LayerNorm(embed_dim, eps=1e-6), which divides by sqrt(biased variance + eps)")

MASK_SWITCH = [(MASK_INVERTED, HINT_MASK_INVERTED), (MASK_IGNORED, HINT_MASK_IGNORED)]


def mha_switches(masked: bool) -> dict:
    """Its own mistakes: those of attention written inline as well, since it need not call the function."""
    switches = {"heads_split": [("view", HINT_NO_TRANSPOSE)],
                "scale": [("none", HINT_NO_SCALE), ("sqrt_embed", HINT_SCALE_E), ("d", HINT_SCALE_D)],
                "softmax_dim": [(-2, HINT_SOFTMAX_AXIS)], "out_proj": [(False, HINT_NO_OUT_PROJ)]}
    return {**switches, "mask_mode": MASK_SWITCH} if masked else switches


def block_switches(masked: bool) -> dict:
    switches = {"norm": [("pre", HINT_PRE_NORM)], "residual": [(False, HINT_NO_RESIDUAL)],
                "activation": [("gelu", HINT_GELU)], "unbiased": [(True, HINT_UNBIASED_NORM)]}
    return {**switches, "mask_mode": [(MASK_IGNORED, HINT_BLOCK_MASK)]} if masked else switches
