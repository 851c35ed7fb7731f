"""Is the nbgrader source notebook in step with solutions/ and with the exercise's checks?"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import ROOT

from autograder.authoring import solution_sections, sync_notebook
from autograder.exercises import get_exercise

EXERCISE = get_exercise("transformer")
NOTEBOOK = ROOT / EXERCISE.notebook


def cells():
    return json.loads(NOTEBOOK.read_text())["cells"]


def test_do_the_notebook_solution_cells_equal_solutions_py(tmp_path):
    copy = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, copy)
    assert sync_notebook(copy, ROOT / EXERCISE.solution, write=False) == []


def test_is_drift_detected(tmp_path):
    solution = tmp_path / "solution.py"
    solution.write_text((ROOT / EXERCISE.solution).read_text().replace("math.sqrt(d)", "d ** 0.5"))
    copy = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, copy)
    assert sync_notebook(copy, solution, write=True) == ["scaled_dot_product_attention"]
    assert sync_notebook(copy, solution, write=False) == []


def test_does_every_part_have_a_solution_section():
    assert set(EXERCISE.parts) <= set(solution_sections(ROOT / EXERCISE.solution))


@pytest.mark.parametrize("part", EXERCISE.parts)
def test_do_test_cell_points_equal_the_checks_points(part):
    short = {"scaled_dot_product_attention": "sdpa", "MultiHeadAttention": "mha", "TransformerBlock": "block",
             "TokenAndPositionEmbedding": "embed", "TransformerClassifier": "clf"}[part]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells()}
    for hidden in (False, True):
        cell = by_id[f"{short}_{'hidden' if hidden else 'public'}_checks"]
        points = sum(c.points for c in EXERCISE.checks if c.part == part and c.hidden == hidden)
        assert cell["metadata"]["nbgrader"]["points"] == points
        source = "".join(cell["source"])
        assert f'"{part}"' in source and ("BEGIN HIDDEN TESTS" in source) == hidden


def test_are_the_training_cells_skipped_under_autograde():
    source = "".join("".join(c["source"]) for c in cells() if c["cell_type"] == "code")
    assert 'RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"' in source
    training = [c for c in cells() if c["metadata"]["nbgrader"]["grade_id"] in ("baseline", "train_loop", "heatmap")]
    assert all("if RUN_TRAINING:" in "".join(c["source"]) for c in training)
