"""Reporters: a ``Report`` as terminal text, as Gradescope's ``results.json``, and as a class summary.

Free text in a report (notes, messages, hints, the file's name) is one line by construction (``checks.one_line``),
so in the text format every line starts with what the reporter wrote: no note can add a "score" line. Gradescope
is told to show outputs as plain text, so no note or message is read as HTML or Markdown.
"""

from __future__ import annotations

import json

from .checks import CheckResult, Report, Status

MARK = {Status.PASSED: "ok  ", Status.FAILED: "FAIL", Status.TIMEOUT: "TIME", Status.ERROR: "ERR ", Status.SKIPPED: "skip"}


def _fmt(x: float) -> str:
    return f"{x:g}"


def as_text(report: Report, show_hidden_details: bool = True) -> str:
    lines = [f"{report.exercise}: {report.submission}", f"score {_fmt(report.score)} / {_fmt(report.max_score)}"]
    for note in report.notes:
        lines.append(f"  note: {note}")
    part = None
    width = max([18] + [len(r.name) for r in report.results])  # the check names' column
    for r in report.results:
        if r.part != part:
            part = r.part
            got, total = report.part_score(part)
            lines.append(f"\n{part}  ({_fmt(got)} / {_fmt(total)})")
        tag = " [hidden]" if r.hidden else ""
        lines.append(f"  {MARK[r.status]} {r.name:<{width}} {_fmt(r.points):>4}/{_fmt(r.max_points):<3} {r.description}{tag}")
        if r.status != Status.PASSED and (show_hidden_details or not r.hidden):
            if r.message:
                lines.append(f"         {r.message}")
            if r.hint:
                lines.append(f"         hint: {r.hint}")
    trainings = report.artifacts.get("trainings") or {}
    for target, training in trainings.items():
        baseline = (f" (the {training['baseline']} baseline: {training['baseline_value']:.4f})"
                    if training.get("baseline") else "")
        lines.append(
            f"\ntraining {target} ({training['profile']} profile): {training['metric']} {training['value']:.4f}{baseline} in "
            f"{training['seconds']:.1f} s; loss per epoch as your code reported it {[round(x, 4) for x in training['epoch_losses']]}"
        )
    return "\n".join(lines)


def as_gradescope(report: Report) -> dict:
    """Gradescope's results.json: hidden checks' details are shown only after publication."""
    tests = []
    for r in report.results:
        output = r.message + (f"\nhint: {r.hint}" if r.hint else "")
        tests.append({
            "name": f"{r.name}: {r.description}",
            "score": r.points,
            "max_score": r.max_points,
            "status": "passed" if r.status == Status.PASSED else "failed",
            "output": output or "passed",
            "visibility": "after_published" if r.hidden else "visible",
        })
    out = {"score": report.score, "max_score": report.max_score, "output_format": "text",
           "test_output_format": "text", "test_name_format": "text", "tests": tests}
    if report.notes:
        out["output"] = "\n".join(report.notes)
    return out


def as_json_text(report: Report) -> str:
    return json.dumps(as_gradescope(report), indent=2)


def plot_scores(reports: list[Report], path: str) -> None:
    """A histogram of total scores and the mean score per check, for a tutor grading a class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    scores = [r.score for r in reports]
    top = max((r.max_score for r in reports), default=100)
    ax1.hist(scores, bins=20, range=(0, top), color="tab:blue")
    ax1.set(xlabel="score", ylabel="submissions", title=f"scores ({len(reports)} submissions)")
    fractions: dict[str, list[float]] = {}  # per check, over the reports that have it (a failed one may not)
    for rep in reports:
        for r in rep.results:
            fractions.setdefault(r.name, []).append(r.points / r.max_points if r.max_points else 0.0)
    names = list(fractions)
    means = [sum(f) / len(f) for f in fractions.values()]
    ax2.barh(names, means, color="tab:green")
    ax2.set(xlim=(0, 1), xlabel="fraction of points earned", title="per check")
    ax2.invert_yaxis()
    ax2.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def as_record(report: Report) -> dict:
    """The report as plain JSON-able data (the gradebook's record, and what a class worker sends back)."""
    return {
        "exercise": report.exercise, "submission": report.submission, "notes": list(report.notes),
        "grader_errors": list(report.grader_errors), "artifacts": report.artifacts,
        "results": [{"name": r.name, "part": r.part, "description": r.description, "points": r.points,
                     "max_points": r.max_points, "status": r.status.value, "message": r.message, "hint": r.hint,
                     "hidden": r.hidden, "seconds": r.seconds} for r in report.results],
    }


def from_record(record: dict) -> Report:
    """The ``Report`` that ``as_record`` wrote; raises ``ValueError`` for anything else."""
    try:
        results = [CheckResult(name=str(r["name"]), part=str(r["part"]), description=str(r["description"]),
                               points=float(r["points"]), max_points=float(r["max_points"]),
                               status=Status(r["status"]), message=str(r.get("message") or ""),
                               hint=None if r.get("hint") is None else str(r["hint"]), hidden=bool(r.get("hidden")),
                               seconds=float(r.get("seconds") or 0.0)) for r in record["results"]]
        artifacts = record.get("artifacts") or {}
        if not isinstance(artifacts, dict):
            raise TypeError("artifacts is not a mapping")
        return Report(exercise=str(record["exercise"]), submission=str(record["submission"]), results=results,
                      notes=[str(n) for n in record.get("notes", [])], artifacts=artifacts,
                      grader_errors=[str(e) for e in record.get("grader_errors", [])])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a report record ({type(exc).__name__}: {exc})") from None
