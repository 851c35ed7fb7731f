"""Hidden checks of the attention-over-LSTM exercise: values and gradients against the float64 reference,
padding, training.

Left out of the student install (``tools/build_student_wheel.py``), together with the reference they use.
Each part's known mistakes are one switch table (``ta_switches``, ``AC_SWITCHES``), built from their declarations
in ``mistakes.py`` and used alike by the values checks (to name a mistake), the gradient checks and the training
check (to differentiate or score the function the submission actually computes).
"""

from __future__ import annotations

import numpy as np
import torch

from ...checks import CheckFailure
from ...compare import max_error
from ...context import Context
from ...mistakes import switch_table
from . import reference as ref
from . import (  # the public part: its checks, cases and helpers
    CHECKS, AC, AC_CASE, TA, TA_CASE, ac_case, ac_init, ac_param_shapes, run_ac, run_ta, ta_inputs, training_kwargs,
)
from .mistakes import (  # the declared mistakes, whose switches name them
    CLASSIFIER_MASK_NOT_PASSED, FEATURE_AXIS, NO_TANH, NOT_APPLIED, PADDED_STEP, PADDING_ATTENDED, SWAPPED_TO_SIGMOID,
    SWAPPED_TO_SOFTMAX,
)
from ...kit.blocks import MASKED_ROW_NAN
from ...kit.common import (
    Trainable, GradientCase, Reference, as_inputs64, contract_params, deviates, gradient_check, judge,
    random_tokens, training_check,
)


# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

def ta_switches(normalise: str, masked: bool) -> dict:
    own = (NO_TANH, FEATURE_AXIS, SWAPPED_TO_SIGMOID) if normalise == "softmax" else (SWAPPED_TO_SOFTMAX,)
    return switch_table(*own, NOT_APPLIED, *((PADDING_ATTENDED,) if masked else ()))


AC_SWITCHES = switch_table(PADDED_STEP, CLASSIFIER_MASK_NOT_PASSED)


def ta_part(normalise: str) -> str:
    """The probe's name of the attention built with ``normalise``: the two are different functions."""
    return f"{TA}(normalise={normalise!r})"


def ta_reference(normalise: str, masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.temporal_attention(p, xs[0], xs[1] if len(xs) > 1 else None,
                                                                **{"normalise": normalise, **kw}),
                     ta_switches(normalise, masked), nan_causes=MASKED_ROW_NAN)


def ac_reference(normalise: str) -> Reference:
    """Logits and attention weights (the classifier called with ``return_attention=True``)."""
    return Reference(lambda p, xs, **kw: ref.classifier(p, xs[0], **{"normalise": normalise, **kw}), AC_SWITCHES,
                     parts=(ta_part(normalise),))


def ac_logits_reference(normalise: str) -> Reference:
    """The logits only (the classifier called without ``return_attention``)."""
    full = ac_reference(normalise)
    return Reference(lambda p, xs, **kw: full.compute(p, xs, **kw)[0], full.switches, parts=full.parts)


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes (``Context.function``)

def ta_probe(normalise: str):
    def probe(ctx: Context):
        inputs = ta_inputs(9100, True)
        reply, got = run_ta(ctx, normalise, inputs, shapes=False, seed=9100)
        p = contract_params(reply, {"score.weight": (1, TA_CASE["H"]), "score.bias": (1,)}, TA)
        return ta_reference(normalise, True).identify(got, p, as_inputs64(inputs))

    return probe


def ac_probe(ctx: Context):
    c = AC_CASE
    tokens = random_tokens(9101, c["B"], c["T"], c["vocab"])
    reply, got = run_ac(ctx, tokens, "softmax", attention=True, shapes=False, seed=9101)
    reference = ac_reference("softmax")
    return reference.identify(got, contract_params(reply, ac_param_shapes(), AC), as_inputs64([tokens]),
                              ctx.base(*reference.parts))


PROBES = {ta_part("softmax"): ta_probe("softmax"), ta_part("sigmoid"): ta_probe("sigmoid"), AC: ac_probe}


# ---------------------------------------------------------------------------------------------------------
# Values

def _ta_compare(ctx: Context, normalise: str, seed: int) -> None:
    for with_mask in (True, False):
        inputs = ta_inputs(seed, with_mask)
        reply, got = run_ta(ctx, normalise, inputs, shapes=False, seed=seed)
        p = contract_params(reply, {"score.weight": (1, TA_CASE["H"]), "score.bias": (1,)}, TA)
        label = f"TemporalAttention(normalise={normalise!r}){' with a padding mask' if with_mask else ''}"
        judge(ctx, label, got, ta_reference(normalise, with_mask), p, as_inputs64(inputs))


@CHECKS.check("ta.softmax_values", TA, 12,
               "softmax over time of tanh(score(h)) matches a float64 reference",
               kind="values", hidden=True)
def ta_softmax_values(ctx: Context) -> None:
    _ta_compare(ctx, "softmax", 10)


@CHECKS.check("ta.sigmoid_values", TA, 10, "sigmoid(score(h)) matches a float64 reference", kind="values", hidden=True)
def ta_sigmoid_values(ctx: Context) -> None:
    _ta_compare(ctx, "sigmoid", 20)


def _ac_compare(ctx: Context, seed: int, only_weights: bool) -> None:
    c = AC_CASE
    for normalise in ("softmax", "sigmoid"):
        tokens = random_tokens(seed, c["B"], c["T"], c["vocab"])
        reply, got = run_ac(ctx, tokens, normalise, attention=True, shapes=False, seed=seed)
        p = contract_params(reply, ac_param_shapes(), AC)
        reference = ac_reference(normalise)
        label = f"AttentionLSTMClassifier(normalise={normalise!r}) in eval mode, tokens {tokens.shape} with padding"
        index = 1 if only_weights else 0
        judge(ctx, f"{label}: {'attention weights' if only_weights else 'logits'}", got[index:index + 1], reference, p,
              as_inputs64([tokens]), select=(index,))


@CHECKS.check("ac.values", AC, 16,
               "logits match a float64 reference (the last real step is read)",
               kind="values", hidden=True)
def ac_values(ctx: Context) -> None:
    _ac_compare(ctx, 60, only_weights=False)


@CHECKS.check("ac.attention", AC, 6, "the returned attention weights match the reference", kind="values", hidden=True)
def ac_attention(ctx: Context) -> None:
    _ac_compare(ctx, 70, only_weights=True)


@CHECKS.check("ac.padding", AC, 10, "appending padding does not change the logits", kind="behaviour", hidden=True)
def ac_padding(ctx: Context) -> None:
    """Behaviour: appending padding never changes the logits. The hint names what the classifier's values match."""
    c = AC_CASE
    tokens = random_tokens(80, c["B"], 7, c["vocab"])
    padded = np.concatenate([tokens, np.zeros((c["B"], 5), dtype=np.int64)], axis=1)
    for normalise in ("softmax", "sigmoid"):
        a = run_ac(ctx, tokens, normalise)[1][0]
        b = run_ac(ctx, padded, normalise)[1][0]
        err, _ = max_error(a, b)
        if err > 1e-5 and not deviates(ctx.function(ta_part(normalise))):
            function = ctx.function(AC)  # the hint names what the classifier's own values match, if anything
            raise CheckFailure(f"normalise={normalise!r}: appending 5 padding tokens (id 0) changes the logits by up "
                               f"to {err:.3g}", hint=function.hint or None if function is not None else None)


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

@CHECKS.check("ta.gradients", TA, 2,
               "gradients of the score layer and of h through weighted match float64 autograd",
               kind="gradients", hidden=True)
def ta_gradients(ctx: Context) -> None:
    """From ``weighted`` alone: the score layer must learn through the re-weighted outputs, not only the weights."""
    c = TA_CASE
    gradient_check(ctx, GradientCase(TA, "TemporalAttention(normalise='softmax')", ta_reference("softmax", True),
                                     ta_inputs(3), ("h", "mask"), {"score.weight": (1, c["H"]), "score.bias": (1,)},
                                     init_args=[c["H"]], init_kwargs={"normalise": "softmax"}, loss_outputs=(0,),
                                     seed=3))


@CHECKS.check("ac.gradients", AC, 2,
               "every parameter's gradient matches float64 autograd",
               kind="gradients", hidden=True)
def ac_gradients(ctx: Context) -> None:
    c = AC_CASE
    gradient_check(ctx, GradientCase(AC, AC, ac_logits_reference("softmax"), [random_tokens(90, 6, c["T"], c["vocab"])],
                                     ("tokens",), ac_param_shapes(), seed=90, **ac_init("softmax"),
                                     # lstm1's and the embedding's gradients flow back through the attention
                                     charged_by={"ta.gradients": ("attention.", "lstm1.", "embedding.")}))


# ---------------------------------------------------------------------------------------------------------
# Training

TRAINABLE = Trainable(target=AC, contract=lambda kwargs: ac_param_shapes(ac_case(kwargs)),
                        reference=lambda kwargs: ac_logits_reference(kwargs.get("normalise", "softmax")))


@CHECKS.check("ac.training", AC, 25,
               "trains to the calibrated test accuracy on held-out tweets",
               kind="training", hidden=True)
def ac_training(ctx: Context) -> None:
    training_check(ctx, TRAINABLE, training_kwargs(ctx.profile))
