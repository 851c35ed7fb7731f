"""The attention-over-LSTM exercise (course Example 1): checks for each part of the contract.

Contract (documented in the notebook): ``TemporalAttention(hidden_dim, normalise)`` and
``AttentionLSTMClassifier(vocab_size, num_classes, embed_dim, hidden_dim, normalise)``; post-padded tokens,
padding id 0, masks True at real steps. References: ``attention_rnn_reference`` (float64, gate by gate).
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import CheckFailure
from ..compare import as64, max_error, require_close, require_shape, variant_grid
from ..context import Context, outputs, randn, rng
from . import Exercise, TrainingProfile
from . import attention_rnn_reference as ref
from .common import (
    contract_params, make_check, random_padding_mask, random_tokens, refuse_forbidden, require_grads,
    require_interface, require_module, training_check, training_data,
)

TA, AC = "TemporalAttention", "AttentionLSTMClassifier"

HINT_FEATURE_AXIS = ("softmax over the feature axis: the scores are (B, T, 1), and a softmax over their last "
                     "axis gives 1 everywhere; take it over time (dim 1)")
HINT_NO_TANH = "no tanh: the softmax weights are softmax over time of tanh(score(h))"
HINT_PADDING = "padding given attention: padded steps (mask False) must get weight exactly 0"
HINT_NOT_APPLIED = "the weights are computed but not applied: return h * weights[..., None]"
HINT_SWAPPED_TO_SIGMOID = "sigmoid and softmax swapped: normalise='softmax' should give softmax over time"
HINT_SWAPPED_TO_SOFTMAX = "sigmoid and softmax swapped: normalise='sigmoid' should give sigmoid(score(h)) per step"
HINT_PADDED_STEP = ("the classifier reads a padded step: take lstm2's output at each sequence's last real token "
                    "(index = number of real tokens - 1), not at position T - 1")

TA_CASE = dict(H=6, B=3, T=7)
AC_CASE = dict(vocab=30, E=8, H=6, C=3, B=4, T=9)


# ---------------------------------------------------------------------------------------------------------
# TemporalAttention

def _ta_inputs(seed: int, with_mask: bool = True):
    c = TA_CASE
    gen = rng(seed)
    h = randn(gen, c["B"], c["T"], c["H"])
    return [h, random_padding_mask(gen, c["B"], c["T"])] if with_mask else [h]


def _ta(ctx: Context, normalise: str, inputs, **kw):
    c = TA_CASE
    reply = ctx.run(TA, init_args=[c["H"]], init_kwargs={"normalise": normalise}, inputs=list(inputs), **kw)
    refuse_forbidden(reply, TA)
    weighted, weights = outputs(reply, 2, f"{TA}.forward")
    require_shape(f"weighted (normalise={normalise!r})", weighted, (c["B"], c["T"], c["H"]))
    require_shape(f"weights (normalise={normalise!r})", weights, (c["B"], c["T"]))
    return reply, [weighted, weights]


def ta_interface(ctx: Context) -> None:
    c = TA_CASE
    require_interface(ctx, TA, "class", ["hidden_dim", "normalise"])
    for normalise in ("softmax", "sigmoid"):
        reply = ctx.run(TA, init_args=[c["H"]], init_kwargs={"normalise": normalise}, call=False)
        what = f"TemporalAttention({c['H']}, normalise={normalise!r})"
        require_module(reply, "score", "Linear", what, in_features=c["H"], out_features=1)
        contract_params(reply, {"score.weight": (1, c["H"]), "score.bias": (1,)}, what)


def ta_shapes(ctx: Context) -> None:
    for with_mask in (False, True):
        for normalise in ("softmax", "sigmoid"):
            _ta(ctx, normalise, _ta_inputs(1, with_mask))


def ta_normalised(ctx: Context) -> None:
    h, mask = _ta_inputs(2)
    _, (_, w) = _ta(ctx, "softmax", [h, mask])
    padded = np.abs(w[~mask]).max(initial=0)
    if padded > 1e-7:
        raise CheckFailure(f"softmax: padded steps get weight up to {padded:.3g}; must be 0", HINT_PADDING)
    if (w < 0).any():
        raise CheckFailure("softmax: some weights are negative")
    sums = w.sum(1)
    if not np.allclose(sums, 1.0, atol=1e-5):
        hint = HINT_FEATURE_AXIS if np.allclose(w[mask], 1.0) else None
        raise CheckFailure(f"softmax: the weights over each sequence's real steps sum to {np.round(sums, 4).tolist()}, "
                           "not 1", hint or "softmax over time (dim 1), after masking the padded steps")
    _, (_, w) = _ta(ctx, "sigmoid", [h, mask])
    padded = np.abs(w[~mask]).max(initial=0)
    if padded > 1e-7:
        raise CheckFailure(f"sigmoid: padded steps get weight up to {padded:.3g}; must be 0", HINT_PADDING)
    if (w < 0).any() or (w > 1).any():
        raise CheckFailure("sigmoid: weights outside [0, 1]", HINT_SWAPPED_TO_SOFTMAX)


def _ta_compare(ctx: Context, normalise: str, seed: int) -> None:
    for with_mask in (True, False):
        inputs = _ta_inputs(seed, with_mask)
        reply, got = _ta(ctx, normalise, inputs)
        p = contract_params(reply, {"score.weight": (1, TA_CASE["H"]), "score.bias": (1,)}, TA)
        h = as64(inputs[0])
        mask = torch.as_tensor(inputs[1]) if with_mask else None
        if normalise == "softmax":
            switches = {"tanh": [(False, HINT_NO_TANH)], "axis": [("feature", HINT_FEATURE_AXIS)],
                        "normalise": [("sigmoid", HINT_SWAPPED_TO_SIGMOID)], "applied": [(False, HINT_NOT_APPLIED)]}
        else:
            switches = {"normalise": [("softmax", HINT_SWAPPED_TO_SOFTMAX)], "applied": [(False, HINT_NOT_APPLIED)]}
        if with_mask:
            switches["mask_mode"] = [(ref.MASK_IGNORED, HINT_PADDING)]
        expected = ref.temporal_attention(p, h, mask, normalise=normalise)
        variants = variant_grid(lambda **kw: ref.temporal_attention(p, h, mask, **{"normalise": normalise, **kw}), switches)
        label = f"TemporalAttention(normalise={normalise!r}){' with a padding mask' if with_mask else ''}"
        require_close(label, got, list(expected), variants)


def ta_softmax_values(ctx: Context) -> None:
    _ta_compare(ctx, "softmax", 10)


def ta_sigmoid_values(ctx: Context) -> None:
    _ta_compare(ctx, "sigmoid", 20)


def ta_gradients(ctx: Context) -> None:
    # from ``weighted`` alone: the score layer must learn through the re-weighted outputs, not only the weights
    reply, _ = _ta(ctx, "softmax", _ta_inputs(3), mode="train", backward=True, backward_outputs=[0])
    require_grads(reply, TA)
    if reply.input_grads[0] is None or reply.input_grads[0] == 0.0:
        raise CheckFailure("no gradient reaches the input h (detached?)")


# ---------------------------------------------------------------------------------------------------------
# AttentionLSTMClassifier

def _ac_init(normalise: str = "softmax"):
    c = AC_CASE
    return dict(init_args=[c["vocab"]], init_kwargs=dict(num_classes=c["C"], embed_dim=c["E"], hidden_dim=c["H"],
                                                        normalise=normalise))


def _ac_shapes() -> dict:
    c = AC_CASE
    shapes = {"embedding.weight": (c["vocab"], c["E"]), "attention.score.weight": (1, c["H"]),
              "attention.score.bias": (1,), "classifier.weight": (c["C"], c["H"]), "classifier.bias": (c["C"],)}
    for name, inp in (("lstm1", c["E"]), ("lstm2", c["H"])):
        shapes.update({f"{name}.weight_ih_l0": (4 * c["H"], inp), f"{name}.weight_hh_l0": (4 * c["H"], c["H"]),
                       f"{name}.bias_ih_l0": (4 * c["H"],), f"{name}.bias_hh_l0": (4 * c["H"],)})
    return shapes


def _ac(ctx: Context, tokens, normalise="softmax", attention=False, **kw):
    c = AC_CASE
    call_kwargs = {"return_attention": True} if attention else {}
    reply = ctx.run(AC, inputs=[tokens], call_kwargs=call_kwargs, **_ac_init(normalise), **kw)
    refuse_forbidden(reply, AC)
    got = outputs(reply, 2 if attention else 1, f"{AC}.forward{'(return_attention=True)' if attention else ''}")
    require_shape("logits", got[0], (tokens.shape[0], c["C"]))
    if attention:
        require_shape("attention weights", got[1], tokens.shape)
    return reply, got


def ac_interface(ctx: Context) -> None:
    c = AC_CASE
    require_interface(ctx, AC, "class", ["vocab_size", "num_classes", "embed_dim", "hidden_dim", "normalise"])
    reply = ctx.run(AC, call=False, **_ac_init())
    refuse_forbidden(reply, AC)
    what = AC
    require_module(reply, "embedding", "Embedding", what, num_embeddings=c["vocab"], embedding_dim=c["E"], padding_idx=0)
    require_module(reply, "lstm1", "LSTM", what, input_size=c["E"], hidden_size=c["H"], batch_first=True, num_layers=1,
                   bidirectional=False)
    require_module(reply, "attention", TA, what)
    require_module(reply, "lstm2", "LSTM", what, input_size=c["H"], hidden_size=c["H"], batch_first=True, num_layers=1,
                   bidirectional=False)
    require_module(reply, "classifier", "Linear", what, in_features=c["H"], out_features=c["C"])
    contract_params(reply, _ac_shapes(), what)


def ac_shapes(ctx: Context) -> None:
    c = AC_CASE
    for T in (c["T"], 4):
        tokens = random_tokens(40 + T, c["B"], T, c["vocab"])
        _ac(ctx, tokens)
        _ac(ctx, tokens, attention=True)


def _ac_variants(p, t, normalise):
    switches = {"read": [("last", HINT_PADDED_STEP)], "mask_mode": [(ref.MASK_IGNORED, HINT_PADDING)],
                "applied": [(False, HINT_NOT_APPLIED)]}
    if normalise == "softmax":
        switches.update({"tanh": [(False, HINT_NO_TANH)], "axis": [("feature", HINT_FEATURE_AXIS)],
                         "normalise": [("sigmoid", HINT_SWAPPED_TO_SIGMOID)]})
    else:
        switches["normalise"] = [("softmax", HINT_SWAPPED_TO_SOFTMAX)]
    return variant_grid(lambda **kw: ref.classifier(p, t, **{"normalise": normalise, **kw}), switches)


def _ac_compare(ctx: Context, seed: int, only_weights: bool) -> None:
    c = AC_CASE
    for normalise in ("softmax", "sigmoid"):
        tokens = random_tokens(seed, c["B"], c["T"], c["vocab"])
        reply, got = _ac(ctx, tokens, normalise, attention=True)
        p = contract_params(reply, _ac_shapes(), AC)
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
        a = _ac(ctx, tokens, normalise)[1][0]
        b = _ac(ctx, padded, normalise)[1][0]
        err, _ = max_error(a, b)
        if err > 1e-5:
            raise CheckFailure(f"normalise={normalise!r}: appending 5 padding tokens (id 0) changes the logits by up "
                               f"to {err:.3g}", hint=f"{HINT_PADDING}; and {HINT_PADDED_STEP}")


def ac_gradients(ctx: Context) -> None:
    c = AC_CASE
    reply, _ = _ac(ctx, random_tokens(90, 6, c["T"], c["vocab"]), mode="train", backward=True)
    require_grads(reply, AC)


def training_kwargs(profile: TrainingProfile) -> dict:
    return dict(vocab_size=len(training_data().vocab), num_classes=2, **profile.model_kwargs)


def ac_training(ctx: Context) -> None:
    training_check(ctx, AC, training_kwargs(ctx.profile))


# ---------------------------------------------------------------------------------------------------------

PROFILES = {
    # Calibrated with bench/calibrate_training.py --exercise attention_rnn (figures in datasets/README.md).
    "cpu": TrainingProfile("cpu", dict(embed_dim=64, hidden_dim=64, normalise="softmax"),
                           epochs=2, batch_size=64, lr=1e-3, threshold=0.80, timeout=300.0),
    "gpu": TrainingProfile("gpu", dict(embed_dim=128, hidden_dim=64, normalise="softmax"),
                           epochs=3, batch_size=128, lr=1e-3, threshold=0.80, timeout=300.0),
}

CHECKS = (
    make_check("ta.interface", TA, 2, "score = nn.Linear(hidden_dim, 1); both normalisations", ta_interface),
    make_check("ta.shapes", TA, 3, "weighted (B, T, H) and weights (B, T), with and without a mask", ta_shapes),
    make_check("ta.normalised", TA, 5, "softmax sums to 1 over real steps; padded steps get 0", ta_normalised),
    make_check("ta.softmax_values", TA, 12, "softmax over time of tanh(score(h)) matches a float64 reference",
               ta_softmax_values, hidden=True),
    make_check("ta.sigmoid_values", TA, 10, "sigmoid(score(h)) matches a float64 reference", ta_sigmoid_values,
               hidden=True),
    make_check("ta.gradients", TA, 2, "a gradient reaches the score layer and the input through weighted",
               ta_gradients),
    make_check("ac.interface", AC, 3, "embedding (padding_idx 0), lstm1, attention, lstm2, classifier", ac_interface),
    make_check("ac.shapes", AC, 4, "logits (B, C); with return_attention, weights (B, T) too", ac_shapes),
    make_check("ac.values", AC, 16, "logits match a float64 reference (the last real step is read)", ac_values,
               hidden=True),
    make_check("ac.attention", AC, 6, "the returned attention weights match the reference", ac_attention, hidden=True),
    make_check("ac.padding", AC, 10, "appending padding does not change the logits", ac_padding, hidden=True),
    make_check("ac.gradients", AC, 2, "a gradient reaches every parameter", ac_gradients),
    make_check("ac.training", AC, 25, "trains to the calibrated test accuracy on held-out tweets", ac_training,
               hidden=True, training=True, timeout=300.0),
)

EXERCISE = Exercise(
    name="attention_rnn",
    title="Attention over an LSTM for tweet sentiment",
    parts=(TA, AC),
    checks=CHECKS,
    solution="solutions/attention_rnn.py",
    notebook="assignments/source/attention_rnn/attention_rnn.ipynb",
    profiles=PROFILES,
    classifier=AC,
    training_kwargs=training_kwargs,
)
