"""Do behaviour checks pay only for a part that computes something: never for one that returns its input or a
constant, whose many properties (rows summing to 1, causality, determinism) come for free?

Each submission runs under the real sandbox.
"""

from __future__ import annotations

import pytest

from conftest import ROOT
from edits import FAST

from autograder.exercises import get_exercise
from autograder.grading import grade_path

pytestmark = pytest.mark.slow

NOTHING = {
    # a self-attention returning its input, with uniform weights
    "cnn_attention": ("SelfAttention2d", (
        "        out = x + self.gamma * attended  # (B, C, H, W)\n        return out, weights\n",
        "        uniform = torch.full_like(weights, 1.0 / N)  # (B, N, N)\n        return x + 0 * self.gamma, uniform\n")),
    # a trajectory model predicting a constant
    "seq2seq": ("TrajectoryTransformer", (
        "        return self.output_proj(x)  # (B, T, 2)\n",
        "        return 0 * self.output_proj(x) + 0.5  # (B, T, 2): the same point everywhere\n")),
}


@pytest.mark.parametrize("exercise", sorted(NOTHING))
def test_does_a_part_that_computes_nothing_earn_no_behaviour_points(write, exercise):
    part, (old, new) = NOTHING[exercise]
    source = (ROOT / "solutions" / f"{exercise}.py").read_text()
    assert old in source
    report = grade_path(write("nothing.py", source.replace(old, new, 1)), exercise, **FAST)
    assert len(report.results) == len(get_exercise(exercise).checks)
    behaviour = [r for r in report.results if r.part == part and r.name in
                 {c.name for c in get_exercise(exercise).checks if c.kind == "behaviour"}]
    assert behaviour and all(r.points == 0 for r in behaviour), [(r.name, r.points, r.message) for r in behaviour]
    assert all("computes neither the contract's function nor a known mistake" in r.message for r in behaviour)
