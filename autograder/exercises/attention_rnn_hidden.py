"""Hidden checks of the attention-over-LSTM exercise: values and gradients against the float64 reference,
padding, training.

Left out of the student install (``tools/build_student_wheel.py``), together with the reference they use.
Each part's known mistakes are one switch table (``ta_switches``, ``ac_switches``), used alike by the values
checks (to name a mistake), the gradient checks and the training check (to differentiate or score the function
the submission actually computes).
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import CheckFailure
from ..compare import as64, max_error, require_close, variant_grid
from ..context import Context
from . import attention_rnn_reference as ref
from .attention_rnn import (  # the public part: cases, hints and helpers
    AC, AC_CASE, HINT_FEATURE_AXIS, HINT_NO_TANH, HINT_NOT_APPLIED, HINT_PADDED_STEP, HINT_PADDING,
    HINT_SWAPPED_TO_SIGMOID, HINT_SWAPPED_TO_SOFTMAX, TA, TA_CASE, ac_case, ac_init, ac_param_shapes, run_ac, run_ta,
    ta_inputs, training_kwargs,
)
from .common import (
    Classifier, GradientCase, Reference, contract_params, gradient_check, make_check, random_tokens, training_check,
)


# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

def ta_switches(normalise: str, masked: bool) -> dict:
    if normalise == "softmax":
        switches = {"tanh": [(False, HINT_NO_TANH)], "axis": [("feature", HINT_FEATURE_AXIS)],
                    "normalise": [("sigmoid", HINT_SWAPPED_TO_SIGMOID)], "applied": [(False, HINT_NOT_APPLIED)]}
    else:
        switches = {"normalise": [("softmax", HINT_SWAPPED_TO_SOFTMAX)], "applied": [(False, HINT_NOT_APPLIED)]}
    return {**switches, "mask_mode": [(ref.MASK_IGNORED, HINT_PADDING)]} if masked else switches


def ac_switches(normalise: str) -> dict:
    """The classifier's own mistakes and those of its attention (which always gets the padding mask)."""
    return {"read": [("last", HINT_PADDED_STEP)], **ta_switches(normalise, masked=True)}


def ta_reference(normalise: str, masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.temporal_attention(p, xs[0], xs[1] if len(xs) > 1 else None,
                                                                **{"normalise": normalise, **kw}),
                     ta_switches(normalise, masked))


def ac_reference(normalise: str) -> Reference:
    """The logits only (the classifier called without ``return_attention``)."""
    return Reference(lambda p, xs, **kw: ref.classifier(p, xs[0], **{"normalise": normalise, **kw})[0],
                     ac_switches(normalise))


def _ta_compare(ctx: Context, normalise: str, seed: int) -> None:
    for with_mask in (True, False):
        inputs = ta_inputs(seed, with_mask)
        reply, got = run_ta(ctx, normalise, inputs, seed=seed)
        p = contract_params(reply, {"score.weight": (1, TA_CASE["H"]), "score.bias": (1,)}, TA)
        h = as64(inputs[0])
        mask = torch.as_tensor(inputs[1]) if with_mask else None
        expected = ref.temporal_attention(p, h, mask, normalise=normalise)
        variants = variant_grid(lambda **kw: ref.temporal_attention(p, h, mask, **{"normalise": normalise, **kw}),
                                ta_switches(normalise, with_mask))
        label = f"TemporalAttention(normalise={normalise!r}){' with a padding mask' if with_mask else ''}"
        require_close(label, got, list(expected), variants)


def ta_softmax_values(ctx: Context) -> None:
    _ta_compare(ctx, "softmax", 10)


def ta_sigmoid_values(ctx: Context) -> None:
    _ta_compare(ctx, "sigmoid", 20)


def _ac_variants(p, t, normalise):
    return variant_grid(lambda **kw: ref.classifier(p, t, **{"normalise": normalise, **kw}), ac_switches(normalise))


def _ac_compare(ctx: Context, seed: int, only_weights: bool) -> None:
    c = AC_CASE
    for normalise in ("softmax", "sigmoid"):
        tokens = random_tokens(seed, c["B"], c["T"], c["vocab"])
        reply, got = run_ac(ctx, tokens, normalise, attention=True, seed=seed)
        p = contract_params(reply, ac_param_shapes(), AC)
        t = torch.as_tensor(tokens)
        expected = list(ref.classifier(p, t, normalise=normalise))
        variants = _ac_variants(p, t, normalise)
        label = f"AttentionLSTMClassifier(normalise={normalise!r}) in eval mode, tokens {tokens.shape} with padding"
        if only_weights:
            for v in variants:
                v.outputs = v.outputs[1:]
            require_close(f"{label}: attention weights", got[1:], expected[1:], variants)
        else:
            for v in variants:
                v.outputs = v.outputs[:1]
            require_close(f"{label}: logits", got[:1], expected[:1], variants)


def ac_values(ctx: Context) -> None:
    _ac_compare(ctx, 60, only_weights=False)


def ac_attention(ctx: Context) -> None:
    _ac_compare(ctx, 70, only_weights=True)


def ac_padding(ctx: Context) -> None:
    c = AC_CASE
    tokens = random_tokens(80, c["B"], 7, c["vocab"])
    padded = np.concatenate([tokens, np.zeros((c["B"], 5), dtype=np.int64)], axis=1)
    for normalise in ("softmax", "sigmoid"):
        a = run_ac(ctx, tokens, normalise)[1][0]
        b = run_ac(ctx, padded, normalise)[1][0]
        err, _ = max_error(a, b)
        if err > 1e-5:
            raise CheckFailure(f"normalise={normalise!r}: appending 5 padding tokens (id 0) changes the logits by up "
                               f"to {err:.3g}", hint=f"{HINT_PADDING}; and {HINT_PADDED_STEP}")


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

def ta_gradients(ctx: Context) -> None:
    """From ``weighted`` alone: the score layer must learn through the re-weighted outputs, not only the weights."""
    c = TA_CASE
    gradient_check(ctx, GradientCase(TA, "TemporalAttention(normalise='softmax')", ta_reference("softmax", True),
                                     ta_inputs(3), ("h", "mask"), {"score.weight": (1, c["H"]), "score.bias": (1,)},
                                     init_args=[c["H"]], init_kwargs={"normalise": "softmax"}, loss_outputs=(0,),
                                     seed=3))


def ac_gradients(ctx: Context) -> None:
    c = AC_CASE
    gradient_check(ctx, GradientCase(AC, AC, ac_reference("softmax"), [random_tokens(90, 6, c["T"], c["vocab"])],
                                     ("tokens",), ac_param_shapes(), seed=90, **ac_init("softmax")))


# ---------------------------------------------------------------------------------------------------------
# Training

CLASSIFIER = Classifier(target=AC, contract=lambda kwargs: ac_param_shapes(ac_case(kwargs)),
                        reference=lambda kwargs: ac_reference(kwargs.get("normalise", "softmax")))


def ac_training(ctx: Context) -> None:
    training_check(ctx, CLASSIFIER, training_kwargs(ctx.profile))


HIDDEN_CHECKS = (
    make_check("ta.softmax_values", TA, 12, "softmax over time of tanh(score(h)) matches a float64 reference",
               ta_softmax_values, hidden=True),
    make_check("ta.sigmoid_values", TA, 10, "sigmoid(score(h)) matches a float64 reference", ta_sigmoid_values,
               hidden=True),
    make_check("ta.gradients", TA, 2, "gradients of the score layer and of h through weighted match float64 autograd",
               ta_gradients, hidden=True),
    make_check("ac.values", AC, 16, "logits match a float64 reference (the last real step is read)", ac_values,
               hidden=True),
    make_check("ac.attention", AC, 6, "the returned attention weights match the reference", ac_attention, hidden=True),
    make_check("ac.padding", AC, 10, "appending padding does not change the logits", ac_padding, hidden=True),
    make_check("ac.gradients", AC, 2, "every parameter's gradient matches float64 autograd", ac_gradients,
               hidden=True),
    make_check("ac.training", AC, 25, "trains to the calibrated test accuracy on held-out tweets", ac_training,
               hidden=True, training=True, timeout=300.0),
)
