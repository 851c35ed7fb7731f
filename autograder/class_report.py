"""Class analytics from a gradebook: one self-contained HTML page (figures embedded as PNG).

Per exercise: the score distribution; per check, the mean fraction earned and its discrimination (the
correlation of the check's points with the rest of the score: near 0 or negative, the check does not separate
students who did well from those who did not); the named mistakes the class made, most common first, with
their students; the training scores against the threshold; grader failures and timeouts; and pairs of unusually
similar submissions (copydetect's winnowing fingerprints, the released stub as boilerplate), shown as leads for
the tutor to look at, never as verdicts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .checks import Status
from .gradebook import GRADER_FAILURE, Grade, grades, sources

SIMILARITY_LEAD = 0.6  # both files share at least this fraction of their tokens beyond the stub
MAX_LISTED = 30  # students named per mistake, pairs shown


@dataclass
class CheckStats:
    name: str
    description: str
    mean: float  # fraction of the check's points earned, over the class
    discrimination: float | None  # None: the check or the rest of the score is the same for everyone


@dataclass
class SimilarPair:
    a: str
    b: str
    similarity_a: float
    similarity_b: float
    tokens: int


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(sxx * syy)


def check_stats(found: list[Grade]) -> list[CheckStats]:
    """Mean and discrimination of every check, over the graded students (grader failures left out)."""
    graded = [g for g in found if g.status != GRADER_FAILURE]
    if not graded:
        return []
    stats = []
    for r0 in graded[0].report.results:
        points = [next((r.points for r in g.report.results if r.name == r0.name), 0.0) for g in graded]
        rest = [g.score - p for g, p in zip(graded, points)]
        mean = sum(points) / len(points) / r0.max_points if r0.max_points else 0.0
        stats.append(CheckStats(r0.name, r0.description, mean, _pearson(points, rest)))
    return stats


def named_mistakes(found: list[Grade], exercise) -> dict[str, list[str]]:
    """mistake name (or the hint's text where no declared mistake has it) -> the students whose report names it."""
    declared = {m.hint: m.name for m in (exercise.mistakes if exercise is not None else ())}
    by_mistake: dict[str, set[str]] = {}
    for g in found:
        for r in g.report.results:
            if not r.hint:
                continue
            names = [name for hint, name in declared.items() if hint in r.hint] or [f"(hint) {r.hint}"]
            for name in names:
                by_mistake.setdefault(name, set()).add(g.student)
    return {k: sorted(v) for k, v in sorted(by_mistake.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def code_text(filename: str, content: bytes) -> str:
    """The code of a submission: a notebook's code cells, or the file's text."""
    text = content.decode("utf-8", "replace")
    if PurePosixPath(filename).suffix.lower() != ".ipynb":
        return text
    try:
        cells = json.loads(text).get("cells", [])
        return "\n".join("".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                         for c in cells if isinstance(c, dict) and c.get("cell_type") == "code")
    except Exception:  # noqa: BLE001 - any JSON a student wrote: no code to compare
        return ""


def released_stub(exercise, root: Path | None = None) -> str:
    """The exercise's solution with its solution blocks removed: what every student was given."""
    path = (root or Path.cwd()) / (exercise.solution if exercise is not None else "")
    if exercise is None or not exercise.solution or not path.is_file():
        return ""
    return re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", path.read_text(), flags=re.S)


def similar_pairs(codes: dict[str, str], stub: str, lead: float = SIMILARITY_LEAD) -> list[SimilarPair] | str:
    """Pairs of students whose code overlaps beyond the stub (copydetect), most similar first; a str says why
    none could be computed."""
    try:
        import numpy as np
        from copydetect import CodeFingerprint, compare_files
    except ImportError:
        return "not computed: pip install copydetect"
    k, window = 25, 6  # copydetect's defaults: noise threshold 25 tokens, guarantee threshold 30
    boilerplate = (np.unique(list(CodeFingerprint("stub.py", k, window, fp=io.StringIO(stub)).hashes)) if stub.strip()
                   else [])
    prints = {}
    for student, code in codes.items():
        try:
            prints[student] = CodeFingerprint("x.py", k, window, boilerplate=boilerplate, fp=io.StringIO(code))
        except Exception:  # noqa: BLE001 - code copydetect cannot tokenise is left out of the leads
            continue
    students = sorted(prints)
    pairs = []
    for i, a in enumerate(students):
        for b in students[i + 1:]:
            tokens, (sim_a, sim_b), _ = compare_files(prints[a], prints[b])
            if min(sim_a, sim_b) >= lead:
                pairs.append(SimilarPair(a, b, float(sim_a), float(sim_b), int(tokens)))
    return sorted(pairs, key=lambda p: -min(p.similarity_a, p.similarity_b))


STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
         "td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}"
         ".low{color:#b00}")


def _exercise_section(name: str, found: list[Grade], codes: dict[str, str], root: Path | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .exercises import registry

    e = html.escape
    exercise = registry().get(name)
    graded = [g for g in found if g.status != GRADER_FAILURE]
    top = max((g.max_score for g in found), default=100)
    scores = [g.score for g in graded]
    mean = sum(scores) / len(scores) if scores else float("nan")
    out = [f"<h2 id='{e(name)}'>{e(name)}</h2>",
           f"<p>{len(found)} students, {len(graded)} graded, mean score {mean:.1f} / {top:g}.</p>"]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(scores, bins=20, range=(0, top), color="tab:blue")
    ax.set(xlabel="score", ylabel="students", title=f"{name}: score distribution")
    fig.tight_layout()
    out += ["<h3>Score distribution</h3>", _png(fig)]

    stats = check_stats(found)
    out.append("<h3>Checks</h3><table class='checks'><tr><th>check</th><th>what it checks</th><th>mean</th>"
               "<th>discrimination</th></tr>")
    for s in stats:
        d = "n/a" if s.discrimination is None else f"{s.discrimination:+.2f}"
        low = " class='low'" if s.discrimination is not None and s.discrimination < 0.1 else ""
        out.append(f"<tr><td>{e(s.name)}</td><td>{e(s.description)}</td><td>{s.mean:.2f}</td><td{low}>{d}</td></tr>")
    out.append("</table>")
    if stats:
        fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(stats))))
        ax.barh([s.name for s in stats], [s.mean for s in stats], color="tab:green")
        ax.set(xlim=(0, 1), xlabel="fraction of points earned", title="per check")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        out.append(_png(fig))

    mistakes = named_mistakes(graded, exercise)
    out.append("<h3>Named mistakes</h3><table class='mistakes'><tr><th>mistake</th><th>students</th><th>who</th></tr>")
    for mistake, students in mistakes.items():
        who = ", ".join(e(s) for s in students[:MAX_LISTED]) + (" ..." if len(students) > MAX_LISTED else "")
        out.append(f"<tr><td>{e(mistake)}</td><td>{len(students)}</td><td>{who}</td></tr>")
    out.append("</table>" + ("" if mistakes else "<p>No known mistake was named.</p>"))

    trainings = [(g.student, t) for g in graded for t in (g.report.artifacts.get("trainings") or {}).values()
                 if isinstance(t, dict) and isinstance(t.get("value"), (int, float))]
    out.append("<h3>Training</h3>")
    if trainings:
        fig, ax = plt.subplots(figsize=(7, 3))
        values = [t["value"] for _, t in trainings if math.isfinite(t["value"])]
        ax.hist(values, bins=20, color="tab:purple")
        for threshold in {t.get("threshold") for _, t in trainings if isinstance(t.get("threshold"), (int, float))}:
            ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:g}")
        ax.set(xlabel=trainings[0][1].get("metric", "score"), ylabel="students", title="training scores")
        ax.legend()
        fig.tight_layout()
        out.append(_png(fig))
        below = [s for s, t in trainings if isinstance(t.get("threshold"), (int, float)) and math.isfinite(t["value"])
                 and ((t["value"] < t["threshold"]) if t.get("higher_is_better", True) else t["value"] > t["threshold"])]
        out.append(f"<p>{len(trainings)} trainings, {len(below)} on the wrong side of the threshold.</p>")
    else:
        out.append("<p>No training was scored (graded with --skip-training, or no training check).</p>")

    failures = [g for g in found if g.status == GRADER_FAILURE]
    timeouts = [(g.student, r.name) for g in graded for r in g.report.results if r.status == Status.TIMEOUT]
    out.append("<h3>Grader failures and timeouts</h3><table class='failures'><tr><th>student</th><th>what</th></tr>")
    out += [f"<tr><td>{e(g.student)}</td><td>grader failure: {e(g.reason)}</td></tr>" for g in failures]
    out += [f"<tr><td>{e(s)}</td><td>timeout in {e(c)}</td></tr>" for s, c in timeouts[:200]]
    out.append("</table>")

    pairs = similar_pairs(codes, released_stub(exercise, root))
    out.append("<h3>Unusually similar submissions (leads, not verdicts)</h3>")
    if isinstance(pairs, str):
        out.append(f"<p>{e(pairs)}</p>")
    else:
        out.append(f"<p>Pairs sharing at least {SIMILARITY_LEAD:.0%} of their code beyond the released stub "
                   "(copydetect). Similar code has innocent causes (a shared tutorial, the lecture's code): look "
                   "before concluding anything.</p><table class='pairs'><tr><th>student</th><th>student</th>"
                   "<th>overlap</th><th>tokens</th></tr>")
        out += [f"<tr><td>{e(p.a)}</td><td>{e(p.b)}</td><td>{p.similarity_a:.0%} / {p.similarity_b:.0%}</td>"
                f"<td>{p.tokens}</td></tr>" for p in pairs[:MAX_LISTED]]
        out.append("</table>")
    return "\n".join(out)


def write_class_report(gradebook, output, root: Path | None = None) -> None:
    """Write the class report of ``gradebook`` to ``output`` (``root``: the checkout, for the released stubs)."""
    found = grades(gradebook)
    if not found:
        raise FileNotFoundError(f"{gradebook} holds no grades")
    exercises = list(dict.fromkeys(g.exercise for g in found))
    sections = []
    for name in exercises:
        theirs = [g for g in found if g.exercise == name]
        raw = sources(gradebook, name)
        codes = {g.student: code_text(g.filename, raw.get(g.student, b"")) for g in theirs}
        sections.append(_exercise_section(name, theirs, codes, root))
    e = html.escape
    index = " | ".join(f"<a href='#{e(n)}'>{e(n)}</a>" for n in exercises)
    Path(output).write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title>"
                            f"<style>{STYLE}</style></head><body><h1>Class report: {e(str(Path(gradebook).name))}</h1>"
                            f"<p>{index}</p>{''.join(sections)}</body></html>")
