"""The fixture exercise's hidden checks: values and gradients against the float64 reference, padding, and the
probes (``PROBES``) that say what each part computes.

Imported by the registry once the public module is loaded (``exercises.completed``): its checks join the same ``CheckSet``.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import CheckFailure
from autograder.compare import max_error
from autograder.context import Context, randn, rng
from autograder.kit.common import (
    GradientCase, Reference, as_inputs64, contract_params, deviates, gradient_check, judge,
)
from autograder.mistakes import switch_table
from autograder.stand_ins import StandIn

from . import reference as ref
from .mistakes import MASK_AFTER, MASK_IGNORED, NO_TANH, PROJECTED
from . import (  # the public part: its checks, cases, hints and helpers
    CHECKS, MS, MS_CASES, POOL, POOL_CASE,
    ms_inputs, pool_inputs, pool_param_shapes, run_ms, run_pool,
)

# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference

MS_SWITCHES = switch_table(MASK_IGNORED, MASK_AFTER)
POOL_SWITCHES = switch_table(NO_TANH, PROJECTED)


def _mask(xs: list):
    return xs[1] if len(xs) > 1 else None


def ms_reference(masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.masked_softmax(xs[0], _mask(xs), **kw), MS_SWITCHES if masked else {})


def pool_reference() -> Reference:
    """A composite: judged given what the submission's masked_softmax computes (``parts``)."""
    return Reference(lambda p, xs, **kw: ref.attention_pooling(p, xs[0], _mask(xs), **kw), POOL_SWITCHES,
                     parts=(MS,))


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes (``Context.function``)

def ms_probe(ctx: Context):
    inputs = ms_inputs(9000)
    _, got = run_ms(ctx, inputs, shapes=False)
    return ms_reference(True).identify(got, {}, as_inputs64(inputs))


def pool_probe(ctx: Context):
    inputs = pool_inputs(9001)
    reply, got = run_pool(ctx, inputs, shapes=False, seed=9001)
    reference = pool_reference()
    return reference.identify(got, contract_params(reply, pool_param_shapes(), POOL), as_inputs64(inputs),
                              ctx.base(*reference.parts))


PROBES = {MS: ms_probe, POOL: pool_probe}

# How the grader computes masked_softmax in place of the submission's inside the pooling, when the submission's
# fails its own checks (``autograder.stand_ins``): the pooling is then judged given a right masked_softmax.
STAND_INS = {MS: StandIn(MS, ("scores", "mask"), lambda p, xs, module: [ref.masked_softmax(xs[0], xs[1])],
                         defaults={"mask": None}, within=(POOL,))}


# ---------------------------------------------------------------------------------------------------------
# Values

@CHECKS.check("ms.values", MS, 15, "matches a float64 reference, with and without a mask", kind="values", hidden=True)
def ms_values(ctx: Context) -> None:
    for i, shape in enumerate(MS_CASES):
        for with_mask in (False, True):
            inputs = ms_inputs(100 + i, shape, with_mask)
            _, got = run_ms(ctx, inputs, shapes=False)
            label = f"scores {inputs[0].shape}{' with a mask' if with_mask else ''}"
            judge(ctx, label, got, ms_reference(with_mask), {}, as_inputs64(inputs))


@CHECKS.check("pool.values", POOL, 20, "pooled and weights match a float64 reference", kind="values", hidden=True)
def pool_values(ctx: Context) -> None:
    reference = pool_reference()
    for seed, with_mask in ((200, True), (201, False)):
        inputs = pool_inputs(seed)[: 2 if with_mask else 1]
        reply, got = run_pool(ctx, inputs, shapes=False, seed=seed)
        p = contract_params(reply, pool_param_shapes(), POOL)
        judge(ctx, f"{POOL}({POOL_CASE['D']}){' with a mask' if with_mask else ''}", got, reference, p,
              as_inputs64(inputs))


@CHECKS.check("pool.padding", POOL, 10, "appending masked positions does not change pooled", kind="behaviour",
               hidden=True)
def pool_padding(ctx: Context) -> None:
    """Behaviour: masked positions never count, whatever they hold. A known mistake of masked_softmax is that
    part's to charge, not this one's."""
    x, mask = pool_inputs(300)
    extra = randn(rng(301), x.shape[0], 4, x.shape[2]) * 3.0
    padded = np.concatenate([x, extra], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((x.shape[0], 4), dtype=bool)], axis=1)
    a = run_pool(ctx, [x, mask], seed=300)[1][0]
    b = run_pool(ctx, [padded, padded_mask], seed=300)[1][0]
    err, _ = max_error(a, b)
    if err > 1e-5 and not deviates(ctx.function(MS)):
        function = ctx.function(POOL)
        raise CheckFailure(f"appending 4 masked positions changes pooled by up to {err:.3g}",
                           hint=(function.hint or None) if function is not None else None)


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

@CHECKS.check("ms.gradients", MS, 5, "the gradient of the scores matches float64 autograd", kind="gradients",
               hidden=True)
def ms_gradients(ctx: Context) -> None:
    gradient_check(ctx, GradientCase(MS, MS, ms_reference(True), ms_inputs(400), ("scores", "mask"), seed=400))


@CHECKS.check("pool.gradients", POOL, 5, "every parameter's and x's gradient matches float64 autograd",
               kind="gradients", hidden=True)
def pool_gradients(ctx: Context) -> None:
    c = POOL_CASE
    gradient_check(ctx, GradientCase(POOL, f"{POOL}({c['D']})", pool_reference(), pool_inputs(500), ("x", "mask"),
                                     pool_param_shapes(), init_args=[c["D"]], loss_outputs=(0,), seed=500,
                                     # every parameter's gradient reaches it through masked_softmax
                                     charged_by={"ms.gradients": ("proj.", "score.")}))
