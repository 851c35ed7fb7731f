"""Does the float64 reference of the trajectory transformer exercise agree with the solution and with PyTorch's
built-ins (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer), and does each of its switches reproduce the
known mistake its name says?"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from float64 import TOL, assert_same, differ

from autograder.exercises.seq2seq import reference as ref
from autograder.kit import reference as shared

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "seq2seq.py"
# The solution builds its positions in float32 and casts them: its float64 model differs from the reference by the
# positions' float32 rounding, carried through the blocks.
FLOAT32 = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def sol():
    spec = importlib.util.spec_from_file_location("seq2seq_solution", SOLUTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomise(model, seed: int) -> dict:
    """Every parameter drawn N(0, 0.25) in float64 (std 0.5: the layer norms' weights and biases too, so that
    activations take both signs); the model in eval mode. Returns the parameters by their state_dict names."""
    model.double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64) * 0.5)
    return {k: v.detach() for k, v in model.state_dict().items()}


def inputs(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


# --- PyTorch's built-ins with the contract's weights ---------------------------------------------------------

def packed(p: dict, attn: str, into: str) -> dict:
    """nn.MultiheadAttention's packed in-projection from the contract's q_proj, k_proj, v_proj."""
    return {f"{into}.in_proj_weight": torch.cat([p[f"{attn}.{n}_proj.weight"] for n in "qkv"]),
            f"{into}.in_proj_bias": torch.cat([p[f"{attn}.{n}_proj.bias"] for n in "qkv"]),
            f"{into}.out_proj.weight": p[f"{attn}.out_proj.weight"],
            f"{into}.out_proj.bias": p[f"{attn}.out_proj.bias"]}


def feed_forward_and_norms(p: dict, norms: tuple) -> dict:
    state = {"linear1.weight": p["ffn.0.weight"], "linear1.bias": p["ffn.0.bias"],
             "linear2.weight": p["ffn.2.weight"], "linear2.bias": p["ffn.2.bias"]}
    for n in norms:
        state.update({f"{n}.weight": p[f"{n}.weight"], f"{n}.bias": p[f"{n}.bias"]})
    return state


def builtin_decoder_layer(p: dict, heads: int, *, norm_first: bool = False) -> nn.TransformerDecoderLayer:
    E, ff = p["ffn.0.weight"].shape[1], p["ffn.0.weight"].shape[0]
    layer = nn.TransformerDecoderLayer(d_model=E, nhead=heads, dim_feedforward=ff, dropout=0.0, activation="relu",
                                       layer_norm_eps=1e-6, batch_first=True, norm_first=norm_first)
    layer.double().eval()
    layer.load_state_dict({**packed(p, "self_attn", "self_attn"), **packed(p, "cross_attn", "multihead_attn"),
                           **feed_forward_and_norms(p, ("norm1", "norm2", "norm3"))})
    return layer


def builtin_encoder_layer(p: dict, heads: int, *, norm_first: bool = False,
                          activation: str = "relu") -> nn.TransformerEncoderLayer:
    E, ff = p["ffn.0.weight"].shape[1], p["ffn.0.weight"].shape[0]
    layer = nn.TransformerEncoderLayer(d_model=E, nhead=heads, dim_feedforward=ff, dropout=0.0, activation=activation,
                                       layer_norm_eps=1e-6, batch_first=True, norm_first=norm_first)
    layer.double().eval()
    layer.load_state_dict({**packed(p, "attn", "self_attn"), **feed_forward_and_norms(p, ("norm1", "norm2"))})
    return layer


def builtin_linear(p: dict, name: str) -> nn.Linear:
    out_features, in_features = p[f"{name}.weight"].shape
    layer = nn.Linear(in_features, out_features).double()
    layer.load_state_dict({"weight": p[f"{name}.weight"], "bias": p[f"{name}.bias"]})
    return layer


def paper_positions(length: int, dim: int, *, exponent=lambda column: column - column % 2, first=math.sin,
                    second=math.cos) -> torch.Tensor:
    """The paper's table written out entry by entry: column c of position pos is first (c even) or second (c odd)
    of pos / 10000^(exponent(c) / dim); the contract's exponent is 2i for both columns of the pair i."""
    table = torch.zeros(length, dim, dtype=torch.float64)
    for pos in range(length):
        for c in range(dim):
            angle = pos / 10000.0 ** (exponent(c) / dim)
            table[pos, c] = first(angle) if c % 2 == 0 else second(angle)
    return table


def builtin_model(p: dict, heads: int, num_encoder_blocks: int, num_decoder_blocks: int, *,
                  encoder_norm_first: bool = False, encoder_activation: str = "relu", decoder_norm_first: bool = False):
    """The trajectory transformer assembled from PyTorch's layers (no final norms), as a function of
    (source, target_in); PyTorch's bool masks are True where a query may NOT attend."""
    sub = shared.sub
    encoder = [builtin_encoder_layer(sub(p, f"encoder.{i}"), heads, norm_first=encoder_norm_first,
                                     activation=encoder_activation) for i in range(num_encoder_blocks)]
    decoder = [builtin_decoder_layer(sub(p, f"decoder.{i}"), heads, norm_first=decoder_norm_first)
               for i in range(num_decoder_blocks)]
    source_proj, target_proj, output_proj = (builtin_linear(p, n) for n in ("source_proj", "target_proj",
                                                                            "output_proj"))

    def forward(source, target_in):
        S, T = source.shape[1], target_in.shape[1]
        E = source_proj.out_features
        memory = source_proj(source) + paper_positions(S, E)
        for layer in encoder:
            memory = layer(memory)
        x = target_proj(target_in) + paper_positions(T, E)
        blocked = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # key after query: not allowed
        for layer in decoder:
            x = layer(x, memory, tgt_mask=blocked)
        return output_proj(x).detach()

    return forward


# --- cases ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockCase:
    B: int
    T: int
    S: int
    E: int
    H: int
    ff: int

    def __str__(self):
        return f"B{self.B}-T{self.T}-S{self.S}-E{self.E}-H{self.H}-ff{self.ff}"


BLOCK_CASES = [BlockCase(2, 5, 6, 8, 2, 16), BlockCase(1, 1, 3, 6, 3, 8), BlockCase(3, 7, 4, 12, 4, 10),
               BlockCase(2, 4, 9, 8, 1, 4)]


@dataclass(frozen=True)
class ModelCase:
    B: int
    S: int
    T: int
    E: int
    H: int
    ff: int
    encoder_blocks: int
    decoder_blocks: int

    def __str__(self):
        return f"B{self.B}-S{self.S}-T{self.T}-E{self.E}-H{self.H}-enc{self.encoder_blocks}-dec{self.decoder_blocks}"

    def model(self, sol):
        return sol.TrajectoryTransformer(2, self.E, self.H, self.ff, self.encoder_blocks, self.decoder_blocks)

    def reference(self, p, source, target_in, **switches):
        return ref.trajectory_transformer(p, source, target_in, self.H, self.encoder_blocks, self.decoder_blocks,
                                          **switches)

    def predict(self, p, source, steps, **switches):
        return ref.predict(p, source, steps, self.H, self.encoder_blocks, self.decoder_blocks, **switches)


MODEL_CASES = [ModelCase(2, 6, 5, 8, 2, 16, 2, 2), ModelCase(1, 4, 1, 6, 3, 8, 1, 1),
               ModelCase(3, 8, 7, 12, 4, 10, 1, 3), ModelCase(2, 25, 25, 16, 4, 32, 2, 2)]


def build_model(sol, case: ModelCase, seed: int):
    torch.manual_seed(seed)
    model = case.model(sol)
    p = randomise(model, seed)
    return model, p, inputs((case.B, case.S, 2), seed + 1), inputs((case.B, case.T, 2), seed + 2)


def build_block(sol, case: BlockCase, seed: int):
    torch.manual_seed(seed)
    block = sol.DecoderBlock(case.E, case.H, case.ff)
    p = randomise(block, seed)
    return block, p, inputs((case.B, case.T, case.E), seed + 1), inputs((case.B, case.S, case.E), seed + 2)


# --- (1) the causal mask --------------------------------------------------------------------------------------

SIZES = [1, 2, 3, 5, 8, 25]


@pytest.mark.parametrize("n", SIZES)
def test_is_the_causal_mask_the_lower_triangle_as_in_the_solution(sol, n):
    lower = torch.tril(torch.ones(n, n, dtype=torch.bool))
    mask = ref.causal_mask(n)
    assert mask.dtype == torch.bool and mask.shape == (n, n)
    assert torch.equal(mask, lower)
    assert torch.equal(sol.causal_mask(n), lower)
    assert torch.equal(ref.causal_mask(n, mask="lower"), lower)


@pytest.mark.parametrize("n", SIZES)
def test_does_each_mask_switch_give_what_its_name_says(n):
    ones = torch.ones(n, n, dtype=torch.bool)
    lower = torch.tril(ones)
    expected = {"inverted": ~lower, "transposed": lower.t(), "strict": torch.tril(ones, diagonal=-1),
                "missing": ones}
    assert set(expected) == set(ref.MASK_SWITCHES["mask"][1:])
    for value, table in expected.items():
        got = ref.causal_mask(n, mask=value)
        assert got.dtype == torch.bool and torch.equal(got, table), value
        assert not torch.equal(got, lower) or n == 1 and value in ("transposed", "missing"), value
    assert not ref.causal_mask(n, mask="strict").diagonal().any()
    assert ref.causal_mask(n, mask="transposed").diagonal().all()
    # a query that may attend to nothing: strict, the first (j < 0); inverted, the last (j > n - 1)
    assert not ref.causal_mask(n, mask="strict")[0].any()
    assert not ref.causal_mask(n, mask="inverted")[n - 1].any()
    assert ref.causal_mask(n, mask="inverted")[0].sum() == n - 1  # the first query sees every step but its own


# --- (2) the sinusoidal positions -----------------------------------------------------------------------------

POSITION_CASES = [(1, 2), (7, 8), (3, 6), (25, 16), (25, 64), (50, 4)]  # (length, dim)


@pytest.mark.parametrize("length, dim", POSITION_CASES, ids=str)
def test_are_the_positions_the_papers_formula_and_the_solutions(sol, length, dim):
    expected = paper_positions(length, dim)
    got = ref.sinusoidal_positions(length, dim)
    assert got.dtype == torch.float64 and got.shape == (length, dim)
    assert_same(got, expected)
    assert_same(ref.sinusoidal_positions(length, dim, positions="sin_cos"), expected)
    solution = sol.sinusoidal_positions(length, dim)
    assert solution.dtype == torch.float32
    torch.testing.assert_close(solution.double(), expected, rtol=1e-6, atol=1e-5 * max(1, length / 25))
    assert torch.equal(got[0], torch.tensor([0.0, 1.0] * (dim // 2), dtype=torch.float64))  # sin 0, cos 0


@pytest.mark.parametrize("length, dim", POSITION_CASES, ids=str)
def test_does_each_position_switch_give_what_its_name_says(length, dim):
    right = ref.sinusoidal_positions(length, dim)
    expected = {
        "cos_sin": paper_positions(length, dim, first=math.cos, second=math.sin),
        "frequency": paper_positions(length, dim, exponent=lambda c: c // 2),  # 10000^(i / dim) for the pair i
        "column": paper_positions(length, dim, exponent=lambda c: c),  # 10000^(c / dim) for the column c
        "missing": torch.zeros(length, dim, dtype=torch.float64),
    }
    assert set(expected) == set(ref.POSITION_SWITCHES["positions"][1:])
    for value, table in expected.items():
        assert_same(ref.sinusoidal_positions(length, dim, positions=value), table)
    swapped = ref.sinusoidal_positions(length, dim, positions="cos_sin")
    assert_same((swapped[:, 0::2], swapped[:, 1::2]), (right[:, 1::2], right[:, 0::2]))
    # which differ from the contract: the first pair's frequency is 1 for all three exponents, so "frequency" and
    # "column" need a second pair, or a second position for the odd column; "missing" and "cos_sin" differ at pos 0
    assert differ(expected["cos_sin"], right) and differ(expected["missing"], right)
    assert differ(expected["frequency"], right) == (dim > 2 and length > 1)
    assert differ(expected["column"], right) == (length > 1)


# --- (3) the decoder's inputs ---------------------------------------------------------------------------------

SHIFT_CASES = [((2, 6, 2), (2, 5, 2)), ((3, 4, 2), (3, 7, 2)), ((1, 3, 2), (1, 2, 2)), ((2, 2, 2), (2, 3, 2))]


@pytest.mark.parametrize("source_shape, target_shape", SHIFT_CASES, ids=str)
def test_are_the_decoder_inputs_the_shifted_target_as_in_the_solution(sol, source_shape, target_shape):
    source, target = inputs(source_shape, 30), inputs(target_shape, 31)
    T = target_shape[1]
    expected = torch.stack([source[:, -1] if t == 0 else target[:, t - 1] for t in range(T)], dim=1)
    assert_same(ref.decoder_inputs(source, target), expected)
    assert_same(ref.decoder_inputs(source, target, shift="once"), expected)
    assert_same(sol.decoder_inputs(source, target), expected)


@pytest.mark.parametrize("source_shape, target_shape", SHIFT_CASES, ids=str)
def test_does_each_shift_switch_give_what_its_name_says(source_shape, target_shape):
    source, target = inputs(source_shape, 32), inputs(target_shape, 33)
    T = target_shape[1]
    expected = {
        "none": target,
        "twice": torch.stack([source[:, t - 2] if t < 2 else target[:, t - 2] for t in range(T)], dim=1),
        "repeated": torch.stack([source[:, -1] if t < 2 else target[:, t - 2] for t in range(T)], dim=1),
    }
    assert set(expected) == set(ref.SHIFT_SWITCHES["shift"][1:])
    right = ref.decoder_inputs(source, target)
    for value, table in expected.items():
        got = ref.decoder_inputs(source, target, shift=value)
        assert_same(got, table)
        assert differ(got, right), value


# --- (4) the decoder block --------------------------------------------------------------------------------------

def masks(case: BlockCase, seed: int) -> dict:
    """The masks the block is given: none, the causal (T, T), and a different one per sequence (B, 1, T, T) (the
    causal mask with some earlier steps hidden; the diagonal always allowed, so that no row is empty)."""
    gen = torch.Generator().manual_seed(seed)
    lower = torch.tril(torch.ones(case.T, case.T, dtype=torch.bool))
    per_sequence = (lower & (torch.rand(case.B, 1, case.T, case.T, generator=gen) < 0.6)) | torch.eye(
        case.T, dtype=torch.bool)
    return {"none": None, "causal": lower, "per_sequence": per_sequence}


def builtin_mask(mask, case: BlockCase):
    """PyTorch's attn_mask: (T, T) or (B * H, T, T), True where a query may NOT attend."""
    if mask is None:
        return None
    if mask.dim() == 2:
        return ~mask
    return ~mask.expand(case.B, case.H, case.T, case.T).reshape(case.B * case.H, case.T, case.T)


@pytest.mark.parametrize("case", BLOCK_CASES, ids=str)
def test_does_the_decoder_block_match_the_solution(sol, case):
    block, p, x, memory = build_block(sol, case, 40)
    assert {k.split(".")[0] for k in p} == {"self_attn", "cross_attn", "ffn", "norm1", "norm2", "norm3"}
    for name, mask in masks(case, 41).items():
        with torch.no_grad():
            out, weights = block(x, memory, mask, return_attention=True)
            plain = block(x, memory, mask)
        expected, expected_weights = ref.decoder_block(p, x, memory, case.H, mask)
        assert expected.shape == (case.B, case.T, case.E) and expected_weights.shape == (case.B, case.H, case.T,
                                                                                            case.S)
        assert isinstance(plain, torch.Tensor), name
        assert_same((out, plain, weights), (expected, expected, expected_weights))
        torch.testing.assert_close(expected_weights.sum(-1), torch.ones(case.B, case.H, case.T, dtype=torch.float64),
                                   **TOL)


@pytest.mark.parametrize("case", BLOCK_CASES, ids=str)
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_does_the_decoder_block_match_transformer_decoder_layer(sol, case, norm):
    _, p, x, memory = build_block(sol, case, 42)
    layer = builtin_decoder_layer(p, case.H, norm_first=norm == "pre")
    for name, mask in masks(case, 43).items():
        expected = layer(x, memory, tgt_mask=builtin_mask(mask, case)).detach()
        assert_same(ref.decoder_block(p, x, memory, case.H, mask, norm=norm)[0], expected)


@pytest.mark.parametrize("case", BLOCK_CASES, ids=str)
def test_does_cross_target_attend_to_the_decoders_own_states(sol, case):
    """cross="target": the cross-attention's keys and values are the states after norm1, unmasked."""
    _, p, x, memory = build_block(sol, case, 44)
    layer = builtin_decoder_layer(p, case.H)
    mask = masks(case, 45)["causal"]
    h = layer.norm1(x + layer.self_attn(x, x, x, attn_mask=~mask)[0])
    attended, weights = layer.multihead_attn(h, h, h, average_attn_weights=False)
    h = layer.norm2(h + attended)
    expected = layer.norm3(h + layer.linear2(torch.relu(layer.linear1(h))))
    got, got_weights = ref.decoder_block(p, x, memory, case.H, mask, cross="target")
    assert_same((got, got_weights), (expected.detach(), weights.detach()))
    assert got_weights.shape == (case.B, case.H, case.T, case.T)
    assert differ(got, ref.decoder_block(p, x, memory, case.H, mask)[0])


# --- (5) the teacher-forced forward -------------------------------------------------------------------------------

def model_keys(case: ModelCase) -> set:
    mha = {f"{n}.{t}" for n in ("q_proj", "k_proj", "v_proj", "out_proj") for t in ("weight", "bias")}
    ffn = {f"ffn.{i}.{t}" for i in (0, 2) for t in ("weight", "bias")}

    def norms(names):
        return {f"{n}.{t}" for n in names for t in ("weight", "bias")}

    encoder = {f"attn.{k}" for k in mha} | ffn | norms(("norm1", "norm2"))
    decoder = {f"{a}.{k}" for a in ("self_attn", "cross_attn") for k in mha} | ffn | norms(("norm1", "norm2", "norm3"))
    keys = norms(("source_proj", "target_proj", "output_proj"))
    keys |= {f"encoder.{i}.{k}" for i in range(case.encoder_blocks) for k in encoder}
    return keys | {f"decoder.{i}.{k}" for i in range(case.decoder_blocks) for k in decoder}


@pytest.mark.parametrize("case", MODEL_CASES, ids=str)
def test_does_the_forward_match_the_solution(sol, case):
    model, p, source, target_in = build_model(sol, case, 50)
    assert set(p) == model_keys(case)
    with torch.no_grad():
        got = model(source, target_in)
    expected = case.reference(p, source, target_in)
    assert expected.dtype == torch.float64 and expected.shape == (case.B, case.T, 2)
    torch.testing.assert_close(got, expected, **FLOAT32)


@pytest.mark.parametrize("case", MODEL_CASES, ids=str)
def test_does_the_forward_match_a_model_of_pytorch_layers(sol, case):
    _, p, source, target_in = build_model(sol, case, 51)
    builtin = builtin_model(p, case.H, case.encoder_blocks, case.decoder_blocks)
    assert_same(case.reference(p, source, target_in), builtin(source, target_in))
    # a pre-norm decoder, and the encoder's pre-norm and GELU mistakes, are PyTorch's norm_first and "gelu"
    variants = [({"norm": "pre"}, {"decoder_norm_first": True}),
                ({"enc_norm": "pre"}, {"encoder_norm_first": True}),
                ({"enc_activation": "gelu"}, {"encoder_activation": "gelu"})]
    for switches, options in variants:
        builtin = builtin_model(p, case.H, case.encoder_blocks, case.decoder_blocks, **options)
        assert_same(case.reference(p, source, target_in, **switches), builtin(source, target_in))


@pytest.mark.parametrize("case", MODEL_CASES[:3], ids=str)
def test_does_each_model_switch_change_the_output(sol, case):
    _, p, source, target_in = build_model(sol, case, 52)
    right = case.reference(p, source, target_in)
    assert ref.MODEL_SWITCHES == {**ref.MASK_SWITCHES, **ref.POSITION_SWITCHES, **ref.DECODER_SWITCHES,
                                  **ref.ENCODER_SWITCHES}
    for switch, values in ref.MODEL_SWITCHES.items():
        assert_same(case.reference(p, source, target_in, **{switch: values[0]}), right)
        for value in values[1:]:
            wrong = case.reference(p, source, target_in, **{switch: value})
            # one decoder step: the transposed and the missing mask, and no mask at all, are the causal one (the
            # positions also reach the encoder, whose S steps tell them apart)
            undetectable = case.T == 1 and (switch, value) in (("mask", "transposed"), ("mask", "missing"),
                                                               ("dec_mask", "ignored"))
            assert differ(wrong, right) != undetectable, (switch, value)


# --- (6) greedy decoding -------------------------------------------------------------------------------------------

STEPS = [1, 3, 6]


@pytest.mark.parametrize("case", MODEL_CASES[:3], ids=str)
def test_does_predict_match_the_solution_and_feed_back_its_own_outputs(sol, case):
    model, p, source, _ = build_model(sol, case, 60)
    for steps in STEPS:
        predicted = case.predict(p, source, steps)
        assert predicted.dtype == torch.float64 and predicted.shape == (case.B, steps, 2)
        torch.testing.assert_close(model.predict(source, steps), predicted, **FLOAT32)
        assert_same(case.predict(p, source, steps, feed="own", start="last"), predicted)
        # step by step: each step's output is the forward's last on the inputs so far
        target_in = source[:, -1:]
        for t in range(steps):
            out = case.reference(p, source, target_in)
            assert_same(out[:, -1], predicted[:, t])
            target_in = torch.cat([target_in, out[:, -1:]], dim=1)
        # and, the mask being causal, one teacher-forced forward on the predictions gives them all back
        assert_same(case.reference(p, source, ref.decoder_inputs(source, predicted)), predicted)


@pytest.mark.parametrize("case", MODEL_CASES[:3], ids=str)
def test_does_each_predict_switch_do_what_its_name_says(sol, case):
    _, p, source, _ = build_model(sol, case, 61)
    steps = 4
    right = case.predict(p, source, steps)
    last, first = source[:, -1:], source[:, :1]
    zeros = torch.zeros_like(last)
    # feed="zeros" / "first": the inputs after the first are zeros / the first observed point, whatever was output
    for value, fed in (("zeros", zeros), ("first", first)):
        wrong = case.predict(p, source, steps, feed=value)
        assert_same(wrong, case.reference(p, source, torch.cat([last] + [fed] * (steps - 1), dim=1)))
        assert_same(wrong[:, :1], right[:, :1])  # the first step is decoded before anything is fed back
        assert differ(wrong, right), value
    # with feed="zeros", the second step is the forward's on [last, 0]
    second = case.reference(p, source, torch.cat([last, zeros], dim=1))[:, 1]
    assert_same(case.predict(p, source, 2, feed="zeros")[:, 1], second)
    # start="first": greedy decoding as the contract's, from the first observed point
    wrong = case.predict(p, source, steps, start="first")
    assert_same(wrong, case.reference(p, source, torch.cat([first, wrong[:, :-1]], dim=1)))
    assert_same(wrong[:, 0], case.reference(p, source, first)[:, 0])
    assert differ(wrong, right)
    assert ref.PREDICT_SWITCHES == {"feed": ("own", "zeros", "first"), "start": ("last", "first")}


@pytest.mark.parametrize("case", MODEL_CASES[:1], ids=str)
def test_does_predict_pass_the_models_switches_on(sol, case):
    _, p, source, _ = build_model(sol, case, 62)
    wrong = case.predict(p, source, 3, positions="cos_sin")
    assert_same(wrong, case.reference(p, source, ref.decoder_inputs(source, wrong), positions="cos_sin"))
    assert differ(wrong, case.predict(p, source, 3))


# --- (7) the mask's mistakes, seen through the model ---------------------------------------------------------------

@pytest.mark.parametrize("case", MODEL_CASES, ids=str)
def test_do_the_masks_that_leave_a_query_nothing_give_nan(sol, case):
    _, p, source, target_in = build_model(sol, case, 70)
    assert not case.reference(p, source, target_in).isnan().any()
    for value in ("inverted", "strict"):
        assert case.reference(p, source, target_in, mask=value).isnan().any(), value
    for value in ("transposed", "missing"):
        assert not case.reference(p, source, target_in, mask=value).isnan().any(), value


@pytest.mark.parametrize("case", [c for c in MODEL_CASES if c.T > 1], ids=str)
def test_does_only_the_causal_mask_keep_later_inputs_from_earlier_outputs(sol, case):
    _, p, source, target_in = build_model(sol, case, 71)
    outputs = {value: case.reference(p, source, target_in, mask=value) for value in ("lower", "transposed", "missing")}
    for t in sorted({1, case.T // 2, case.T - 1}):
        changed = target_in.clone()
        changed[:, t] += 1.0
        after = {value: case.reference(p, source, changed, mask=value) for value in outputs}
        torch.testing.assert_close(after["lower"][:, :t], outputs["lower"][:, :t], **TOL)  # causal
        assert differ(after["lower"][:, t:], outputs["lower"][:, t:])
        for value in ("transposed", "missing"):
            assert differ(after[value][:, :t], outputs[value][:, :t]), (value, t)
            assert differ(after[value][:, 0], outputs[value][:, 0]), (value, t)  # step 0 sees everything


# --- (8) the encoder block's switches --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", BLOCK_CASES, ids=str)
def test_does_the_encoder_block_match_the_solution_pytorch_and_the_shared_block(sol, case):
    torch.manual_seed(80)
    block = sol.TransformerBlock(case.E, case.H, case.ff)
    p = randomise(block, 80)
    x = inputs((case.B, case.T, case.E), 81)
    expected = ref.encoder_block(p, x, case.H)
    with torch.no_grad():
        assert_same(block(x), expected)
    assert_same(builtin_encoder_layer(p, case.H)(x).detach(), expected)
    assert_same(shared.block(p, x, case.H), expected)
    assert set(ref.ENCODER_SWITCHES) == {"enc_norm", "enc_residual", "enc_activation", "enc_unbiased"}
    for switch, values in ref.ENCODER_SWITCHES.items():
        name = switch[len("enc_"):]
        for value in values:
            got = ref.encoder_block(p, x, case.H, **{switch: value})
            assert_same(got, shared.block(p, x, case.H, None, **{name: value}))
            assert differ(got, expected) == (value != values[0]), (switch, value)
    # the two that PyTorch's layer has: norm_first and GELU
    assert_same(ref.encoder_block(p, x, case.H, enc_norm="pre"),
                builtin_encoder_layer(p, case.H, norm_first=True)(x).detach())
    assert_same(ref.encoder_block(p, x, case.H, enc_activation="gelu"),
                builtin_encoder_layer(p, case.H, activation="gelu")(x).detach())


@pytest.mark.parametrize("case", MODEL_CASES[:2], ids=str)
def test_do_the_encoder_switches_reach_the_encoder_only(sol, case):
    """An ``enc_*`` switch changes the memory and nothing else: the decoder blocks are the contract's."""
    _, p, source, target_in = build_model(sol, case, 82)
    for switch, values in ref.ENCODER_SWITCHES.items():
        value = values[1]
        memory = ref.encode(p, source, case.H, case.encoder_blocks, **{switch: value})
        x = ref.linear(target_in, p, "target_proj") + paper_positions(case.T, case.E)
        for i in range(case.decoder_blocks):
            x = ref.decoder_block(shared.sub(p, f"decoder.{i}"), x, memory, case.H, ref.causal_mask(case.T))[0]
        assert_same(case.reference(p, source, target_in, **{switch: value}), ref.linear(x, p, "output_proj"))
    # the attention's own switches reach both: a decoder's mistake with the right encoder differs
    both = case.reference(p, source, target_in, scale="none")
    assert differ(both, case.reference(p, source, target_in))
