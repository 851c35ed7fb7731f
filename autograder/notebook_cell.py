"""Checks called from a notebook's test cells (public ones while students work, hidden ones under nbgrader).

    check_part("<exercise>", "<Part>", globals())               # public checks
    check_part("<exercise>", "<Part>", globals(), hidden=True)  # hidden checks (nbgrader)

The call prints what passed and what failed with hints, and returns the points earned as a float: as a test
cell's last expression, nbgrader takes it as the cell's partial credit. Nothing reaches stderr (nbgrader
scores a test cell that writes to stderr as 0), and nothing the submission does raises out of it.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import warnings

from .checks import Report
from .exercises import get_exercise
from .grading import run_checks, select_checks
from .report import as_text
from .runner import InProcessRunner


def check_part(exercise: str, part: str, namespace: dict, hidden: bool = False, device: str | None = None,
               salt: int | None = None) -> float:
    """Run one part's public (or hidden) checks on the notebook's namespace; returns the points earned.

    Hidden checks draw new random inputs every run (``salt=None``), public ones the same inputs each time.
    """
    spec = get_exercise(exercise)
    checks = [c for c in select_checks(spec, parts=[part]) if c.hidden == hidden]
    report = Report(exercise=spec.name, submission=f"{part} ({'hidden' if hidden else 'public'} checks)")
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        if salt is None:
            salt = secrets.randbits(32) if hidden else 0
        run_checks(InProcessRunner(namespace), spec, checks, device=device, report=report, salt=salt)
    print(as_text(report))
    return float(report.score)
