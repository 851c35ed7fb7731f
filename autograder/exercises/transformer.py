"""The transformer exercise (course Example 2): checks for each part of the contract.

Contract (documented in the notebook): ``scaled_dot_product_attention``, ``MultiHeadAttention``,
``TransformerBlock``, ``TokenAndPositionEmbedding``, ``TransformerClassifier``; boolean masks, True = may
attend / real token. This module holds the contract, the public checks (interface, shapes, normalisation,
dropout) and what they share with the hidden checks in ``transformer_hidden``, which compare values and
gradients with ``transformer_reference`` (float64) and PyTorch's built-ins; a student install has this module
only.
"""

from __future__ import annotations

import numpy as np

from ..checks import CheckFailure
from ..compare import require_shape
from ..context import Context, outputs, randn, rng
from . import Exercise, TrainingProfile
from .common import (
    contract_params, make_check, random_padding_mask, random_tokens, refuse_forbidden, require_interface,
    require_module, training_data, with_hidden_checks,
)

SDPA, MHA, BLOCK, EMBED, CLF = (
    "scaled_dot_product_attention", "MultiHeadAttention", "TransformerBlock", "TokenAndPositionEmbedding",
    "TransformerClassifier",
)

HINT_NO_SCALE = "no 1/sqrt(d) scaling: divide the scores by sqrt(d), d = the query/key size"
HINT_SCALE_D = "scaled by 1/d instead of 1/sqrt(d)"
HINT_SCALE_DV = "scaled by the wrong dimension (the value size dv); use the query/key size d"
HINT_SCALE_E = "scaled by 1/sqrt(embed_dim); scale by 1/sqrt(key_dim), the size of one head"
HINT_SOFTMAX_AXIS = "softmax over the wrong axis: the weights must sum to 1 over the keys (dim -1), not dim -2"
HINT_MASK_INVERTED = "mask inverted: True means 'may attend' (fill the scores where the mask is False)"
HINT_MASK_IGNORED = "mask ignored: masked positions still get attention"
HINT_NO_TRANSPOSE = (
    "heads split without the transpose: view (B, T, H*d) as (B, T, H, d), then transpose to (B, H, T, d)"
)
HINT_PRE_NORM = "pre-norm: this block is post-norm, x = norm1(x + attn(x)), then x = norm2(x + ffn(x))"
HINT_NO_RESIDUAL = "no residual connection: add the block's input before each LayerNorm"
HINT_NO_POSITION = "no position embedding: add pos_emb(positions 0..T-1) to the token embedding"
HINT_MEAN_PADDING = "padding included in the mean: average over the real tokens (id != 0) only"
HINT_CLF_MASK = "the blocks are not given the padding mask (tokens != 0), so real tokens attend to padding"


# ---------------------------------------------------------------------------------------------------------
# scaled_dot_product_attention

SDPA_CASES = [  # (query, key, value) shapes: square, extra batch dim with Tq != Tk and d != dv, one query
    ((2, 5, 8), (2, 5, 8), (2, 5, 8)),
    ((3, 2, 4, 6), (3, 2, 7, 6), (3, 2, 7, 5)),
    ((1, 1, 3), (1, 9, 3), (1, 9, 4)),
]


def sdpa_inputs(seed: int, case):
    gen = rng(seed)
    return [randn(gen, *shape) for shape in case]


def run_sdpa(ctx: Context, inputs):
    """Run the submission's attention; checks its outputs' types and shapes (shape first, then values)."""
    reply = ctx.run(SDPA, inputs=list(inputs))
    refuse_forbidden(reply, SDPA)
    out, w = outputs(reply, 2, SDPA)
    q, k, v = inputs[:3]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    require_shape(f"output for query {q.shape}, key {k.shape}, value {v.shape}", out, batch + (q.shape[-2], v.shape[-1]))
    require_shape(f"weights for query {q.shape}, key {k.shape}", w, batch + (q.shape[-2], k.shape[-2]))
    return reply, [out, w]


def sdpa_interface(ctx: Context) -> None:
    require_interface(ctx, SDPA, "function", ["query", "key", "value", "mask"])
    run_sdpa(ctx, sdpa_inputs(0, SDPA_CASES[0]))  # callable without a mask, returning (output, weights)


def sdpa_shapes(ctx: Context) -> None:
    for i, case in enumerate(SDPA_CASES):
        run_sdpa(ctx, sdpa_inputs(i, case))


def sdpa_weights_sum(ctx: Context) -> None:
    q, k, v = sdpa_inputs(1, SDPA_CASES[1])
    _, (out, w) = run_sdpa(ctx, (q, k, v))
    if (w < -1e-6).any():
        raise CheckFailure(f"weights has negative entries (min {w.min():.3g}); softmax gives weights >= 0")
    rows = w.sum(-1)
    if not np.allclose(rows, 1.0, atol=1e-4):
        hint = HINT_SOFTMAX_AXIS if np.allclose(w.sum(-2), 1.0, atol=1e-4) else None
        i = np.unravel_index(np.abs(rows - 1).argmax(), rows.shape)
        raise CheckFailure(
            f"weights do not sum to 1 over the key axis (dim -1): e.g. row {tuple(int(x) for x in i)} sums to "
            f"{rows[i]:.4g}", hint=hint or "the weights should be softmax(scores) over the keys, dim -1",
        )


# ---------------------------------------------------------------------------------------------------------
# MultiHeadAttention

MHA_CASES = [  # embed_dim, num_heads, key_dim, B, Tq, Tk
    (16, 4, None, 2, 5, 5),
    (12, 3, 5, 3, 4, 6),
]


def mha_param_shapes(E, H, kd):
    inner = H * (kd or E // H)
    shapes = {}
    for p in ("q_proj", "k_proj", "v_proj"):
        shapes[f"{p}.weight"], shapes[f"{p}.bias"] = (inner, E), (inner,)
    shapes["out_proj.weight"], shapes["out_proj.bias"] = (E, inner), (E,)
    return shapes


def mha_init(E, H, kd):
    return dict(init_args=[E, H], init_kwargs={} if kd is None else {"key_dim": kd})


def mha_interface(ctx: Context) -> None:
    require_interface(ctx, MHA, "class", ["embed_dim", "num_heads", "key_dim"])
    for E, H, kd, *_ in MHA_CASES:
        reply = ctx.run(MHA, call=False, **mha_init(E, H, kd))
        refuse_forbidden(reply, MHA)
        contract_params(reply, mha_param_shapes(E, H, kd), f"MultiHeadAttention({E}, {H}{'' if kd is None else f', key_dim={kd}'})")


def mha_inputs(seed, E, B, Tq, Tk, cross: bool):
    gen = rng(seed)
    query = randn(gen, B, Tq, E)
    if not cross:
        return [query, query, query]
    return [query, randn(gen, B, Tk, E), randn(gen, B, Tk, E)]


def mha_shapes(ctx: Context) -> None:
    for i, (E, H, kd, B, Tq, Tk) in enumerate(MHA_CASES):
        inputs = mha_inputs(i, E, B, Tq, Tk, cross=Tq != Tk)
        reply = ctx.run(MHA, inputs=inputs, **mha_init(E, H, kd))
        refuse_forbidden(reply, MHA)
        out, w = outputs(reply, 2, f"{MHA}.forward")
        require_shape(f"MultiHeadAttention({E}, {H}) output", out, (B, Tq, E))
        require_shape(f"MultiHeadAttention({E}, {H}) weights", w, (B, H, Tq, Tk))


# ---------------------------------------------------------------------------------------------------------
# TransformerBlock

BLOCK_CASE = dict(E=16, H=4, ff=24, dropout=0.2, B=3, T=6)


def block_param_shapes(E, ff):
    shapes = {f"attn.{k}": v for k, v in mha_param_shapes(E, 4, None).items()}  # heads do not change the shapes
    shapes.update({"ffn.0.weight": (ff, E), "ffn.0.bias": (ff,), "ffn.2.weight": (E, ff), "ffn.2.bias": (E,)})
    for n in ("norm1", "norm2"):
        shapes[f"{n}.weight"], shapes[f"{n}.bias"] = (E,), (E,)
    return shapes


def block_init(dropout=None):
    c = BLOCK_CASE
    return dict(init_args=[c["E"], c["H"], c["ff"]], init_kwargs={"dropout": c["dropout"] if dropout is None else dropout})


def block_interface(ctx: Context) -> None:
    c = BLOCK_CASE
    require_interface(ctx, BLOCK, "class", ["embed_dim", "num_heads", "ff_dim", "dropout"])
    reply = ctx.run(BLOCK, call=False, **block_init())
    refuse_forbidden(reply, BLOCK)
    what = f"TransformerBlock({c['E']}, {c['H']}, {c['ff']}, dropout={c['dropout']})"
    contract_params(reply, block_param_shapes(c["E"], c["ff"]), what)
    require_module(reply, "attn", MHA, what)
    require_module(reply, "ffn", "Sequential", what)
    require_module(reply, "ffn.0", "Linear", what, in_features=c["E"], out_features=c["ff"])
    require_module(reply, "ffn.1", "ReLU", what)
    require_module(reply, "ffn.2", "Linear", what, in_features=c["ff"], out_features=c["E"])
    for n in ("norm1", "norm2"):
        require_module(reply, n, "LayerNorm", what, eps=1e-6, normalized_shape=[c["E"]])
    for n in ("dropout1", "dropout2"):
        require_module(reply, n, "Dropout", what, p=c["dropout"])


def block_inputs(seed, with_mask: bool):
    c = BLOCK_CASE
    gen = rng(seed)
    x = randn(gen, c["B"], c["T"], c["E"])
    return [x, random_padding_mask(gen, c["B"], c["T"])] if with_mask else [x]


def block_shapes(ctx: Context) -> None:
    c = BLOCK_CASE
    for with_mask in (False, True):
        reply = ctx.run(BLOCK, inputs=block_inputs(1, with_mask), **block_init())
        refuse_forbidden(reply, BLOCK)
        (out,) = outputs(reply, 1, f"{BLOCK}.forward")
        require_shape(f"TransformerBlock output{' with a padding mask' if with_mask else ''}", out, (c["B"], c["T"], c["E"]))


def block_dropout(ctx: Context) -> None:
    """Behaviour: eval mode is deterministic; training mode applies dropout. No values are compared, so the
    block keeps its own weights (``draw_weights=False``)."""
    inputs = block_inputs(600, True)
    reply = ctx.run(BLOCK, inputs=inputs, repeats=2, draw_weights=False, **block_init(dropout=0.5))
    first, second = outputs(reply, 1, BLOCK, 0)[0], outputs(reply, 1, BLOCK, 1)[0]
    if not np.array_equal(first, second):
        raise CheckFailure("two eval-mode calls on the same input differ: is dropout (or other randomness) active in eval mode?",
                           hint="use nn.Dropout modules, which switch off in eval mode, not F.dropout(..., training=True)")
    reply = ctx.run(BLOCK, inputs=inputs, repeats=2, mode="train", draw_weights=False, **block_init(dropout=0.5))
    first, second = outputs(reply, 1, BLOCK, 0)[0], outputs(reply, 1, BLOCK, 1)[0]
    if np.array_equal(first, second):
        raise CheckFailure("with dropout=0.5 in training mode two calls give identical outputs: dropout is not applied",
                           hint="apply dropout1 to the attention output and dropout2 to the feed-forward output")


# ---------------------------------------------------------------------------------------------------------
# TokenAndPositionEmbedding

EMBED_CASE = dict(max_len=10, vocab=30, E=8, B=3, T=7)


def embed_init():
    c = EMBED_CASE
    return dict(init_args=[c["max_len"], c["vocab"], c["E"]])


def embed_interface(ctx: Context) -> None:
    c = EMBED_CASE
    require_interface(ctx, EMBED, "class", ["max_len", "vocab_size", "embed_dim"])
    reply = ctx.run(EMBED, call=False, **embed_init())
    what = f"TokenAndPositionEmbedding({c['max_len']}, {c['vocab']}, {c['E']})"
    require_module(reply, "token_emb", "Embedding", what, num_embeddings=c["vocab"], embedding_dim=c["E"])
    require_module(reply, "pos_emb", "Embedding", what, num_embeddings=c["max_len"], embedding_dim=c["E"])


# ---------------------------------------------------------------------------------------------------------
# TransformerClassifier

CLF_CASE = dict(vocab=40, max_len=12, classes=3, E=16, H=2, ff=24, blocks=2, B=4)


def clf_init(dropout: float = 0.1, **override):
    c = {**CLF_CASE, **override}
    return dict(init_args=[c["vocab"], c["max_len"]], init_kwargs=dict(
        num_classes=c["classes"], embed_dim=c["E"], num_heads=c["H"], ff_dim=c["ff"], num_blocks=c["blocks"],
        dropout=dropout))


def clf_case(init_kwargs: dict) -> dict:
    """The sizes of ``TransformerClassifier(**init_kwargs)``, with the contract's defaults, as in ``CLF_CASE``."""
    k = init_kwargs
    return dict(vocab=k["vocab_size"], max_len=k["max_len"], classes=k.get("num_classes", 2), E=k.get("embed_dim", 128),
                H=k.get("num_heads", 2), ff=k.get("ff_dim", 32), blocks=k.get("num_blocks", 1))


def clf_param_shapes(case: dict = CLF_CASE) -> dict:
    c = case
    shapes = {"embedding.token_emb.weight": (c["vocab"], c["E"]), "embedding.pos_emb.weight": (c["max_len"], c["E"])}
    for i in range(c["blocks"]):
        shapes.update({f"blocks.{i}.{k}": v for k, v in block_param_shapes(c["E"], c["ff"]).items()})
    shapes.update({"head.0.weight": (20, c["E"]), "head.0.bias": (20,), "head.2.weight": (c["classes"], 20),
                   "head.2.bias": (c["classes"],)})
    return shapes


def clf_interface(ctx: Context) -> None:
    c = CLF_CASE
    require_interface(ctx, CLF, "class", ["vocab_size", "max_len", "num_classes", "embed_dim", "num_heads", "ff_dim",
                                   "num_blocks", "dropout"])
    reply = ctx.run(CLF, call=False, **clf_init())
    refuse_forbidden(reply, CLF)
    what = "TransformerClassifier"
    require_module(reply, "embedding", EMBED, what)
    require_module(reply, "blocks", "ModuleList", what)
    n_blocks = len([n for n in reply.modules if n.startswith("blocks.") and n.count(".") == 1])
    if n_blocks != c["blocks"]:
        raise CheckFailure(f"{what}(num_blocks={c['blocks']}) has {n_blocks} blocks")
    require_module(reply, "blocks.0", BLOCK, what)
    require_module(reply, "head.0", "Linear", what, in_features=c["E"], out_features=20)
    require_module(reply, "head.1", "ReLU", what)
    require_module(reply, "head.2", "Linear", what, in_features=20, out_features=c["classes"])
    contract_params(reply, clf_param_shapes(), what)


def clf_shapes(ctx: Context) -> None:
    c = CLF_CASE
    for T in (c["max_len"], 5):
        reply = ctx.run(CLF, inputs=[random_tokens(1000 + T, c["B"], T, c["vocab"])], **clf_init())
        refuse_forbidden(reply, CLF)
        (logits,) = outputs(reply, 1, f"{CLF}.forward")
        require_shape(f"logits for tokens of shape {(c['B'], T)}", logits, (c["B"], c["classes"]))


def training_kwargs(profile: TrainingProfile) -> dict:
    data = training_data()
    return dict(vocab_size=len(data.vocab), max_len=data.max_len, num_classes=2, **profile.model_kwargs)


# ---------------------------------------------------------------------------------------------------------

PROFILES = {
    # Calibrated with bench/calibrate_training.py (figures in datasets/README.md). CPU: the reference scored
    # 0.837-0.854 (mean 0.847, sd 0.004) over seeds 0-19; the flawed sample in assignments/samples 0.797-0.809.
    "cpu": TrainingProfile("cpu", dict(embed_dim=64, num_heads=2, ff_dim=32, num_blocks=1, dropout=0.1),
                           epochs=2, batch_size=64, lr=1e-3, threshold=0.82, timeout=300.0),
    # GPU (calibrated by running the profile on a CPU; the arithmetic is the same): 0.844-0.860, mean 0.855.
    "gpu": TrainingProfile("gpu", dict(embed_dim=128, num_heads=2, ff_dim=32, num_blocks=1, dropout=0.1),
                           epochs=3, batch_size=128, lr=1e-3, threshold=0.83, timeout=300.0),
}


CHECK_ORDER = (
    "sdpa.interface",
    "sdpa.shapes",
    "sdpa.weights_sum",
    "sdpa.values",
    "sdpa.mask",
    "sdpa.gradients",
    "mha.interface",
    "mha.shapes",
    "mha.values",
    "mha.mask",
    "mha.gradients",
    "block.interface",
    "block.shapes",
    "block.values",
    "block.padding",
    "block.dropout",
    "block.gradients",
    "embed.interface",
    "embed.values",
    "embed.gradients",
    "clf.interface",
    "clf.shapes",
    "clf.values",
    "clf.padding",
    "clf.gradients",
    "clf.training",
)

PUBLIC_CHECKS = (
    make_check("sdpa.interface", SDPA, 1, "is a function taking (query, key, value, mask=None)", sdpa_interface),
    make_check("sdpa.shapes", SDPA, 2, "output and weights have the right shapes on several sizes", sdpa_shapes),
    make_check("sdpa.weights_sum", SDPA, 2, "weights are non-negative and sum to 1 over the keys", sdpa_weights_sum),
    make_check("mha.interface", MHA, 2, "constructor and parameter names and shapes", mha_interface),
    make_check("mha.shapes", MHA, 3, "output (B, Tq, E) and weights (B, H, Tq, Tk)", mha_shapes),
    make_check("block.interface", BLOCK, 2, "sub-modules attn, ffn, norm1/2 (eps 1e-6), dropout1/2", block_interface),
    make_check("block.shapes", BLOCK, 2, "output (B, T, E), with and without a padding mask", block_shapes),
    make_check("block.dropout", BLOCK, 2, "eval mode is deterministic; training mode applies dropout", block_dropout),
    make_check("embed.interface", EMBED, 1, "token_emb and pos_emb embeddings of the right sizes", embed_interface),
    make_check("clf.interface", CLF, 2, "embedding, blocks (ModuleList), head", clf_interface),
    make_check("clf.shapes", CLF, 2, "logits (B, num_classes)", clf_shapes),
)

CHECKS = with_hidden_checks(PUBLIC_CHECKS, __name__, CHECK_ORDER)

EXERCISE = Exercise(
    name="transformer",
    title="Transformers for tweet sentiment",
    parts=(SDPA, MHA, BLOCK, EMBED, CLF),
    checks=CHECKS,
    solution="solutions/transformer.py",
    notebook="assignments/source/transformer/transformer.ipynb",
    profiles=PROFILES,
    classifier=CLF,
    training_kwargs=training_kwargs,
)
