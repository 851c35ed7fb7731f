"""Do the source notebooks run top to bottom as a student would see them, with their plots?

A student's notebook holds no hidden tests (nbgrader's release clears them): they are cleared here too, so the
notebook runs its public checks, its training and its plots. The hidden checks are graded by the nbgrader flow
(test_nbgrader) and each exercise's grading tests; test_notebook_source checks every part has both cells."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

from autograder.exercises import get_exercise, names

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", names())
def test_does_the_reference_notebook_run_and_show_its_plots(name, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from nbgrader.preprocessors import ClearHiddenTests

    exercise = get_exercise(name)
    nb = nbformat.read(ROOT / exercise.notebook, as_version=4)
    nb, _ = ClearHiddenTests().preprocess(nb, {})  # nbgrader's own step: as the release leaves them
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = {c.metadata["nbgrader"]["grade_id"]: [o for o in c.outputs if "image/png" in o.get("data", {})]
              for c in nb.cells if c.cell_type == "code"}
    if exercise.task is not None:  # an exercise that trains shows its training curves and attention heatmaps
        assert images["train_loop"] and images["heatmap"]
    scores = [o for c in nb.cells if "checks" in c.metadata["nbgrader"]["grade_id"] for o in c.outputs
              if o.output_type == "execute_result"]
    assert len(scores) == len({c.part for c in exercise.checks if not c.hidden})  # a public cell per part
    assert all(float(o["data"]["text/plain"]) > 0 for o in scores)
    if name == "attention_rnn":  # the comparison table, beside the course's figures
        table = [o for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "train_loop" for o in c.outputs
                 if "text/html" in o.get("data", {})]
        html = table[0]["data"]["text/html"]
        assert all(k in html for k in ("LSTM baseline", "softmax attention", "sigmoid attention", "0.7572"))
    out = os.environ.get("NOTEBOOK_PLOTS_DIR")  # keep the plots for a person to look at
    if out and exercise.task is not None:
        for cell_id in ("train_loop", "heatmap"):
            Path(out, f"{name}_{cell_id}.png").write_bytes(base64.b64decode(images[cell_id][0]["data"]["image/png"]))
