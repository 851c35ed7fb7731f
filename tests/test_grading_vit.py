"""Does the Vision Transformer exercise's grader give full marks to correct code (the reference and correct code
written differently), zero to the stub, and lose points (with the right named hint, in the mistaken part only)
for each known mistake?"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ROOT, failed, grade_source_in_process, stub_source
from mistake_edits import Mutation, edit_problems, mutated_source
from mistake_edits.vit import VIT, VIT_CHECK_BUGS, VIT_FROZEN

from autograder.checks import Status
from autograder.exercises import get_exercise
from autograder.exercises import vit as public
from autograder.exercises.vit import hidden, mistakes
from autograder.exercises.vit import reference as ref
from autograder.param_map import map_params

SOLUTION = ROOT / "solutions" / "vit.py"
EXERCISE = get_exercise("vit")
TRAINING = {"vit.training", "cct.training"}
KNOWN = VIT + VIT_CHECK_BUGS


def source(mutation: Mutation) -> str:
    return mutated_source(mutation, SOLUTION)


def test_are_the_mutations_edits_of_unique_lines_of_the_solution():
    assert not edit_problems(KNOWN + (VIT_FROZEN,), SOLUTION, [c.name for c in EXERCISE.checks])


def test_do_the_checks_add_up_to_100_with_training_about_20():
    assert sum(c.points for c in EXERCISE.checks) == 100
    assert sum(EXERCISE.check(name).points for name in TRAINING) == 20
    assert all(EXERCISE.check(name).hidden for name in TRAINING)
    assert [c.part for c in EXERCISE.checks] == sorted((c.part for c in EXERCISE.checks), key=EXERCISE.parts.index)
    assert {p.name for p in EXERCISE.contracts} == set(EXERCISE.parts)


def test_does_the_reference_pass_every_check():
    report = grade_source_in_process(SOLUTION.read_text(), exercise="vit")
    assert failed(report).keys() == TRAINING, {k: v.message for k, v in failed(report).items()}
    assert not report.grader_errors


def test_does_the_stub_score_zero_without_crashing():
    report = grade_source_in_process(stub_source(SOLUTION.read_text()), exercise="vit")
    assert report.score == 0
    assert not report.grader_errors
    assert all(r.status in (Status.ERROR, Status.SKIPPED) for r in report.results)


def test_do_the_switch_tables_name_every_mistake_of_the_reference():
    """Each wrong value of each switch of the float64 reference has its hint (and so a values check names it)."""
    ours = {**hidden.PATCH_SWITCHES, **hidden.ENCODER_SWITCHES, **hidden.BLOCK_SWITCHES, **hidden.VIT_SWITCHES,
            **hidden.TOKENIZER_SWITCHES, **hidden.POOLING_SWITCHES}
    theirs = {**ref.VIT_SWITCHES, **ref.CCT_SWITCHES}
    assert set(ours) == set(theirs)
    for switch, values in theirs.items():
        assert {v for v, _ in ours[switch]} == set(values[1:]), switch
    assert set(hidden.CCT_SWITCHES) == {"positions", "final_norm"}  # the CCT's own; the rest are its parts'


@pytest.mark.parametrize("image_size, stages", [((9, 12), 2), ((7, 5), 1), ((16, 11), 3), (32, 2), ((8, 8), 1)])
def test_is_the_public_token_count_the_references(image_size, stages):
    for stride, padding in ((2, 1), (1, 1), (2, 0)):
        try:
            expected = ref.num_tokens(image_size, stages, pool_stride=stride, pool_padding=padding)
        except ValueError:
            expected = 0
        assert public.token_count(image_size, stages, stride, padding) == expected


def test_does_the_grader_map_the_packed_attention_of_the_solution():
    """nn.MultiheadAttention's in_proj_weight and in_proj_bias become the contract's q, k, v projections."""
    block = torch.nn.Module()
    block.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    state = {k: v.detach().numpy() for k, v in block.state_dict().items()}
    mapping = map_params(state, {}, public.attention_params("attn.", 8))
    assert not mapping.unmapped
    assert np.array_equal(mapping.values["attn.v_proj.bias"], state["attn.in_proj_bias"][16:])


# --- correct code written differently -------------------------------------------------------------------------

PATCHES_BODY = ("    x = images.reshape(B, C, h, P, w, P)  # (B, C, h, P, w, P): H = h * P rows, W = w * P columns\n"
                "    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, P, P): patch row, patch column, then one patch's values\n"
                "    return x.reshape(B, h * w, C * P * P)  # (B, N, C * P * P): row-major patches, (C, P, P) inside\n")
OWN_ATTENTION = '''

class MultiHeadAttention(nn.Module):
    """The transformer exercise's contract: q_proj, k_proj, v_proj, out_proj; returns (output, weights)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = nn.Dropout(dropout)  # on the attention weights, as nn.MultiheadAttention's
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query, key, value):
        B, Tq, E = query.shape
        nh, hs = self.num_heads, E // self.num_heads
        q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)
        k = self.k_proj(key).view(B, -1, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        v = self.v_proj(value).view(B, -1, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        weights = torch.softmax(q @ k.transpose(-2, -1) / hs ** 0.5, dim=-1)  # (B, nh, Tq, Tk)
        y = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, Tq, E)  # (B, nh, Tq, hs) -> (B, Tq, E)
        return self.out_proj(y), weights


# %% [ViTBlock]'''

ALTERNATIVES = {
    "patches_by_F_unfold": ((PATCHES_BODY, "    return F.unfold(images, P, stride=P).transpose(1, 2)  # (B, N, C*P*P)\n"),),
    "patches_by_Tensor_unfold": ((PATCHES_BODY,
                                  "    x = images.unfold(2, P, P).unfold(3, P, P)  # (B, C, h, w, P, P)\n"
                                  "    return x.permute(0, 2, 3, 1, 4, 5).reshape(B, h * w, C * P * P)  # (B, N, C*P*P)\n"),),
    "patches_by_einops": ((PATCHES_BODY, "    import einops\n\n"
                           "    return einops.rearrange(images, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', p1=P, p2=P)\n"),),
    "block_with_its_own_attention": (
        ("\n\n# %% [ViTBlock]", OWN_ATTENTION),
        ("self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)",
         "self.attn = MultiHeadAttention(embed_dim, num_heads, dropout)"),
        ("attended, weights = self.attn(h, h, h, need_weights=return_attention,\n"
         "                                      average_attn_weights=False)",
         "attended, weights = self.attn(h, h, h)")),
    "pooling_by_einsum": (("pooled = torch.bmm(weights.unsqueeze(1), x).squeeze(1)",
                           "pooled = torch.einsum('bn,bnd->bd', weights, x)"),),
    "tokenizer_with_a_pooling_module_and_permute": (
        ("        ### END SOLUTION\n\n    def forward(self, images):\n        \"\"\"images (B, C, H, W). Returns tokens",
         "        self.pool = nn.MaxPool2d(3, stride=2, padding=1)\n        ### END SOLUTION\n\n"
         "    def forward(self, images):\n        \"\"\"images (B, C, H, W). Returns tokens"),
        ("x = F.max_pool2d(F.relu(conv(x)), 3, stride=2, padding=1)", "x = self.pool(torch.relu(conv(x)))"),
        ("return x.flatten(2).transpose(1, 2)", "return x.permute(0, 2, 3, 1).reshape(B, -1, x.shape[1])")),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_does_a_correct_implementation_written_differently_score_full_marks(name):
    report = grade_source_in_process(source(Mutation(name, ALTERNATIVES[name], ())), exercise="vit")
    assert failed(report).keys() == TRAINING, {k: v.message for k, v in failed(report).items()}


# Deviations from the contract's names and forms that compute the right thing: they cost the interface check
# only, and their values and gradients are judged through the mapped parameters (``param_map``).
DEVIATIONS = {
    "attention_renamed": ((("self.attn = nn.MultiheadAttention(", "self.mha = nn.MultiheadAttention("),
                           ("attended, weights = self.attn(h, h, h,", "attended, weights = self.mha(h, h, h,")),
                          {"block.interface"}),
    "mlp_as_two_flat_layers": ((
        ("self.mlp = nn.Sequential(\n            nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),\n"
         "            nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout),\n        )",
         "self.fc1 = nn.Linear(embed_dim, mlp_dim)\n        self.fc2 = nn.Linear(mlp_dim, embed_dim)\n"
         "        self.drop = nn.Dropout(dropout)"),
        ("x = x + self.mlp(self.norm2(x))", "x = x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm2(x))))))")),
        {"block.interface"}),
    "position_table_as_a_1_N_D_parameter": ((
        ("self.position_embedding = nn.Embedding(num_patches, projection_dim)",
         "self.position_embedding = nn.Parameter(torch.randn(1, num_patches, projection_dim))"),
        ("return self.projection(patches) + self.position_embedding(positions)",
         "return self.projection(patches) + self.position_embedding[:, :N]")),
        {"encoder.interface"}),
    "cct_position_table_renamed": ((
        ("self.position_embedding = nn.Parameter(torch.zeros(1, N, D))\n        nn.init.trunc_normal_(self.position_embedding",
         "self.pos_embedding = nn.Parameter(torch.zeros(1, N, D))\n        nn.init.trunc_normal_(self.pos_embedding"),
        ("x = self.tokenizer(images) + self.position_embedding", "x = self.tokenizer(images) + self.pos_embedding")),
        {"cct.interface"}),
}


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_does_a_naming_deviation_cost_the_interface_only(name):
    edits, charged = DEVIATIONS[name]
    report = grade_source_in_process(source(Mutation(name, edits, ())), exercise="vit")
    assert failed(report).keys() == TRAINING | charged, {k: v.message for k, v in failed(report).items()}


# A position table left out altogether (not merely left unused): the known mistake is still named, in its own part.
NO_TABLE = {
    "patch_encoder": ((("        self.position_embedding = nn.Embedding(num_patches, projection_dim)\n", ""),
                       ("return self.projection(patches) + self.position_embedding(positions)",
                        "return self.projection(patches)")),
                      {"encoder.interface", "encoder.values"}, mistakes.ENCODER_NO_POSITIONS),
    "cct": ((("        self.position_embedding = nn.Parameter(torch.zeros(1, N, D))\n"
              "        nn.init.trunc_normal_(self.position_embedding, std=0.2)\n", ""),
             ("x = self.tokenizer(images) + self.position_embedding", "x = self.tokenizer(images)")),
            {"cct.interface", "cct.values"}, mistakes.CCT_NO_POSITIONS),
}


@pytest.mark.parametrize("name", sorted(NO_TABLE))
def test_does_a_model_without_any_position_table_get_the_no_position_hint_in_its_own_part(name):
    edits, charged, mistake = NO_TABLE[name]
    lost = failed(grade_source_in_process(source(Mutation(name, edits, ())), exercise="vit"))
    assert lost.keys() == TRAINING | charged, {k: v.message for k, v in lost.items()}
    values = next(n for n in charged if n.endswith(".values"))
    assert lost[values].hint == mistake.hint


def test_are_the_weights_as_a_tuple_accepted():
    edits = (("return (logits, maps) if return_attention else logits", "return (logits, tuple(maps)) if return_attention else logits"),
             ("return (logits, maps, pool_weights) if", "return (logits, tuple(maps), pool_weights) if"))
    report = grade_source_in_process(source(Mutation("tuple_maps", edits, ())), exercise="vit")
    assert failed(report).keys() == TRAINING, {k: v.message for k, v in failed(report).items()}


def test_is_the_tanh_approximation_of_gelu_named_in_its_own_part():
    edits = (("nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout)",
              "nn.Linear(embed_dim, mlp_dim), nn.GELU(approximate='tanh'), nn.Dropout(dropout)"),)
    lost = failed(grade_source_in_process(source(Mutation("gelu_tanh", edits, ())), exercise="vit"))
    assert lost.keys() == TRAINING | {"block.values"}, {k: v.message for k, v in lost.items()}
    assert "tanh approximation" in lost["block.values"].hint


def test_is_a_transformer_layer_of_torch_refused_in_the_block():
    text = source(Mutation("torch_layer", (("self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)",
                                            "self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)\n"
                                            "        self.layer = nn.TransformerEncoderLayer(embed_dim, num_heads, "
                                            "batch_first=True)"),), ()))
    lost = failed(grade_source_in_process(text, exercise="vit"))
    assert "block.values" in lost and "TransformerEncoderLayer" in lost["block.values"].message


# A part that computes a function no switch names: the models built from it are judged with the grader's own part in
# its place (``autograder.stand_ins``), so it costs its own checks only.
FAILING_PARTS = {
    "block_mixes_pre_and_post_norm": (("x = x + attended  # (B, N, D)", "x = self.norm1(x + attended)  # (B, N, D)"),
                                      "block."),
    "encoder_scales_the_projection": (
        ("return self.projection(patches) + self.position_embedding(positions)",
         "return self.projection(patches) * 1.1 + self.position_embedding(positions)"), "encoder."),
}


@pytest.mark.parametrize("name", sorted(FAILING_PARTS))
def test_does_a_part_computing_an_unknown_function_cost_only_its_own_checks(name):
    (old, new), prefix = FAILING_PARTS[name]
    lost = failed(grade_source_in_process(source(Mutation(name, ((old, new),), ())), exercise="vit"))
    assert lost.keys() - TRAINING and all(n.startswith(prefix) for n in lost.keys() - TRAINING), \
        {k: v.message for k, v in lost.items()}


def test_is_the_class_token_hint_given_only_to_a_model_that_holds_one():
    """A class-token ViT's failures name the class token; another model failing the same checks gets no such
    hint (here: a last Linear without bias)."""
    known = {m.name: m for m in KNOWN}
    names = ["vit.interface", "vit.attention"]
    token = failed(grade_source_in_process(source(known["vit_class_token"]), exercise="vit", names=names))
    assert set(token) == set(names) and all("a class token" in (r.hint or "") for r in token.values())
    assert "cls_token" in token["vit.interface"].hint  # the hint names the submission's own entry
    other = failed(grade_source_in_process(source(known["vit_last_layer_without_bias"]), exercise="vit", names=names))
    assert set(other) == {"vit.interface"} and "class token" not in (other["vit.interface"].hint or "")


def test_does_a_model_that_cannot_be_built_keep_its_interface_failure_when_a_class_token_is_sought():
    """The class-token lookup builds the model: where that raises, the check keeps its own failure and status."""
    broken = source(Mutation("broken", (
        ("        image_size,\n        patch_size: int,\n        in_channels: int,\n        num_classes: int,",
         "        image_size,\n        patch: int,\n        in_channels: int,\n        num_classes: int,"),
        ("        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size\n",
         "        raise ValueError('not built')\n        patch_size = patch\n"
         "        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size\n")), ()))
    result = failed(grade_source_in_process(broken, exercise="vit", names=["vit.interface"]))["vit.interface"]
    assert result.status == Status.FAILED and "patch_size" in result.message and not result.hint
