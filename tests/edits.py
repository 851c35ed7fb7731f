"""Edits of the reference solution used by the tests of broken and hostile submissions (not a test module)."""

from __future__ import annotations

from autograder.exercises import get_exercise
from autograder.sandbox import Limits

EXERCISE = get_exercise("transformer")
PARTS = {c.name: c.part for c in EXERCISE.checks}
# 15% of each check's time budget (9 s of 60): an endless loop is cut short, while a correct check keeps a
# margin of ten times its time on an idle machine when other jobs share the cores.
FAST = dict(skip_training=True, device="cpu", timeout_factor=0.15, limits=Limits(start_timeout=30))

# Places in solutions/transformer.py where code can be inserted.
EMBED_FORWARD = "        B, T = tokens.shape\n"
BLOCK_FORWARD = "        mask = None\n        if padding_mask"
SDPA_BODY = "    d = query.size(-1)\n"


def with_code(solution_text: str, anchor: str, code: str) -> str:
    """Insert ``code`` (indented like ``anchor``) just before ``anchor`` in the reference."""
    assert anchor in solution_text, anchor
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    return solution_text.replace(anchor, f"{indent}{code}\n{anchor}", 1)


def lost_parts(report) -> set[str]:
    """The parts that lost points, the training check left aside."""
    return {PARTS[r.name] for r in report.results if r.points < r.max_points and r.name != "clf.training"}
