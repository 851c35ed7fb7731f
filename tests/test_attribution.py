"""How does the grader attribute a deviation: to the interface, to the part that makes it, or to nothing?"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checks import CheckFailure
from autograder.contract import Deviations
from autograder.kit.common import Reference, judge
from autograder.param_map import Piece, map_params
from autograder.requests import RunReply

LINEAR = {"type": "Linear"}


def test_does_a_renamed_sibling_module_map_onto_the_contract():
    params = {"qkv.weight": np.ones((4, 4)), "qkv.bias": np.ones(4), "k_proj.weight": np.zeros((4, 4))}
    mapping = map_params(params, {"qkv": LINEAR, "k_proj": LINEAR},
                         {"q_proj.weight": (4, 4), "q_proj.bias": (4,), "k_proj.weight": (4, 4)})
    assert not mapping.unmapped
    assert {k: v[0].name for k, v in mapping.sources.items()} == {"q_proj.weight": "qkv.weight",
                                                                   "q_proj.bias": "qkv.bias",
                                                                   "k_proj.weight": "k_proj.weight"}


def test_does_an_ambiguous_rename_stay_unmapped():
    params = {"a.weight": np.ones((4, 4)), "b.weight": np.ones((4, 4))}
    assert map_params(params, {"a": LINEAR, "b": LINEAR}, {"q_proj.weight": (4, 4)}).unmapped == ["q_proj.weight"]


def test_does_a_linear_without_bias_map_its_bias_to_zero_and_a_bare_parameter_to_a_weight():
    params = {"score.weight": np.ones((1, 3)), "pos_emb": np.ones((5, 2))}
    mapping = map_params(params, {"score": LINEAR},
                         {"score.weight": (1, 3), "score.bias": (1,), "pos_emb.weight": (5, 2)})
    assert not mapping.unmapped and mapping.sources["score.bias"] == () and mapping.sources["pos_emb.weight"][0].name == "pos_emb"
    assert torch.equal(mapping.values["score.bias"], torch.zeros(1, dtype=torch.float64))


QKV = {f"{p}_proj.{w}": shape for p in "qkv" for w, shape in (("weight", (4, 6)), ("bias", (4,)))}


def test_is_a_fused_projection_split_in_query_key_value_order():
    fused = {"attn.c_attn.weight": np.arange(72.0).reshape(12, 6), "attn.c_attn.bias": np.arange(12.0)}
    mapping = map_params(fused, {}, {f"attn.{k}": v for k, v in QKV.items()})
    assert not mapping.unmapped
    assert np.array_equal(mapping.values["attn.k_proj.weight"], fused["attn.c_attn.weight"][4:8])
    grads = {"attn.c_attn.bias": np.arange(12.0) * 10}
    assert torch.equal(mapping.take("attn.v_proj.bias", grads), torch.arange(8.0, 12.0, dtype=torch.float64) * 10)


def test_is_multihead_attentions_packed_in_proj_split_in_query_key_value_order():
    torch_mha = torch.nn.MultiheadAttention(6, 2, batch_first=True)
    state = {f"blocks.0.attn.{k}": v.numpy() for k, v in torch_mha.state_dict().items()}
    contract = {f"blocks.0.attn.{p}_proj.{w}": shape for p in "qkvo" for w, shape in
                (("weight", (6, 6)), ("bias", (6,)))}
    contract = {k.replace("o_proj", "out_proj"): v for k, v in contract.items()}
    mapping = map_params(state, {}, contract)
    assert not mapping.unmapped
    assert np.array_equal(mapping.values["blocks.0.attn.k_proj.weight"], state["blocks.0.attn.in_proj_weight"][6:12])
    assert mapping.sources["blocks.0.attn.v_proj.bias"][0].name == "blocks.0.attn.in_proj_bias"
    assert mapping.sources["blocks.0.attn.out_proj.weight"][0].name == "blocks.0.attn.out_proj.weight"
    other_scope = {"blocks.1.attn.in_proj_weight": np.zeros((18, 6))}  # another block's packed weights stay its own
    assert map_params(other_scope, {}, {"blocks.0.attn.q_proj.weight": (6, 6)}).unmapped == ["blocks.0.attn.q_proj.weight"]


def test_are_per_head_modules_stacked_by_role_and_index():
    heads = {f"heads.{i}.{role}.{w}": np.full((2, 6) if w == "weight" else (2,), 10.0 * i + j)
             for i in range(2) for j, role in enumerate(("query", "key", "value")) for w in ("weight", "bias")}
    mapping = map_params(heads, {}, QKV)
    assert not mapping.unmapped
    assert mapping.values["k_proj.weight"][:, 0].tolist() == [1, 1, 11, 11]
    assert [p.name for p in mapping.sources["v_proj.bias"]] == ["heads.0.value.bias", "heads.1.value.bias"]


def test_does_an_interface_check_report_every_deviation_at_once():
    reply = RunReply(params={"w.weight": np.ones((2, 3))}, modules={"w": {"type": "Linear", "in_features": 3},
                                                                      "n": {"type": "LayerNorm", "eps": 1e-5}})
    deviations = Deviations("M")
    deviations.module(reply, "n", "LayerNorm", eps=1e-6)
    deviations.module(reply, "ffn", "Sequential")
    deviations.params(reply, {"w.weight": (3, 3), "w.bias": (3,)})
    with pytest.raises(CheckFailure) as caught:
        deviations.raise_any()
    message = caught.value.message
    assert all(s in message for s in ("n.eps is 1e-05", "no sub-module 'ffn'", "no parameter(s) w.bias",
                                      "w.weight has shape (2, 3); expected (3, 3)"))


def _scaled(p, xs, *, scale=1.0, shift=0.0):
    return [xs[0] * scale + shift]


REFERENCE = Reference(_scaled, {"shift": [(1.0, "shifted by one")]}, parts=("Inner",))
X = [torch.arange(4, dtype=torch.float64)]


class Graded:
    """A grading's context as ``judge`` asks it: what each part computes (``Context.base`` and ``unknown``)."""

    stood_in: dict = {}  # no stand-ins (``autograder.stand_ins``) in these gradings
    stand_ins: dict = {}

    def __init__(self, base: dict | None = None, unknown: tuple = ()):
        self.switches, self.unknown_parts = dict(base or {}), set(unknown)

    def base(self, *parts):
        return dict(self.switches) if parts else {}

    def unknown(self, *parts):
        return [p for p in parts if p in self.unknown_parts]


INNER_DOUBLES = Graded(base={"scale": 2.0})


def test_does_a_composite_pass_when_only_its_part_makes_the_mistake():
    got = [np.arange(4, dtype=np.float32) * 2]  # the part inside doubles; the composite's own logic is right
    judge(INNER_DOUBLES, "composite", got, REFERENCE, {}, X)


def test_does_a_composite_own_mistake_fail_with_its_hint_on_top_of_its_parts():
    got = [np.arange(4, dtype=np.float32) * 2 + 1]
    with pytest.raises(CheckFailure) as caught:
        judge(INNER_DOUBLES, "composite", got, REFERENCE, {}, X)
    assert caught.value.hint == "shifted by one"


def test_does_a_composite_that_does_not_use_its_part_pass_when_it_matches_the_contract():
    judge(INNER_DOUBLES, "composite", [np.arange(4, dtype=np.float32)], REFERENCE, {}, X)


def test_does_a_composite_whose_part_computes_no_known_function_fail_whatever_it_returns():
    """The engine asks the grading what the parts compute: a check cannot forget it and give a verdict that
    depends on the draw."""
    for got in ([np.arange(4, dtype=np.float32)], [np.arange(4, dtype=np.float32) * 2]):
        with pytest.raises(CheckFailure, match="cannot be judged on its own logic while your Inner computes"):
            judge(Graded(unknown=("Inner",)), "composite", got, REFERENCE, {}, X)


def test_is_an_output_of_the_wrong_shape_left_to_the_shapes_check():
    reference = Reference(lambda p, xs: [xs[0], xs[0][:2]])
    judge(Graded(), "two outputs", [np.arange(4, dtype=np.float32), np.zeros((3, 3), np.float32)], reference, {}, X)


def test_does_a_renamed_container_map_with_its_layers_under_their_own_names():
    params = {"mha.in_proj_weight": np.zeros((12, 4)), "mha.in_proj_bias": np.zeros(12),
              "mha.out_proj.weight": np.ones((4, 4)), "mha.out_proj.bias": np.ones(4)}
    contract = {f"attn.{p}_proj.{w}": ((4, 4) if w == "weight" else (4,)) for p in ("q", "k", "v", "out")
                for w in ("weight", "bias")}
    mapping = map_params(params, {}, contract)
    assert not mapping.unmapped
    assert mapping.sources["attn.out_proj.weight"][0].name == "mha.out_proj.weight"
    assert mapping.sources["attn.k_proj.bias"][0] == Piece("mha.in_proj_bias", 4, 8)


def test_does_a_lone_layer_never_pass_for_a_renamed_container_or_a_named_layer():
    params = {"ffn.weight": np.zeros((4, 4))}  # no sub-module: not the contract's attn container
    assert map_params(params, {}, {"attn.q_proj.weight": (4, 4)}).unmapped == ["attn.q_proj.weight"]


def test_do_flat_layers_map_onto_the_contracts_nested_ones_when_their_shapes_tell_them_apart():
    params = {"fc1.weight": np.zeros((6, 4)), "fc1.bias": np.zeros(6), "fc2.weight": np.ones((4, 6)), "fc2.bias": np.ones(4)}
    contract = {"mlp.0.weight": (6, 4), "mlp.0.bias": (6,), "mlp.3.weight": (4, 6), "mlp.3.bias": (4,)}
    mapping = map_params(params, {}, contract)
    assert {k: v[0].name for k, v in mapping.sources.items()} == {
        "mlp.0.weight": "fc1.weight", "mlp.0.bias": "fc1.bias", "mlp.3.weight": "fc2.weight", "mlp.3.bias": "fc2.bias"}
    same = {"fc1.weight": np.zeros((4, 4)), "fc2.weight": np.ones((4, 4))}  # a tie is left unmapped
    assert map_params(same, {}, {"mlp.0.weight": (4, 4)}).unmapped == ["mlp.0.weight"]


def test_are_a_table_with_a_leading_1_and_a_renamed_bare_parameter_mapped():
    table = {"position_embedding": np.arange(6.0).reshape(1, 3, 2)}
    mapping = map_params(table, {}, {"position_embedding.weight": (3, 2)})
    assert tuple(mapping.values["position_embedding.weight"].shape) == (3, 2)
    grads = {"position_embedding": np.ones((1, 3, 2))}
    assert tuple(mapping.take("position_embedding.weight", grads).shape) == (3, 2)
    renamed = map_params({"pos_embedding": np.zeros((1, 3, 2)), "head.weight": np.zeros((1, 3, 2))}, {},
                         {"position_embedding": (1, 3, 2)})
    assert renamed.sources["position_embedding"][0].name == "pos_embedding"


OUT = {f"{p}.{w}": shape for p in ("q_proj", "k_proj", "v_proj", "out_proj") for w, shape in
       (("weight", (4, 4)), ("bias", (4,)))}


@pytest.mark.parametrize("spelling", [("q", "k", "v", "o"), ("to_q", "to_k", "to_v", "to_out"),
                                      ("query", "key", "value", "proj"), ("w_q", "w_k", "w_v", "w_o"),
                                      ("wq", "wk", "wv", "wo")], ids=lambda s: "/".join(s))
def test_are_projections_named_by_role_mapped_whatever_the_spelling(spelling):
    params = {f"{name}.{w}": np.full((4, 4) if w == "weight" else (4,), float(i)) for i, name in enumerate(spelling)
              for w in ("weight", "bias")}
    mapping = map_params(params, {name: LINEAR for name in spelling}, OUT)
    assert not mapping.unmapped
    assert {k: v[0].name.rpartition(".")[0] for k, v in mapping.sources.items()} == {
        k: spelling[["q_proj", "k_proj", "v_proj", "out_proj"].index(k.rpartition(".")[0])] for k in OUT}


def test_is_a_bias_false_layer_under_a_fused_or_nested_name_a_zero_bias():
    """vit-pytorch's fused to_qkv and to_out.0, both nn.Linear(bias=False) for the projections."""
    params = {"to_qkv.weight": np.arange(48.0).reshape(12, 4), "to_out.0.weight": np.ones((4, 4))}
    mapping = map_params(params, {"to_qkv": LINEAR, "to_out.0": LINEAR}, OUT)
    assert not mapping.unmapped
    assert [mapping.sources[f"{p}_proj.bias"] for p in "qkv"] == [(), (), ()]
    assert mapping.sources["out_proj.bias"] == () and mapping.sources["out_proj.weight"] == (Piece("to_out.0.weight"),)
    with_bias = {**params, "to_qkv.bias": np.zeros(12)}  # a layer with its bias keeps it
    assert map_params(with_bias, {"to_qkv": LINEAR, "to_out.0": LINEAR}, OUT).sources["k_proj.bias"] == (
        Piece("to_qkv.bias", 4, 8),)


SE_MLP = {"fc1.weight": (2, 8, 1, 1), "fc1.bias": (2,), "fc2.weight": (8, 2, 1, 1), "fc2.bias": (8,)}


@pytest.mark.parametrize("layer, shapes", [("Conv2d", ((2, 8, 1, 1), (8, 2, 1, 1))), ("Linear", ((2, 8), (8, 2)))],
                         ids=["luuuyi_conv_fc", "senet_linear_fc"])
def test_is_a_bias_false_mlp_nested_in_a_sequential_mapped_as_1x1_convolutions(layer, shapes):
    """An MLP fc = Sequential(layer(C, C // r, bias=False), ReLU, layer(C // r, C, bias=False)): nn.Linear on the
    pooled features is the same maths as the contract's 1x1 convolutions."""
    params = {"fc.0.weight": np.ones(shapes[0]), "fc.2.weight": np.ones(shapes[1])}
    mapping = map_params(params, {"fc.0": {"type": layer}, "fc.2": {"type": layer}}, SE_MLP)
    assert not mapping.unmapped
    assert tuple(mapping.values["fc1.weight"].shape) == (2, 8, 1, 1) and mapping.sources["fc2.bias"] == ()
    grads = {"fc.2.weight": np.full(shapes[1], 3.0)}
    assert tuple(mapping.take("fc2.weight", grads).shape) == (8, 2, 1, 1)  # gradients are read the same way


def test_is_a_role_less_output_projection_never_taken_for_a_query():
    params = {"q.weight": np.ones((4, 4)), "o.weight": np.ones((4, 4))}
    mapping = map_params(params, {}, {"q_proj.weight": (4, 4), "out_proj.weight": (4, 4)})
    assert mapping.sources == {"q_proj.weight": (Piece("q.weight"),), "out_proj.weight": (Piece("o.weight"),)}


def test_does_a_values_check_that_cannot_place_an_entry_name_it_with_its_shape_and_what_is_left_over():
    from autograder.kit.common import mapped_params

    required = {"fc1.weight": (2, 8, 1, 1), "fc2.weight": (8, 2, 1, 1)}
    submitted = {"fc1.weight": np.ones((2, 8, 1, 1)), "mlp.last.weight": np.ones((8, 3))}  # another width
    params = mapped_params(map_params(submitted, {}, required), submitted, required)
    reference = Reference(lambda p, xs: [xs[0] * p["fc2.weight"].sum()])
    with pytest.raises(CheckFailure) as caught:
        judge(Graded(), "SE", [np.arange(4, dtype=np.float32)], reference, params, X)
    assert ("the contract's fc2.weight (8, 2, 1, 1) could not be placed (left over in your code: mlp.last.weight "
            "(8, 3))") in caught.value.message


@pytest.mark.parametrize("contract, submitted", [
    ("classifier", "out"), ("classifier", "fc_out"), ("classifier", "proj"), ("fc2", "conv_out"),
    ("mlp.3", "mlp.c_proj")], ids=lambda s: s)
def test_does_a_layer_named_like_an_output_still_fill_a_contract_layer_with_no_role(contract, submitted):
    params = {f"{submitted}.weight": np.ones((3, 5)), "other.weight": np.ones((5, 5))}
    mapping = map_params(params, {}, {f"{contract}.weight": (3, 5)})
    assert mapping.sources == {f"{contract}.weight": (Piece(f"{submitted}.weight"),)}


def test_is_no_zero_bias_made_up_while_a_separate_bias_of_its_shape_is_spare():
    """timm's fused qkv without bias, its q_bias and v_bias kept apart: not the contract's structure, and not a
    zero bias either."""
    params = {"attn.qkv.weight": np.ones((12, 6)), "attn.q_bias": np.ones(4), "attn.v_bias": np.ones(4)}
    contract = {f"attn.{k}": v for k, v in QKV.items()}
    mapping = map_params(params, {"attn.qkv": LINEAR}, contract)
    assert "attn.q_proj.bias" in mapping.unmapped and "attn.q_proj.weight" not in mapping.unmapped
