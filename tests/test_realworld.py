"""Is code written in the styles of published implementations graded fairly?

Each fixture in ``tests/submissions/realworld/`` is our own code in the style of a published implementation
(its docstring names the source and the facts it reproduces), with names and signatures adapted to the
contract. Correct maths scores full marks on values; a naming deviation costs the interface only; a real
deviation costs exactly its own checks and gets a hint that names it.
"""

from __future__ import annotations

import pytest

from conftest import failed, grade_source_in_process
from realworld_fixtures import FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.file)
def test_does_a_published_style_lose_exactly_the_points_of_its_deviations(fixture):
    report = grade_source_in_process(fixture.source(),
                                     exercise=fixture.exercise)
    assert not report.grader_errors
    lost = {name for name, r in failed(report).items() if r.status.value != "skipped"}
    assert lost == set(fixture.lost), {name: failed(report)[name].message for name in lost}
    hints = " | ".join(r.hint for r in report.results if r.hint)
    assert all(h in hints for h in fixture.hints), hints
