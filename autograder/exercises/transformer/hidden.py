"""Hidden checks of the transformer exercise: values and gradients against the float64 reference, masks,
padding, training.

Left out of the student install (``tools/build_student_wheel.py``), together with the reference they use.
Each part's own known mistakes are one switch table (``*_switches``), used alike by its values checks (to name
a mistake), its gradient check and the training check (to differentiate or score the function the submission
actually computes). A part built from others (``Reference.parts``) is judged on its own logic: what its parts
compute, found by their probes (``PROBES``, ``Context.function``), is the base of its comparisons.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import CheckFailure
from ...compare import as64, close, max_error
from ...context import Context, outputs, randn, rng
from . import reference as ref
from ...kit.common import (
    Trainable, GradientCase, Reference, as_inputs64, contract_params, deviates, gradient_check, judge,
    random_mask, random_padding_mask, random_tokens, training_check,
)
from ...kit.blocks import MASKED_ROW_NAN
from ...kit.blocks import (
    MASK_IGNORED_MISTAKE, MASK_INVERTED_MISTAKE, NO_SCALING, SCALED_BY_D, SOFTMAX_WRONG_AXIS, block_switches,
    mha_switches,
)
from ...kit.blocks import heads_of
from ...stand_ins import StandIn
from ...mistakes import switch_table
from . import (  # the public part: its checks, cases and helpers
    CHECKS, BLOCK, BLOCK_CASE, CLF, CLF_CASE, EMBED, EMBED_CASE, MHA, MHA_CASES, SDPA, SDPA_CASES, block_init,
    block_inputs, block_param_shapes, clf_case, clf_init, clf_param_shapes, embed_init, mha_init, mha_inputs,
    mha_param_shapes, run_sdpa, sdpa_inputs, training_kwargs,
)
from .mistakes import (
    CLF_MASK_NOT_PASSED, NO_POSITION_EMBEDDING, PADDING_IN_MEAN, SCALE_BY_VALUE_DIM, SCALED_TOKEN_EMBEDDING,
    SINUSOIDAL_POSITIONS,
)



# ---------------------------------------------------------------------------------------------------------
# The known mistakes of each part, as switches of the reference (scales by name: ``ref.SCALES``)

def sdpa_switches(d: int, dv: int, masked: bool) -> dict:
    return switch_table(NO_SCALING, SCALED_BY_D, *((SCALE_BY_VALUE_DIM,) if dv != d else ()), SOFTMAX_WRONG_AXIS,
                        *((MASK_INVERTED_MISTAKE, MASK_IGNORED_MISTAKE) if masked else ()))


EMBED_SWITCHES = switch_table(NO_POSITION_EMBEDDING, SINUSOIDAL_POSITIONS, SCALED_TOKEN_EMBEDDING)

# A mask inverted anywhere is named by the attention's hint; a mask the blocks never get, by the classifier's own.
CLF_SWITCHES = switch_table(PADDING_IN_MEAN, MASK_INVERTED_MISTAKE, CLF_MASK_NOT_PASSED)


def _optional(xs: list, i: int):
    return xs[i] if len(xs) > i else None


def sdpa_reference(d: int, dv: int, masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.attention(xs[0], xs[1], xs[2], _optional(xs, 3), **kw),
                     sdpa_switches(d, dv, masked), nan_causes=MASKED_ROW_NAN)


def mha_reference(H: int, masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.multi_head_attention(p, xs[0], xs[1], xs[2], H, _optional(xs, 3), **kw),
                     mha_switches(masked), parts=(SDPA,), nan_causes=MASKED_ROW_NAN)


def block_reference(masked: bool) -> Reference:
    return Reference(lambda p, xs, **kw: ref.block(p, xs[0], BLOCK_CASE["H"], _optional(xs, 1), **kw),
                     block_switches(masked), parts=(MHA,), nan_causes=MASKED_ROW_NAN)


EMBED_REFERENCE = Reference(lambda p, xs, **kw: ref.embedding(p, xs[0], **kw), EMBED_SWITCHES)


def clf_reference(case: dict) -> Reference:
    """The logits of a classifier of these sizes (``clf_case``), with its known mistakes."""
    return Reference(lambda p, xs, **kw: ref.classifier(p, xs[0], case["H"], case["blocks"], **kw), CLF_SWITCHES,
                     parts=(EMBED, BLOCK), nan_causes=MASKED_ROW_NAN)


# ---------------------------------------------------------------------------------------------------------
# Probes: what each part computes, on inputs where every known mistake shows (``Context.function``)

def sdpa_probe(ctx: Context):
    gen = rng(9000)
    q, k, v = randn(gen, 2, 4, 6), randn(gen, 2, 7, 6), randn(gen, 2, 7, 5)
    mask = random_mask(gen, 2, 4, 7)
    _, got = run_sdpa(ctx, (q, k, v, mask), shapes=False)
    return sdpa_reference(6, 5, True).identify(got, {}, as_inputs64([q, k, v, mask]))


def mha_probe(ctx: Context):
    E, H, kd, B, Tq, Tk = MHA_CASES[1]  # 1/d, 1/sqrt(d) and 1/sqrt(E) all differ here
    inputs = mha_inputs(9001, E, B, Tq, Tk, cross=True) + [random_padding_mask(rng(9002), B, Tk)[:, None, None, :]]
    reply = ctx.run(MHA, inputs=inputs, seed=9001, **mha_init(E, H, kd))
    got = outputs(reply, 2, MHA)
    p = contract_params(reply, mha_param_shapes(E, H, kd), MHA)
    reference = mha_reference(H, True)
    return reference.identify(got, p, as_inputs64(inputs), ctx.base(*reference.parts))


def block_probe(ctx: Context):
    c = BLOCK_CASE
    inputs = block_inputs(9003, True)
    reply = ctx.run(BLOCK, inputs=inputs, seed=9003, **block_init())
    (got,) = outputs(reply, 1, BLOCK)
    p = contract_params(reply, block_param_shapes(c["E"], c["ff"]), BLOCK)
    reference = block_reference(True)
    return reference.identify([got], p, as_inputs64(inputs), ctx.base(*reference.parts))


def embed_probe(ctx: Context):
    c = EMBED_CASE
    tokens = random_tokens(9004, c["B"], c["T"], c["vocab"], lengths=False)
    reply = ctx.run(EMBED, inputs=[tokens], seed=9004, **embed_init())
    (got,) = outputs(reply, 1, EMBED)
    return EMBED_REFERENCE.identify([got], contract_params(reply, embed_param_shapes(), EMBED), as_inputs64([tokens]))


PROBES = {SDPA: sdpa_probe, MHA: mha_probe, BLOCK: block_probe, EMBED: embed_probe}


# ---------------------------------------------------------------------------------------------------------
# Stand-ins: the parts the grader computes in place of failing ones inside the composites built from them
# (``autograder.stand_ins``), so that each composite is judged on what it does itself

def _mha_stand_in(p: dict, xs: list, module: dict) -> list:
    return list(ref.multi_head_attention(p, xs[0], xs[1], xs[2], heads_of(module), xs[3]))


def _block_stand_in(p: dict, xs: list, module: dict) -> list:
    return [ref.block(p, xs[0], heads_of(module), xs[1])]


ATTENTION_ARGUMENTS = ("query", "key", "value", "mask")
STAND_INS = {
    SDPA: StandIn(SDPA, ATTENTION_ARGUMENTS, lambda p, xs, module: list(ref.attention(*xs)), defaults={"mask": None},
                  within=(MHA, BLOCK, CLF)),
    MHA: StandIn(MHA, ATTENTION_ARGUMENTS, _mha_stand_in, entries=tuple(mha_param_shapes(8, 2, None)),
                 defaults={"mask": None}, within=(BLOCK, CLF)),
    BLOCK: StandIn(BLOCK, ("x", "padding_mask"), _block_stand_in, entries=tuple(block_param_shapes(8, 12)),
                   defaults={"padding_mask": None}, within=(CLF,)),
}


# ---------------------------------------------------------------------------------------------------------
# scaled_dot_product_attention

def _builtin_sdpa(q, k, v, mask=None):
    """PyTorch's own attention in float64 (output only; it does not return the weights)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _compare_sdpa(ctx: Context, label: str, got, q, k, v, mask=None) -> None:
    inputs = as_inputs64([q, k, v] + ([mask] if mask is not None else []))
    expected = ref.attention(*inputs)
    builtin = _builtin_sdpa(*inputs)
    assert close(builtin, expected[0], atol=1e-9), "reference and torch disagree: a grader bug"
    judge(ctx, label, got, sdpa_reference(q.shape[-1], v.shape[-1], mask is not None), {}, inputs)
    err, _ = max_error(got[0], builtin)
    if not close(got[0], builtin):  # cannot happen when the reference matched; kept as a second opinion
        raise CheckFailure(f"{label}: output differs from torch.nn.functional.scaled_dot_product_attention by {err:.3g}")


@CHECKS.check("sdpa.values", SDPA, 5,
               "matches a float64 reference and torch's own attention",
               kind="values", hidden=True)
def sdpa_values(ctx: Context) -> None:
    for i, case in enumerate(SDPA_CASES):
        q, k, v = sdpa_inputs(100 + i, case)
        _, got = run_sdpa(ctx, (q, k, v), shapes=False)
        _compare_sdpa(ctx, f"query {q.shape}, key {k.shape}, value {v.shape}", got, q, k, v)


@CHECKS.check("sdpa.mask", SDPA, 4, "padding, causal and full masks (True = may attend)", kind="behaviour", hidden=True)
def sdpa_mask(ctx: Context) -> None:
    gen = rng(7)
    cases = []
    q, k, v = randn(gen, 2, 4, 6), randn(gen, 2, 7, 6), randn(gen, 2, 7, 5)
    cases.append(("padding mask (B, 1, Tk)", q, k, v, random_padding_mask(gen, 2, 7)[:, None, :]))
    q, k, v = randn(gen, 2, 3, 5, 4), randn(gen, 2, 3, 5, 4), randn(gen, 2, 3, 5, 4)
    cases.append(("causal mask (Tq, Tk)", q, k, v, np.tril(np.ones((5, 5), dtype=bool))))
    q, k, v = randn(gen, 2, 4, 6), randn(gen, 2, 6, 6), randn(gen, 2, 6, 3)
    cases.append(("full mask (B, Tq, Tk)", q, k, v, random_mask(gen, 2, 4, 6)))
    for label, q, k, v, mask in cases:
        _, got = run_sdpa(ctx, (q, k, v, mask), shapes=False)
        w = got[1]
        expected_shape = np.broadcast_shapes(q.shape[:-1], mask.shape[:-1]) + (k.shape[-2],)
        blocked = np.broadcast_to(~mask, expected_shape)
        if w.shape == expected_shape and np.abs(w[blocked]).max(initial=0) > 1e-6:
            unmasked = ref.attention(as64(q), as64(k), as64(v))[1]
            hint = (MASK_INVERTED_MISTAKE.hint if np.abs(w[~blocked]).max(initial=0) < 1e-6
                    else MASK_IGNORED_MISTAKE.hint if close(w, np.array(np.broadcast_to(unmasked.numpy(), expected_shape))) else None)
            raise CheckFailure(f"{label}: masked keys get weight up to {np.abs(w[blocked]).max():.3g}; must be 0", hint)
        _compare_sdpa(ctx, label, got, q, k, v, mask)


# ---------------------------------------------------------------------------------------------------------
# MultiHeadAttention

def _builtin_mha(p, q, k, v, E, H, mask=None):
    """torch.nn.MultiheadAttention with the same weights (only when key_dim = embed_dim / num_heads)."""
    m = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.cat([p["q_proj.weight"], p["k_proj.weight"], p["v_proj.weight"]]))
        m.in_proj_bias.copy_(torch.cat([p["q_proj.bias"], p["k_proj.bias"], p["v_proj.bias"]]))
        m.out_proj.weight.copy_(p["out_proj.weight"])
        m.out_proj.bias.copy_(p["out_proj.bias"])
    m.eval()
    attn_mask = None
    if mask is not None:  # ours: True = may attend, (B, 1|H, Tq, Tk); torch's: True = may NOT attend, (B*H, Tq, Tk)
        B, Tq, Tk = q.shape[0], q.shape[1], k.shape[1]
        attn_mask = (~torch.broadcast_to(mask, (B, H, Tq, Tk))).reshape(B * H, Tq, Tk)
    with torch.no_grad():
        out, w = m(q, k, v, attn_mask=attn_mask, need_weights=True, average_attn_weights=False)
    return [out, w]


def _compare_mha(ctx: Context, label: str, case, seed: int, mask=None, cross=None) -> None:
    E, H, kd, B, Tq, Tk = case
    inputs = mha_inputs(seed, E, B, Tq, Tk, cross=Tq != Tk if cross is None else cross)
    call_inputs = inputs + ([mask] if mask is not None else [])
    reply = ctx.run(MHA, inputs=call_inputs, seed=seed, **mha_init(E, H, kd))
    got = outputs(reply, 2, f"{MHA}.forward")
    p = contract_params(reply, mha_param_shapes(E, H, kd), f"MultiHeadAttention({E}, {H})")
    reference = mha_reference(H, mask is not None)
    judge(ctx, label, got, reference, p, as_inputs64(call_inputs))
    if (kd is None or kd * H == E) and not ctx.base(*reference.parts) and len(p) == 8:
        q, k, v = (as64(x) for x in inputs)
        m = None if mask is None else torch.as_tensor(mask)
        builtin = _builtin_mha(p, q, k, v, E, H, m)
        expected = ref.multi_head_attention(p, q, k, v, H, m)
        assert all(close(a, b, atol=1e-9) for a, b in zip(builtin, expected)), "reference and torch disagree"
        if not all(close(g, b) for g, b in zip(got, builtin) if np.shape(g) == tuple(b.shape)):
            raise CheckFailure(f"{label}: differs from torch.nn.MultiheadAttention with your weights")


@CHECKS.check("mha.values", MHA, 8, "matches a float64 reference and nn.MultiheadAttention", kind="values", hidden=True)
def mha_values(ctx: Context) -> None:
    for i, case in enumerate(MHA_CASES):
        E, H, kd, B, Tq, Tk = case
        _compare_mha(ctx, f"MultiHeadAttention({E}, {H}), query {(B, Tq, E)}, key {(B, Tk, E)}", case, 200 + i)


@CHECKS.check("mha.mask", MHA, 5, "masks broadcast over heads and queries", kind="behaviour", hidden=True)
def mha_mask(ctx: Context) -> None:
    gen = rng(11)
    E, H, kd, B, Tq, Tk = MHA_CASES[1]
    padding = random_padding_mask(gen, B, Tk)[:, None, None, :]  # (B, 1, 1, Tk)
    _compare_mha(ctx, "padding mask (B, 1, 1, Tk)", MHA_CASES[1], 300, mask=padding)
    full = random_mask(gen, B, 1, Tq, Tk)  # (B, 1, Tq, Tk), shared by the heads
    _compare_mha(ctx, "mask (B, 1, Tq, Tk)", MHA_CASES[1], 301, mask=full)
    E, H, kd, B, Tq, Tk = MHA_CASES[0]
    causal = np.tril(np.ones((Tq, Tk), dtype=bool))[None, None]  # (1, 1, T, T)
    _compare_mha(ctx, "causal mask (1, 1, T, T)", MHA_CASES[0], 302, mask=causal)


# ---------------------------------------------------------------------------------------------------------
# TransformerBlock

def _builtin_block(p, x, padding_mask):
    """torch.nn.TransformerEncoderLayer (post-norm, ReLU) with the same weights."""
    c = BLOCK_CASE
    layer = torch.nn.TransformerEncoderLayer(c["E"], c["H"], c["ff"], dropout=0.0, layer_norm_eps=1e-6,
                                             batch_first=True, dtype=torch.float64)
    sd = {
        "self_attn.in_proj_weight": torch.cat([p["attn.q_proj.weight"], p["attn.k_proj.weight"], p["attn.v_proj.weight"]]),
        "self_attn.in_proj_bias": torch.cat([p["attn.q_proj.bias"], p["attn.k_proj.bias"], p["attn.v_proj.bias"]]),
        "self_attn.out_proj.weight": p["attn.out_proj.weight"], "self_attn.out_proj.bias": p["attn.out_proj.bias"],
        "linear1.weight": p["ffn.0.weight"], "linear1.bias": p["ffn.0.bias"],
        "linear2.weight": p["ffn.2.weight"], "linear2.bias": p["ffn.2.bias"],
        "norm1.weight": p["norm1.weight"], "norm1.bias": p["norm1.bias"],
        "norm2.weight": p["norm2.weight"], "norm2.bias": p["norm2.bias"],
    }
    layer.load_state_dict(sd)
    layer.train()  # the slow path: same maths, no nested-tensor shortcut that zeroes padded rows
    with torch.no_grad():
        return layer(x, src_key_padding_mask=None if padding_mask is None else ~padding_mask)


@CHECKS.check("block.values", BLOCK, 8,
               "post-norm block matches a reference and nn.TransformerEncoderLayer",
               kind="values", hidden=True)
def block_values(ctx: Context) -> None:
    c = BLOCK_CASE
    shapes = block_param_shapes(c["E"], c["ff"])
    for seed, with_mask in ((400, False), (401, True)):
        inputs = block_inputs(seed, with_mask)
        reply = ctx.run(BLOCK, inputs=inputs, seed=seed, contract=shapes, **block_init())
        (got,) = outputs(reply, 1, f"{BLOCK}.forward")
        p = contract_params(reply, shapes, BLOCK)
        label = f"TransformerBlock in eval mode{', with a padding mask' if with_mask else ''}"
        reference = block_reference(with_mask)
        judge(ctx, label, [got], reference, p, as_inputs64(inputs))
        if not ctx.base(*reference.parts) and len(p) == len(shapes):
            x, m = as64(inputs[0]), torch.as_tensor(inputs[1]) if with_mask else None
            builtin = _builtin_block(p, x, m)
            assert close(builtin, ref.block(p, x, c["H"], m), atol=1e-9), "reference and torch disagree: a grader bug"
            if not close(got, builtin):
                raise CheckFailure(f"{label}: differs from torch.nn.TransformerEncoderLayer with your weights")


@CHECKS.check("block.padding", BLOCK, 4,
               "padded tokens never change real tokens' outputs",
               kind="behaviour", hidden=True)
def block_padding(ctx: Context) -> None:
    """Behaviour: what sits at padded positions never changes the outputs at real positions."""
    x, mask = block_inputs(500, True)
    noisy = x.copy()
    noisy[~mask] = randn(rng(501), int((~mask).sum()), x.shape[-1]) * 3.0
    a = outputs(ctx.run(BLOCK, inputs=[x, mask], **block_init()), 1, f"{BLOCK}.forward")[0]
    b = outputs(ctx.run(BLOCK, inputs=[noisy, mask], **block_init()), 1, f"{BLOCK}.forward")[0]
    err, index = max_error(a[mask], b[mask])
    if err > 1e-5 and not deviates(ctx.function(MHA)):
        raise CheckFailure(
            f"changing the padded tokens changes real tokens' outputs (by up to {err:.3g}): the padding mask "
            "is not applied, or is inverted",
            hint="pass padding_mask[:, None, None, :] (B, 1, 1, T) to attention as the mask; True = real token",
        )


# ---------------------------------------------------------------------------------------------------------
# TokenAndPositionEmbedding and TransformerClassifier

def embed_param_shapes() -> dict:
    c = EMBED_CASE
    return {"token_emb.weight": (c["vocab"], c["E"]), "pos_emb.weight": (c["max_len"], c["E"])}


@CHECKS.check("embed.values", EMBED, 3, "token embedding plus position embedding", kind="values", hidden=True)
def embed_values(ctx: Context) -> None:
    c = EMBED_CASE
    for T in (c["T"], c["max_len"]):
        tokens = random_tokens(800 + T, c["B"], T, c["vocab"], lengths=False)
        reply = ctx.run(EMBED, inputs=[tokens], seed=T, **embed_init())
        (got,) = outputs(reply, 1, f"{EMBED}.forward")
        p = contract_params(reply, embed_param_shapes(), EMBED)
        judge(ctx, f"TokenAndPositionEmbedding on tokens of shape {tokens.shape}", [got], EMBED_REFERENCE, p,
              as_inputs64([tokens]))


@CHECKS.check("clf.values", CLF, 8,
               "logits match a reference: masked blocks, mean over real tokens",
               kind="values", hidden=True)
def clf_values(ctx: Context) -> None:
    c = CLF_CASE
    tokens = random_tokens(1100, c["B"], 9, c["vocab"])
    reply = ctx.run(CLF, inputs=[tokens], seed=1100, contract=clf_param_shapes(), **clf_init())
    (got,) = outputs(reply, 1, f"{CLF}.forward")
    p = contract_params(reply, clf_param_shapes(), CLF)
    reference = clf_reference(CLF_CASE)
    judge(ctx, f"TransformerClassifier logits in eval mode, tokens {tokens.shape} with padding", [got], reference, p,
          as_inputs64([tokens]))


@CHECKS.check("clf.padding", CLF, 4, "appending padding does not change the logits", kind="behaviour", hidden=True)
def clf_padding(ctx: Context) -> None:
    """Behaviour: appending padding never changes the logits."""
    c = CLF_CASE
    tokens = random_tokens(1200, c["B"], 8, c["vocab"])
    padded = np.concatenate([tokens, np.zeros((c["B"], 4), dtype=np.int64)], axis=1)
    a = outputs(ctx.run(CLF, inputs=[tokens], **clf_init()), 1, f"{CLF}.forward")[0]
    b = outputs(ctx.run(CLF, inputs=[padded], **clf_init()), 1, f"{CLF}.forward")[0]
    err, _ = max_error(a, b)
    if err > 1e-5 and not (deviates(ctx.function(BLOCK)) or deviates(ctx.function(EMBED))):
        raise CheckFailure(f"appending 4 padding tokens (id 0) changes the logits by up to {err:.3g}",
                           hint="mask padding in attention and average over real tokens only")


# ---------------------------------------------------------------------------------------------------------
# Gradients, by value against float64 autograd through the reference

@CHECKS.check("sdpa.gradients", SDPA, 1,
               "gradients of query, key and value match float64 autograd",
               kind="gradients", hidden=True)
def sdpa_gradients(ctx: Context) -> None:
    case = SDPA_CASES[1]
    inputs = sdpa_inputs(3, case)
    gradient_check(ctx, GradientCase(SDPA, SDPA, sdpa_reference(case[0][-1], case[2][-1], masked=False), inputs,
                                     ("query", "key", "value"), seed=3))


@CHECKS.check("mha.gradients", MHA, 2,
               "every parameter's gradient matches float64 autograd",
               kind="gradients", hidden=True)
def mha_gradients(ctx: Context) -> None:
    E, H, kd, B, Tq, Tk = MHA_CASES[1]
    gradient_check(ctx, GradientCase(MHA, f"MultiHeadAttention({E}, {H}, key_dim={kd})", mha_reference(H, False),
                                     mha_inputs(5, E, B, Tq, Tk, cross=True), ("query", "key", "value"),
                                     mha_param_shapes(E, H, kd), seed=5, **mha_init(E, H, kd),
                                     charged_by={"sdpa.gradients": ("q_proj.", "k_proj.", "v_proj.")}))


@CHECKS.check("block.gradients", BLOCK, 2,
               "every parameter's gradient matches float64 autograd",
               kind="gradients", hidden=True)
def block_gradients(ctx: Context) -> None:
    c = BLOCK_CASE
    gradient_check(ctx, GradientCase(BLOCK, "TransformerBlock (dropout=0, training mode)", block_reference(True),
                                     block_inputs(700, True), ("x", "padding_mask"),
                                     block_param_shapes(c["E"], c["ff"]), seed=700, **block_init(dropout=0.0),
                                     charged_by={"mha.gradients": ("attn.",), "sdpa.gradients": ("attn.",)}))


@CHECKS.check("embed.gradients", EMBED, 1,
               "both embeddings' gradients match float64 autograd",
               kind="gradients", hidden=True)
def embed_gradients(ctx: Context) -> None:
    c = EMBED_CASE
    tokens = random_tokens(900, c["B"], c["T"], c["vocab"], lengths=False)  # no id 0: padding_idx 0 or None alike
    gradient_check(ctx, GradientCase(EMBED, EMBED, EMBED_REFERENCE, [tokens],
                                     ("tokens",), embed_param_shapes(), seed=900, **embed_init()))


@CHECKS.check("clf.gradients", CLF, 2,
               "every parameter's gradient matches float64 autograd",
               kind="gradients", hidden=True)
def clf_gradients(ctx: Context) -> None:
    c = CLF_CASE
    gradient_check(ctx, GradientCase(CLF, "TransformerClassifier (dropout=0, training mode)", clf_reference(CLF_CASE),
                                     [random_tokens(1300, 8, c["max_len"], c["vocab"])], ("tokens",),
                                     clf_param_shapes(), seed=1300, **clf_init(dropout=0.0),
                                     # the embedding's gradients flow back through the blocks
                                     charged_by={"embed.gradients": ("embedding.",),
                                                 **{check: ("blocks.", "embedding.") for check in
                                                    ("block.gradients", "mha.gradients", "sdpa.gradients")}}))


# ---------------------------------------------------------------------------------------------------------
# Training

TRAINABLE = Trainable(target=CLF, contract=lambda kwargs: clf_param_shapes(clf_case(kwargs)),
                        reference=lambda kwargs: clf_reference(clf_case(kwargs)))


@CHECKS.check("clf.training", CLF, 22,
               "trains to the calibrated test accuracy on held-out tweets",
               kind="training", hidden=True)
def clf_training(ctx: Context) -> None:
    training_check(ctx, TRAINABLE, training_kwargs(ctx.profile))
