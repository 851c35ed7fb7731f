"""Helpers shared by the exercises' checks: contract checks on a reply, masks and tokens, the gradient check
and the training check.

Neither of the last two trusts a number the submission computes. The gradient check compares the gradient
arrays the child returns with float64 autograd through the exercise's reference, on weights and a loss the
parent drew; the training check scores the weights the child trained with the parent's own forward pass.
Both first find which function the submission computes (the contract's, or the reference with a known
mistake switched on), so that a mistake already charged by a values check is not charged again.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..checks import CheckFailure, CheckSet, Uncomparable, Unverifiable
from ..compare import (
    UNCOMPUTABLE, Variant, as64, close, gradient_problem, identify, largest, matching, max_error, require_close,
    require_shape, variant_grid,
)
from ..context import Context, outputs, randn, rng, stream_rng
from ..kinks import KinkMargin
from ..param_map import ParamMap, map_params, plain_name
from ..requests import Train
from ..tasks import Metric
from ..exercises import TrainingProfile

def contract_params(reply, required: dict[str, tuple], what: str) -> dict[str, torch.Tensor]:
    """A reply's parameters as float64 (after ``Context.run``: the parent's drawn weights), mapped onto the
    contract's names (``map_params``) where that is unambiguous. A contract name that cannot be mapped is left
    out: a reference that needs it raises KeyError, which ``judge`` reports; the interface check charges the
    naming itself. Entries the submission filled from another's tensor are left out and named in ``shared``: a
    reference that cannot be computed without them raises ``Unverifiable`` (``refuse_shared``)."""
    return mapped_params(map_params(reply.params, reply.modules, required), reply.params, required, reply.buffers)


def mapped_params(mapping: ParamMap, submitted: dict, required: dict, buffers=()) -> "ContractParams":
    """A mapping's values as float64 ``ContractParams``, with what could not be placed and what is left over (of
    the submission's parameters: ``buffers`` are not)."""
    buffers = set(buffers) if isinstance(buffers, (list, tuple, set)) else set()
    used = {piece.name for pieces in mapping.sources.values() for piece in pieces}
    return ContractParams({name: as64(value) for name, value in mapping.values.items()}, shared=mapping.shared,
                          unplaced={name: tuple(required[name]) for name in mapping.unmapped},
                          leftover={name: tuple(np.shape(value)) for name, value in submitted.items()
                                    if name not in used and plain_name(name) and name not in buffers})


class ContractParams(dict):
    """The contract's names -> float64 tensors; ``shared``: contract names the child declared to be another's
    tensor (``param_map``), which the grader does not take on its word; ``unplaced``: the contract's entries that
    could not be mapped, and ``leftover``: the submission's entries nothing was mapped from (name -> shape)."""

    def __init__(self, values: dict, shared: dict | None = None, unplaced: dict | None = None,
                 leftover: dict | None = None):
        super().__init__(values)
        self.shared = dict(shared or {})
        self.unplaced = dict(unplaced or {})
        self.leftover = dict(leftover or {})


MAX_NAMED_ENTRIES = 4  # entries a message names, of those that could not be placed and those left over


def unplaced_note(params: dict) -> str:
    """Which contract entries could not be placed, with their shapes, and the submission's entries left over:
    ``": the contract's fc1.weight (2, 8, 1, 1) could not be placed (left over in your code: mlp.0.weight (3, 8))"``;
    "" when ``params`` does not know (a plain dict)."""
    unplaced, leftover = getattr(params, "unplaced", {}), getattr(params, "leftover", {})
    if not unplaced:
        return ""

    def named(entries: dict) -> str:
        shown = [f"{name if len(name) <= 80 else name[:77] + '...'} {shape}"
                 for name, shape in list(entries.items())[:MAX_NAMED_ENTRIES]]
        more = len(entries) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    rest = f" (left over in your code: {named(leftover)})" if leftover else " (nothing in your code is left over)"
    return f": the contract's {named(unplaced)} could not be placed{rest}"


def refuse_shared(params: dict, what: str = "") -> None:
    """Raise ``Unverifiable`` when ``params`` lack an entry because the child declared it another's tensor."""
    shared = getattr(params, "shared", None)
    if shared:
        name, other = next(iter(shared.items()))
        raise Unverifiable(f"{what + ': ' if what else ''}cannot be compared with the reference: your {name} is your "
                           f"{other} (one module registered under both names), but the contract keeps them as two "
                           "layers with weights of their own")


def random_padding_mask(gen, batch: int, length: int) -> np.ndarray:
    """(batch, length) bool, True = real; every row has at least one padded position and two real ones (where
    length allows): with one real token the attention weights are one-hot, and even the reference's query and
    key gradients vanish, so no draw may leave every row there."""
    lengths = gen.integers(min(2, length - 1), length, size=batch)
    return np.arange(length)[None, :] < lengths[:, None]


def random_mask(gen, *shape) -> np.ndarray:
    """Random bool mask whose every row (last axis) has at least one True and one False."""
    m = gen.random(shape) < 0.5
    idx = np.indices(shape[:-1])
    first = gen.integers(0, shape[-1], size=shape[:-1])
    second = (first + 1 + gen.integers(0, shape[-1] - 1, size=shape[:-1])) % shape[-1]
    m[(*idx, first)] = True
    m[(*idx, second)] = False
    return m


def random_tokens(seed, B, T, vocab, lengths=True):
    """(B, T) token ids in 1..vocab-1, post-padded with 0 when ``lengths``; id 1 (the out-of-vocabulary id)
    always occurs, so that a check on it (an embedding's padding_idx) does not depend on the draw."""
    gen = rng(seed)
    tokens = gen.integers(1, vocab, size=(B, T)).astype(np.int64)
    tokens[0, 0] = 1
    if lengths:
        tokens[~random_padding_mask(gen, B, T)] = 0
    return tokens


# ---------------------------------------------------------------------------------------------------------
# References as the gradient and training checks use them

Compute = Callable[..., list]  # compute(params, inputs, **switches) -> the float64 outputs (a list of tensors)


def same_shapes(got: list, reference: list) -> list[int]:
    """The indices of the outputs whose shapes are the reference's (shape first: the others are the shapes
    check's to charge)."""
    return [i for i, (g, e) in enumerate(zip(got, reference)) if np.shape(g) == tuple(np.shape(e))]


def pick(outputs: list, indices: list[int]) -> list:
    return [outputs[i] for i in indices]


@dataclass(frozen=True)
class Reference:
    """A float64 function of a parameter dict and the inputs, with its part's own known mistakes as switches.

    ``switches`` are as ``compare.variant_grid`` takes them: a keyword of ``compute`` -> [(wrong value, hint)].
    ``parts`` are the exercise's parts this one is built from (its sub-modules, or functions it calls): what
    they compute (``Context.function``) is switched on as the base of every comparison, so that a mistake of
    a part is charged by that part's checks only.
    """

    compute: Compute
    switches: dict = field(default_factory=dict)
    max_mistakes: int = 2
    parts: tuple[str, ...] = ()
    nan_causes: str = ""  # what NaN or inf where the reference has none most likely comes from (``require_close``)

    def outputs(self, params: dict, inputs: list, **switches) -> list[torch.Tensor]:
        result = self.compute(params, inputs, **switches)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def candidates(self, params: dict, inputs: list, base: dict | None = None,
                   select: tuple[int, ...] | None = None) -> tuple[list | None, list[Variant]]:
        """The contract's outputs (None when a parameter it needs is missing) and every other function the
        submission may compute: the contract with its parts' behaviour (``base``), and this part's own
        mistakes on top of either."""
        def pick(outs):
            return outs if select is None else [outs[i] for i in select]

        def compute(**kw):
            return pick(self.outputs(params, inputs, **kw))

        with torch.no_grad():
            try:
                expected = compute()
            except UNCOMPUTABLE:
                expected = None
            variants = []
            if base:
                try:
                    variants.append(Variant(hint="", outputs=compute(**base), mistakes=0, switches=dict(base)))
                except UNCOMPUTABLE:
                    pass
                variants += variant_grid(compute, self.switches, self.max_mistakes, base)
            variants += variant_grid(compute, self.switches, self.max_mistakes)
        return expected, variants

    def identify(self, got: list, params: dict, inputs: list, base: dict | None = None) -> Variant | None:
        """The function ``got`` comes from: the contract, its parts' behaviour, a known mistake of its own, or
        None (neither); see ``compare.identify``. When no function gives every output, the outputs of another shape
        than the reference's are left out (the shapes check charges those). Raises ``Uncomparable`` when no
        function can be computed with ``params`` at all."""
        expected, variants = self.candidates(params, inputs, base)
        found = identify(got, expected, variants)  # every output: a mistake may change a shape (no out_proj)
        if found is not None:
            return found
        shapes = expected if expected is not None else next((v.outputs for v in variants), None)
        if shapes is None:
            refuse_shared(params)
            raise Uncomparable("cannot be compared with the reference, which needs parameters your code does not "
                               f"have under the contract's names (see the interface check){unplaced_note(params)}")
        keep = same_shapes(got, shapes)
        if not keep:  # shape first: what no output can show, the shapes check charges
            return None
        return identify(pick(got, keep), pick(expected, keep) if expected is not None else None,
                        [Variant(v.hint, pick(v.outputs, keep), v.mistakes, v.switches) for v in variants])


def judge(ctx: Context, label: str, got: list, reference: Reference, params: dict, inputs: list,
          select: tuple[int, ...] | None = None) -> None:
    """A values check's verdict: pass when ``got`` is the contract's function, or the contract's with the parts
    it is built from (``reference.parts``) computing what they compute (their own checks charge their mistakes:
    ``ctx.base``); else fail and name the part's own known mistakes that match. Outputs of another shape than the
    reference's are the shapes check's to charge: the values of the others are still compared. Where a part it is
    built from computes no known function (``ctx.unknown``), no reference can stand in for it, and its effect here
    may fall either side of the tolerance depending on the draw, so the check fails on every draw and says why.
    Both come from ``ctx``: no check can forget them.
    """
    stood = dict(ctx.stood_in)  # the run that gave ``got`` (before a probe below runs anything)
    parts = tuple(part for part in reference.parts if part not in stood)
    base, unknown = ctx.base(*parts), ctx.unknown(*parts)
    if unknown:  # its effect here may fall either side of the tolerance, depending on the draw: never compared
        raise CheckFailure(f"{label}: cannot be judged on its own logic while your {', '.join(unknown)} computes "
                           "neither the contract nor a known mistake (see its values check), and the grader could "
                           f"not compute the contract's {', '.join(unknown)} in its place{_not_stood(ctx, unknown)}; "
                           "it is judged once that part is right")
    expected, variants = reference.candidates(params, inputs, base, select)
    inherited = [v for v in variants if v.mistakes == 0]
    target = inherited[0].outputs if inherited else expected
    if target is None:
        hints = list(dict.fromkeys(v.hint for v in matching(got, variants)))
        if hints:
            raise CheckFailure(f"{label}: computes a known mistake, not the contract's function (which needs "
                               "parameters your code does not have, see the interface check)", hint=" | or: ".join(hints))
        refuse_shared(params, label)
        raise CheckFailure(f"{label}: cannot be compared with the reference, which needs parameters your code does "
                           f"not have under the contract's names (see the interface check){unplaced_note(params)}")
    keep = same_shapes(got, target)
    if not keep:
        shapes = ", ".join(str(np.shape(g)) for g in got)
        raise CheckFailure(f"{label}: cannot compare values: no output has the reference's shape (got {shapes}; "
                           f"expected {', '.join(str(tuple(e.shape)) for e in target)})")

    mine = pick(got, keep)
    for outs in ([expected] if expected is not None else []) + [v.outputs for v in inherited]:
        if all(np.shape(g) == tuple(o.shape) and close(g, o) for g, o in zip(mine, pick(outs, keep))):
            _contradicts_probe(ctx, reference, params, inputs, select, keep, pick(outs, keep))
            return
    others = [Variant(v.hint, pick(v.outputs, keep), v.mistakes, v.switches) for v in variants if v.mistakes > 0]
    context = f" (the reference given what your {', '.join(parts)} compute)" if inherited and parts else ""
    if stood:
        context += (f" (with the grader's own {', '.join(stood)} in place of yours, which fail"
                    f"{'s' if len(stood) == 1 else ''} its own checks)")
    require_close(label, mine, pick(target, keep), others, context, reference.nan_causes)


def _not_stood(ctx: Context, parts: list[str]) -> str:
    """Why the grader did not stand in for ``parts`` in the check running now, where it was declared to."""
    check = getattr(ctx, "check", None)
    declared = [p for p in parts if check is not None and check.part in getattr(ctx.stand_ins.get(p), "within", ())]
    if not declared:
        return ""
    return (f" (it can where this code calls your {', '.join(declared)} as a sub-module, or a function by its name, "
            "with the weights under the contract's names)")


def _contradicts_probe(ctx: Context, reference: Reference, params: dict, inputs: list, select, keep: list[int],
                       matched: list) -> None:
    """In a values check the part passed: when its probe saw one of the part's own known mistakes, and that
    mistake shows on these inputs (it does not always: a mask mistake on inputs without a mask), the part
    answered the probe otherwise than this check. ``Context.disagreeing`` then fails the check."""
    check = getattr(ctx, "check", None)  # a context of the tests' may run no check
    if check is None or check.kind != "values":
        return
    found = ctx.function(check.part)
    if found is None or found.mistakes == 0:
        return
    try:
        outs = reference.outputs(params, inputs, **found.switches)
    except (*UNCOMPUTABLE, TypeError):  # the probe's switches are not this reference's: nothing to compare
        return
    outs = pick(outs if select is None else [outs[i] for i in select], keep)
    if not all(np.shape(o) == np.shape(m) and close(np.asarray(m), o) for o, m in zip(outs, matched)):
        ctx.contradicted.setdefault(check.part, found)


def require_rows_sum_to_one(what: str, w: np.ndarray, hint: str | None = None, over: str = "the keys") -> None:
    """Weights >= 0 that sum to 1 over their last axis (``over`` names it in the message)."""
    if not np.isfinite(w).all() or (w < -1e-6).any():
        raise CheckFailure(f"{what}: weights range down to {np.nanmin(w):.3g} (or are not finite); a softmax gives "
                           "weights >= 0")
    rows = w.sum(-1)
    if not np.allclose(rows, 1.0, atol=1e-4):
        i = np.unravel_index(np.abs(rows - 1).argmax(), rows.shape)
        raise CheckFailure(f"{what}: weights do not sum to 1 over {over} (the last axis): e.g. at index "
                           f"{tuple(int(j) for j in i)} they sum to {rows[i]:.4g}", hint=hint)


def compare(ctx: Context, part: str, reference: Reference, args: list | None, kwargs: dict, inputs: list,
            shapes: dict, count: int, what: str, seed: int, call_kwargs: dict | None = None, method: str = "",
            select: tuple[int, ...] | None = None) -> None:
    """Judge ``part`` built with ``args``, ``kwargs`` (``args`` None: a function) and called on ``inputs`` (its
    ``method``, if named) with the grader's weights, given what the parts it is built from compute."""
    reply = ctx.run(part, init_args=args, init_kwargs=kwargs, inputs=list(inputs), seed=seed,
                    call_kwargs=call_kwargs or {}, method=method, contract=shapes if args is not None else None)
    got = outputs(reply, count, what)
    p = contract_params(reply, shapes, part) if args is not None else {}
    if select is not None:
        got = [got[i] for i in select]
    judge(ctx, what, got, reference, p, as_inputs64(inputs), select=select)


def deviates(function) -> bool:
    """Whether a part's identified function (``Context.function``) is a known mistake: a behaviour check of a
    part built from it cannot tell its own logic apart, and the mistake is charged by that part's own checks."""
    return function is not None and bool(function.switches)


def as_inputs64(inputs: list) -> list:
    """The inputs as the references take them: floating arrays in float64, the rest (tokens, masks) as tensors."""
    return [as64(x) if np.asarray(x).dtype.kind == "f" else torch.as_tensor(np.asarray(x)) for x in inputs]


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value

@dataclass(frozen=True)
class GradientCase:
    """One gradient check: what the submission runs, and the reference its gradients must match.

    The parent draws the weights (as for values) and a projection W_i of each output in ``loss_outputs``;
    the child back-propagates sum_i (output_i * W_i).sum() and returns every gradient array, which is compared
    with float64 autograd through ``reference`` on the same weights, inputs and loss.
    """

    target: str
    what: str  # how messages name the part, e.g. "MultiHeadAttention(12, 3)"
    reference: Reference
    inputs: list  # numpy arrays; the floating ones get gradients
    input_names: tuple[str, ...]
    contract: dict = field(default_factory=dict)  # parameter name -> shape ({} for a function)
    init_args: list | None = None  # None: ``target`` is a function
    init_kwargs: dict = field(default_factory=dict)
    call_kwargs: dict = field(default_factory=dict)
    loss_outputs: tuple[int, ...] | None = None  # the outputs in the loss (None: all)
    seed: int = 0
    # check name -> the parameter prefixes it judges: when that check (a part's own gradient check) failed in
    # this grading, gradients under those prefixes and of the inputs are its to charge, not this check's.
    charged_by: dict[str, tuple[str, ...]] = field(default_factory=dict)


# How close the reference may pass to a kink (a ReLU's zero, a maximum's tie), relative to the operands'
# magnitude: about 30 times float32's relative rounding through a few layers (3e-7 to 4e-7 measured), within
# which the submission may rightly take the other branch. Weights are drawn again until the draw keeps that far.
KINK_MARGIN = 1e-5
KINK_DRAWS = 8  # the draws tried; past them, the one farthest from a kink is used
KINK_SEED_STRIDE = 104_729  # between the seeds of successive draws


def gradient_check(ctx: Context, case: GradientCase) -> None:
    """Fail unless the submission's gradients are those of the function its outputs compute, by value."""
    state, params, mapping, candidates = None, {}, None, None
    inputs = as_inputs64(case.inputs)
    base = ctx.base(*case.reference.parts)
    if case.init_args is not None:
        state, params, mapping, candidates = weights_away_from_kinks(ctx, case, inputs, base)
    weights = loss_weights(case, params, inputs, base, candidates)
    reply = ctx.run(case.target, init_args=case.init_args, init_kwargs=case.init_kwargs, inputs=list(case.inputs),
                    call_kwargs=case.call_kwargs, state=state, seed=case.seed, mode="train", loss_weights=weights,
                    contract=case.contract or None)
    stood = ctx.stood_in_prefixes
    got = outputs(reply, len(weights), case.what)
    function = differentiated_function(ctx, case, got, params, inputs, weights, reply.modules)
    weights = [w if w is not None and np.shape(g) == np.shape(w) else None for g, w in zip(got, weights)]
    try:
        problems = gradient_problems(case, reply, params, inputs, weights, function.switches, mapping)
    except UNCOMPUTABLE:
        raise CheckFailure(f"{case.what}: the gradients cannot be checked: the reference needs parameters your code "
                           "does not have under the contract's names and sizes (see the interface check)"
                           f"{unplaced_note(params)}") from None
    charged = [prefixes for check, prefixes in case.charged_by.items() if ctx.failed(check)]
    problems = [message for name, message in problems
                if not any(name.startswith(prefixes) or name.startswith("the input") for prefixes in charged)
                and not name.startswith(tuple(f"{prefix}." for prefix in stood))]  # the grader's own part's
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise CheckFailure(f"{case.what}: " + "; ".join(problems[:3]) + more)


def weights_away_from_kinks(ctx: Context, case: GradientCase, inputs: list, base: dict) -> tuple:
    """(state, float64 params, mapping, the reference's candidates on them, or None) of the first draw whose reference and known mistakes all keep
    ``KINK_MARGIN`` from every kink on these inputs (``kinks.KinkMargin``): there, float32 rounding cannot
    send the submission down another branch than the reference's, so the verdict does not depend on the draw."""
    meta = ctx.metadata(case.target, case.init_args, case.init_kwargs)
    best = None
    for attempt in range(KINK_DRAWS):
        drawn = ctx.draw(case.target, case.init_args, case.init_kwargs, case.seed + attempt * KINK_SEED_STRIDE)
        mapping = map_params(drawn.params, meta.modules, case.contract)
        params = mapped_params(mapping, drawn.params, case.contract, meta.buffers)
        candidates = None
        with KinkMargin() as kinks:
            try:
                candidates = case.reference.candidates(params, inputs, base)
            except UNCOMPUTABLE:
                pass  # the gradient check says why, on every draw
        # far enough; or the kink is the inputs', whatever the weights
        if kinks.margin >= KINK_MARGIN or (best is not None and kinks.margin == best[0]):
            return drawn.state, params, mapping, candidates
        if best is None or kinks.margin > best[0]:
            best = (kinks.margin, (drawn.state, params, mapping, candidates))
    return best[1]


def loss_weights(case: GradientCase, params: dict, inputs: list, base: dict,
                 candidates: tuple | None = None) -> list[np.ndarray | None]:
    """The projection of each output in the loss (None for the others), drawn here in the reference's shapes
    (``candidates``: ``case.reference.candidates`` on these, where already computed)."""
    expected, variants = candidates if candidates is not None else case.reference.candidates(params, inputs, base)
    computed = expected if expected is not None else next((v.outputs for v in variants), None)
    if computed is None:
        raise CheckFailure(f"{case.what}: the gradients cannot be checked: the reference needs parameters your code "
                           f"does not have under the contract's names (see the interface check){unplaced_note(params)}")
    gen = stream_rng("gradients", case.seed)
    used = range(len(computed)) if case.loss_outputs is None else case.loss_outputs
    return [randn(gen, *e.shape) if i in used else None for i, e in enumerate(computed)]


def differentiated_function(ctx: Context, case: GradientCase, got: list, params: dict, inputs: list,
                            weights: list, modules: dict | None = None) -> Variant:
    """The function whose gradients the submission's must be: the one its outputs compute (the contract, its
    parts' behaviour or a known mistake, so that a mistake is charged by the values checks only). Outputs of
    another shape are left out (the child left them out of the loss too). Fails when there is none."""
    keep = [i for i, (g, w) in enumerate(zip(got, weights)) if w is None or np.shape(g) == np.shape(w)]
    if not any(weights[i] is not None for i in keep):
        raise CheckFailure(f"{case.what}: the gradients cannot be checked: no output in the loss has the reference's "
                           "shape (see the shapes check)")
    stood = dict(ctx.stood_in)
    unknown = [part for part in ctx.unknown(*case.reference.parts) if part not in stood]
    if unknown:  # as in ``judge``: no function to differentiate, on every draw
        raise CheckFailure(f"{case.what}: the gradients cannot be checked while your {', '.join(unknown)} computes "
                           "neither the contract nor a known mistake (see its values check)")
    base = ctx.base(*case.reference.parts)
    expected, variants = case.reference.candidates(params, inputs, base, tuple(keep))
    function = identify([got[i] for i in keep], expected, variants)
    if function is None:
        raise CheckFailure(f"{case.what}: the gradients cannot be checked: the outputs of this run (training mode, "
                           "with the grader's weights) match neither the reference nor a known mistake, so there is no "
                           "function to differentiate; fix the values first, or, if they pass, look for what training "
                           f"mode changes ({training_mode_suspect(modules)})")
    return function


BATCH_STATISTICS = re.compile(r"(Lazy)?BatchNorm[123]d|SyncBatchNorm")


def training_mode_suspect(modules) -> str:
    """What most likely changes a submission's outputs in training mode, from its module types (the child's
    description: only names matching ``BATCH_STATISTICS`` are repeated)."""
    types = modules.values() if isinstance(modules, dict) else ()
    norms = sorted({m["type"] for m in types if isinstance(m, dict) and isinstance(m.get("type"), str)
                    and BATCH_STATISTICS.fullmatch(m["type"])})
    if norms:
        return (f"your {', '.join(norms[:3])} normalises by each batch's own statistics in training mode, not by its "
                "running ones as in eval mode, where the values were checked")
    return "dropout applied although dropout=0 was asked for?"


def reference_gradients(reference: Reference, params: dict, inputs: list, weights: list,
                        switches: dict) -> tuple[dict, list]:
    """float64 autograd of sum_i (output_i * weights_i).sum(): gradients of the parameters and of the floating
    inputs (None where the function does not use them, and for inputs that are not floating)."""
    leaves = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    xs = [x.detach().clone().requires_grad_(True) if x.is_floating_point() else x for x in inputs]
    outs = reference.outputs(leaves, xs, **switches)
    loss = sum((o * as64(w)).sum() for o, w in zip(outs, weights) if w is not None)
    targets = list(leaves.values()) + [x for x in xs if x.requires_grad]
    grads = list(torch.autograd.grad(loss, targets, allow_unused=True))
    param_grads = dict(zip(leaves, grads[: len(leaves)]))
    rest = iter(grads[len(leaves):])
    input_grads = [next(rest) if x.requires_grad else None for x in xs]
    return param_grads, input_grads


def gradient_problems(case: GradientCase, reply, params: dict, inputs: list, weights: list,
                      switches: dict, mapping: ParamMap | None = None) -> list[tuple[str, str]]:
    """(name, message) for each parameter or input whose gradient is missing or wrong. ``mapping`` says where
    each contract entry is in the submission (``param_map``); a zero standing in for a missing bias is not
    judged."""
    ref_params, ref_inputs = reference_gradients(case.reference, params, inputs, weights, switches)
    scale = largest(list(ref_params.values()) + ref_inputs)
    got_inputs = list(reply.input_grads) + [None] * (len(inputs) - len(reply.input_grads))
    judged = [name for name in ref_params if mapping is None or mapping.sources.get(name)]
    problems = [(name, gradient_problem(name, mapping.take(name, reply.param_grads) if mapping is not None
                                        else reply.param_grads.get(name), ref_params[name], scale))
                for name in judged]
    problems += [(f"the input {name}", gradient_problem(f"the input {name}", got, expected, scale))
                 for name, x, got, expected in zip(case.input_names, inputs, got_inputs, ref_inputs)
                 if x.is_floating_point()]
    problems = [(name, p) for name, p in problems if p]
    return sorted(problems, key=lambda p: not p[1].startswith("no gradient"))  # missing gradients first


# ---------------------------------------------------------------------------------------------------------
# Training: the child trains, the parent scores the trained weights with its own forward

@functools.lru_cache(maxsize=2)
@dataclass(frozen=True)
class Trainable:
    """The part an exercise's training check trains, as the grader scores it (built beside the reference, in
    the exercise's ``hidden`` module): its contract and its reference forward, whose outputs the task's metric scores."""

    target: str
    contract: Callable[[dict], dict]  # constructor kwargs -> parameter names and shapes
    reference: Callable[[dict], Reference]  # constructor kwargs -> outputs = compute(params, inputs, **switches)
    # What scores the trained weights on the held-out inputs, where that is not ``reference``'s forward (a model
    # trained with teacher forcing and scored on its own autoregressive predictions); it takes the same switches.
    scorer: Callable[[dict], Reference] | None = None

    def scoring(self, init_kwargs: dict) -> Reference:
        return (self.scorer or self.reference)(init_kwargs)


@dataclass
class TrainingResult:
    """What a training run gave; ``ctx.artifacts["training"]`` holds it as a dict for the report and plots."""

    profile: str
    target: str  # the part trained
    metric: str  # what ``value`` is: "test accuracy", "test mean squared error"
    value: float  # of the trained weights on the held-out split, under the parent's own forward
    threshold: float
    higher_is_better: bool
    seconds: float  # measured by the parent
    scored_with: str  # "the contract" or the hint of the known mistake whose forward scored the weights
    loss: str = ""  # the training curve's axis, e.g. "cross-entropy loss"
    epoch_losses: list[float] = field(default_factory=list)  # as reported by the submission: shown, never judged
    step_losses: list[float] = field(default_factory=list)  # as reported by the submission
    forbidden: list[str] = field(default_factory=list)
    baseline: str = ""  # the task's baseline the weights must also beat (``TrainingTask.baseline``), if any
    baseline_value: float | None = None  # its metric on the same held-out examples


IDENTIFY_BATCH = 8  # examples in the values request that finds the function the trained part computes
SCORE_BATCH = 512  # examples per batch of the parent's forward over the held-out data


def identify_trained(ctx: Context, trainable: Trainable, init_kwargs: dict, seed: int, profile=None) -> Variant:
    """Which forward scores the trained weights: a values request with drawn weights, compared with the
    reference and its known mistakes. Fails when neither matches: then nothing can score the weights."""
    inputs = ctx.task.probes(seed, init_kwargs, IDENTIFY_BATCH, profile or ctx.profile)
    reply = ctx.run(trainable.target, init_args=[], init_kwargs=init_kwargs, inputs=inputs, seed=seed)
    got = outputs(reply, 1, f"{trainable.target}.forward")
    params = contract_params(reply, trainable.contract(init_kwargs), trainable.target)
    reference = trainable.reference(init_kwargs)
    function = reference.identify(got, params, as_inputs64(inputs), ctx.base(*reference.parts))
    if function is None:
        raise CheckFailure(
            f"cannot be verified: your {trainable.target}'s outputs match neither the contract nor a known mistake, "
            "so the grader cannot score its trained weights with a forward of its own; fix its values first")
    return function


def score(reference: Reference, params: dict, switches: dict, inputs: list[np.ndarray], targets: np.ndarray,
          metric: Metric) -> float:
    """``metric`` of ``params`` on (inputs, targets) under the reference's forward (float64, in batches, here in
    the parent): the mean over the examples."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(targets), SCORE_BATCH):
            batch = [torch.from_numpy(np.ascontiguousarray(x[i : i + SCORE_BATCH])) for x in inputs]
            batch = [x.double() if x.is_floating_point() else x for x in batch]
            (out,) = reference.outputs(params, batch, **switches)
            total += metric.total(out.numpy(), targets[i : i + SCORE_BATCH])
    return total / len(targets)


def trained_params(state: dict, modules: dict, required: dict, target: str) -> dict[str, torch.Tensor]:
    """The trained weights the child returned, checked: mapped onto the contract's names, finite values."""
    params = {name: as64(value) for name, value in map_params(state, modules, required).values.items()}
    bad = [name for name, value in params.items() if not torch.isfinite(value).all()]
    if bad:
        raise CheckFailure(f"the trained weights {', '.join(bad[:3])} contain NaN or inf (training diverged?)")
    return params


def hidden_trainable(exercise_name: str, part: str | None = None) -> Trainable:
    """The ``Trainable`` of an exercise (of its trained ``part``, where it trains several: ``TRAINABLES``), from
    its hidden module (the grader's install only)."""
    import importlib

    hidden = importlib.import_module(f"autograder.exercises.{exercise_name}.hidden")
    if part is None:
        return hidden.TRAINABLE
    trainables = getattr(hidden, "TRAINABLES", {hidden.TRAINABLE.target: hidden.TRAINABLE})
    if part not in trainables:
        raise KeyError(f"{exercise_name} trains {', '.join(trainables)}, not {part!r}")
    return trainables[part]


def train_and_score(ctx: Context, trainable: Trainable, init_kwargs: dict, profile: TrainingProfile,
                    seed: int | None = None) -> TrainingResult:
    """Find the forward, train in the runner on the training split only, score the weights here.

    The held-out examples and their targets never leave this process.
    """
    seed = profile.seed if seed is None else seed
    task = ctx.task
    function = identify_trained(ctx, trainable, init_kwargs, seed, profile)
    data = task.load(profile)
    start = time.perf_counter()
    reply = ctx.request(Train(target=trainable.target, init_kwargs=init_kwargs, inputs=list(data.train_inputs),
                              targets=data.train_targets, loss=task.loss, epochs=profile.epochs,
                              batch_size=profile.batch_size, lr=profile.lr, seed=seed, device=ctx.device,
                              schedule=profile.schedule))
    seconds = time.perf_counter() - start
    metric = task.scoring
    result = TrainingResult(profile=profile.name, target=trainable.target, metric=metric.name, value=float("nan"),
                            threshold=profile.threshold, higher_is_better=metric.higher_is_better, seconds=seconds,
                            scored_with=function.hint or "the contract", loss=metric.loss_label,
                            epoch_losses=_floats(reply.epoch_losses, profile.epochs),
                            step_losses=_floats(reply.step_losses), forbidden=list(reply.forbidden))
    built = ctx.metadata(trainable.target, [], init_kwargs)
    wrong = _same_structure(reply.state, built.params)
    if wrong:  # the parent scores only weights of the model the child built (not, say, a model 32 times wider)
        raise CheckFailure(f"the trained weights are not those of the {trainable.target} your code builds: {wrong}")
    params = trained_params(reply.state, built.modules, trainable.contract(init_kwargs), trainable.target)
    try:
        result.value = score(trainable.scoring(init_kwargs), params, function.switches, data.test_inputs,
                             data.test_targets, metric)
    except UNCOMPUTABLE:
        raise CheckFailure(f"the trained {trainable.target} lacks parameters under the contract's names and sizes, "
                           "so the grader cannot score it with its own forward (see the interface check)") from None
    if task.baseline is not None:
        result.baseline, result.baseline_value = task.baseline(data)
    record = dataclasses.asdict(result)
    ctx.artifacts.setdefault("trainings", {})[trainable.target] = record  # every trained part's, for the report
    if ctx.artifacts.get("training", record)["target"] == trainable.target:
        ctx.artifacts["training"] = record  # the first trained part's: the demo's training curves
    return result


MAX_REPORTED_LOSSES = 10_000  # losses the child reports, kept for the report and the plots


def _floats(values, limit: int = MAX_REPORTED_LOSSES) -> list[float]:
    """Numbers the submission reported (for display only), at most ``limit``; anything else becomes NaN."""

    def one(v) -> float:
        try:
            return float(v) if isinstance(v, (int, float)) else float("nan")
        except OverflowError:  # an integer too large for a float
            return float("nan")

    return [one(v) for v in list(values)[:limit]] if isinstance(values, list) else []


def _same_structure(state: dict, built: dict) -> str | None:
    """Why the trained ``state`` is not the state of the model the child described (``built``), or None."""
    if not isinstance(state, dict):
        return "they are not a state"
    extra = [k for k in state if k not in built]
    if extra:
        return f"entry {extra[0]!r} is not one of the model's"
    for name, value in state.items():
        if tuple(np.shape(value)) != tuple(np.shape(built[name])):
            return f"entry {name!r} has shape {tuple(np.shape(value))}, the model's {tuple(np.shape(built[name]))}"
    return None


def training_check(ctx: Context, trainable: Trainable, init_kwargs: dict,
                   profile: TrainingProfile | None = None) -> None:
    """Train with the device's profile (``profile``: this part's, where the exercise trains several) and require
    the metric's threshold calibrated from the reference."""
    profile = profile or ctx.profile
    result = train_and_score(ctx, trainable, init_kwargs, profile)
    metric = ctx.task.scoring
    if not metric.passes(result.value, profile.threshold):
        mistake = result.scored_with != "the contract"
        scored = f" (scored with your known mistake: {result.scored_with})" if mistake else ""
        raise CheckFailure(
            f"{metric.name} {result.value:.4f} of the trained weights{scored} after the {profile.name} training "
            f"profile ({profile.epochs} epochs, seed {profile.seed}) is {metric.short_of} the threshold "
            f"{profile.threshold:.4g} calibrated from the reference; the loss your training run reported per epoch: "
            f"{[round(x, 4) for x in result.epoch_losses]}"
        )
    if result.baseline and not metric.passes(result.value, result.baseline_value):
        raise CheckFailure(
            f"{metric.name} {result.value:.4f} of the trained weights after the {profile.name} training profile is "
            f"not better than the {result.baseline} baseline's {result.baseline_value:.4f} on the same held-out "
            f"{ctx.task.examples}")
