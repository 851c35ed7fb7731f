"""The README's first command: grade the reference and a flawed sample on the embedded default data."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from .grading import grade_path
from .plots import training_curves
from .report import as_text, plot_scores

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = {
    "reference": ROOT / "solutions" / "transformer.py",
    "flawed sample": ROOT / "assignments" / "samples" / "transformer_flawed.py",
}


def run_demo(skip_training: bool = False, workdir: str = "demo-output") -> int:
    missing = [str(p) for p in SUBMISSIONS.values() if not p.exists()]
    if missing:
        print(f"the demo needs the repository's files, missing: {', '.join(missing)}")
        return 2
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    reports = {}
    for label, path in SUBMISSIONS.items():
        print(f"== grading the {label}: {path.relative_to(ROOT)}", flush=True)
        report = grade_path(path, "transformer", skip_training=skip_training, progress=sys.stderr.isatty())
        reports[label] = report
        print(as_text(report), end="\n\n", flush=True)
    curves = {label: r.artifacts["training"]["step_losses"] for label, r in reports.items() if "training" in r.artifacts}
    if curves:
        training_curves(curves, str(out / "training_curves.png"))
    plot_scores(list(reports.values()), str(out / "scores.png"))
    summary = ", ".join(f"{label} {r.score:g}/{r.max_score:g}" for label, r in reports.items())
    print(f"summary: {summary}; plots in {out}/")
    errors = [e for r in reports.values() for e in r.grader_errors]
    return 2 if errors else 0
