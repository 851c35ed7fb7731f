"""Does the float64 reference of the Vision Transformer exercise agree with the solution and with PyTorch's
built-ins, and does each of its switches reproduce a known mistake, one that can be told apart?"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from float64 import TOL, assert_same, differ

from autograder.exercises.vit import reference as ref

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "vit.py"

# (images shape, image_size as given to the model, patch size, the model's other arguments): non-square images,
# three channels, patch sizes 2, 4 and 7, image_size as an int and as (H, W).
VIT_CASES = [
    ((2, 3, 8, 12), (8, 12), 4, dict(projection_dim=8, num_heads=2, mlp_dim=16, num_blocks=2, mlp_head_units=(16, 8))),
    ((2, 3, 6, 10), (6, 10), 2, dict(projection_dim=12, num_heads=3, mlp_dim=8, num_blocks=1, mlp_head_units=(10,))),
    ((1, 1, 28, 28), 28, 7, dict(projection_dim=8, num_heads=4, mlp_dim=16, num_blocks=2, mlp_head_units=(12, 6))),
    ((2, 3, 8, 8), 8, 4, dict(projection_dim=8, num_heads=2, mlp_dim=8, num_blocks=3, mlp_head_units=(6,))),
    ((1, 3, 28, 28), (28, 28), 4, dict(projection_dim=8, num_heads=2, mlp_dim=8, num_blocks=1, mlp_head_units=(8,))),
]
# (images shape, image_size, channels, num_heads, num_blocks): odd and non-square sizes, one and two stages.
CCT_CASES = [
    ((2, 3, 8, 12), (8, 12), (4, 8), 2, 2),
    ((1, 1, 28, 28), 28, (16, 32), 4, 1),
    ((2, 3, 9, 7), (9, 7), (4, 6), 3, 2),
    ((2, 2, 10, 10), 10, (6,), 2, 1),
]
NUM_CLASSES = 5


def solution_namespace(source: str | None = None) -> dict:
    namespace = {"__name__": "vit_solution"}
    exec(compile(SOLUTION.read_text() if source is None else source, str(SOLUTION), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def ns():
    return solution_namespace()


def randomise(model, seed: int) -> dict:
    """Every parameter drawn N(0, 0.25) in float64 (std 0.5, so that activations take both signs); the model in
    eval mode. Returns the parameters by their state_dict names."""
    model.double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64) * 0.5)
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def inputs(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def build_vit(ns, case, seed):
    shape, image_size, P, kw = case
    model = ns["VisionTransformer"](image_size, P, shape[1], NUM_CLASSES, **kw)
    return model, randomise(model, seed), inputs(shape, seed + 1)


def vit_reference(p, images, case, **switches):
    _, _, P, kw = case
    return ref.vision_transformer(p, images, P, kw["num_heads"], kw["num_blocks"], kw["mlp_head_units"],
                                  **switches)


def build_cct(ns, case, seed):
    shape, image_size, channels, heads, blocks = case
    model = ns["CompactTransformer"](image_size, shape[1], NUM_CLASSES, channels=channels, num_heads=heads,
                                     mlp_dim=8, num_blocks=blocks)
    return model, randomise(model, seed), inputs(shape, seed + 1)


def cct_reference(p, images, case, **switches):
    _, _, _, heads, blocks = case
    return ref.compact_transformer(p, images, heads, blocks, **switches)


# --- (a) patches: the built-in comparison ------------------------------------------------------------------

PATCH_CASES = [((2, 3, 8, 12), 4), ((2, 3, 6, 10), 2), ((1, 1, 28, 28), 7), ((1, 3, 28, 28), 4),
               ((2, 3, 28, 14), 7), ((3, 2, 4, 4), 4)]


@pytest.mark.parametrize("shape, P", PATCH_CASES, ids=str)
def test_do_extract_patches_match_unfold(ns, shape, P):
    images = inputs(shape, 1)
    expected = F.unfold(images, P, stride=P).transpose(1, 2)  # (B, N, C * P * P)
    B, C, H, W = shape
    assert expected.shape == (B, (H // P) * (W // P), C * P * P)
    assert_same(ns["extract_patches"](images, P), expected)
    assert_same(ref.extract_patches(images, P), expected)


@pytest.mark.parametrize("shape, P", PATCH_CASES, ids=str)
def test_are_the_wrong_patch_orders_einops_and_column_major(shape, P):
    images = inputs(shape, 2)
    B, C, H, W = shape
    h, w = H // P, W // P
    ppc = images.reshape(B, C, h, P, w, P).permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, P * P * C)  # einops' order
    assert_same(ref.extract_patches(images, P, order="ppc"), ppc)
    row = ref.extract_patches(images, P)
    column = torch.arange(h * w).reshape(h, w).t().reshape(-1)  # column-major patch -> row-major index
    assert_same(ref.extract_patches(images, P, order="column"), row[:, column])
    assert differ(ref.extract_patches(images, P, order="ppc"), row) == (C > 1)
    assert differ(ref.extract_patches(images, P, order="column"), row) == (min(h, w) > 1)


# --- (b) the reference with its default switches is the solution --------------------------------------------

@pytest.mark.parametrize("B, N, patch_dim, D", [(2, 6, 48, 8), (1, 16, 49, 12), (3, 5, 4, 6)], ids=str)
def test_does_the_patch_encoder_match(ns, B, N, patch_dim, D):
    model = ns["PatchEncoder"](N, patch_dim, D)
    p = randomise(model, 3)
    assert set(p) == {"projection.weight", "projection.bias", "position_embedding.weight"}
    patches = inputs((B, N, patch_dim), 4)
    with torch.no_grad():
        assert_same(model(patches), ref.patch_encoder(p, patches))
        assert_same(model(patches[:, : N - 1]), ref.patch_encoder(p, patches[:, : N - 1]))  # fewer patches


BLOCK_CASES = [(2, 6, 8, 2, 16), (1, 16, 12, 4, 8), (3, 7, 6, 3, 5), (2, 4, 8, 1, 4)]  # B, N, D, heads, mlp_dim
BLOCK_KEYS = {"norm1.weight", "norm1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
              "attn.out_proj.bias", "norm2.weight", "norm2.bias", "mlp.0.weight", "mlp.0.bias", "mlp.3.weight",
              "mlp.3.bias"}


@pytest.mark.parametrize("B, N, D, heads, mlp_dim", BLOCK_CASES, ids=str)
def test_does_the_block_match_and_are_its_weights_per_head(ns, B, N, D, heads, mlp_dim):
    model = ns["ViTBlock"](D, heads, mlp_dim)
    p = randomise(model, 5)
    assert set(p) == BLOCK_KEYS
    x = inputs((B, N, D), 6)
    with torch.no_grad():
        out = model(x)
        out_w, w = model(x, return_attention=True)
    assert isinstance(out, torch.Tensor)
    expected, expected_w = ref.vit_block(p, x, heads, return_attention=True)
    assert w.shape == (B, heads, N, N)
    assert_same((out, out_w, w), (expected, expected, expected_w))
    torch.testing.assert_close(w.sum(-1), torch.ones(B, heads, N, dtype=torch.float64), **TOL)
    # the transformer exercise's MultiHeadAttention names (q_proj, k_proj, v_proj, out_proj) give the same block
    q, k, v = p["attn.in_proj_weight"].chunk(3)
    qb, kb, vb = p["attn.in_proj_bias"].chunk(3)
    named = {n: t for n, t in p.items() if not n.startswith("attn.in_proj")}
    named.update({"attn.q_proj.weight": q, "attn.k_proj.weight": k, "attn.v_proj.weight": v,
                  "attn.q_proj.bias": qb, "attn.k_proj.bias": kb, "attn.v_proj.bias": vb})
    assert_same(ref.vit_block(named, x, heads, return_attention=True), (expected, expected_w))


def vit_keys(num_blocks, mlp_head_units):
    keys = {"patch_encoder.projection.weight", "patch_encoder.projection.bias",
            "patch_encoder.position_embedding.weight", "norm.weight", "norm.bias"}
    keys |= {f"blocks.{i}.{k}" for i in range(num_blocks) for k in BLOCK_KEYS}
    keys |= {f"head.{2 + 3 * k}.{t}" for k in range(len(mlp_head_units) + 1) for t in ("weight", "bias")}
    return keys


@pytest.mark.parametrize("case", VIT_CASES, ids=lambda c: str(c[:3]))
def test_does_the_vision_transformer_match(ns, case):
    model, p, images = build_vit(ns, case, 7)
    shape, _, P, kw = case
    assert set(p) == set(model.state_dict()) == vit_keys(kw["num_blocks"], kw["mlp_head_units"])
    B, C, H, W = shape
    N = (H // P) * (W // P)
    assert p["head.2.weight"].shape[1] == N * kw["projection_dim"]
    assert len({id(block) for block in model.blocks}) == kw["num_blocks"]
    with torch.no_grad():
        logits = model(images)
        logits_w, maps = model(images, return_attention=True)
    expected, expected_maps = vit_reference(p, images, case, return_attention=True)
    assert logits.shape == (B, NUM_CLASSES) and len(maps) == kw["num_blocks"]
    assert_same((logits, logits_w, maps), (expected, expected, expected_maps))
    assert_same(logits, vit_reference(p, images, case))
    for w in maps:
        assert w.shape == (B, kw["num_heads"], N, N)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=torch.float64), **TOL)


@pytest.mark.parametrize("case", CCT_CASES, ids=str)
def test_does_the_tokenizer_match_and_count_its_tokens(ns, case):
    shape, image_size, channels, _, _ = case
    model = ns["ConvTokenizer"](shape[1], channels)
    p = randomise(model, 8)
    assert set(p) == {f"convs.{i}.weight" for i in range(len(channels))}
    images = inputs(shape, 9)
    with torch.no_grad():
        tokens = model(images)
    assert tokens.shape == (shape[0], ref.num_tokens(image_size, len(channels)), channels[-1])
    assert_same(tokens, ref.conv_tokenizer(p, images, channels))


@pytest.mark.parametrize("B, N, D", [(2, 6, 8), (1, 49, 32), (3, 1, 4)], ids=str)
def test_does_sequence_pooling_match_with_weights_summing_to_one(ns, B, N, D):
    model = ns["SequencePooling"](D)
    p = randomise(model, 10)
    assert set(p) == {"attention.weight", "attention.bias"}
    x = inputs((B, N, D), 11)
    with torch.no_grad():
        pooled, weights = model(x)
    assert pooled.shape == (B, D) and weights.shape == (B, N)
    assert_same((pooled, weights), ref.sequence_pooling(p, x))
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, dtype=torch.float64), **TOL)


def cct_keys(channels, num_blocks):
    keys = {f"tokenizer.convs.{i}.weight" for i in range(len(channels))}
    keys |= {"position_embedding", "norm.weight", "norm.bias", "pool.attention.weight", "pool.attention.bias",
             "head.weight", "head.bias"}
    return keys | {f"blocks.{i}.{k}" for i in range(num_blocks) for k in BLOCK_KEYS}


@pytest.mark.parametrize("case", CCT_CASES, ids=str)
def test_does_the_compact_transformer_match(ns, case):
    model, p, images = build_cct(ns, case, 12)
    shape, image_size, channels, heads, blocks = case
    assert set(p) == set(model.state_dict()) == cct_keys(channels, blocks)
    with torch.no_grad():
        logits = model(images)
        logits_w, maps, pool_weights = model(images, return_attention=True)
    expected = cct_reference(p, images, case, return_attention=True)
    B, N = shape[0], ref.num_tokens(image_size, len(channels))
    assert logits.shape == (B, NUM_CLASSES) and len(maps) == blocks and pool_weights.shape == (B, N)
    assert_same((logits, logits_w, maps, pool_weights), (expected[0], *expected))
    assert_same(logits, cct_reference(p, images, case))
    for w in maps:
        assert w.shape == (B, heads, N, N)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=torch.float64), **TOL)
    torch.testing.assert_close(pool_weights.sum(-1), torch.ones(B, dtype=torch.float64), **TOL)


# --- (c) the position embedding has the tokenizer's token count ------------------------------------------------

@pytest.mark.parametrize("case", CCT_CASES, ids=str)
def test_has_the_position_embedding_the_tokenizers_token_count(ns, case):
    shape, image_size, channels, heads, blocks = case
    torch.manual_seed(0)
    model = ns["CompactTransformer"](image_size, shape[1], NUM_CLASSES, channels=channels, num_heads=heads,
                                     num_blocks=blocks)
    with torch.no_grad():
        N = model.tokenizer(inputs(shape, 13).float()).shape[1]
    assert N == ref.num_tokens(image_size, len(channels))
    assert model.position_embedding.shape == (1, N, channels[-1])
    assert isinstance(model.position_embedding, torch.nn.Parameter)
    assert model.position_embedding.abs().max() <= 2.0  # trunc_normal_'s bounds, [-2, 2]
    if isinstance(image_size, int):
        same = ns["CompactTransformer"]((image_size, image_size), shape[1], NUM_CLASSES, channels=channels,
                                        num_heads=heads, num_blocks=blocks)
        assert same.position_embedding.shape == model.position_embedding.shape


def test_is_the_position_embedding_drawn_with_std_0_2(ns):
    torch.manual_seed(1)
    model = ns["CompactTransformer"](28, 1, NUM_CLASSES, channels=(4, 64), num_heads=4, num_blocks=1)
    table = model.position_embedding.detach()
    assert table.shape == (1, 49, 64)
    assert 0.17 < table.std().item() < 0.23 and abs(table.mean().item()) < 0.03


# --- (d) the written-out pooling is PyTorch's --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 8, 12), (1, 2, 9, 7), (2, 1, 3, 3), (1, 2, 1, 4)], ids=str)
def test_does_the_reference_max_pooling_match_torch(shape):
    x = inputs(shape, 14)
    for stride, padding in ((2, 1), (1, 1), (2, 0), (3, 1), (1, 0)):
        if min(shape[2:]) + 2 * padding < 3:
            with pytest.raises(ValueError):
                ref.max_pool(x, 3, stride, padding)
            continue
        torch.testing.assert_close(ref.max_pool(x, 3, stride, padding), F.max_pool2d(x, 3, stride, padding), **TOL)
    torch.testing.assert_close(ref.gelu(x), F.gelu(x), **TOL)


def test_does_the_token_count_follow_the_pooling_formula():
    assert ref.num_tokens(32, 2) == 64  # the course's CCT: 32x32 images, two stages, 8x8 = 64 tokens
    assert ref.num_tokens((28, 28), 2) == 49 and ref.num_tokens((9, 7), 2) == 3 * 2
    assert ref.num_tokens(8, 2, pool_stride=1) == 64 and ref.num_tokens(8, 2, pool_padding=0) == 1


# --- (e) each switch changes the output ------------------------------------------------------------------------

def vit_undetectable(case, switch, value) -> bool:
    """(P, P, C) order needs more than one channel; column-major order, more than one patch row and column."""
    (B, C, H, W), _, P, _ = case
    if switch == "order":
        return C == 1 if value == "ppc" else min(H // P, W // P) == 1
    return False


@pytest.mark.parametrize("case", VIT_CASES, ids=lambda c: str(c[:3]))
def test_does_each_switch_of_the_vision_transformer_change_its_output(ns, case):
    _, p, images = build_vit(ns, case, 15)
    right = vit_reference(p, images, case, return_attention=True)
    for switch, values in ref.VIT_SWITCHES.items():
        for value in values[1:]:
            wrong = vit_reference(p, images, case, return_attention=True, **{switch: value})
            assert differ(wrong[0], right[0]) != vit_undetectable(case, switch, value), (switch, value)


@pytest.mark.parametrize("case", CCT_CASES, ids=str)
def test_does_each_switch_of_the_compact_transformer_change_its_output(ns, case):
    shape, image_size, channels, _, _ = case
    _, p, images = build_cct(ns, case, 16)
    right = cct_reference(p, images, case, return_attention=True)
    for switch, values in ref.CCT_SWITCHES.items():
        for value in values[1:]:
            if switch in ref.TOKENIZER_SWITCHES:
                # the token count changes: the contract's position embedding does not fit, one of the new count does
                N = ref.num_tokens(image_size, len(channels), **{switch: value})
                assert N != right[2].shape[1], (switch, value)
                tokens = ref.conv_tokenizer(ref.sub(p, "tokenizer"), images, channels, **{switch: value})
                assert tokens.shape == (shape[0], N, channels[-1])
                with pytest.raises(ValueError):
                    cct_reference(p, images, case, **{switch: value})
                refitted = dict(p, position_embedding=inputs((1, N, channels[-1]), 17) * 0.5)
                wrong = cct_reference(refitted, images, case, return_attention=True, **{switch: value})
                assert wrong[0].shape == right[0].shape and wrong[2].shape == (shape[0], N)
            else:
                wrong = cct_reference(p, images, case, return_attention=True, **{switch: value})
            assert differ(wrong, right), (switch, value)
            assert differ(wrong[0], right[0]), (switch, value)


@pytest.mark.parametrize("B, N, D, heads, mlp_dim", BLOCK_CASES, ids=str)
def test_does_each_switch_of_a_part_change_its_output(ns, B, N, D, heads, mlp_dim):
    p = randomise(ns["ViTBlock"](D, heads, mlp_dim), 18)
    x = inputs((B, N, D), 19)
    right = ref.vit_block(p, x, heads)
    for switch, values in ref.BLOCK_SWITCHES.items():
        for value in values[1:]:
            assert differ(ref.vit_block(p, x, heads, **{switch: value}), right), (switch, value)
    enc = randomise(ns["PatchEncoder"](N, 5, D), 20)
    patches = inputs((B, N, 5), 21)
    for value in ref.ENCODER_SWITCHES["positions"][1:]:
        assert differ(ref.patch_encoder(enc, patches, positions=value), ref.patch_encoder(enc, patches)), value
    pool = randomise(ns["SequencePooling"](D), 22)
    wrong = ref.sequence_pooling(pool, x, softmax_over="features")
    assert differ(wrong, ref.sequence_pooling(pool, x))
    torch.testing.assert_close(wrong[1], torch.ones(B, N, dtype=torch.float64), rtol=0, atol=0)  # all ones: a sum


def test_are_misplaced_and_unknown_switches_refused(ns):
    case = VIT_CASES[0]
    _, p, images = build_vit(ns, case, 23)
    with pytest.raises(TypeError):
        vit_reference(p, images, case, softmax_over="features")
    with pytest.raises(TypeError):
        vit_reference(p, images, case, pool_stride=1)
    with pytest.raises(ValueError):
        vit_reference(p, images, case, order="pcp")
    cct_case = CCT_CASES[0]
    _, p, images = build_cct(ns, cct_case, 24)
    with pytest.raises(TypeError):
        cct_reference(p, images, cct_case, head_activation="relu")
    with pytest.raises(TypeError):
        cct_reference(p, images, cct_case, order="ppc")
    with pytest.raises(ValueError):
        cct_reference(p, images, cct_case, positions="thrice")
