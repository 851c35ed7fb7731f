"""The known mistakes of the Vision Transformer exercise, each declared once: its name (the tests' edit that makes
it, ``tests/mistake_edits/vit.py``), the part it is charged to, its hint, and the switch of the float64 reference
(``vit.reference``) that reproduces it, or None where a behaviour check names it.

Public (the student wheel ships it): it imports neither ``hidden.py`` nor ``reference.py``; the switch values are
the reference's (``reference.*_SWITCHES``)."""

from __future__ import annotations

from ...mistakes import Mistake, Mistakes

# The contract's parts (``vit.PARTS``), named here so that the declarations need nothing of the public module.
PATCHES, ENCODER, BLOCK, VIT, TOKENIZER, POOLING, CCT = (
    "extract_patches", "PatchEncoder", "ViTBlock", "VisionTransformer", "ConvTokenizer", "SequencePooling",
    "CompactTransformer",
)

PATCHES_PPC_ORDER = Mistake(
    "patches_ppc_order", PATCHES,
    "each patch flattened in (P, P, C) order, channel innermost (Keras' and the usual einops pattern): the contract "
    "flattens in (C, P, P) order, as F.unfold(images, P, stride=P) does",
    ("order", "ppc"))
PATCHES_COLUMN_MAJOR = Mistake(
    "patches_column_major", PATCHES,
    "patches in column-major order: number them row by row, patch n = i * (W // P) + j for the patch in row i and "
    "column j",
    ("order", "column"))
ENCODER_NO_POSITIONS = Mistake(
    "encoder_no_positions", ENCODER,
    "no position embedding: add position_embedding(0 .. N-1) to the projected patches",
    ("positions", "none"))
ENCODER_POSITIONS_TWICE = Mistake(
    "encoder_positions_twice", ENCODER,
    "the position embedding is added twice: add it once, to the projected patches",
    ("positions", "twice"))
BLOCK_POST_NORM = Mistake(
    "block_post_norm", BLOCK,
    "post-norm (the course's text block): this block is pre-norm, x = x + attn(norm1(x)), then x = x + mlp(norm2(x)), "
    "so that the residual path stays the identity",
    ("norm", "post"))
BLOCK_MLP_RELU = Mistake(
    "block_mlp_relu", BLOCK,
    "ReLU in the block's MLP: the ViT block's MLP is Linear -> GELU -> Dropout -> Linear -> Dropout",
    ("mlp_activation", "relu"))
BLOCK_MLP_GELU_TANH = Mistake(
    "block_mlp_gelu_tanh", BLOCK,
    "GELU's tanh approximation in the block's MLP (approximate='tanh'): the contract's GELU is the exact, erf form, "
    "nn.GELU()",
    ("mlp_activation", "gelu_tanh"))
# Named by the block's dropout check (no switch: in eval mode, where the reference runs, dropout is the identity).
BLOCK_SUBLAYER_WITHOUT_DROPOUT = Mistake(
    "block_sublayer_without_dropout", BLOCK,
    "each sub-layer has its own dropout: the attention's on its weights (nn.MultiheadAttention(..., dropout=dropout), "
    "or an nn.Dropout(dropout) in your own attention), and the MLP's nn.Dropout(dropout) after the GELU and after its "
    "last Linear")
HEAD_RELU = Mistake(
    "head_relu", VIT,
    "ReLU in the classification head: each of mlp_head_units is Linear -> GELU -> Dropout",
    ("head_activation", "relu"))
HEAD_GELU_TANH = Mistake(
    "head_gelu_tanh", VIT,
    "GELU's tanh approximation in the classification head (approximate='tanh'): the contract's GELU is the exact, "
    "erf form, nn.GELU()",
    ("head_activation", "gelu_tanh"))
# Named where a VisionTransformer holding a class token fails a check (no switch: it is another model, whose extra
# parameter the contract's reference has no place for).
VIT_CLASS_TOKEN = Mistake(
    "vit_class_token", VIT,
    "a class token: this course's ViT (Keras' example) has none; its head flattens all N patch states after the "
    "final norm (N * projection_dim values), so drop the class token and pass every patch's state to the head")
# One hint for both models (the CCT's table names it too; its edit, cct_no_final_norm, earns it).
NO_FINAL_NORM = Mistake(
    "vit_no_final_norm", VIT,
    "no final LayerNorm: apply self.norm to the blocks' output before the head",
    ("final_norm", False))
# One hint for both models (named by require_own_blocks; cct_shared_blocks earns it in the CCT).
SHARED_BLOCKS = Mistake(
    "vit_shared_blocks", VIT,
    "the blocks share one module: build each ViTBlock anew, nn.ModuleList([ViTBlock(...) for _ in "
    "range(num_blocks)]), not [block] * num_blocks, so that every block has its own weights")
POOL_STRIDE = Mistake(
    "tokenizer_pool_stride_1", TOKENIZER,
    "the tokenizer's max pooling keeps the map's size: pool with kernel 3, stride 2 and padding 1 "
    "(F.max_pool2d(x, 3, stride=2, padding=1)), which halves H and W",
    ("pool_stride", 1))
POOL_PADDING = Mistake(
    "tokenizer_pool_no_padding", TOKENIZER,
    "the tokenizer's max pooling has no padding, so each stage loses a row and a column: pool with kernel 3, stride 2 "
    "and padding 1",
    ("pool_padding", 0))
POOL_FEATURES = Mistake(
    "pooling_softmax_over_features", POOLING,
    "softmax over the features (the score's last axis, of size 1: every weight is 1): take the softmax over the N "
    "tokens, dim 1 of the (B, N) scores",
    ("softmax_over", "features"))
CCT_NO_POSITIONS = Mistake(
    "cct_no_positions", CCT,
    "no position embedding: add self.position_embedding (1, N, D) to the tokenizer's tokens",
    ("positions", "none"))
CCT_POSITIONS_TWICE = Mistake(
    "cct_positions_twice", CCT,
    "the position embedding is added twice: add it once, to the tokenizer's tokens",
    ("positions", "twice"))

MISTAKES = Mistakes(
    PATCHES_PPC_ORDER, PATCHES_COLUMN_MAJOR, ENCODER_NO_POSITIONS, ENCODER_POSITIONS_TWICE, BLOCK_POST_NORM,
    BLOCK_MLP_RELU, BLOCK_MLP_GELU_TANH, BLOCK_SUBLAYER_WITHOUT_DROPOUT, HEAD_RELU, HEAD_GELU_TANH, VIT_CLASS_TOKEN, NO_FINAL_NORM, SHARED_BLOCKS, POOL_STRIDE,
    POOL_PADDING, POOL_FEATURES, CCT_NO_POSITIONS, CCT_POSITIONS_TWICE,
)
