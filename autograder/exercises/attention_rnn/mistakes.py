"""The known mistakes of the attention-over-LSTM exercise, each declared once: its name (that of the tests' edit
that makes it, ``tests/mistake_edits/attention_rnn.py``), its part, its hint, and the switch of the float64
reference (``attention_rnn.reference``) that reproduces it. The public checks raise these hints; the hidden ones
build their switch tables from them (``hidden.py``).

Public: it ships in the student wheel, so it imports nothing from ``hidden.py`` or ``reference.py`` (the switch
values are written here).
"""

from __future__ import annotations

from ...mistakes import Mistake, Mistakes

TA, AC = "TemporalAttention", "AttentionLSTMClassifier"

# TemporalAttention
FEATURE_AXIS = Mistake(
    "softmax_over_features", TA,
    "softmax over the feature axis: the scores are (B, T, 1), and a softmax over their last axis gives 1 everywhere; "
    "take it over time (dim 1)",
    ("axis", "feature"))
NO_TANH = Mistake(
    "no_tanh", TA,
    "no tanh: the softmax weights are softmax over time of tanh(score(h))",
    ("tanh", False))
PADDING_ATTENDED = Mistake(
    "padding_attended", TA,
    "padding given attention: padded steps (mask False) must get weight exactly 0",
    ("mask_mode", "ignored"))
NOT_APPLIED = Mistake(
    "weights_not_applied", TA,
    "the weights are computed but not applied: return h * weights[..., None]",
    ("applied", False))
SWAPPED_TO_SIGMOID = Mistake(
    "sigmoid_softmax_swapped", TA,
    "sigmoid and softmax swapped: normalise='softmax' should give softmax over time",
    ("normalise", "sigmoid"))
SWAPPED_TO_SOFTMAX = Mistake(
    "sigmoid_mode_gives_softmax", TA,
    "sigmoid and softmax swapped: normalise='sigmoid' should give sigmoid(score(h)) per step",
    ("normalise", "softmax"))

# AttentionLSTMClassifier
CLASSIFIER_MASK_NOT_PASSED = Mistake(
    "classifier_mask_not_passed", AC,
    "mask ignored: the classifier does not pass its mask (tokens != 0) on to attention",
    ("mask_mode", "ignored"))
PADDED_STEP = Mistake(
    "reads_padded_step", AC,
    "the classifier reads a padded step: take lstm2's output at each sequence's last real token "
    "(index = number of real tokens - 1), not at position T - 1",
    ("read", "last"))

MISTAKES = Mistakes(FEATURE_AXIS, NO_TANH, PADDING_ATTENDED, NOT_APPLIED, SWAPPED_TO_SIGMOID, SWAPPED_TO_SOFTMAX,
                    CLASSIFIER_MASK_NOT_PASSED, PADDED_STEP)
