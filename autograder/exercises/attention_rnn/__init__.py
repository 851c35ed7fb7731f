"""The attention-over-LSTM exercise (course Example 1): checks for each part of the contract.

Contract (documented in the notebook): ``TemporalAttention(hidden_dim, normalise)`` and
``AttentionLSTMClassifier(vocab_size, num_classes, embed_dim, hidden_dim, normalise)``; post-padded tokens,
padding id 0, masks True at real steps. The public checks are here; the hidden ones, which compare values and
gradients with ``attention_rnn.reference`` (float64, gate by gate), are in ``attention_rnn.hidden``.
"""

from __future__ import annotations

import numpy as np

from ...checks import CheckFailure, CheckSet
from ...compare import require_shape
from ...context import Context, outputs, randn, rng
from ...contract import Build, Module, Part, check_interface
from ...data import tweets
from ...tasks import TrainingTask
from ...weights import DEFAULT_RULES, WeightRule, recurrent_uniform
from .. import Exercise, TrainingProfile
from ...kit.common import random_padding_mask, random_tokens
from .mistakes import AC, FEATURE_AXIS, MISTAKES, PADDING_ATTENDED, SWAPPED_TO_SOFTMAX, TA

PARTS = (TA, AC)
CHECKS = CheckSet(PARTS)

TA_CASE = dict(H=6, B=3, T=7)
AC_CASE = dict(vocab=30, E=8, H=6, C=3, B=4, T=9)


# ---------------------------------------------------------------------------------------------------------
# TemporalAttention

def ta_inputs(seed: int, with_mask: bool = True):
    c = TA_CASE
    gen = rng(seed)
    h = randn(gen, c["B"], c["T"], c["H"])
    return [h, random_padding_mask(gen, c["B"], c["T"])] if with_mask else [h]


def run_ta(ctx: Context, normalise: str, inputs, shapes: bool = True, **kw):
    """Run the attention; ``shapes=False`` leaves the shapes to the shapes check (a values check compares the
    outputs whose shapes are right)."""
    c = TA_CASE
    reply = ctx.run(TA, init_args=[c["H"]], init_kwargs={"normalise": normalise}, inputs=list(inputs), **kw)
    weighted, weights = outputs(reply, 2, f"{TA}.forward")
    if shapes:
        require_shape(f"weighted (normalise={normalise!r})", weighted, (c["B"], c["T"], c["H"]))
        require_shape(f"weights (normalise={normalise!r})", weights, (c["B"], c["T"]))
    return reply, [weighted, weights]


def ta_build(normalise: str) -> Build:
    H = TA_CASE["H"]
    return Build((H,), {"normalise": normalise},
                 (Module("score", "Linear", {"in_features": H, "out_features": 1}, "nn.Linear(hidden_dim, 1)"),),
                 {"score.weight": (1, H), "score.bias": (1,)})


TA_CONTRACT = Part(
    TA, "class", ("hidden_dim", "normalise"), 'TemporalAttention(hidden_dim, normalise="softmax")',
    "forward(h (B, T, H), mask=None (B, T))", "`(weighted (B, T, H), weights (B, T))`",
    (ta_build("softmax"), ta_build("sigmoid")),
    notes='`"softmax"`: weights = softmax **over time** of `tanh(score(h))`, padded steps get exactly 0 and the '
          'weights of each tweet sum to 1; `"sigmoid"`: weights = `sigmoid(score(h))`, each step on its own, padded '
          'steps get exactly 0; `weighted = h * weights[..., None]`',
)


@CHECKS.check("ta.interface", TA, 2, "score = nn.Linear(hidden_dim, 1); both normalisations", kind="interface")
def ta_interface(ctx: Context) -> None:
    check_interface(ctx, TA_CONTRACT)


@CHECKS.check("ta.shapes", TA, 3, "weighted (B, T, H) and weights (B, T), with and without a mask", kind="shapes")
def ta_shapes(ctx: Context) -> None:
    for with_mask in (False, True):
        for normalise in ("softmax", "sigmoid"):
            run_ta(ctx, normalise, ta_inputs(1, with_mask))


@CHECKS.check("ta.normalised", TA, 5, "softmax sums to 1 over real steps; padded steps get 0", kind="behaviour")
def ta_normalised(ctx: Context) -> None:
    h, mask = ta_inputs(2)
    _, (_, w) = run_ta(ctx, "softmax", [h, mask])
    padded = np.abs(w[~mask]).max(initial=0)
    if padded > 1e-7:
        raise CheckFailure(f"softmax: padded steps get weight up to {padded:.3g}; must be 0", PADDING_ATTENDED.hint)
    if (w < 0).any():
        raise CheckFailure("softmax: some weights are negative")
    sums = w.sum(1)
    if not np.allclose(sums, 1.0, atol=1e-5):
        hint = FEATURE_AXIS.hint if np.allclose(w[mask], 1.0) else None
        raise CheckFailure(f"softmax: the weights over each sequence's real steps sum to {np.round(sums, 4).tolist()}, "
                           "not 1", hint or "softmax over time (dim 1), after masking the padded steps")
    _, (_, w) = run_ta(ctx, "sigmoid", [h, mask])
    padded = np.abs(w[~mask]).max(initial=0)
    if padded > 1e-7:
        raise CheckFailure(f"sigmoid: padded steps get weight up to {padded:.3g}; must be 0", PADDING_ATTENDED.hint)
    if (w < 0).any() or (w > 1).any():
        raise CheckFailure("sigmoid: weights outside [0, 1]", SWAPPED_TO_SOFTMAX.hint)


# ---------------------------------------------------------------------------------------------------------
# AttentionLSTMClassifier

def ac_init(normalise: str = "softmax"):
    c = AC_CASE
    return dict(init_args=[c["vocab"]], init_kwargs=dict(num_classes=c["C"], embed_dim=c["E"], hidden_dim=c["H"],
                                                        normalise=normalise))


def ac_case(init_kwargs: dict) -> dict:
    """The sizes of ``AttentionLSTMClassifier(**init_kwargs)``, with the contract's defaults, as in ``AC_CASE``."""
    k = init_kwargs
    return dict(vocab=k["vocab_size"], C=k.get("num_classes", 2), E=k.get("embed_dim", 128), H=k.get("hidden_dim", 64))


def ac_param_shapes(case: dict = AC_CASE) -> dict:
    c = case
    shapes = {"embedding.weight": (c["vocab"], c["E"]), "attention.score.weight": (1, c["H"]),
              "attention.score.bias": (1,), "classifier.weight": (c["C"], c["H"]), "classifier.bias": (c["C"],)}
    for name, inp in (("lstm1", c["E"]), ("lstm2", c["H"])):
        shapes.update({f"{name}.weight_ih_l0": (4 * c["H"], inp), f"{name}.weight_hh_l0": (4 * c["H"], c["H"]),
                       f"{name}.bias_ih_l0": (4 * c["H"],), f"{name}.bias_hh_l0": (4 * c["H"],)})
    return shapes


def run_ac(ctx: Context, tokens, normalise="softmax", attention=False, shapes: bool = True, **kw):
    c = AC_CASE
    call_kwargs = {"return_attention": True} if attention else {}
    reply = ctx.run(AC, inputs=[tokens], call_kwargs=call_kwargs, **ac_init(normalise), **kw)
    got = outputs(reply, 2 if attention else 1, f"{AC}.forward{'(return_attention=True)' if attention else ''}")
    if shapes:
        require_shape("logits", got[0], (tokens.shape[0], c["C"]))
        if attention:
            require_shape("attention weights", got[1], tokens.shape)
    return reply, got


def ac_build() -> Build:
    c = AC_CASE
    init = ac_init()
    lstm = {"hidden_size": c["H"], "batch_first": True, "num_layers": 1, "bidirectional": False}
    modules = (
        Module("embedding", "Embedding", {"num_embeddings": c["vocab"], "embedding_dim": c["E"], "padding_idx": 0},
               "nn.Embedding(vocab_size, embed_dim, padding_idx=0)"),
        Module("lstm1", "LSTM", {"input_size": c["E"], **lstm}, "nn.LSTM(embed_dim, hidden_dim, batch_first=True)"),
        Module("attention", TA, text="TemporalAttention(hidden_dim, normalise)"),
        Module("lstm2", "LSTM", {"input_size": c["H"], **lstm}, "nn.LSTM(hidden_dim, hidden_dim, batch_first=True)"),
        Module("classifier", "Linear", {"in_features": c["H"], "out_features": c["C"]},
               "nn.Linear(hidden_dim, num_classes)"),
    )
    # its own parameters: the attention's are TemporalAttention's, checked there
    params = {k: v for k, v in ac_param_shapes().items() if not k.startswith("attention.")}
    return Build(tuple(init["init_args"]), init["init_kwargs"], modules, params)


AC_CONTRACT = Part(
    AC, "class", ("vocab_size", "num_classes", "embed_dim", "hidden_dim", "normalise"),
    'AttentionLSTMClassifier(vocab_size, num_classes=2, embed_dim=128, hidden_dim=64, normalise="softmax")',
    "forward(tokens (B, T) long, return_attention=False)",
    "logits `(B, num_classes)`, or `(logits, weights (B, T))` when `return_attention` is True", (ac_build(),),
    notes="the classifier reads `lstm2`'s output at each tweet's **last real token** (gather it, or pack the "
          "sequences: both are fine)",
)


@CHECKS.check("ac.interface", AC, 3, "embedding (padding_idx 0), lstm1, attention, lstm2, classifier", kind="interface")
def ac_interface(ctx: Context) -> None:
    check_interface(ctx, AC_CONTRACT)


@CHECKS.check("ac.shapes", AC, 4, "logits (B, C); with return_attention, weights (B, T) too", kind="shapes")
def ac_shapes(ctx: Context) -> None:
    c = AC_CASE
    for T in (c["T"], 4):
        tokens = random_tokens(40 + T, c["B"], T, c["vocab"])
        run_ac(ctx, tokens)
        run_ac(ctx, tokens, attention=True)


def training_kwargs(profile: TrainingProfile) -> dict:
    return dict(vocab_size=tweets.task_data().info["vocab_size"], num_classes=2, **profile.model_kwargs)


# ---------------------------------------------------------------------------------------------------------

PROFILES = {
    # Calibrated with bench/calibrate_training.py --exercise attention_rnn (figures in datasets/README.md).
    # CPU: the reference scored 0.8485-0.8549 (mean 0.8504, sd 0.0017) over seeds 0-19.
    "cpu": TrainingProfile("cpu", dict(embed_dim=64, hidden_dim=64, normalise="softmax"),
                           epochs=2, batch_size=64, lr=1e-3, threshold=0.83),
    # GPU (run on a CPU to calibrate): 0.8551-0.8649 over seeds 0-19, mean 0.8603.
    "gpu": TrainingProfile("gpu", dict(embed_dim=128, hidden_dim=64, normalise="softmax"),
                           epochs=3, batch_size=128, lr=1e-3, threshold=0.83),
}

# Recurrent layers' entries are drawn as PyTorch initialises them, U(-1/sqrt(H), 1/sqrt(H)) (gates x H rows).
WEIGHT_RULES = DEFAULT_RULES.extend(
    WeightRule("LSTM", "*", recurrent_uniform(4)),
    WeightRule("GRU", "*", recurrent_uniform(3)),
    WeightRule("RNN", "*", recurrent_uniform(1)),
)

EXERCISE = Exercise(
    name="attention_rnn",
    title="Attention over an LSTM for tweet sentiment",
    number=1,
    parts=PARTS,
    checks=CHECKS,  # the hidden checks join it where hidden.py is installed (the registry)
    solution="solutions/attention_rnn.py",
    notebook="assignments/source/attention_rnn/attention_rnn.ipynb",
    demo_sample="assignments/samples/attention_rnn_flawed.py",
    profiles=PROFILES,
    task=TrainingTask(data=tweets.task_data, loss="cross_entropy", metric="accuracy", examples="tweets",
                      probe_inputs=tweets.tweet_probes),
    training_kwargs=training_kwargs,
    weight_rules=WEIGHT_RULES,
    labelled_data=tweets.labelled_data_paths,
    contracts=(TA_CONTRACT, AC_CONTRACT),
    mistakes=tuple(MISTAKES),
)
