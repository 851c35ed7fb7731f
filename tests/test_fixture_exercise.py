"""Does the tests' fixture exercise grade as an exercise must: its reference 100 without any training, its
release stub 0, and each of its known mistakes costing points in its own part only, with its own hint?"""

from __future__ import annotations

import dataclasses

import pytest
from conftest import FIXTURE, FIXTURE_FLAWED, FIXTURE_SOLUTION, failed, grade_source_in_process, stub_source

import fixture_exercise as fx
import fixture_exercise.mistakes  # noqa: F401 - fx.mistakes
from autograder.exercises import completed, register, registry

SOLUTION_TEXT = FIXTURE_SOLUTION.read_text()
# One-change edits of the reference, each a known mistake: (text, replacement, the part that makes it, its hint)
MISTAKES = {
    "mask ignored": ("    if mask is not None:\n        scores = scores.masked_fill(~mask, float(\"-inf\"))\n", "",
                     fx.MS, fx.mistakes.MASK_IGNORED.hint),
    "mask after the softmax": (
        "    if mask is not None:\n        scores = scores.masked_fill(~mask, float(\"-inf\"))\n"
        "    return torch.softmax(scores, dim=-1)\n",
        "    weights = torch.softmax(scores, dim=-1)\n    return weights if mask is None else weights * mask\n",
        fx.MS, fx.mistakes.MASK_AFTER.hint),
    "no tanh": ("self.score(torch.tanh(self.proj(x)))", "self.score(self.proj(x))", fx.POOL, fx.mistakes.NO_TANH.hint),
    "projected values": ('torch.einsum("bt,btd->bd", weights, x)', 'torch.einsum("bt,btd->bd", weights, self.proj(x))',
                         fx.POOL, fx.mistakes.PROJECTED.hint),
}


def test_is_the_fixture_worth_100_points_in_two_parts_without_training():
    exercise = completed(fx.EXERCISE, "fixture_exercise")  # as the registry completes it
    assert sum(c.points for c in exercise.checks) == 100
    assert exercise.parts == (fx.MS, fx.POOL) and {c.part for c in exercise.checks} == set(exercise.parts)
    assert not [c for c in exercise.checks if c.training] and exercise.task is None and not exercise.profiles
    assert {c.hidden for c in exercise.checks} == {True, False}
    assert set(exercise.probes) == set(exercise.parts)


def test_is_the_fixture_registered_only_for_the_tests_that_ask_for_it(request):
    assert FIXTURE not in registry()
    registered = request.getfixturevalue("fixture_exercise")
    assert registry()[FIXTURE] is registered and registered.name == fx.EXERCISE.name
    with pytest.raises(ValueError, match="already registered"):
        register(fx.EXERCISE, "fixture_exercise")
    with pytest.raises(ValueError, match="already registered"):  # never in place of a course exercise
        register(dataclasses.replace(fx.EXERCISE, name=next(n for n in registry() if n != FIXTURE)), "fixture_exercise")


def test_does_the_reference_score_100_with_training_not_skipped(fixture_exercise):
    report = grade_source_in_process(SOLUTION_TEXT, FIXTURE, skip_training=False)
    assert report.score == report.max_score == 100, failed(report)


def test_does_the_release_stub_score_0(fixture_exercise):
    report = grade_source_in_process(stub_source(SOLUTION_TEXT), FIXTURE)
    assert report.score == 0 and all("NotImplementedError" in r.message for r in report.results)


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_does_each_known_mistake_cost_points_in_its_own_part_with_its_hint(mistake, fixture_exercise):
    old, new, part, hint = MISTAKES[mistake]
    assert old in SOLUTION_TEXT, old
    report = grade_source_in_process(SOLUTION_TEXT.replace(old, new, 1), FIXTURE)
    lost = failed(report)
    assert lost and {r.part for r in lost.values()} == {part}, {n: (r.message, r.hint) for n, r in lost.items()}
    values = next(r for r in lost.values() if r.name.endswith(".values"))
    assert values.hint == hint


def test_does_the_flawed_sample_lose_its_two_mistakes(fixture_exercise):
    report = grade_source_in_process(FIXTURE_FLAWED.read_text(), FIXTURE)
    assert report.score == 55
    assert {n: r.hint for n, r in failed(report).items()} == {
        "ms.values": fx.mistakes.MASK_AFTER.hint, "ms.normalised": fx.mistakes.MASK_AFTER.hint, "pool.values": fx.mistakes.NO_TANH.hint}


def test_does_a_part_that_computes_no_recognised_function_earn_no_behaviour_points(fixture_exercise):
    """Uniform weights over the real steps are a valid pooling that ignores appended padding: the behaviour check
    would pay for it. The engine pays a part's behaviour checks only once the part computes a known function."""
    old = '        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)\n'
    uniform = '        weights = masked_softmax(torch.zeros_like(x[..., 0]), mask)  # (B, T): the same score everywhere\n'
    assert old in SOLUTION_TEXT
    report = grade_source_in_process(SOLUTION_TEXT.replace(old, uniform, 1), FIXTURE)
    lost = failed(report)
    assert {"pool.values", "pool.padding"} <= lost.keys(), {n: r.message for n, r in lost.items()}
    assert "computes neither the contract's function nor a known mistake" in lost["pool.padding"].message
    # the same function with its projection as bare parameters the grader cannot map: compared with nothing, so
    # not judged unknown, and its behaviour is still paid
    bare = SOLUTION_TEXT.replace("        self.proj = nn.Linear(dim, dim)\n",
                                 "        self.w = nn.Parameter(torch.randn(dim, dim) / dim ** 0.5)\n"
                                 "        self.b = nn.Parameter(torch.zeros(dim))\n", 1)
    bare = bare.replace("torch.tanh(self.proj(x))", "torch.tanh(x @ self.w.T + self.b)", 1)
    lost = failed(grade_source_in_process(bare, FIXTURE))
    assert "pool.values" in lost and "cannot be compared" in lost["pool.values"].message
    assert "pool.padding" not in lost, lost["pool.padding"].message


def test_does_a_behaviour_check_that_fails_on_its_own_keep_its_message_on_an_unrecognised_part(fixture_exercise):
    """Uniform weights everywhere, padding included: no recognised function, and the behaviour check's own finding
    (weight on masked positions, with its hint) says more than the engine's rule, so it is the one reported."""
    old = '    if mask is not None:\n        scores = scores.masked_fill(~mask, float("-inf"))\n    return torch.softmax(scores, dim=-1)\n'
    assert old in SOLUTION_TEXT
    report = grade_source_in_process(SOLUTION_TEXT.replace(old, "    return torch.ones_like(scores) / scores.shape[-1]\n", 1),
                                     FIXTURE)
    lost = failed(report)
    assert "ms.values" in lost and "masked positions get weight" in lost["ms.normalised"].message
    assert lost["ms.normalised"].hint == fx.mistakes.MASK_IGNORED.hint


def test_does_a_part_that_answers_its_probe_otherwise_than_its_checks_earn_nothing_from_it(fixture_exercise):
    """masked_softmax is right except on the probe's scores (recognised here by their first value; a student
    would use their shape or the seed), where it applies the mask after the softmax, a known mistake; the
    pooling makes that mistake itself, inline. Judged on what the probe saw, the pooling would pass; the engine
    fails the values check that the probe contradicts and judges nothing on that part."""
    from fixture_exercise import ms_inputs

    first = float(ms_inputs(9000)[0].flat[0])  # the probe's first score (the tests' salt is 0)
    old = '    if mask is not None:\n        scores = scores.masked_fill(~mask, float("-inf"))\n    return torch.softmax(scores, dim=-1)\n'
    spoof = (f'    if mask is not None and abs(float(scores.flatten()[0]) - {first!r}) < 1e-6:\n'
             '        return torch.softmax(scores, dim=-1) * mask\n' + old)
    pooled = '        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)\n'
    inline = ('        weights = torch.softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), dim=-1)  # (B, T)\n'
              '        weights = weights * mask if mask is not None else weights  # (B, T): the mask after\n')
    assert old in SOLUTION_TEXT and pooled in SOLUTION_TEXT
    source = SOLUTION_TEXT.replace(old, spoof, 1).replace(pooled, inline, 1)
    lost = failed(grade_source_in_process(source, FIXTURE))
    assert "computes the contract's function on these inputs but a known mistake on others" in lost["ms.values"].message
    assert lost["ms.values"].hint == fx.mistakes.MASK_AFTER.hint
    assert "pool.values" in lost and "cannot be judged on its own logic" in lost["pool.values"].message


# masked_softmax at temperature 2: a function no switch names. The pooling built from it is still judged, with
# the grader's own masked_softmax in its place (``autograder.stand_ins``), on what the pooling itself does.
SOFTMAX = "    return torch.softmax(scores, dim=-1)\n"
UNKNOWN_SOFTMAX = SOLUTION_TEXT.replace(SOFTMAX, "    return torch.softmax(scores / 2, dim=-1)\n", 1)
MS_CHECKS = {"ms.values", "ms.normalised", "ms.gradients"}


def test_is_a_composite_judged_given_its_own_part_when_that_part_computes_an_unknown_function(fixture_exercise):
    assert UNKNOWN_SOFTMAX != SOLUTION_TEXT
    lost = failed(grade_source_in_process(UNKNOWN_SOFTMAX, FIXTURE))
    assert lost.keys() == MS_CHECKS, {n: r.message for n, r in lost.items()}


def test_is_a_composite_judged_given_its_own_part_when_that_part_crashes(fixture_exercise):
    crashing = SOLUTION_TEXT.replace(SOFTMAX, "    raise ValueError('not today')\n", 1)
    lost = failed(grade_source_in_process(crashing, FIXTURE))
    assert not any(name.startswith("pool.") for name in lost), {n: r.message for n, r in lost.items()}


def test_is_the_composite_s_own_mistake_still_named_beside_an_unknown_part(fixture_exercise):
    old, new, part, hint = MISTAKES["no tanh"]
    lost = failed(grade_source_in_process(UNKNOWN_SOFTMAX.replace(old, new, 1), FIXTURE))
    assert lost.keys() == MS_CHECKS | {"pool.values"}, {n: r.message for n, r in lost.items()}
    assert lost["pool.values"].hint == hint
    assert "with the grader's own masked_softmax in place of yours" in lost["pool.values"].message


def test_does_the_child_process_stand_in_for_a_part_as_the_in_process_runner_does(fixture_exercise, tmp_path):
    from autograder.grading import grade_path

    path = tmp_path / "unknown_softmax.py"
    path.write_text(UNKNOWN_SOFTMAX)
    child = grade_path(path, fixture_exercise, skip_training=True, device="cpu")
    in_process = grade_source_in_process(UNKNOWN_SOFTMAX, FIXTURE)
    assert not child.grader_errors
    assert [(r.name, r.points, r.message) for r in child.results] == \
        [(r.name, r.points, r.message) for r in in_process.results]


def test_is_a_composite_that_does_not_call_the_part_told_so(fixture_exercise):
    """The pooling softmaxes inline: nothing of the grader's can stand in, so it is charged, and told why."""
    pooled = '        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)\n'
    inline = ('        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # (B, T)\n'
              '        if mask is not None:\n            scores = scores.masked_fill(~mask, float("-inf"))\n'
              '        weights = torch.softmax(scores / 2, dim=-1)  # (B, T)\n')
    lost = failed(grade_source_in_process(UNKNOWN_SOFTMAX.replace(pooled, inline, 1), FIXTURE))
    assert "pool.values" in lost
    assert "could not compute the contract's masked_softmax in its place (it can where this code calls your " \
           "masked_softmax" in lost["pool.values"].message


def test_does_a_composite_that_abuses_the_stand_in_lose_only_its_own_checks(fixture_exercise):
    """The pooling asks the grader's masked_softmax for a huge table: the call is refused (the check fails, saying
    why), and the grading goes on."""
    pooled = '        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)\n'
    abusive = '        masked_softmax(torch.zeros(1, 2048, 2048))  # larger than the grader answers\n' + pooled
    report = grade_source_in_process(UNKNOWN_SOFTMAX.replace(pooled, abusive, 1), FIXTURE)
    lost = failed(report)
    assert not report.grader_errors
    assert "pool.values" in lost and "more than the grader takes" in lost["pool.values"].message


def test_does_an_argument_that_breaks_the_reference_cost_no_grader_error(fixture_exercise, tmp_path):
    """The pooling first calls masked_softmax with a number the grader's reference cannot take, and swallows the
    refusal: the grader answers with an error (never fails itself), and the child and the in-process runner agree."""
    from autograder.grading import grade_path

    pooled = '        weights = masked_softmax(self.score(torch.tanh(self.proj(x))).squeeze(-1), mask)  # (B, T)\n'
    probing = ('        try:\n            masked_softmax(1.0)\n        except BaseException:\n            pass\n' + pooled)
    path = tmp_path / "probing.py"
    path.write_text(UNKNOWN_SOFTMAX.replace(pooled, probing, 1))
    child = grade_path(path, fixture_exercise, skip_training=True, device="cpu")
    in_process = grade_source_in_process(path.read_text(), FIXTURE)
    assert not child.grader_errors and not in_process.grader_errors
    assert [(r.name, r.points) for r in child.results] == [(r.name, r.points) for r in in_process.results]
    assert not any(r.name.startswith("pool.") and r.points < r.max_points for r in child.results)
