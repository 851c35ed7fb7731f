"""The fixture exercise's known mistakes, each declared once (``autograder.mistakes``): its checks raise their
hints, its hidden switch tables are built from them, and ``tests/test_fixture_exercise.py`` makes each with an edit
of the same name."""

from __future__ import annotations

from autograder.mistakes import Mistake, Mistakes

MS, POOL = "masked_softmax", "AttentionPooling"

MASK_IGNORED = Mistake("mask_ignored", MS, "mask ignored: positions where the mask is False must get weight exactly 0",
                       ("masking", "ignored"))
MASK_AFTER = Mistake("mask_after_softmax", MS,
                     "mask applied after the softmax: the masked weights are 0 but the others no longer sum to 1; "
                     "fill the masked scores with -inf before the softmax", ("masking", "after"))
NO_TANH = Mistake("no_tanh", POOL, "no tanh: the scores are score(tanh(proj(x)))", ("tanh", False))
PROJECTED = Mistake("projected_values", POOL, "the weights pool proj(x); the contract pools the inputs x themselves",
                    ("pooled", "projected"))

MISTAKES = Mistakes(MASK_IGNORED, MASK_AFTER, NO_TANH, PROJECTED)
