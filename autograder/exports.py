"""Exports of a class gradebook, where tutors keep grades: ``EXPORTS[format](gradebook, output, args)``.

- ``csv``: one row per student and exercise: ``student, exercise, score, max_score, status``, then one column per
  check (its points): the per-question export;
- ``canvas``: Canvas's gradebook import (``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
  exercise, a "Points Possible" row first);
- ``moodle``: Moodle's assignment grading worksheet (``Identifier, Full name, Grade, Maximum Grade, Feedback
  comments``), one exercise;
- ``gradescope``: ``<output>/<exercise>/<student>/results.json``;
- ``feedback``: ``<output>/<student>.html``, what each check found and its hints;
- ``nbgrader``: the scores written into nbgrader's own gradebook (``nbgrader_export``).

Everything a student's code could have put into a report is escaped for its format (HTML escaped; CSV quoted,
and a cell starting with ``= + - @`` prefixed with ``'`` so a spreadsheet never runs it as a formula).
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
from pathlib import Path

from .checks import Status
from .gradebook import GRADER_FAILURE, Grade, grades
from .report import as_gradescope

MOODLE_STUDENT = re.compile(r"^(?P<name>.+)_(?P<id>\d+)$")
CANVAS_STUDENT = re.compile(r"^(?P<login>[^_]+)_(?P<id>\d+)$")


class ExportError(Exception):
    """The export cannot be written as asked."""


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (no formula)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(x: float) -> str:
    return f"{x:g}"


def file_name(student: str, taken: set[str]) -> str:
    """A file name for ``student``: safe characters only, unique among ``taken`` (lower-cased names, which it
    joins) whatever the file system's case rules."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._-")[:80] or "student"
    name, n = base, 0
    while name.lower() in taken:
        n += 1
        name = f"{base}-{hashlib.sha256(f'{student}{n}'.encode()).hexdigest()[:8]}"
    taken.add(name.lower())
    return name


def _current(gradebook, exercise: str | None) -> list[Grade]:
    found = grades(gradebook, exercise)
    if not found:
        raise ExportError(f"{gradebook} holds no grades" + (f" of {exercise}" if exercise else ""))
    return found


def _left_blank(found: list[Grade]) -> str:
    """What the export says of grader failures: their scores are left blank, never exported as 0."""
    failed = sorted({g.student for g in found if g.status == GRADER_FAILURE})
    if not failed:
        return ""
    return (f"; {len(failed)} grader failures left blank (grade them again): " + ", ".join(failed[:20])
            + (" ..." if len(failed) > 20 else ""))


def _score(grade: Grade) -> str:
    return "" if grade.status == GRADER_FAILURE else _number(grade.score)


def _status(grade: Grade) -> str:
    if grade.status == GRADER_FAILURE:
        return "grader_failure"
    if any(r.status == Status.TIMEOUT for r in grade.report.results):
        return "graded (timeouts)"
    return "graded"


def export_csv(gradebook, output, args) -> str:
    found = _current(gradebook, getattr(args, "exercise", None))
    columns: list[str] = []
    for g in found:
        columns += [r.name for r in g.report.results if r.name not in columns]
    with open(output, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "exercise", "score", "max_score", "status", *columns])
        for g in found:
            points = {} if g.status == GRADER_FAILURE else {r.name: _number(r.points) for r in g.report.results}
            out.writerow([_cell(g.student), g.exercise, _score(g), _number(g.max_score), _status(g),
                          *[points.get(c, "") for c in columns]])
    return f"{len(found)} rows written to {output}{_left_blank(found)}"


def export_canvas(gradebook, output, args) -> str:
    found = _current(gradebook, getattr(args, "exercise", None))
    exercises = list(dict.fromkeys(g.exercise for g in found))
    top = {e: max(g.max_score for g in found if g.exercise == e) for e in exercises}
    rows: dict[str, dict] = {}
    for g in found:
        rows.setdefault(g.student, {})[g.exercise] = _score(g)
    with open(output, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *exercises])
        out.writerow(["    Points Possible", "", "", "", "", *[_number(top[e]) for e in exercises]])
        for student, scores in rows.items():
            m = CANVAS_STUDENT.match(student)
            out.writerow([_cell(student), m["id"] if m else "", "", _cell(m["login"] if m else student), "",
                          *[scores.get(e, "") for e in exercises]])
    return f"{len(rows)} students written to {output} (Canvas gradebook import){_left_blank(found)}"


def export_moodle(gradebook, output, args) -> str:
    found = _current(gradebook, getattr(args, "exercise", None))
    exercises = {g.exercise for g in found}
    if len(exercises) > 1:
        raise ExportError(f"a Moodle grading worksheet holds one assignment: pass --exercise (one of "
                          f"{', '.join(sorted(exercises))})")
    with open(output, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"])
        for g in found:
            m = MOODLE_STUDENT.match(g.student)
            lost = [r for r in g.report.results if r.points < r.max_points]
            comment = "; ".join(f"{r.name}: {r.hint or r.message}" for r in lost[:10])
            out.writerow([f"Participant {m['id']}" if m else _cell(g.student), _cell(m["name"] if m else g.student),
                          _score(g), _number(g.max_score), _cell(comment)])
    return f"{len(found)} students written to {output} (Moodle grading worksheet){_left_blank(found)}"


def export_gradescope(gradebook, output, args) -> str:
    found = _current(gradebook, getattr(args, "exercise", None))
    root = Path(output)
    taken: dict[str, set[str]] = {}
    written = [g for g in found if g.status != GRADER_FAILURE]
    for g in written:
        folder = root / g.exercise / file_name(g.student, taken.setdefault(g.exercise, set()))
        folder.mkdir(parents=True, exist_ok=True)  # names unique in this export: none replaces another
        (folder / "results.json").write_text(json.dumps(as_gradescope(g.report), indent=2))
    return f"{len(written)} results.json files written under {root}{_left_blank(found)}"


FEEDBACK_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:2px 8px;text-align:left;"
                  "vertical-align:top}tr.lost td{background:#fde8e8}.hint{color:#8a4b00}")


def feedback_page(student: str, found: list[Grade]) -> str:
    """One student's feedback: per exercise, every check's points, what it found and its hint."""
    e = html.escape
    body = [f"<h1>Feedback for {e(student)}</h1>"]
    for g in found:
        body.append(f"<h2>{e(g.exercise)}: {_number(g.score)} / {_number(g.max_score)}</h2>")
        body += [f"<p class='note'>{e(n)}</p>" for n in g.report.notes]
        body.append("<table><tr><th>check</th><th>points</th><th>what it checks</th><th>what it found</th></tr>")
        for r in g.report.results:
            found_text = e(r.message) + (f"<div class='hint'>hint: {e(r.hint)}</div>" if r.hint else "")
            body.append(f"<tr class='{'lost' if r.points < r.max_points else 'ok'}'><td>{e(r.name)}</td>"
                        f"<td>{_number(r.points)} / {_number(r.max_points)}</td><td>{e(r.description)}</td>"
                        f"<td>{found_text or 'passed'}</td></tr>")
        body.append("</table>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback: {e(student)}</title>"
            f"<style>{FEEDBACK_STYLE}</style></head><body>{''.join(body)}</body></html>")


def export_feedback(gradebook, output, args) -> str:
    found = _current(gradebook, getattr(args, "exercise", None))
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[Grade]] = {}
    for g in found:
        by_student.setdefault(g.student, []).append(g)
    taken: set[str] = set()
    for student, theirs in by_student.items():
        (root / f"{file_name(student, taken)}.html").write_text(feedback_page(student, theirs))
    return f"{len(by_student)} feedback pages written under {root}"


def export_nbgrader(gradebook, output, args) -> str:
    from .nbgrader_export import write_scores

    return write_scores(gradebook, output, exercise=getattr(args, "exercise", None),
                        assignment=getattr(args, "assignment", None))


EXPORTS = {"csv": export_csv, "canvas": export_canvas, "moodle": export_moodle, "gradescope": export_gradescope,
           "feedback": export_feedback, "nbgrader": export_nbgrader}
