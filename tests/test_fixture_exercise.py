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
