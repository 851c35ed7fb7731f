"""Are the nbgrader source notebooks in step with solutions/ and with the exercises' checks?"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import ROOT

from autograder.authoring import solution_sections, sync_notebook
from autograder.exercises import get_exercise, names

EXERCISES = [get_exercise(n) for n in names()]


def cells(exercise):
    return json.loads((ROOT / exercise.notebook).read_text())["cells"]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_do_the_notebook_solution_cells_equal_the_solution_file(exercise, tmp_path):
    copy = tmp_path / "nb.ipynb"
    shutil.copy(ROOT / exercise.notebook, copy)
    assert sync_notebook(copy, ROOT / exercise.solution, write=False) == []


def test_is_drift_detected(tmp_path):
    exercise = get_exercise("transformer")
    solution = tmp_path / "solution.py"
    solution.write_text((ROOT / exercise.solution).read_text().replace("math.sqrt(d)", "d ** 0.5"))
    copy = tmp_path / "nb.ipynb"
    shutil.copy(ROOT / exercise.notebook, copy)
    assert sync_notebook(copy, solution, write=True) == ["scaled_dot_product_attention"]
    assert sync_notebook(copy, solution, write=False) == []


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_does_every_part_have_a_solution_section_and_test_cells_worth_its_checks(exercise):
    assert set(exercise.parts) <= set(solution_sections(ROOT / exercise.solution))
    found = {}
    for cell in cells(exercise):
        match = re.search(r'check_part\("(\w+)", "(\w+)", globals\(\)(, hidden=True)?\)', "".join(cell["source"]))
        if match and cell["metadata"]["nbgrader"].get("grade"):
            assert match[1] == exercise.name
            found[(match[2], bool(match[3]))] = cell["metadata"]["nbgrader"]["points"]
            assert ("BEGIN HIDDEN TESTS" in "".join(cell["source"])) == bool(match[3])
    expected = {}
    for c in exercise.checks:
        expected[(c.part, c.hidden)] = expected.get((c.part, c.hidden), 0) + c.points
    assert found == expected


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_are_the_training_cells_skipped_under_autograde(exercise):
    if exercise.task is None:
        pytest.skip("the exercise trains nothing: its notebook needs no training cells")
    code = [c for c in cells(exercise) if c["cell_type"] == "code"]
    source = "".join("".join(c["source"]) for c in code)
    assert 'RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"' in source
    training = [c for c in code if c["metadata"]["nbgrader"]["grade_id"] in ("train_loop", "heatmap")]
    assert len(training) == 2 and all("if RUN_TRAINING:" in "".join(c["source"]) for c in training)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_is_the_notebook_s_contract_table_made_from_the_contract_the_interface_checks_use(exercise):
    from autograder.contract import contract_table, submodule_list

    assert {c.name for c in exercise.contracts} == set(exercise.parts)
    contract = next("".join(c["source"]) for c in cells(exercise)
                    if c["metadata"].get("nbgrader", {}).get("grade_id") == "contract")
    assert contract_table(exercise.contracts) in contract
    assert submodule_list(exercise.contracts) in contract
