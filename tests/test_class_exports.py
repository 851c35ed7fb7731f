"""Does a gradebook export where tutors keep grades, and does the class report show what the class did?

On gradebooks written here from reports of the tests' fixture exercise's checks (no grading: the grading is
tests/test_class_grading.py's). Text a student's code can put in a report (a note, a check's message) must come
out escaped: no HTML, no spreadsheet formula.
"""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import FIXTURE
from fixture_exercise.mistakes import MASK_AFTER

from autograder.checks import CheckResult, Report, Status
from autograder.class_report import check_stats, similar_pairs, write_class_report
from autograder.cli import main
from autograder.gradebook import GRADED, GRADER_FAILURE, Gradebook, Outcome

CHECKS = [("ms.values", "masked_softmax", 15), ("ms.normalised", "masked_softmax", 10),
          ("pool.values", "AttentionPooling", 20), ("pool.training", "AttentionPooling", 5)]
MASK_HINT = MASK_AFTER.hint
CODE = "import torch\n\ndef masked_softmax(scores, mask=None):\n{}\n"
OWN = {  # each student's own body: nothing in common beyond the stub's lines
    "alice": "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
             "    return torch.softmax(scores, dim=-1)",
    "bob": "    w = torch.softmax(scores, -1)\n    return w if mask is None else w * mask",
    "carol": "    e = (scores - scores.amax(-1, keepdim=True)).exp()\n    if mask is not None:\n"
             "        e = e * mask\n    total = e.sum(-1, keepdim=True)\n    return e / total",
}
OWN["dan"] = OWN["carol"].replace("total", "denominator")  # carol's code with one name changed


def report(student: str, lost: dict[str, str | None], note: str = "", training: float | None = None) -> Report:
    results = [CheckResult(name, part, f"{name} checks it", 0.0 if name in lost else pts, pts,
                           Status.FAILED if name in lost else Status.PASSED, "differs" if name in lost else "",
                           lost.get(name)) for name, part, pts in CHECKS]
    rep = Report(exercise=FIXTURE, submission=f"{student}.py", results=results, notes=[note] if note else [])
    if training is not None:
        rep.artifacts["trainings"] = {"AttentionPooling": {"value": training, "threshold": 0.8, "metric": "accuracy",
                                                           "higher_is_better": True}}
    return rep


@pytest.fixture
def book(tmp_path, fixture_exercise) -> Path:
    path = tmp_path / "class.sqlite"
    reports = {
        "alice": report("alice", {}, training=0.91),
        "bob": report("bob", {"ms.values": MASK_HINT, "ms.normalised": MASK_HINT}, training=0.7),
        "carol": report("carol", {"pool.values": None}, note="<script>alert(1)</script>", training=0.85),
        "=HYPERLINK(\"x\")": report("=HYPERLINK(\"x\")", {"pool.training": None}),
        "dan": report("dan", {"pool.values": None}, training=0.86),
    }
    with Gradebook(path) as gb:
        for student, rep in reports.items():
            gb.record(Outcome(student=student, exercise=FIXTURE, filename=f"{student}.py", sha256=student,
                              grader_version="v", salt=1, status=GRADED, report=rep, attempts=1, started=0.0,
                              finished=1.0, seconds=1.0, source=CODE.format(OWN.get(student, "    pass")).encode()))
        failed = report("erin", {n: None for n, _, _ in CHECKS})
        gb.record(Outcome(student="erin", exercise=FIXTURE, filename="erin.py", sha256="e", grader_version="v",
                          salt=2, status=GRADER_FAILURE, report=failed, attempts=3, started=0.0, finished=1.0,
                          seconds=1.0, reason="the grader process was killed by signal 9 (out of memory?)"))
    return path


def export(book, fmt, output, *extra) -> None:
    assert main(["export", str(book), "--format", fmt, "--output", str(output), *extra]) == 0


def test_does_the_csv_have_a_column_per_check_and_no_formula(book, tmp_path):
    export(book, "csv", tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:5] == ["student", "exercise", "score", "max_score", "status"]
    assert list(table[0])[5:] == [name for name, _, _ in CHECKS]
    bob = next(r for r in table if r["student"] == "bob")
    assert (bob["score"], bob["ms.values"], bob["pool.values"], bob["status"]) == ("25", "0", "20", "graded")
    erin = next(r for r in table if r["student"] == "erin")  # a grader failure: left blank, never a 0
    assert erin["status"] == "grader_failure" and erin["score"] == "" and erin["ms.values"] == ""
    assert not [r for r in table if r["student"].startswith("=")]  # a formula is shown as text: '=HYPERLINK...
    assert any(r["student"] == "'=HYPERLINK(\"x\")" for r in table)


def test_do_the_lms_exports_follow_canvas_and_moodle(book, tmp_path):
    export(book, "canvas", tmp_path / "canvas.csv")
    lines = list(csv.reader(open(tmp_path / "canvas.csv")))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", FIXTURE]
    assert lines[1][0].strip() == "Points Possible" and lines[1][-1] == "50"
    assert next(line for line in lines if line[0] == "erin")[-1] == ""  # a grader failure: blank, not 0
    export(book, "moodle", tmp_path / "moodle.csv")
    table = list(csv.DictReader(open(tmp_path / "moodle.csv")))
    assert list(table[0]) == ["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"]
    assert MASK_HINT in next(r for r in table if r["Full name"] == "bob")["Feedback comments"]
    assert next(r for r in table if r["Full name"] == "erin")["Grade"] == ""


def test_does_each_student_get_a_gradescope_results_json_and_an_escaped_feedback_page(book, tmp_path):
    export(book, "gradescope", tmp_path / "gs")
    results = json.loads((tmp_path / "gs" / FIXTURE / "bob" / "results.json").read_text())
    assert results["score"] == 25 and len(results["tests"]) == len(CHECKS)
    assert not (tmp_path / "gs" / FIXTURE / "erin").exists()  # a grader failure gets no results.json
    export(book, "feedback", tmp_path / "fb")
    pages = {p.stem: p.read_text() for p in (tmp_path / "fb").iterdir()}
    assert len(pages) == 6 and MASK_HINT in pages["bob"]
    assert "<script>" not in pages["carol"] and "&lt;script&gt;" in pages["carol"]


class Page(HTMLParser):
    """The class report's headings, tables (rows of cell texts) and images."""

    def __init__(self):
        super().__init__()
        self.headings, self.tables, self.images = [], {}, []
        self._table, self._row, self._text, self._in = None, None, "", None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("class", "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "h2", "h3"):
            self._in, self._text = tag, ""
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._text.strip())
        elif tag in ("h2", "h3"):
            self.headings.append(self._text.strip())
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append(self._row)
        elif tag == "table":
            self._table = None
        self._in = None if tag == self._in else self._in

    def handle_data(self, data):
        if self._in:
            self._text += data


def test_does_the_class_report_show_distribution_checks_mistakes_training_failures_and_leads(book, tmp_path):
    out = tmp_path / "report.html"
    assert main(["class-report", str(book), "--output", str(out)]) == 0
    page = Page()
    page.feed(out.read_text())
    assert {"Score distribution", "Checks", "Named mistakes", "Training", "Grader failures and timeouts"} <= set(
        page.headings)
    assert len([src for src in page.images if src.startswith("data:image/png;base64,")]) >= 3  # figures embedded
    checks = {row[0]: row for row in page.tables["checks"][1:]}
    assert set(checks) == {name for name, _, _ in CHECKS}
    assert [row[:2] for row in page.tables["mistakes"][1:]] == [["mask_after_softmax", "1"]]
    assert any("grader failure" in row[1] and "signal 9" in row[1] for row in page.tables["failures"][1:])
    assert [sorted(row[:2]) for row in page.tables["pairs"][1:]] == [["carol", "dan"]]  # the one renamed copy
    assert "<script>" not in out.read_text()


def test_does_discrimination_say_which_checks_separate_strong_from_weak_students():
    """ms.values is lost by the weak students, ms.normalised by the strong ones: +1-like against negative."""
    from types import SimpleNamespace

    def graded(lost: set[str]):
        rep = report("s", {name: None for name in lost})
        return SimpleNamespace(status=GRADED, score=rep.score, report=rep)

    weak, strong = {"ms.values", "pool.values", "pool.training"}, {"ms.normalised"}
    stats = {s.name: s for s in check_stats([graded(weak), graded(weak), graded(strong), graded(strong), graded(set())])}
    assert stats["ms.values"].mean == pytest.approx(3 / 5)
    assert stats["ms.values"].discrimination > 0.9 and stats["ms.normalised"].discrimination < 0


def test_are_code_overlaps_beyond_the_stub_only(tmp_path):
    stub = CODE.format("    raise NotImplementedError()") * 3
    codes = {"x": stub, "y": stub}  # both handed in the stub: nothing of their own in common
    assert similar_pairs(codes, stub) == []
    assert len(similar_pairs(codes, "")) == 1  # without the stub as boilerplate, they would be a pair


def test_do_students_whose_names_fold_to_one_file_name_keep_their_own_files(tmp_path, fixture_exercise, capsys):
    """b_o, b_o. and b_o-<the hash the first fallback takes> and Alice/alice: each gets a file of their own, in a
    folder whose name holds # and ? (the gradebook's readers escape its path)."""
    from autograder.exports import file_name

    folded = ["b_o", "b_o.", "b_o-" + __import__("hashlib").sha256(b"b_o.1").hexdigest()[:8], "Alice", "alice"]
    taken: set[str] = set()
    assert len({file_name(s, taken).lower() for s in folded}) == len(folded)
    path = tmp_path / "Class #3?" / "class.sqlite"
    with Gradebook(path) as gb:
        for i, student in enumerate(folded):
            gb.record(Outcome(student=student, exercise=FIXTURE, filename="x.py", sha256=str(i), grader_version="v",
                              salt=i, status=GRADED, report=report(student, {"ms.values": None} if i % 2 else {}),
                              attempts=1, started=0.0, finished=1.0, seconds=1.0))
    export(path, "feedback", tmp_path / "fb")
    pages = [p.read_text() for p in (tmp_path / "fb").iterdir()]
    assert sorted(page.split("Feedback for ")[1].split("<")[0] for page in pages) == sorted(folded)
    export(path, "gradescope", tmp_path / "gs")
    assert len(list((tmp_path / "gs" / FIXTURE).iterdir())) == len(folded)


def test_does_an_odd_notebook_give_no_code_rather_than_stop_the_class_report():
    from autograder.class_report import code_text

    assert code_text("x.ipynb", b'{"cells": 5}') == "" and code_text("x.ipynb", b'{"cells": [{"cell_type": "code", '
                                                                             b'"source": [1]}]}') == ""


def test_does_an_empty_or_missing_gradebook_get_a_message(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.sqlite"), "--format", "csv", "--output", str(tmp_path / "x")]) == 2
    assert "no gradebook at" in capsys.readouterr().err


def test_does_nbgraders_grading_draw_each_students_inputs_from_the_class_gradebooks_seed(tmp_path):
    """A notebook the class gradebook did not grade is graded by nbgrader's step with the class's seed."""
    from autograder.class_grading import student_salt
    from autograder.gradebook import read_meta
    from autograder.nbgrader_autograde import ConfinedGrading

    path = tmp_path / "class.sqlite"
    with Gradebook(path) as gb:
        gb.set_meta("seed", "41")
    assert read_meta(path, "seed") == "41" and read_meta(path, "other") is None
    step = ConfinedGrading(class_gradebook=str(path), seed=7)
    assert step._salt(FIXTURE, {"nbgrader": {"student": "ada"}}) == student_salt(41, FIXTURE, "ada")
    assert ConfinedGrading(seed=7)._salt(FIXTURE, {"nbgrader": {"student": "ada"}}) == student_salt(7, FIXTURE, "ada")
    assert ConfinedGrading()._salt(FIXTURE, {"nbgrader": {"student": "ada"}}) is None  # fresh inputs every run
