"""Hidden checks of the Vision Transformer exercise: values and gradients against the float64 reference
(``vit.reference``, written apart from the solution), and training of both models.

Left out of the student install, together with the reference. Each part's known mistakes are one switch table
(``*_SWITCHES``: the reference's switch -> [(wrong value, hint)], built from the declarations in ``vit.mistakes``),
used alike by its values checks (to name a mistake), its gradient check and the training checks. A model is judged
on its own logic: what its parts compute (the patches, the patch encoder and the block for the ViT; the tokenizer,
the block and the pooling for the CCT), found by their probes (``PROBES``, ``Context.function``), is the base of its
comparisons.
"""

from __future__ import annotations

import numpy as np

from ...checks import CheckFailure
from ...context import Context, outputs
from ...kit.blocks import heads_of
from ...stand_ins import StandIn
from . import reference as ref
from ...kit.common import (
    GradientCase, Reference, Trainable, as_inputs64, contract_params, gradient_check, judge, training_check,
)
from ...kit.common import compare as common_compare
from . import (  # the public part: its checks, cases and helpers
    BLOCK, BLOCK_CASES, CCT, CCT_CASES, CCT_PROFILES, CHECKS, ENCODER, ENCODER_CASES, PATCH_CASES, PATCHES, POOLING,
    POOLING_CASES, TOKENIZER, TOKENIZER_CASES, VIT, VIT_CASES, CctCase, VitCase, block_params, cct_case, cct_init,
    cct_params, encoder_params, image_batch, label, model_outputs, naming_a_class_token, pooling_params, tokenizer_init,
    tokenizer_params, tokens, training_kwargs, vit_case, vit_init, vit_params,
)
from .mistakes import (
    BLOCK_MLP_GELU_TANH, BLOCK_MLP_RELU, BLOCK_POST_NORM, CCT_NO_POSITIONS, CCT_POSITIONS_TWICE, ENCODER_NO_POSITIONS,
    ENCODER_POSITIONS_TWICE, HEAD_GELU_TANH, HEAD_RELU, NO_FINAL_NORM, PATCHES_COLUMN_MAJOR, PATCHES_PPC_ORDER,
    POOL_FEATURES, POOL_PADDING, POOL_STRIDE,
)
from ...mistakes import switch_table

# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

PATCH_SWITCHES = switch_table(PATCHES_PPC_ORDER, PATCHES_COLUMN_MAJOR)
ENCODER_SWITCHES = switch_table(ENCODER_NO_POSITIONS, ENCODER_POSITIONS_TWICE)
BLOCK_SWITCHES = switch_table(BLOCK_POST_NORM, BLOCK_MLP_RELU, BLOCK_MLP_GELU_TANH)
VIT_SWITCHES = switch_table(HEAD_RELU, HEAD_GELU_TANH, NO_FINAL_NORM)
TOKENIZER_SWITCHES = switch_table(POOL_STRIDE, POOL_PADDING)
POOLING_SWITCHES = switch_table(POOL_FEATURES)
CCT_SWITCHES = switch_table(CCT_NO_POSITIONS, CCT_POSITIONS_TWICE, NO_FINAL_NORM)

VIT_PARTS = (PATCHES, ENCODER, BLOCK)  # what a VisionTransformer is built from
CCT_PARTS = (TOKENIZER, BLOCK, POOLING)


def patches_reference(P: int) -> Reference:
    return Reference(lambda p, xs, **kw: [ref.extract_patches(xs[0], P, **kw)], PATCH_SWITCHES)


ENCODER_REFERENCE = Reference(lambda p, xs, **kw: [ref.patch_encoder(p, xs[0], **kw)], ENCODER_SWITCHES)


def block_reference(heads: int, attention: bool = True) -> Reference:
    """[x, weights] (``attention``) or [x] of a ViTBlock with ``heads`` heads."""
    def compute(p, xs, **kw):
        result = ref.vit_block(p, xs[0], heads, attention, **kw)
        return list(result) if attention else [result]

    return Reference(compute, BLOCK_SWITCHES)


def vit_reference(case: VitCase, maps: bool = False) -> Reference:
    """The logits (``maps``: and each block's weights after them) of a VisionTransformer of ``case``'s sizes."""
    def compute(p, xs, **kw):
        result = ref.vision_transformer(p, xs[0], case.patch_size, case.num_heads, case.num_blocks,
                                        case.mlp_head_units, maps, **kw)
        return [result[0], *result[1]] if maps else [result]

    return Reference(compute, VIT_SWITCHES, parts=VIT_PARTS)


def tokenizer_reference(channels) -> Reference:
    return Reference(lambda p, xs, **kw: [ref.conv_tokenizer(p, xs[0], list(channels), **kw)], TOKENIZER_SWITCHES)


POOLING_REFERENCE = Reference(lambda p, xs, **kw: list(ref.sequence_pooling(p, xs[0], **kw)), POOLING_SWITCHES)


def cct_reference(case: CctCase, maps: bool = False) -> Reference:
    """The logits (``maps``: and each block's weights and the pooling weights after them) of a CCT."""
    def compute(p, xs, **kw):
        result = ref.compact_transformer(p, xs[0], case.num_heads, case.num_blocks, maps, **kw)
        return [result[0], *result[1], result[2]] if maps else [result]

    return Reference(compute, CCT_SWITCHES, parts=CCT_PARTS)


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes, on inputs where each of its known mistakes shows (``Context.function``)

PROBE_PATCHES = ((2, 3, 8, 12), 4)  # three channels, 2 x 3 patches
PROBE_BLOCK = ((16, 4, 24), (2, 5, 16))
PROBE_TOKENIZER = ((2, 3, 9, 12), (8, 16))
PROBE_POOLING = (2, 5, 16)


def patches_probe(ctx: Context):
    shape, P = PROBE_PATCHES
    x = image_batch(9000, shape)
    got = outputs(ctx.run(PATCHES, inputs=[x, P]), 1, PATCHES)
    return patches_reference(P).identify(got, {}, as_inputs64([x]))


def _identify(ctx: Context, part: str, reference: Reference, args: list, kwargs: dict, x: np.ndarray, shapes: dict,
              count: int, seed: int, call_kwargs: dict | None = None):
    reply = ctx.run(part, init_args=args, init_kwargs=kwargs, inputs=[x], seed=seed, call_kwargs=call_kwargs or {},
                    contract=shapes)
    got = outputs(reply, count, part)
    p = contract_params(reply, shapes, part)
    return reference.identify(got, p, as_inputs64([x]), ctx.base(*reference.parts))


def encoder_probe(ctx: Context):
    args, shape = ENCODER_CASES[0]
    return _identify(ctx, ENCODER, ENCODER_REFERENCE, list(args), {}, tokens(9001, shape), encoder_params(*args), 1,
                     9001)


def block_probe(ctx: Context):
    (dim, heads, mlp_dim), shape = PROBE_BLOCK
    return _identify(ctx, BLOCK, block_reference(heads, attention=False), [dim, heads, mlp_dim], {},
                     tokens(9002, shape), block_params(dim, mlp_dim), 1, 9002)


def tokenizer_probe(ctx: Context):
    shape, channels = PROBE_TOKENIZER
    return _identify(ctx, TOKENIZER, tokenizer_reference(channels), [shape[1]], tokenizer_init(channels),
                     image_batch(9003, shape), tokenizer_params(shape[1], channels), 1, 9003)


def pooling_probe(ctx: Context):
    shape = PROBE_POOLING
    return _identify(ctx, POOLING, POOLING_REFERENCE, [shape[2]], {}, tokens(9004, shape), pooling_params(shape[2]),
                     2, 9004)


PROBES = {PATCHES: patches_probe, ENCODER: encoder_probe, BLOCK: block_probe, TOKENIZER: tokenizer_probe,
          POOLING: pooling_probe}



# ---------------------------------------------------------------------------------------------------------
# Stand-ins: the parts the grader computes in place of failing ones inside the models built from them
# (``autograder.stand_ins``), so that each model is judged on what it does itself

def _block_stand_in(p: dict, xs: list, module: dict) -> list:
    result = ref.vit_block(p, xs[0], heads_of(module), bool(xs[1]))
    return list(result) if xs[1] else [result]


STAND_INS = {
    PATCHES: StandIn(PATCHES, ("images", "patch_size"), lambda p, xs, module: [ref.extract_patches(xs[0], int(xs[1]))],
                     within=(VIT,)),
    ENCODER: StandIn(ENCODER, ("patches",), lambda p, xs, module: [ref.patch_encoder(p, xs[0])],
                     entries=tuple(encoder_params(6, 48, 16)), within=(VIT,)),
    BLOCK: StandIn(BLOCK, ("x", "return_attention"), _block_stand_in, entries=tuple(block_params(16, 24)),
                   defaults={"return_attention": False}, within=(VIT, CCT)),
    POOLING: StandIn(POOLING, ("x",), lambda p, xs, module: list(ref.sequence_pooling(p, xs[0])),
                     entries=tuple(pooling_params(16)), within=(CCT,)),
}


# ---------------------------------------------------------------------------------------------------------
# Values

def compare(ctx: Context, part: str, reference: Reference, args: list, kwargs: dict, x: np.ndarray, shapes: dict,
            count: int, what: str, seed: int, call_kwargs: dict | None = None) -> None:
    """Judge ``part`` built with ``args``, ``kwargs`` on ``x`` with the grader's weights, given what the parts it
    is built from compute."""
    common_compare(ctx, part, reference, args, kwargs, [x], shapes, count, what, seed, call_kwargs)


def with_maps(ctx: Context, part: str, args: list, kwargs: dict, x: np.ndarray, seed: int, reference: Reference,
              shapes: dict, blocks: int, pooled: bool, what: str) -> None:
    """Judge a model's outputs with ``return_attention=True``: the logits, each block's weights (unless the block's
    own weights are charged by its values check) and, ``pooled``, the pooling weights. What the call returns is
    the attention check's to charge."""
    reply = ctx.run(part, init_args=args, init_kwargs=kwargs, inputs=[x], seed=seed,
                    call_kwargs={"return_attention": True}, contract=shapes)
    try:
        logits, maps, pool = model_outputs(reply, f"{what}: forward(images, return_attention=True)", blocks, pooled)
    except CheckFailure:
        return
    got, select = [logits, *maps, *([pool] if pooled else [])], None
    if ctx.failed("block.values"):  # the blocks' weights are wrong in the block: judge the rest
        select = (0, 1 + blocks) if pooled else (0,)
        got = [got[i] for i in select]
    judge(ctx, f"{what}: outputs with return_attention=True", got, reference, contract_params(reply, shapes, part),
          as_inputs64([x]), select=select)


@CHECKS.check("patches.values", PATCHES, 2, "the patches match a float64 reference that cuts them out one by one",
              kind="values", hidden=True)
def patches_values(ctx: Context) -> None:
    for i, (shape, P) in enumerate(PATCH_CASES):
        x = image_batch(190 + i, shape)
        what = f"extract_patches(images of shape {shape}, {P})"
        got = outputs(ctx.run(PATCHES, inputs=[x, P]), 1, what)
        judge(ctx, what, got, patches_reference(P), {}, as_inputs64([x]))


@CHECKS.check("encoder.values", ENCODER, 4, "projection plus the position embedding of each patch: a float64 "
              "reference", kind="values", hidden=True)
def encoder_values(ctx: Context) -> None:
    for i, (args, shape) in enumerate(ENCODER_CASES):
        compare(ctx, ENCODER, ENCODER_REFERENCE, list(args), {}, tokens(200 + i, shape), encoder_params(*args), 1,
                f"{label(ENCODER, args, {})} on patches of shape {shape}", 200 + i)


@CHECKS.check("block.values", BLOCK, 7, "the pre-norm block and each head's weights match a float64 reference",
              kind="values", hidden=True)
def block_values(ctx: Context) -> None:
    for i, ((dim, heads, mlp_dim), shape) in enumerate(BLOCK_CASES):
        what = f"{label(BLOCK, (dim, heads, mlp_dim), {})} on x of shape {shape}"
        x = tokens(210 + i, shape)
        compare(ctx, BLOCK, block_reference(heads), [dim, heads, mlp_dim], {}, x, block_params(dim, mlp_dim), 2,
                f"{what}, return_attention=True", 210 + i, {"return_attention": True})
        if i == 0:
            compare(ctx, BLOCK, block_reference(heads, attention=False), [dim, heads, mlp_dim], {}, x,
                    block_params(dim, mlp_dim), 1, what, 210 + i)


@CHECKS.check("vit.values", VIT, 9, "logits and each block's weights match a float64 reference", kind="values",
              hidden=True)
@naming_a_class_token
def vit_values(ctx: Context) -> None:
    model_values(ctx, VIT, [(case[0], *vit_init(*case), vit_case(*case)) for case in VIT_CASES], vit_reference,
                 vit_params, 220, pooled=False)


def model_values(ctx: Context, part: str, cases: list, reference, params, seed: int, pooled: bool) -> None:
    """A model's logits on each case ``(images shape, args, kwargs, sizes)``, and on the first its outputs with
    ``return_attention=True``, against ``reference(sizes, maps=...)`` with ``params(sizes)``."""
    for i, (shape, args, kwargs, sizes) in enumerate(cases):
        what = f"{label(part, tuple(args), kwargs)} on images of shape {shape}"
        x = image_batch(seed + i, shape)
        compare(ctx, part, reference(sizes), args, kwargs, x, params(sizes), 1, f"{what}: logits", seed + i)
        if i == 0:
            with_maps(ctx, part, args, kwargs, x, seed + i, reference(sizes, maps=True), params(sizes),
                      sizes.num_blocks, pooled, what)


@CHECKS.check("tokenizer.values", TOKENIZER, 4, "the tokens match a float64 reference", kind="values", hidden=True)
def tokenizer_values(ctx: Context) -> None:
    for i, (shape, channels) in enumerate(TOKENIZER_CASES):
        kwargs = tokenizer_init(channels)
        compare(ctx, TOKENIZER, tokenizer_reference(channels), [shape[1]], kwargs, image_batch(230 + i, shape),
                tokenizer_params(shape[1], channels), 1, f"{label(TOKENIZER, (shape[1],), kwargs)} on images of "
                f"shape {shape}", 230 + i)


@CHECKS.check("pooling.values", POOLING, 4, "pooled and the weights match a float64 reference", kind="values",
              hidden=True)
def pooling_values(ctx: Context) -> None:
    for i, shape in enumerate(POOLING_CASES[:2]):
        compare(ctx, POOLING, POOLING_REFERENCE, [shape[2]], {}, tokens(240 + i, shape), pooling_params(shape[2]), 2,
                f"{label(POOLING, (shape[2],), {})} on x of shape {shape}", 240 + i)


@CHECKS.check("cct.values", CCT, 6, "logits, each block's weights and the pooling weights match a float64 reference",
              kind="values", hidden=True)
def cct_values(ctx: Context) -> None:
    model_values(ctx, CCT, [(case[0], *cct_init(*case), cct_case(*case)) for case in CCT_CASES], cct_reference,
                 cct_params, 250, pooled=True)


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

@CHECKS.check("encoder.gradients", ENCODER, 2, "gradients of projection, position_embedding and the patches match "
              "float64 autograd", kind="gradients", hidden=True)
def encoder_gradients(ctx: Context) -> None:
    args, shape = ENCODER_CASES[1]
    gradient_check(ctx, GradientCase(ENCODER, label(ENCODER, args, {}), ENCODER_REFERENCE, [tokens(300, shape)],
                                     ("patches",), encoder_params(*args), init_args=list(args), seed=300))


@CHECKS.check("block.gradients", BLOCK, 2, "every parameter's gradient and x's match float64 autograd (k_proj's bias "
              "has none)", kind="gradients", hidden=True)
def block_gradients(ctx: Context) -> None:
    (dim, heads, mlp_dim), shape = BLOCK_CASES[1]
    gradient_check(ctx, GradientCase(BLOCK, label(BLOCK, (dim, heads, mlp_dim), {"dropout": 0.0}),
                                     block_reference(heads, attention=False), [tokens(310, shape)], ("x",),
                                     block_params(dim, mlp_dim), init_args=[dim, heads, mlp_dim],
                                     init_kwargs={"dropout": 0.0}, seed=310))


@CHECKS.check("vit.gradients", VIT, 2, "every parameter's gradient matches float64 autograd", kind="gradients",
              hidden=True)
@naming_a_class_token
def vit_gradients(ctx: Context) -> None:
    shape, P, kwargs = VIT_CASES[1]
    args, kwargs = vit_init(shape, P, dict(kwargs, dropout=0.0, head_dropout=0.0))
    c = vit_case(shape, P, kwargs)
    behind = ("patch_encoder.", "blocks.")  # their gradients flow back through the blocks
    gradient_check(ctx, GradientCase(VIT, label(VIT, tuple(args), kwargs), vit_reference(c), [image_batch(320, shape)],
                                     ("images",), vit_params(c), init_args=args, init_kwargs=kwargs, seed=320,
                                     charged_by={"encoder.gradients": behind, "block.gradients": behind}))


@CHECKS.check("tokenizer.gradients", TOKENIZER, 1, "the convolutions' gradients match float64 autograd",
              kind="gradients", hidden=True)
def tokenizer_gradients(ctx: Context) -> None:
    shape, channels = TOKENIZER_CASES[0]
    kwargs = tokenizer_init(channels)
    gradient_check(ctx, GradientCase(TOKENIZER, label(TOKENIZER, (shape[1],), kwargs), tokenizer_reference(channels),
                                     [image_batch(330, shape)], ("images",), tokenizer_params(shape[1], channels),
                                     init_args=[shape[1]], init_kwargs=kwargs, seed=330))


@CHECKS.check("pooling.gradients", POOLING, 1, "gradients of attention and x match float64 autograd (its bias has "
              "none)", kind="gradients", hidden=True)
def pooling_gradients(ctx: Context) -> None:
    shape = POOLING_CASES[0]
    gradient_check(ctx, GradientCase(POOLING, label(POOLING, (shape[2],), {}), POOLING_REFERENCE, [tokens(340, shape)],
                                     ("x",), pooling_params(shape[2]), init_args=[shape[2]], seed=340))


@CHECKS.check("cct.gradients", CCT, 2, "every parameter's gradient matches float64 autograd", kind="gradients",
              hidden=True)
def cct_gradients(ctx: Context) -> None:
    shape, kwargs = CCT_CASES[2]
    args, kwargs = cct_init(shape, dict(kwargs, dropout=0.0))
    c = cct_case(shape, kwargs)
    behind = ("tokenizer.", "position_embedding", "blocks.", "norm.", "pool.")  # all before the head
    gradient_check(ctx, GradientCase(CCT, label(CCT, tuple(args), kwargs), cct_reference(c), [image_batch(350, shape)],
                                     ("images",), cct_params(c), init_args=args, init_kwargs=kwargs, seed=350,
                                     charged_by={check: behind for check in
                                                 ("tokenizer.gradients", "block.gradients", "pooling.gradients")}))


# ---------------------------------------------------------------------------------------------------------
# Training: one check for each model, each with its own profile

TRAINABLES = {
    VIT: Trainable(target=VIT, contract=lambda kwargs: vit_params(VitCase.of(kwargs)),
                   reference=lambda kwargs: vit_reference(VitCase.of(kwargs))),
    CCT: Trainable(target=CCT, contract=lambda kwargs: cct_params(CctCase.of(kwargs)),
                   reference=lambda kwargs: cct_reference(CctCase.of(kwargs))),
}
TRAINABLE = TRAINABLES[VIT]


@CHECKS.check("vit.training", VIT, 10, "VisionTransformer trains to the calibrated test accuracy on held-out images",
              kind="training", hidden=True)
def vit_training(ctx: Context) -> None:
    training_check(ctx, TRAINABLE, training_kwargs(ctx.profile))


@CHECKS.check("cct.training", CCT, 10, "CompactTransformer trains to the calibrated test accuracy on held-out images",
              kind="training", hidden=True)
def cct_training(ctx: Context) -> None:
    profile = CCT_PROFILES[ctx.profile.name]
    training_check(ctx, TRAINABLES[CCT], training_kwargs(profile), profile)

