"""Does the transformer exercise's grader give full marks to correct code, zero to the stub, and lose points
(with the right named hint) for each known mistake?"""

from __future__ import annotations

import pytest

from conftest import SOLUTION, failed, grade_source_in_process, stub_source
from mistake_edits import mutated_source
from mistake_edits.transformer import REAL_WORLD, TRANSFORMER, TRANSFORMER_SOLUTION

from autograder.checks import Status
from autograder.exercises import get_exercise
from autograder.grading import grade_path

EXERCISE = get_exercise("transformer")


def test_does_the_reference_pass_every_check(solution_text):
    report = grade_source_in_process(solution_text)
    assert failed(report).keys() <= {"clf.training"}  # skipped here; trained in test_training.py
    assert report.score == report.max_score - EXERCISE.check("clf.training").points


def test_does_the_stub_score_zero_without_crashing(solution_text):
    report = grade_source_in_process(stub_source(solution_text))
    assert report.score == 0
    assert not report.grader_errors
    assert all("not implemented yet" in r.message for r in report.results if r.status == Status.ERROR)


ALTERNATIVES = ["transformer_einsum.py", "transformer_loop_heads.py"]


@pytest.mark.parametrize("name", ALTERNATIVES)
def test_does_a_correct_implementation_written_differently_score_full_marks(name):
    from conftest import TESTS

    report = grade_source_in_process((TESTS / "submissions" / name).read_text())
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


# Dropout on each sub-layer's output, written otherwise than the solution's dropout1/dropout2 modules.
DROPOUT_STYLES = {
    "one_module_for_both": (("self.dropout2(self.ffn(x))", "self.dropout1(self.ffn(x))"),),
    "functional_with_self_training": (
        ("self.dropout1(attn_out)", "F.dropout(attn_out, self.dropout1.p, self.training)"),
        ("self.dropout2(self.ffn(x))", "F.dropout(self.ffn(x), self.dropout2.p, self.training)")),
}


@pytest.mark.parametrize("style", sorted(DROPOUT_STYLES))
def test_does_dropout_on_each_sublayer_written_differently_pass_the_dropout_check(solution_text, style):
    source = solution_text
    for old, new in DROPOUT_STYLES[style]:
        assert source.count(old) == 1
        source = source.replace(old, new)
    report = grade_source_in_process(source, names=["block.dropout"])
    assert not failed(report), {k: v.message for k, v in failed(report).items()}


def test_is_a_sublayer_registered_under_two_names_silenced_under_both(solution_text):
    """``self.fc2 = self.ffn[2]``: one tensor under two names. Silencing only one copy would leave the feed-forward
    speaking, and its missing dropout unseen."""
    source = solution_text.replace("self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)",
                                   "self.fc2 = self.ffn[2]\n        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)", 1)
    source = source.replace("self.dropout2(self.ffn(x))", "self.ffn(x)")
    assert source.count("self.fc2 = self.ffn[2]") == 1 and "self.dropout2(self.ffn(x))" not in source
    lost = failed(grade_source_in_process(source, names=["block.dropout"]))
    assert "the feed-forward's output is not dropped out" in lost["block.dropout"].message


# A part that computes a function no switch names, or crashes: the composites built from it are judged with the
# grader's own part in its place (``autograder.stand_ins``), so it costs its own checks only.
FAILING_PARTS = {
    "sdpa_unknown": (("scores = query @ key.transpose(-2, -1) / math.sqrt(d)",
                      "scores = query @ key.transpose(-2, -1) / (math.sqrt(d) + 1)"), "sdpa."),
    "sdpa_crashes": (("    d = query.size(-1)\n", "    raise ValueError('not today')\n"), "sdpa."),
    "mha_unknown": (("return self.out_proj(y), weights", "return self.out_proj(y) * 1.5, weights"), "mha."),
}


@pytest.mark.parametrize("name", sorted(FAILING_PARTS))
def test_does_a_failing_part_cost_only_its_own_checks(solution_text, name):
    (old, new), prefix = FAILING_PARTS[name]
    assert solution_text.count(old) == 1
    lost = failed(grade_source_in_process(solution_text.replace(old, new)))
    assert lost.keys() - {"clf.training"}, "the part must lose its own checks"
    assert all(n.startswith(prefix) for n in lost.keys() - {"clf.training"}), {n: r.message for n, r in lost.items()}


# Correct composites written otherwise around a failing MultiHeadAttention: still judged with the grader's in its
# place. The attention registered under a second name and called by it; its projections named wq, wk, wv.
AROUND_A_FAILING_ATTENTION = {
    "called_by_a_second_name": (("self.attn = MultiHeadAttention(embed_dim, num_heads)",
                                 "self.attn = MultiHeadAttention(embed_dim, num_heads)\n        self.zattn = self.attn"),
                                ("attn_out, _ = self.attn(x, x, x, mask)", "attn_out, _ = self.zattn(x, x, x, mask)")),
    "projections_renamed": tuple((f"self.{n}_proj", f"self.w{n}") for n in "qkv"),
}


@pytest.mark.parametrize("name", sorted(AROUND_A_FAILING_ATTENTION))
def test_is_a_composite_written_otherwise_judged_with_the_grader_s_attention_in_place(solution_text, name):
    (old, new), _ = FAILING_PARTS["mha_unknown"]
    source = solution_text.replace(old, new)
    for before, after in AROUND_A_FAILING_ATTENTION[name]:
        assert before in source
        source = source.replace(before, after)
    lost = failed(grade_source_in_process(source))
    assert not any(n.startswith(("block.values", "block.gradients", "clf.")) for n in lost.keys() - {"clf.training"}), \
        {n: r.message for n, r in lost.items()}


def test_does_the_child_process_stand_in_for_a_module_as_the_in_process_runner_does(solution_text, tmp_path):
    """The grader's MultiHeadAttention in place of the submission's, inside its block and classifier, across the
    protocol (forward and backward calls), gives the report the in-process runner gives."""
    (old, new), _ = FAILING_PARTS["mha_unknown"]
    path = tmp_path / "mha_unknown.py"
    path.write_text(solution_text.replace(old, new))
    child = grade_path(path, "transformer", skip_training=True, device="cpu")
    in_process = grade_source_in_process(path.read_text())
    assert not child.grader_errors
    assert [(r.name, r.points, r.message) for r in child.results] == \
        [(r.name, r.points, r.message) for r in in_process.results]


FORBIDDEN = {
    "functional": ("    d = query.size(-1)\n", "    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask), None\n"),
    "alias": ("import math\n", "import math\nfrom torch.nn.functional import scaled_dot_product_attention as _fast\n"),
    "getattr": ("    d = query.size(-1)\n", "    out = getattr(torch._C._nn, 'scaled_dot_product_attention')(query, key, value)\n    d = query.size(-1)\n"),
}


@pytest.mark.parametrize("route", sorted(FORBIDDEN))
def test_is_the_builtin_attention_refused_by_any_route(solution_text, route):
    old, new = FORBIDDEN[route]
    source = solution_text.replace(old, new, 1)
    if route == "alias":
        source = source.replace("    d = query.size(-1)\n", "    _fast(query, key, value)\n    d = query.size(-1)\n", 1)
    report = grade_source_in_process(source)
    lost = failed(report)
    assert "sdpa.values" in lost and "scaled_dot_product_attention" in lost["sdpa.values"].message
    assert "yourself" in lost["sdpa.values"].message


def test_is_nn_multiheadattention_refused(solution_text):
    source = solution_text.replace(
        "        self.out_proj = nn.Linear(inner, embed_dim)\n",
        "        self.out_proj = nn.Linear(inner, embed_dim)\n        self.inner = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)\n", 1)
    source = source.replace(
        "        B, Tq, E = query.shape\n",
        "        return self.inner(query, key, value, need_weights=True, average_attn_weights=False)\n        B, Tq, E = query.shape\n", 1)
    lost = failed(grade_source_in_process(source))
    assert {"mha.interface", "mha.values", "mha.shapes"} <= lost.keys()
    assert "torch.nn.MultiheadAttention" in lost["mha.values"].message


def test_are_nan_outputs_reported_by_the_values_check_not_the_shapes_check(solution_text):
    body = ("return torch.full(query.shape[:-1] + value.shape[-1:], float('nan')), "
            "torch.ones(query.shape[:-1] + key.shape[-2:-1])")
    source = solution_text.replace("    d = query.size(-1)\n", f"    {body}\n    d = query.size(-1)\n", 1)
    lost = failed(grade_source_in_process(source))
    assert "sdpa.shapes" not in lost
    assert "sdpa.values" in lost and "contains NaN values" in lost["sdpa.values"].message


@pytest.mark.parametrize("body, message", [
    ("w = torch.softmax(query @ key.transpose(-2, -1), -1); return (w @ value).double(), w", "float64"),
    ("w = torch.softmax(query @ key.transpose(-2, -1), -1); return (w @ value).long(), w", "int64"),
    ("return 'output', 'weights'", "tuple of 2 tensors"),
    ("return (query @ key.transpose(-2, -1)).softmax(-1) @ value", "tuple of 2 tensors"),
])
def test_is_a_bad_output_reported_by_name(solution_text, body, message):
    source = solution_text.replace("    d = query.size(-1)\n", f"    {body}\n    d = query.size(-1)\n", 1)
    lost = failed(grade_source_in_process(source))
    assert "sdpa.shapes" in lost and message in lost["sdpa.shapes"].message


def test_does_the_child_process_grade_like_the_in_process_runner(tmp_path):
    """Both runners carry the same requests; a file graded in a child gets the same results."""
    mutation = next(m for m in TRANSFORMER if m.name == "heads_without_transpose")
    path = tmp_path / "sub.py"
    path.write_text(mutated_source(mutation, TRANSFORMER_SOLUTION))
    child = grade_path(path, "transformer", skip_training=True, device="cpu")
    inproc = grade_source_in_process(path.read_text())
    assert [(r.name, r.status, r.points, r.hint) for r in child.results] == \
           [(r.name, r.status, r.points, r.hint) for r in inproc.results]


def test_does_the_reference_file_score_full_marks_in_a_child_process():
    report = grade_path(SOLUTION, "transformer", skip_training=True, device="cpu")
    assert failed(report).keys() == {"clf.training"} and report.results[-1].status == Status.SKIPPED


# --- the grader's own weights: a submission's initialisation never decides a verdict ------------------------

MHA_INIT_END = "        self.out_proj = nn.Linear(inner, embed_dim)\n"
ZERO_QUERY_INIT = (MHA_INIT_END + "        nn.init.zeros_(self.q_proj.weight)\n"
                   "        nn.init.zeros_(self.q_proj.bias)\n")
Q_LINE = "        q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)\n"


def edited(solution_text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert old in solution_text, old
        solution_text = solution_text.replace(old, new, 1)
    return solution_text


def test_does_an_attention_that_zeroes_its_own_query_projection_still_score_full_marks(solution_text):
    """Its weights are replaced by the grader's before every comparison: the zeros never matter."""
    report = grade_source_in_process(edited(solution_text, (MHA_INIT_END, ZERO_QUERY_INIT)))
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


def test_does_an_attention_that_never_reads_the_query_lose_the_values(solution_text):
    """With its own zero query projection it agreed with the reference; with the grader's weights it cannot. The
    block and the classifier built from it are judged with the grader's attention in its place: they keep theirs."""
    ignores_query = Q_LINE.replace("self.q_proj(query)", "torch.zeros_like(self.q_proj(query))")
    report = grade_source_in_process(edited(solution_text, (MHA_INIT_END, ZERO_QUERY_INIT), (Q_LINE, ignores_query)))
    lost = failed(report)
    assert {"mha.values", "mha.mask"} <= lost.keys()
    assert not any(name.startswith(("block.", "clf.")) for name in lost.keys() - {"clf.training"}), lost.keys()
    assert "differs from the reference" in lost["mha.values"].message


def test_does_a_module_that_ignores_load_state_dict_lose_the_values(solution_text):
    forward = "    def forward(self, query, key, value, mask=None):\n"
    ignores = "    def load_state_dict(self, state_dict, strict=True, assign=False):\n        return None\n\n" + forward
    lost = failed(grade_source_in_process(edited(solution_text, (forward, ignores))))
    assert {"mha.values", "mha.mask"} <= lost.keys()


# --- gradients, compared by value with float64 autograd --------------------------------------------------

FFN_CALL = "x = self.norm2(x + self.dropout2(self.ffn(x)))"
FFN_DETACHED = ("x = self.norm2(x + self.dropout2(F.linear(torch.relu(F.linear(x, self.ffn[0].weight.detach(), "
                "self.ffn[0].bias)), self.ffn[2].weight, self.ffn[2].bias)))")


def test_does_a_block_that_detaches_a_parameter_lose_the_gradients_naming_it(solution_text):
    report = grade_source_in_process(edited(solution_text, (FFN_CALL, FFN_DETACHED)))
    lost = failed(report)
    # the values are right; the classifier's gradients behind the block are the block's to charge
    assert lost.keys() == {"block.gradients", "clf.training"}
    assert "no gradient reaches ffn.0.weight" in lost["block.gradients"].message


def test_does_a_hook_that_doubles_a_gradient_lose_the_gradients_saying_by_how_much(solution_text):
    hooked = MHA_INIT_END + "        self.q_proj.weight.register_hook(lambda grad: 2 * grad)\n"
    lost = failed(grade_source_in_process(edited(solution_text, (MHA_INIT_END, hooked))))
    assert lost.keys() == {"mha.gradients", "clf.training"}  # once, in its own part
    message = lost["mha.gradients"].message
    assert "the gradient of q_proj.weight differs from the reference" in message and "2 times" in message


KEY_LINE = "        k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)\n"


@pytest.mark.parametrize("bias", ["", ", self.k_proj.bias * 0"], ids=["no_gradient", "zero_gradient"])
def test_may_the_key_bias_that_softmax_ignores_get_no_gradient(solution_text, bias):
    """softmax ignores a constant per row, so the key projection's bias has no gradient in exact arithmetic:
    None, zeros or rounding noise are all right there."""
    without_bias = KEY_LINE.replace("self.k_proj(key)", f"F.linear(key, self.k_proj.weight{bias})")
    report = grade_source_in_process(edited(solution_text, (KEY_LINE, without_bias)))
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


def test_is_a_known_mistake_not_charged_again_by_the_gradient_checks():
    """The gradients are those of the function the outputs compute: a named mistake costs its values only."""
    mutation = next(m for m in TRANSFORMER if m.name == "heads_without_transpose")
    lost = failed(grade_source_in_process(mutated_source(mutation, TRANSFORMER_SOLUTION)))
    assert not {name for name in lost if name.endswith(".gradients")}


def test_does_a_draw_within_float32_rounding_of_a_relu_kink_not_change_the_gradient_verdict():
    """Salt 3189639203 draws the classifier's weights so that one pre-activation of the first block's ReLU is
    1e-7 of its layer's largest from 0: float32 takes the other branch, and the embedding's gradients then
    differed by 10% from the float64 reference's although the code is the reference's own with one named
    mistake in its block. The gradient check now draws again (``kit.common.KINK_MARGIN``)."""
    mutation = next(m for m in REAL_WORLD if m.name == "unbiased_layer_norm")
    lost = failed(grade_source_in_process(mutated_source(mutation, TRANSFORMER_SOLUTION), salt=3189639203))
    assert lost.keys() == {"block.values", "clf.training"}, {k: v.message for k, v in lost.items()}
