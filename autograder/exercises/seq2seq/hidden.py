"""Hidden checks of the trajectory transformer exercise: values, predict and gradients against the float64
reference, and training.

Left out of the student install (``tools/build_student_wheel.py``), together with the reference they use. Each
part's own known mistakes are one switch table, used alike by its values checks (to name a mistake), its
gradient check and the training check (to score the function the submission actually computes). The given
``MultiHeadAttention`` and ``TransformerBlock`` are probed like parts (``PROBES``): the blocks and the model are
judged given what they compute, and their own mistakes are charged once, by ``decoder.attention_module`` and
``model.encoder_block``.
"""

from __future__ import annotations

import numpy as np
import torch

from ...checks import CheckFailure
from ...context import Context, outputs, rng
from ...kit.contracts import attention_params
from ...kit.blocks import heads_of
from ...stand_ins import StandIn
from . import reference as ref
from ...kit.common import (
    GradientCase, Reference, Trainable, as_inputs64, compare, contract_params, gradient_check, random_mask,
    training_check,
)
from ...kit.blocks import MASKED_ROW_NAN, block_switches, mha_switches
from ...mistakes import switch_table
from . import (  # the public part: its checks, cases and helpers
    CHECKS, DECODER, DECODER_CASES, ENCODER_BLOCK, MASK, MHA, MODEL, MODEL_CASES, POSITION_CASES, POSITIONS, STEPS,
    ModelCase, causal, decoder_params, encoder_block_params, label, model_init, model_params, read_mask, states,
    training_kwargs, walks,
)
from .mistakes import (  # the named mistakes (public: their hints are the public checks' too)
    CROSS_ATTENTION_READS_TARGET, DECODER_MASK_IGNORED, DECODER_PRE_NORM, DECODER_UNBIASED_NORM, MASK_ALLOWS_EVERYTHING, MASK_INVERTED, MASK_NOT_PASSED,
    MASK_STRICTLY_LOWER, MASK_TRANSPOSED, MODEL_NO_POSITIONS, POSITIONS_FREQUENCY_PER_COLUMN,
    POSITIONS_FREQUENCY_PER_PAIR, POSITIONS_SIN_COS_SWAPPED, PREDICT_FEEDS_FIRST_POINT, PREDICT_FEEDS_ZEROS,
    PREDICT_STARTS_FROM_FIRST_POINT,
)

# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

MASK_SWITCHES = switch_table(MASK_INVERTED, MASK_TRANSPOSED, MASK_STRICTLY_LOWER, MASK_ALLOWS_EVERYTHING)
POSITION_SWITCHES = switch_table(POSITIONS_SIN_COS_SWAPPED, POSITIONS_FREQUENCY_PER_PAIR,
                                 POSITIONS_FREQUENCY_PER_COLUMN)  # the two wrong frequencies: one hint
DECODER_SWITCHES = switch_table(DECODER_PRE_NORM, CROSS_ATTENTION_READS_TARGET, DECODER_MASK_IGNORED,
                                DECODER_UNBIASED_NORM)
MODEL_SWITCHES = switch_table(MODEL_NO_POSITIONS, MASK_NOT_PASSED)
PREDICT_SWITCHES = switch_table(PREDICT_FEEDS_ZEROS, PREDICT_FEEDS_FIRST_POINT, PREDICT_STARTS_FROM_FIRST_POINT)
# The given parts': the transformer exercise's own tables (the encoder block's switches prefixed, ``ref``)
MHA_SWITCHES = mha_switches(masked=True)
ENCODER_SWITCHES = {f"enc_{name}": values for name, values in block_switches(masked=False).items()}

MODEL_PARTS = (POSITIONS, MASK, DECODER, MHA, ENCODER_BLOCK)
NAN_MASKS = ("inverted", "strict")  # the mask mistakes that leave a step nothing to attend to


def mask_reference(size: int) -> Reference:
    return Reference(lambda p, xs, **kw: [ref.causal_mask(size, **kw).double()], MASK_SWITCHES)


def positions_reference(length: int, dim: int) -> Reference:
    return Reference(lambda p, xs, **kw: [ref.sinusoidal_positions(length, dim, **kw)], POSITION_SWITCHES,
                     nan_causes="position 0 times an infinite frequency, or a division by zero?")


MHA_HEADS = 3
MHA_REFERENCE = Reference(
    lambda p, xs, **kw: list(ref.multi_head_attention(p, xs[0], xs[1], xs[2], MHA_HEADS, xs[3], **kw)), MHA_SWITCHES,
    nan_causes=MASKED_ROW_NAN)


def encoder_block_reference(heads: int) -> Reference:
    return Reference(lambda p, xs, **kw: [ref.encoder_block(p, xs[0], heads, **kw)], ENCODER_SWITCHES, parts=(MHA,))


def decoder_reference(heads: int, attention: bool = True) -> Reference:
    """[x, cross-attention weights] (``attention``) or [x] of a DecoderBlock; inputs x, memory and the mask."""
    def compute(p, xs, **kw):
        mask = xs[2] if len(xs) > 2 else None
        x, w = ref.decoder_block(p, xs[0], xs[1], heads, mask, **kw)
        return [x, w] if attention else [x]

    return Reference(compute, DECODER_SWITCHES, parts=(MHA,), nan_causes=MASKED_ROW_NAN)


def model_reference(case: ModelCase) -> Reference:
    """The teacher-forced forward (B, T, 2) of a TrajectoryTransformer of ``case``'s sizes; inputs source,
    target_in."""
    def compute(p, xs, **kw):
        return [ref.trajectory_transformer(p, xs[0], xs[1], case.num_heads, case.num_encoder_blocks,
                                           case.num_decoder_blocks, **kw)]

    return Reference(compute, MODEL_SWITCHES, parts=MODEL_PARTS, nan_causes=MASKED_ROW_NAN)


def predict_reference(case: ModelCase, steps: int, own: bool = True) -> Reference:
    """``predict(source, steps)`` (B, steps, 2), greedy: the input is the source alone. With ``own``, predict's
    own known mistakes are its switches, judged given what the model's forward computes (its own known
    mistakes are charged by its values checks); without, only the forward's (the training check's scorer, which
    is given the trained model's function)."""
    def compute(p, xs, **kw):
        return [ref.predict(p, xs[0], steps, case.num_heads, case.num_encoder_blocks, case.num_decoder_blocks, **kw)]

    if own:
        return Reference(compute, PREDICT_SWITCHES, parts=MODEL_PARTS + (MODEL,))
    return Reference(compute, {}, parts=MODEL_PARTS)



# ---------------------------------------------------------------------------------------------------------
# Stand-ins: the parts the grader computes in place of failing ones inside the parts built from them
# (``autograder.stand_ins``), so that each is judged on what it does itself

def _keep(mask):
    """A mask as bool (True = may attend), read as the given attention reads it: a float mask without 1s is
    additive (0 = may attend, -inf = may not), any other a pattern of nonzero = may attend."""
    if mask is None or mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point() and not bool((mask == 1).any()):
        return mask == 0  # additive
    return mask != 0


def _mha(p: dict, xs: list, module: dict) -> list:
    return list(ref.multi_head_attention(p, xs[0], xs[1], xs[2], heads_of(module), _keep(xs[3])))


def _encoder_block(p: dict, xs: list, module: dict) -> list:
    if xs[1] is not None:
        raise LookupError("the model's encoder blocks take no padding mask")
    return [ref.encoder_block(p, xs[0], heads_of(module))]


def _decoder(p: dict, xs: list, module: dict) -> list:
    x, weights = ref.decoder_block(p, xs[0], xs[1], heads_of(module), _keep(xs[2]))
    return [x, weights] if xs[3] else [x]


STAND_INS = {
    MASK: StandIn(MASK, ("size",), lambda p, xs, module: [ref.causal_mask(int(xs[0]))], within=(MODEL,)),
    POSITIONS: StandIn(POSITIONS, ("length", "dim"),
                       lambda p, xs, module: [ref.sinusoidal_positions(int(xs[0]), int(xs[1]))], within=(MODEL,)),
    MHA: StandIn(MHA, ("query", "key", "value", "mask"), _mha, entries=tuple(attention_params("", 12)),
                 defaults={"mask": None}, within=(ENCODER_BLOCK, DECODER, MODEL)),
    ENCODER_BLOCK: StandIn(ENCODER_BLOCK, ("x", "padding_mask"), _encoder_block,
                           entries=tuple(encoder_block_params(12, 16)), defaults={"padding_mask": None},
                           within=(MODEL,)),
    DECODER: StandIn(DECODER, ("x", "memory", "self_mask", "return_attention"), _decoder,
                     entries=tuple(decoder_params(12, 16)), defaults={"self_mask": None, "return_attention": False},
                     within=(MODEL,)),
}


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes, on inputs where each of its known mistakes shows (``Context.function``)

PROBE_DECODER = ((12, 3, 20), (2, 5, 12), (2, 6, 12))
PROBE_MODEL = MODEL_CASES[1]


def mask_probe(ctx: Context):
    """The pattern the mask means (``read_mask``): its form (dtype, leading 1s) is mask.interface's to charge, what
    it allows is the model's to use."""
    size = 6
    try:
        found = read_mask(ctx, size)
    except CheckFailure:
        return None
    return mask_reference(size).identify([found.pattern.astype(np.float64)], {}, [])


def positions_probe(ctx: Context):
    length, dim = 9, 8
    got = outputs(ctx.run(POSITIONS, inputs=[length, dim]), 1, POSITIONS)
    return positions_reference(length, dim).identify(got, {}, [])


def mha_inputs(seed: int) -> list:
    """query (2, 4, 12), key and value (2, 6, 12), a mask (2, 1, 4, 6) with at least one key per query."""
    gen = rng(seed)
    mask = random_mask(gen, 2, 1, 4, 6)
    return [states(seed, (2, 4, 12)), states(seed + 1, (2, 6, 12)), states(seed + 2, (2, 6, 12)), mask]


def mha_probe(ctx: Context):
    inputs = mha_inputs(9100)
    reply = ctx.run(MHA, init_args=[12, MHA_HEADS], inputs=inputs, seed=9100)
    got = outputs(reply, 2, MHA)
    p = contract_params(reply, attention_params("", 12), MHA)
    return MHA_REFERENCE.identify(got, p, as_inputs64(inputs))


def encoder_block_probe(ctx: Context):
    x = states(9101, (2, 5, 12))
    reply = ctx.run(ENCODER_BLOCK, init_args=[12, MHA_HEADS, 20], inputs=[x], seed=9101)
    got = outputs(reply, 1, ENCODER_BLOCK)
    p = contract_params(reply, encoder_block_params(12, 20), ENCODER_BLOCK)
    reference = encoder_block_reference(MHA_HEADS)
    return reference.identify(got, p, as_inputs64([x]), ctx.base(*reference.parts))


def decoder_probe(ctx: Context):
    args, x_shape, m_shape = PROBE_DECODER
    inputs = [states(9102, x_shape), states(9103, m_shape), causal(x_shape[1])]
    reply = ctx.run(DECODER, init_args=list(args), inputs=inputs, seed=9102)
    got = outputs(reply, 1, DECODER)
    p = contract_params(reply, decoder_params(args[0], args[2]), DECODER)
    reference = decoder_reference(args[1], attention=False)
    return reference.identify(got, p, as_inputs64(inputs), ctx.base(*reference.parts))


def model_probe(ctx: Context):
    kwargs, s_shape, t_shape = PROBE_MODEL
    inputs = [walks(9104, s_shape), walks(9105, t_shape)]
    reply = ctx.run(MODEL, init_args=[], init_kwargs=model_init(kwargs), inputs=inputs, seed=9104)
    got = outputs(reply, 1, MODEL)
    case = ModelCase.of(kwargs)
    p = contract_params(reply, model_params(case), MODEL)
    reference = model_reference(case)
    return reference.identify(got, p, as_inputs64(inputs), ctx.base(*reference.parts))


PROBES = {MASK: mask_probe, POSITIONS: positions_probe, MHA: mha_probe, ENCODER_BLOCK: encoder_block_probe,
          DECODER: decoder_probe, MODEL: model_probe}


# ---------------------------------------------------------------------------------------------------------
# sinusoidal_positions

@CHECKS.check("positions.values", POSITIONS, 5, "sin on even columns, cos on odd, pos / 10000^(2i/dim): a float64 "
              "reference", kind="values", hidden=True)
def positions_values(ctx: Context) -> None:
    for length, dim in POSITION_CASES:
        compare(ctx, POSITIONS, positions_reference(length, dim), None, {}, [length, dim], {}, 1,
                f"sinusoidal_positions({length}, {dim})", 0)


# ---------------------------------------------------------------------------------------------------------
# DecoderBlock

def decoder_masks(seed: int, B: int, heads: int, T: int) -> list:
    """The self-attention masks a block must take: (T, T) causal, (B, 1, T, T) per example (where T > 1: each
    query keeps at least one key, and drops one), and None."""
    return [causal(T), *([random_mask(rng(seed), B, 1, T, T)] if T > 1 else []), None]


@CHECKS.check("decoder.values", DECODER, 8, "x and the cross-attention's weights match a float64 reference, with a "
              "(T, T), a (B, 1, T, T) and no mask", kind="values", hidden=True)
def decoder_values(ctx: Context) -> None:
    for i, (args, x_shape, m_shape) in enumerate(DECODER_CASES):
        x, memory = states(400 + i, x_shape), states(410 + i, m_shape)
        for j, mask in enumerate(decoder_masks(420 + i, x_shape[0], args[1], x_shape[1])):
            inputs = [x, memory] if mask is None else [x, memory, mask]
            shown = "no mask" if mask is None else f"a {tuple(mask.shape)} mask"
            compare(ctx, DECODER, decoder_reference(args[1]), list(args), {}, inputs, decoder_params(args[0], args[2]),
                    2, f"{label(DECODER, args, {})} on x {x_shape}, memory {m_shape}, {shown}", 400 + i,
                    {"return_attention": True})


@CHECKS.check("decoder.attention_module", DECODER, 2, "the MultiHeadAttention the blocks use (the given one, or "
              "yours) computes the transformer exercise's contract", kind="values", hidden=True)
def decoder_attention_module(ctx: Context) -> None:
    args = DECODER_CASES[0][0]
    ctx.metadata(DECODER, list(args), {})  # the blocks must build: the attention is judged as theirs
    inputs = mha_inputs(430)
    what = f"{label(MHA, (12, MHA_HEADS), {})} on query (2, 4, 12), key and value (2, 6, 12), a (2, 1, 4, 6) mask"
    compare(ctx, MHA, MHA_REFERENCE, [12, MHA_HEADS], {}, inputs, attention_params("", 12), 2, what, 430)


@CHECKS.check("decoder.gradients", DECODER, 3, "every parameter's gradient and those of x and memory match float64 "
              "autograd", kind="gradients", hidden=True)
def decoder_gradients(ctx: Context) -> None:
    args, x_shape, m_shape = DECODER_CASES[1]
    inputs = [states(440, x_shape), states(441, m_shape), causal(x_shape[1])]
    gradient_check(ctx, GradientCase(DECODER, label(DECODER, args, {"dropout": 0.0}), decoder_reference(args[1]),
                                     inputs, ("x", "memory"), decoder_params(args[0], args[2]), init_args=list(args[:3]),
                                     init_kwargs={"dropout": 0.0}, call_kwargs={"return_attention": True}, seed=440))


# ---------------------------------------------------------------------------------------------------------
# TrajectoryTransformer

@CHECKS.check("model.values", MODEL, 12, "the teacher-forced forward matches a float64 reference", kind="values",
              hidden=True)
def model_values(ctx: Context) -> None:
    for i, (kwargs, s_shape, t_shape) in enumerate(MODEL_CASES):
        case = ModelCase.of(kwargs)
        inputs = [walks(450 + 2 * i, s_shape), walks(451 + 2 * i, t_shape)]
        compare(ctx, MODEL, model_reference(case), [], model_init(kwargs), inputs, model_params(case), 1,
                f"{label(MODEL, (), kwargs)}.forward(source {s_shape}, target_in {t_shape})", 450 + 2 * i)


@CHECKS.check("model.encoder_block", MODEL, 2, "the TransformerBlock the encoder uses (the given one, or yours) "
              "computes the transformer exercise's contract", kind="values", hidden=True)
def model_encoder_block(ctx: Context) -> None:
    ctx.metadata(MODEL, [], model_init(MODEL_CASES[0][0]))  # the model must build: the block is judged as its
    x = states(460, (2, 5, 12))
    reference = encoder_block_reference(MHA_HEADS)
    compare(ctx, ENCODER_BLOCK, reference, [12, MHA_HEADS, 20], {}, [x], encoder_block_params(12, 20), 1,
            f"{label(ENCODER_BLOCK, (12, MHA_HEADS, 20), {})} on x (2, 5, 12)", 460)


@CHECKS.check("model.predict_values", MODEL, 6, "predict matches a float64 reference decoding greedily from the last "
              "observed point", kind="values", hidden=True)
def model_predict_values(ctx: Context) -> None:
    for i, (kwargs, s_shape, _) in enumerate(MODEL_CASES[:2]):
        case = ModelCase.of(kwargs)
        steps = (5, 3)[i]
        source = walks(470 + i, s_shape)
        compare(ctx, MODEL, predict_reference(case, steps), [], model_init(kwargs), [source, steps],
                model_params(case), 1, f"{label(MODEL, (), kwargs)}.predict(source {s_shape}, {steps})", 470 + i,
                method="predict")


@CHECKS.check("model.gradients", MODEL, 4, "every parameter's gradient and those of the inputs match float64 autograd",
              kind="gradients", hidden=True)
def model_gradients(ctx: Context) -> None:
    if ctx.base(MASK).get("mask") in NAN_MASKS:
        return  # the mask's own known mistake makes the forward NaN, and every gradient with it: charged there
    own = ctx.base(MODEL)
    if any(own.get(name) in {value for value, _ in values} for name, values in MODEL_SWITCHES.items()):
        return  # the model's own known mistake, charged by model.values: without positions the cross-attention's
        # query gradients shrink to float32 rounding, so another function's gradients would be judged by the draw
    if ctx.base(ENCODER_BLOCK):
        return  # the encoder block's known mistake, charged by model.encoder_block: judged on it, the memory can be
        # near constant over positions (no residual: 4e-6 of the largest gradient on some draws), and so can the
        # cross-attention's query and key gradients
    kwargs, s_shape, t_shape = MODEL_CASES[1]
    kwargs = model_init(kwargs, dropout=0.0)
    case = ModelCase.of(kwargs)
    gradient_check(ctx, GradientCase(MODEL, label(MODEL, (), kwargs), model_reference(case),
                                     [walks(480, s_shape), walks(481, t_shape)], ("source", "target_in"),
                                     model_params(case), init_args=[], init_kwargs=kwargs, seed=480,
                                     charged_by={"decoder.gradients": ("decoder.",)}))


# ---------------------------------------------------------------------------------------------------------
# Training: teacher forcing in the child; the parent scores the trained weights' greedy predictions

TRAINABLE = Trainable(target=MODEL, contract=lambda kwargs: model_params(ModelCase.of(kwargs)),
                      reference=lambda kwargs: model_reference(ModelCase.of(kwargs)),
                      scorer=lambda kwargs: predict_reference(ModelCase.of(kwargs), STEPS, own=False))


@CHECKS.check("model.training", MODEL, 20, "trains to the calibrated test MSE of its greedy predictions, and beats "
              "constant velocity", kind="training", hidden=True)
def model_training(ctx: Context) -> None:
    training_check(ctx, TRAINABLE, training_kwargs(ctx.profile))

