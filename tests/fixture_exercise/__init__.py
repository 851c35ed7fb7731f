"""The tests' fixture exercise: a masked softmax and the attention pooling built from it.

Registered by the tests only (``conftest.py``'s ``fixture_exercise`` fixture, or ``AUTOGRADER_EXERCISE_MODULES``
for a command line a test starts), never by ``autograder.exercises.registry()`` on its own: the engine's tests
grade this exercise, so that changing a course exercise never changes an engine test. It is also the worked
example of ``autograder/exercises/README.md`` ("Adding an exercise"): a package with its contract and public
checks here, its hidden checks and probes in ``hidden.py``, its float64 reference in ``reference.py``, and a
reference solution (``solution.py``) with a flawed sample (``flawed.py``). It trains nothing.

Contract: ``masked_softmax(scores, mask=None)`` -> weights, the softmax over the last axis with the positions
where ``mask`` is False set to exactly 0; ``AttentionPooling(dim)`` with ``proj = nn.Linear(dim, dim)`` and
``score = nn.Linear(dim, 1)``: scores ``score(tanh(proj(x)))``, weights ``masked_softmax(scores, mask)``,
``pooled = sum_t weights[:, t] * x[:, t]``; it returns ``(pooled (B, D), weights (B, T))``.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import CheckFailure, CheckSet
from autograder.compare import require_shape
from autograder.context import Context, outputs, randn, rng
from autograder.contract import Build, Part, check_interface, linear_module, linear_params
from autograder.exercises import Exercise
from autograder.kit.common import random_padding_mask

from .mistakes import MASK_AFTER, MASK_IGNORED, MISTAKES, MS, POOL

PARTS = (MS, POOL)  # the part built from another comes after it
CHECKS = CheckSet(PARTS)

MS_CASES = [(3, 6), (2, 3, 5)]  # scores' shapes: a batch of rows, and an extra leading axis
POOL_CASE = dict(D=5, B=3, T=7)


# ---------------------------------------------------------------------------------------------------------
# masked_softmax

def ms_inputs(seed: int, shape=MS_CASES[0], with_mask: bool = True) -> list:
    gen = rng(seed)
    scores = randn(gen, *shape)
    if not with_mask:
        return [scores]
    rows = int(np.prod(shape[:-1]))
    return [scores, random_padding_mask(gen, rows, shape[-1]).reshape(shape)]


def run_ms(ctx: Context, inputs, shapes: bool = True, **kw):
    """Run the submission's masked_softmax; ``shapes=False`` leaves the shape to the shapes check."""
    reply = ctx.run(MS, inputs=list(inputs), **kw)
    (weights,) = outputs(reply, 1, MS)
    if shapes:
        require_shape(f"weights for scores {inputs[0].shape}", weights, inputs[0].shape)
    return reply, [weights]


MS_CONTRACT = Part(
    MS, "function", ("scores", "mask"), "masked_softmax(scores, mask=None)",
    "scores (..., T), mask (..., T) bool (True = keep)",
    "`weights (..., T)`: the softmax over the last axis, exactly 0 where the mask is False",
)


@CHECKS.check("ms.interface", MS, 5, "is a function taking (scores, mask=None)", kind="interface")
def ms_interface(ctx: Context) -> None:
    check_interface(ctx, MS_CONTRACT)
    run_ms(ctx, ms_inputs(0, with_mask=False))  # callable without a mask


@CHECKS.check("ms.shapes", MS, 10, "weights have the scores' shape, with and without a mask", kind="shapes")
def ms_shapes(ctx: Context) -> None:
    for i, shape in enumerate(MS_CASES):
        for with_mask in (False, True):
            run_ms(ctx, ms_inputs(i, shape, with_mask))


@CHECKS.check("ms.normalised", MS, 10, "weights are 0 where masked and sum to 1 over the kept positions",
               kind="behaviour")
def ms_normalised(ctx: Context) -> None:
    scores, mask = ms_inputs(1)
    _, (w,) = run_ms(ctx, [scores, mask])
    masked = float(np.abs(w[~mask]).max(initial=0))
    if masked > 1e-7:
        raise CheckFailure(f"masked positions get weight up to {masked:.3g}; must be 0", MASK_IGNORED.hint)
    sums = w.sum(-1)
    if (w < -1e-6).any() or not np.allclose(sums, 1.0, atol=1e-5):
        raise CheckFailure(f"the weights of each row sum to {np.round(sums, 4).tolist()}, not 1", MASK_AFTER.hint)


# ---------------------------------------------------------------------------------------------------------
# AttentionPooling: built from masked_softmax

def pool_inputs(seed: int, T: int = POOL_CASE["T"]) -> list:
    c = POOL_CASE
    gen = rng(seed)
    return [randn(gen, c["B"], T, c["D"]), random_padding_mask(gen, c["B"], T)]


def pool_param_shapes(D: int = POOL_CASE["D"]) -> dict:
    return {**linear_params("proj", D, D), **linear_params("score", D, 1)}


def run_pool(ctx: Context, inputs, shapes: bool = True, **kw):
    c = POOL_CASE
    reply = ctx.run(POOL, init_args=[c["D"]], inputs=list(inputs), **kw)
    pooled, weights = outputs(reply, 2, f"{POOL}.forward")
    if shapes:
        x = inputs[0]
        require_shape("pooled", pooled, (x.shape[0], x.shape[2]))
        require_shape("weights", weights, x.shape[:2])
    return reply, [pooled, weights]


POOL_CONTRACT = Part(
    POOL, "class", ("dim",), "AttentionPooling(dim)", "forward(x (B, T, D), mask=None (B, T))",
    "`(pooled (B, D), weights (B, T))`",
    (Build((POOL_CASE["D"],), {}, (linear_module("proj", POOL_CASE["D"], POOL_CASE["D"], "nn.Linear(dim, dim)"),
                                   linear_module("score", POOL_CASE["D"], 1, "nn.Linear(dim, 1)")),
           pool_param_shapes()),),
    notes="weights = `masked_softmax(score(tanh(proj(x))).squeeze(-1), mask)`; pooled = the weighted sum of `x`",
)


@CHECKS.check("pool.interface", POOL, 10, "proj = nn.Linear(dim, dim), score = nn.Linear(dim, 1)", kind="interface")
def pool_interface(ctx: Context) -> None:
    check_interface(ctx, POOL_CONTRACT)


@CHECKS.check("pool.shapes", POOL, 10, "pooled (B, D) and weights (B, T), with and without a mask", kind="shapes")
def pool_shapes(ctx: Context) -> None:
    for T in (POOL_CASE["T"], 4):
        x, mask = pool_inputs(10 + T, T)
        run_pool(ctx, [x])
        run_pool(ctx, [x, mask])


# ---------------------------------------------------------------------------------------------------------

EXERCISE = Exercise(
    name="fixture_exercise",
    title="A masked softmax and the attention pooling built from it (the tests' fixture)",
    number=90,
    parts=PARTS,
    checks=CHECKS,  # the hidden checks join it where hidden.py is installed (the registry)
    solution="tests/fixture_exercise/solution.py",
    demo_sample="tests/fixture_exercise/flawed.py",
    mistakes=tuple(MISTAKES),
    contracts=(MS_CONTRACT, POOL_CONTRACT),
)
