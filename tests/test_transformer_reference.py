"""Does the grader's float64 reference agree with PyTorch's built-ins, so that it can judge submissions?"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.exercises.transformer import reference as ref



@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("shape_q, shape_k, dv", [((2, 5, 8), (2, 5, 8), 8), ((3, 2, 4, 6), (3, 2, 7, 6), 5), ((1, 1, 3), (1, 9, 3), 4)])
def test_does_reference_attention_match_torch(shape_q, shape_k, dv):
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(shape_q, generator=gen), torch.randn(shape_k, generator=gen)
    v = torch.randn(shape_k[:-1] + (dv,), generator=gen)
    mask = torch.rand(shape_q[:-1] + shape_k[-2:-1], generator=gen) < 0.7
    mask[..., 0] = True
    for m in (None, mask):
        out, w = ref.attention(q, k, v, m)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=m), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def _mha_params(E, inner, gen):
    p = {}
    for name in ("q_proj", "k_proj", "v_proj"):
        p[f"{name}.weight"], p[f"{name}.bias"] = torch.randn(inner, E, generator=gen), torch.randn(inner, generator=gen)
    p["out_proj.weight"], p["out_proj.bias"] = torch.randn(E, inner, generator=gen), torch.randn(E, generator=gen)
    return p


def test_does_reference_multi_head_attention_match_nn_multiheadattention():
    from autograder.exercises.transformer.hidden import _builtin_mha

    gen = torch.Generator().manual_seed(1)
    E, H, B, Tq, Tk = 12, 3, 2, 4, 6
    p = _mha_params(E, E, gen)
    q, k, v = torch.randn(B, Tq, E, generator=gen), torch.randn(B, Tk, E, generator=gen), torch.randn(B, Tk, E, generator=gen)
    mask = torch.ones(B, 1, 1, Tk, dtype=torch.bool)
    mask[0, ..., 4:] = False
    for m in (None, mask):
        expected = ref.multi_head_attention(p, q, k, v, H, m)
        for a, b in zip(expected, _builtin_mha(p, q, k, v, E, H, m)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_does_reference_block_match_transformer_encoder_layer():
    from autograder.exercises.transformer import BLOCK_CASE
    from autograder.exercises.transformer.hidden import _builtin_block

    gen = torch.Generator().manual_seed(2)
    E, ff, B, T = BLOCK_CASE["E"], BLOCK_CASE["ff"], 3, 6
    p = {f"attn.{k}": v for k, v in _mha_params(E, E, gen).items()}
    p.update({"ffn.0.weight": torch.randn(ff, E, generator=gen), "ffn.0.bias": torch.randn(ff, generator=gen),
              "ffn.2.weight": torch.randn(E, ff, generator=gen), "ffn.2.bias": torch.randn(E, generator=gen),
              "norm1.weight": torch.rand(E, generator=gen), "norm1.bias": torch.randn(E, generator=gen),
              "norm2.weight": torch.rand(E, generator=gen), "norm2.bias": torch.randn(E, generator=gen)})
    x = torch.randn(B, T, E, generator=gen)
    padding = torch.arange(T)[None] < torch.tensor([[6], [3], [1]])
    for m in (None, padding):
        torch.testing.assert_close(ref.block(p, x, BLOCK_CASE["H"], m), _builtin_block(p, x, m), rtol=1e-10, atol=1e-10)


def test_does_each_known_mistake_change_the_output():
    """A variant identical to the reference could never be told apart: each must differ."""
    gen = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(2, 4, 6, generator=gen), torch.randn(2, 5, 6, generator=gen), torch.randn(2, 5, 3, generator=gen)
    mask = torch.tensor([True, True, True, False, False])[None, None, :].expand(2, 4, 5)
    right = ref.attention(q, k, v, mask)[0]
    for kwargs in ({"scale": "none"}, {"scale": "d"}, {"scale": "sqrt_dv"}, {"softmax_dim": -2},
                   {"mask_mode": ref.MASK_IGNORED}, {"mask_mode": ref.MASK_INVERTED}):
        assert not torch.allclose(ref.attention(q, k, v, mask, **kwargs)[0], right, atol=1e-3, equal_nan=True), kwargs


def test_does_each_known_deviation_of_a_block_or_an_embedding_change_the_output():
    from autograder.exercises.transformer import BLOCK_CASE

    gen = torch.Generator().manual_seed(4)
    c = BLOCK_CASE
    p = {f"attn.{k}": v for k, v in _mha_params(c["E"], c["E"], gen).items()}
    p.update({"ffn.0.weight": torch.randn(c["ff"], c["E"], generator=gen), "ffn.0.bias": torch.randn(c["ff"], generator=gen),
              "ffn.2.weight": torch.randn(c["E"], c["ff"], generator=gen), "ffn.2.bias": torch.randn(c["E"], generator=gen)})
    for n in ("norm1", "norm2"):
        p[f"{n}.weight"], p[f"{n}.bias"] = 1 + 0.2 * torch.randn(c["E"], generator=gen), 0.2 * torch.randn(c["E"], generator=gen)
    x = torch.randn(2, 5, c["E"], generator=gen)
    right = ref.block(p, x, c["H"])
    for kwargs in ({"activation": "gelu"}, {"unbiased": True}, {"norm": "pre"}, {"residual": False},
                   {"out_proj": False}, {"scale": "sqrt_embed"} if c["E"] != (c["E"] // c["H"]) ** 2 else {"scale": "none"}):
        assert not torch.allclose(ref.block(p, x, c["H"], **kwargs), right, atol=1e-3), kwargs
    e = {"token_emb.weight": torch.randn(30, 8, generator=gen), "pos_emb.weight": torch.randn(10, 8, generator=gen)}
    tokens = torch.randint(1, 30, (3, 7), generator=gen)
    for kwargs in ({"positions": False}, {"positions": "sinusoidal"}, {"token_scale": True}):
        assert not torch.allclose(ref.embedding(e, tokens, **kwargs), ref.embedding(e, tokens), atol=1e-3), kwargs
