"""Does the source notebook run top to bottom as a student would see it, with its plots?"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_does_the_reference_notebook_run_and_show_its_plots(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "assignments" / "source" / "transformer" / "transformer.ipynb", as_version=4)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = {c.metadata["nbgrader"]["grade_id"]: [o for o in c.outputs if "image/png" in o.get("data", {})]
              for c in nb.cells if c.cell_type == "code"}
    assert images["train_loop"] and images["heatmap"]  # the training curve and the attention heatmaps
    for name in ("train_loop", "heatmap"):
        (tmp_path / f"{name}.png").write_bytes(base64.b64decode(images[name][0]["data"]["image/png"]))
    scores = [o for c in nb.cells if "checks" in c.metadata["nbgrader"]["grade_id"] for o in c.outputs
              if o.output_type == "execute_result"]
    assert len(scores) == 10
    out = os.environ.get("NOTEBOOK_PLOTS_DIR")
    if out:  # keep the plots for a person to look at
        for name in ("train_loop", "heatmap"):
            Path(out, f"{name}.png").write_bytes((tmp_path / f"{name}.png").read_bytes())
