"""Does the transformer exercise's grader give full marks to correct code, zero to the stub, and lose points
(with the right named hint) for each known mistake?"""

from __future__ import annotations

import pytest

from conftest import SOLUTION, failed, grade_source_in_process, stub_source
from mutations import CHECK_BUGS, TRANSFORMER, mutated_source

from autograder.checks import Status
from autograder.exercises import get_exercise
from autograder.grading import grade_path

EXERCISE = get_exercise("transformer")
UNIT_CHECKS = [c.name for c in EXERCISE.checks if not c.training]


def test_does_the_reference_pass_every_check(solution_text):
    report = grade_source_in_process(solution_text)
    assert failed(report).keys() <= {"clf.training"}  # skipped here; trained in test_training.py
    assert report.score == report.max_score - EXERCISE.check("clf.training").points


def test_does_the_stub_score_zero_without_crashing(solution_text):
    report = grade_source_in_process(stub_source(solution_text))
    assert report.score == 0
    assert not report.grader_errors
    assert all("not implemented yet" in r.message for r in report.results if r.status == Status.ERROR)


@pytest.mark.parametrize("mutation", TRANSFORMER + CHECK_BUGS, ids=lambda m: m.name)
def test_does_a_known_mistake_lose_points_and_get_named(mutation):
    report = grade_source_in_process(mutated_source(mutation))
    lost = failed(report)
    assert not report.grader_errors
    for name in mutation.failing:
        assert name in lost, f"{mutation.name} should fail {name}"
        assert lost[name].message, f"{name} failed without saying why"
    if mutation.hint:
        hints = [r.hint for r in lost.values() if r.hint]
        assert any(mutation.hint in h for h in hints), f"no hint names {mutation.hint!r}: {hints}"
    # a mistake in one part leaves the parts that do not use it alone
    assert report.score > 0


def test_does_every_check_have_a_submission_that_fails_it():
    caught = {name for m in TRANSFORMER + CHECK_BUGS for name in m.failing} | {"clf.training"}  # see test_training
    assert set(UNIT_CHECKS) | {"clf.training"} <= caught


ALTERNATIVES = ["transformer_einsum.py", "transformer_loop_heads.py"]


@pytest.mark.parametrize("name", ALTERNATIVES)
def test_does_a_correct_implementation_written_differently_score_full_marks(name):
    from conftest import TESTS

    report = grade_source_in_process((TESTS / "submissions" / name).read_text())
    assert failed(report).keys() <= {"clf.training"}, {k: v.message for k, v in failed(report).items()}


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


@pytest.mark.parametrize("body, message", [
    ("return torch.full(query.shape[:-1] + value.shape[-1:], float('nan')), torch.ones(query.shape[:-1] + key.shape[-2:-1])", "NaN"),
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
    path.write_text(mutated_source(mutation))
    child = grade_path(path, "transformer", skip_training=True, device="cpu")
    inproc = grade_source_in_process(path.read_text())
    assert [(r.name, r.status, r.points, r.hint) for r in child.results] == \
           [(r.name, r.status, r.points, r.hint) for r in inproc.results]


def test_does_the_reference_file_score_full_marks_in_a_child_process():
    report = grade_path(SOLUTION, "transformer", skip_training=True, device="cpu")
    assert failed(report).keys() == {"clf.training"} and report.results[-1].status == Status.SKIPPED
