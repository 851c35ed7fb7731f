"""Does one mistake cost once, in its own part? Every known mistake, textbook or seen in published code, is
graded: it must lose points, name itself in a hint, and lose them only in the parts it is in; each exercise's
README table of what each costs is kept true here."""

from __future__ import annotations

import pytest

from mutations import KNOWN, ROOT, cascade_table, graded, lost_points, sharing_gradings

from autograder.exercises import get_exercise

CASES = [pytest.param(exercise, m, id=f"{exercise}-{m.name}", marks=sharing_gradings(exercise))
         for exercise, mutations in KNOWN.items() for m in mutations]
EXERCISES = [pytest.param(exercise, marks=sharing_gradings(exercise)) for exercise in sorted(KNOWN)]


@pytest.mark.parametrize("exercise, mutation", CASES)
def test_does_a_known_mistake_cost_only_in_its_own_parts(exercise, mutation):
    report = graded(exercise, mutation.name)
    assert not report.grader_errors, report.grader_errors
    spec = get_exercise(exercise)
    allowed = set(mutation.parts) or {spec.check(name).part for name in mutation.failing}
    lost = lost_points(report)
    assert lost, f"{mutation.name} loses nothing"
    assert report.score > 0  # a mistake in one part leaves the parts that do not use it alone
    assert all(r.message for r in report.results if r.points < r.max_points), f"{mutation.name}: a check failed silently"
    assert set(lost) <= allowed, f"{mutation.name} also costs points in {sorted(set(lost) - allowed)}"
    failing = {r.name for r in report.results if r.points < r.max_points}
    assert set(mutation.failing) <= failing, f"{mutation.name} should fail {sorted(set(mutation.failing) - failing)}"
    declared = {m.name: m for m in spec.mistakes}  # a declared mistake must earn its declared hint, in full
    hint = declared[mutation.name].hint if mutation.name in declared else mutation.hint
    if hint:
        hints = [r.hint for r in report.results if r.hint]
        assert any(hint in h for h in hints), f"no hint names {hint!r}: {hints}"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_does_the_readme_table_say_what_each_mistake_costs(exercise):
    """The exercise's README holds the table ``tools/make_exercise_readmes.py`` generates, between its markers."""
    table = cascade_table(exercise)
    path = ROOT / "autograder" / "exercises" / exercise / "README.md"
    _, block, _ = path.read_text().split("<!-- cascade:", 2)
    assert block.removeprefix("begin -->").strip() == table.strip(), (
        f"{path.relative_to(ROOT)}'s table is out of date: run tools/make_exercise_readmes.py; it should read:\n{table}")


def test_does_every_registered_exercise_have_its_test_cases():
    from mutations import CASES

    from autograder.exercises import names

    assert sorted(CASES) == sorted(names())


@pytest.mark.parametrize("exercise", EXERCISES)
def test_does_every_check_have_a_known_mistake_that_fails_it(exercise):
    """Declared and graded (in process, without training): each check loses its points to at least one known
    mistake; the training check to the model that cannot learn (``Cases.frozen``, graded with training in
    test_training)."""
    from mutations import CASES

    declared = {name for m in KNOWN[exercise] for name in m.failing} | set(CASES[exercise].frozen.failing if CASES[exercise].frozen else ())
    assert {c.name for c in get_exercise(exercise).checks} <= declared
    failed_somewhere = {r.name for m in KNOWN[exercise] for r in graded(exercise, m.name).results
                        if r.points < r.max_points and r.status.value != "skipped"}
    failed_somewhere |= set(CASES[exercise].frozen.failing if CASES[exercise].frozen else ())
    unfailed = [c.name for c in get_exercise(exercise).checks if c.name not in failed_somewhere]
    assert not unfailed, f"no known mistake of {exercise} fails {unfailed}"
