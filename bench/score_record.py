"""Record every check's points of every submission the test suite grades, under a fixed salt, so that a redesign
can prove its behaviour unchanged, check for check.

    .venv/bin/python bench/score_record.py --output record.json [--salt 0] [--only PATTERN] [--training]
    .venv/bin/python bench/score_record.py --compare before.json after.json [--points-only] [--only PATTERN]

Run from the repository root. The script grades the ``autograder`` package of the checkout it lives in (the
repository root and its ``tests/`` go first on ``sys.path``, ahead of any editable install of another checkout;
the package's path is printed to stderr at the start).

What it grades (``submissions()``, the one function to update when the test helpers move): every reference
solution, its release stub (nbgrader's ClearSolutions), every flawed sample, every known mistake, each exercise's
frozen mutation, every style, every published-style fixture, the correct variants of ``tests/submissions`` and
the unknown mistakes of ``tests/test_reproducible.py``; each under a stable key such as
``transformer/mutation/no_scaling``. Each is graded in process as the tests grade it (training skipped, on the
CPU, with the salt); ``--training`` also grades the references and the flawed samples whole, training included,
in the confined child (``grade_path``), under ``<exercise>/reference+training`` and ``<exercise>/sample+training``.

The record (JSON, sorted keys): ``{key: {"total": points, "checks": {name: [points, max_points, status]},
"hints": {name: [hint, ...]}}}``, ``hints`` listing only the checks that named one; ``grader_errors`` is added
where the grader itself failed, ``error`` where the submission could not even be built (a mutation's text no
longer in its solution, ...). ``--compare`` prints every difference and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import importlib
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# This checkout's package and test helpers first: the virtual environment may hold an editable install of
# another checkout (its finder comes after sys.path, so these entries win).
for _entry in (str(TESTS), str(ROOT)):
    while _entry in sys.path:
        sys.path.remove(_entry)
    sys.path.insert(0, _entry)


@dataclass(frozen=True)
class Entry:
    """One submission to grade: ``source()`` builds its text (``path``: a file graded as it is, for --training)."""

    key: str
    exercise: str
    source: Callable[[], str]
    path: Path | None = None


def _import_first(*names: str):
    """The first of ``names`` that imports (test helpers may be moved or renamed); None if none does."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _read(path: Path) -> Callable[[], str]:
    return lambda: Path(path).read_text()


def _stub_source(text: str) -> str:
    """The release version of a solution file, made by nbgrader's ClearSolutions (as ``conftest.stub_source``)."""
    conftest = _import_first("conftest")
    if conftest is not None and hasattr(conftest, "stub_source"):
        return conftest.stub_source(text)
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    cell = nbformat.v4.new_code_cell(text)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "x", "locked": False, "schema_version": 3}
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = ClearSolutions(code_stub={"python": "# YOUR CODE HERE\nraise NotImplementedError()"}).preprocess(nb, {})
    return nb.cells[0].source


def _exercise_of(stem: str, exercises: list[str]) -> str | None:
    """The exercise a file is for, by the longest exercise name its stem starts with."""
    found = [name for name in exercises if stem == name or stem.startswith(name + "_")]
    return max(found, key=len) if found else None


# The unknown mistakes of tests/test_reproducible.py (its UNKNOWN list, with the ids of its parametrisation):
# used when that list cannot be imported, and to name its entries.
UNKNOWN_COPY = (
    ("sigmoid_of_tanh", "attention_rnn", "weights = torch.sigmoid(scores)", "weights = torch.sigmoid(torch.tanh(scores))"),
    ("tanh_times_1.1", "attention_rnn", "scores = torch.tanh(scores)", "scores = torch.tanh(scores) * 1.1"),
    ("norm1_eps_1e-2", "transformer", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.norm2",
     "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.norm2"),
    ("vit_norm1_eps_1e-2", "vit", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.attn",
     "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.attn"),
    ("seq2seq_norm3_eps_1e-2", "seq2seq", "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)",
     "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-2)"),
)


def _replaced(path: Path, old: str, new: str) -> Callable[[], str]:
    def build() -> str:
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"{old!r} no longer occurs in {path.name}")
        return text.replace(old, new)

    return build


# =================================================================================================================
# THE ENUMERATION OF SUBMISSIONS: the one place that knows the test helpers (tests/mutations.py, styles.py,
# realworld_fixtures.py, conftest.py, test_reproducible.py). When they move or are renamed, update this function
# only, keeping the keys: they name what is graded, never where a file of the checkout lies.
# =================================================================================================================

def submissions(skipped: list[str]) -> list[Entry]:
    """Every submission the test suite grades, each with its stable key; what could not be enumerated is described
    in ``skipped``."""
    from autograder.exercises import names

    exercises = names()
    entries: list[Entry] = []
    mutations = _import_first("mutations", "helpers.mutations", "support.mutations")
    if mutations is None:
        skipped.append("tests/mutations.py not importable: no known mistakes, no frozen mutations")
    sources = dict(getattr(mutations, "SOURCES", {}) or {})
    for exercise in exercises:  # an exercise the helpers do not list still has its reference
        sources.setdefault(exercise, ROOT / "solutions" / f"{exercise}.py")

    for exercise, path in sorted(sources.items()):
        path = Path(path)
        if not path.exists():
            skipped.append(f"{exercise}: no reference solution at {path.relative_to(ROOT)}")
            continue
        entries.append(Entry(f"{exercise}/reference", exercise, _read(path), path))
        entries.append(Entry(f"{exercise}/stub", exercise, lambda path=path: _stub_source(path.read_text())))

    for path in sorted((ROOT / "assignments" / "samples").glob("*_flawed.py")):
        exercise = _exercise_of(path.stem[: -len("_flawed")], exercises)
        if exercise is None:
            skipped.append(f"sample {path.name}: no exercise of that name")
            continue
        entries.append(Entry(f"{exercise}/sample", exercise, _read(path), path))

    if mutations is not None:
        mutated = mutations.mutated_source
        for exercise, known in sorted(getattr(mutations, "KNOWN", {}).items()):
            for m in known:
                entries.append(Entry(f"{exercise}/mutation/{m.name}", exercise,
                                     lambda m=m, e=exercise: mutated(m, Path(sources[e]))))
        cases = getattr(mutations, "CASES", {})
        for exercise, case in sorted(cases.items()):
            frozen = getattr(case, "frozen", None)
            if frozen is None:
                skipped.append(f"{exercise}: no frozen mutation in CASES")
                continue
            entries.append(Entry(f"{exercise}/frozen/{frozen.name}", exercise,
                                 lambda m=frozen, e=exercise: mutated(m, Path(sources[e]))))
        # A correct variant graded by the training tests only (the parameters created in another order).
        reordered = getattr(mutations, "CNN_ATTENTION_REORDERED", None) or getattr(
            _import_first("mistake_edits.cnn_attention"), "CNN_ATTENTION_REORDERED", None)
        if reordered is not None:
            entries.append(Entry(f"cnn_attention/variant/{reordered.name}", "cnn_attention",
                                 lambda m=reordered: mutated(m, Path(sources["cnn_attention"]))))
        else:
            skipped.append("mutations.CNN_ATTENTION_REORDERED not found")

    styles = _import_first("styles", "helpers.styles", "support.styles")
    if styles is None:
        skipped.append("tests/styles.py not importable: no styles")
    else:
        solution = Path(getattr(styles, "SOLUTION", ROOT / "solutions" / "transformer.py"))
        exercise = _exercise_of(solution.stem, exercises) or solution.stem
        for style in styles.STYLES:
            entries.append(Entry(f"{exercise}/style/{style.name}", exercise,
                                 lambda s=style: styles.styled_source(s)))

    realworld = _import_first("realworld_fixtures", "helpers.realworld_fixtures", "support.realworld_fixtures")
    if realworld is None:
        skipped.append("tests/realworld_fixtures.py not importable: no published-style fixtures")
    else:
        for fixture in realworld.FIXTURES:
            path = Path(realworld.DIRECTORY) / fixture.file
            entries.append(Entry(f"realworld/{Path(fixture.file).stem}", fixture.exercise, _read(path)))

    for path in sorted((TESTS / "submissions").glob("*.py")):  # the correct variants written differently
        exercise = _exercise_of(path.stem, exercises)
        if exercise is None:
            skipped.append(f"tests/submissions/{path.name}: no exercise of that name")
            continue
        entries.append(Entry(f"{exercise}/submission/{path.stem}", exercise, _read(path)))

    ids = {(exercise, old, new): name for name, exercise, old, new in UNKNOWN_COPY}
    cases = getattr(mutations, "CASES", {}) if mutations is not None else {}
    if any(hasattr(case, "unknown") for case in cases.values()):  # declared per exercise (Cases.unknown)
        unknown = [(exercise, old, new) for exercise, case in cases.items() for _, old, new in case.unknown]
        ids.update({(exercise, old, new): name for exercise, case in cases.items() for name, old, new in case.unknown})
    else:
        try:
            with contextlib.redirect_stdout(sys.stderr):
                unknown = list(importlib.import_module("test_reproducible").UNKNOWN)
        except Exception as exc:  # noqa: BLE001 - any failure to import falls back on the copy
            skipped.append(f"test_reproducible.UNKNOWN not importable ({type(exc).__name__}): its copy used")
            unknown = [(exercise, old, new) for _, exercise, old, new in UNKNOWN_COPY]
    for exercise, old, new in unknown:
        name = ids.get((exercise, old, new)) or "edit_" + hashlib.sha1(f"{old}\0{new}".encode()).hexdigest()[:10]
        entries.append(Entry(f"unknown/{exercise}/{name}", exercise, _replaced(Path(sources[exercise]), old, new)))

    duplicates = sorted({e.key for e in entries if [f.key for f in entries].count(e.key) > 1})
    if duplicates:
        raise SystemExit(f"duplicate keys: {duplicates}")
    return entries

# =================================================================================================================


def _hints(result) -> list[str]:
    """The hints a check's result names, as a list of strings (a ``hints`` field, or the one ``hint``)."""
    for field in ("hints", "hint"):
        value = getattr(result, field, None)
        if value:
            return [str(h) for h in value] if isinstance(value, (list, tuple)) else [str(value)]
    return []


def _status(result) -> str:
    status = result.status
    return str(getattr(status, "value", status))


def _record(report) -> dict:
    checks, hints = {}, {}
    for r in report.results:
        checks[r.name] = [float(r.points), float(r.max_points), _status(r)]
        named = _hints(r)
        if named:
            hints[r.name] = named
    record = {"total": round(sum(p for p, _, _ in checks.values()), 6), "checks": checks, "hints": hints}
    if getattr(report, "grader_errors", None):
        record["grader_errors"] = [str(e) for e in report.grader_errors]
    return record


def _dumps(results: dict) -> str:
    """JSON with sorted keys, one line per check (diff-friendly)."""
    lines = []
    for key in sorted(results):
        fields = []
        for field in sorted(results[key]):
            value = results[key][field]
            if isinstance(value, dict) and value:
                inner = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(value.items()))
                fields.append(f"  {json.dumps(field)}: {{\n{inner}\n  }}")
            else:
                fields.append(f"  {json.dumps(field)}: {json.dumps(value, sort_keys=True)}")
        lines.append(f" {json.dumps(key)}: {{\n" + ",\n".join(fields) + "\n }")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _module_name(key: str) -> str:
    return "score_record_" + re.sub(r"\W", "_", key)


def grade_in_process(source: str, exercise: str, salt: int, key: str):
    """Grade ``source`` as ``tests/conftest.grade_source_in_process`` does: in process, training skipped, CPU."""
    from autograder.exercises import get_exercise
    from autograder.grading import run_checks, select_checks
    from autograder.runner import InProcessRunner
    from autograder.source import Submission, SourceCell, namespace_from_source

    module = _module_name(key)  # one per key: TorchScript caches compiled code by qualified name
    submission = Submission(path="<test>", cells=[SourceCell(code=source, label="file")])
    try:
        namespace, errors = namespace_from_source(submission, module_name=module)
        spec = get_exercise(exercise)
        return run_checks(InProcessRunner(namespace, errors), spec, select_checks(spec), device="cpu",
                          skip_training=True, salt=salt)
    finally:
        sys.modules.pop(module, None)


def grade_whole(path: Path, exercise: str, salt: int):
    """Grade a file in the confined child, training included."""
    from autograder.grading import grade_path

    return grade_path(path, exercise, device="cpu", salt=salt)


def _matches(key: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(key, pattern)
    return pattern in key


def record(args) -> int:
    import autograder
    from tqdm import tqdm

    package = Path(autograder.__file__).resolve()
    print(f"autograder: {package}", file=sys.stderr)
    if ROOT.resolve() not in package.parents:
        print(f"error: autograder imported from {package}, not from this checkout ({ROOT})", file=sys.stderr)
        return 2

    skipped: list[str] = []
    entries = submissions(skipped)
    jobs = [(e.key, e, False) for e in entries]
    if args.training:
        for e in entries:
            if e.path is not None and e.key.endswith(("/reference", "/sample")):
                jobs.append((f"{e.key}+training", e, True))
    jobs = sorted((job for job in jobs if _matches(job[0], args.only)), key=lambda job: (job[2], job[0]))
    if not jobs:
        print(f"nothing matches {args.only!r}", file=sys.stderr)
        return 2

    results: dict[str, dict] = {}
    failures = 0
    start = time.perf_counter()
    progress = tqdm(jobs, desc="grading", unit="submission", file=sys.stderr, dynamic_ncols=True)
    for key, entry, training in progress:
        progress.set_postfix_str(key, refresh=False)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is the script's summary only
                if training:
                    report = grade_whole(entry.path, entry.exercise, args.salt)
                else:
                    report = grade_in_process(entry.source(), entry.exercise, args.salt, key)
            results[key] = _record(report)
        except Exception as exc:  # noqa: BLE001 - recorded: a difference the comparison shows
            failures += 1
            results[key] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            tqdm.write(f"{key}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}", file=sys.stderr)
    progress.close()
    seconds = time.perf_counter() - start

    output = Path(args.output)
    text = _dumps(results)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(text)
    os.replace(partial, output)

    checks = sum(len(r.get("checks", {})) for r in results.values())
    for line in skipped:
        print(f"not enumerated: {line}", file=sys.stderr)
    print(f"recorded {len(results)} submissions, {checks} checks (salt {args.salt}"
          f"{', training' if args.training else ''}) in {seconds:.0f} s to {output}")
    if failures:
        print(f"{failures} submissions could not be graded (recorded under 'error')")
    return 1 if failures else 0


def compare(a: Path, b: Path, points_only: bool, only: str | None = None) -> int:
    left, right = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    if only:  # compare the keys matching ``only`` in both
        left = {k: v for k, v in left.items() if _matches(k, only)}
        right = {k: v for k, v in right.items() if _matches(k, only)}
    differences: list[str] = []
    checks = 0
    for key in sorted(set(left) | set(right)):
        if key not in right:
            differences.append(f"{key}: only in {a}")
            continue
        if key not in left:
            differences.append(f"{key}: only in {b}")
            continue
        x, y = left[key], right[key]
        for field in ("error", "grader_errors") if not points_only else ("error",):
            if x.get(field) != y.get(field):
                differences.append(f"{key}: {field} {x.get(field)!r} != {y.get(field)!r}")
        if x.get("total") != y.get("total"):
            differences.append(f"{key}: total {x.get('total')} != {y.get('total')}")
        cx, cy = x.get("checks", {}), y.get("checks", {})
        for name in sorted(set(cx) | set(cy)):
            if name not in cy:
                differences.append(f"{key}: check {name} only in {a}")
            elif name not in cx:
                differences.append(f"{key}: check {name} only in {b}")
            else:
                checks += 1
                p, q = cx[name], cy[name]
                if p[:2] != q[:2]:
                    differences.append(f"{key}: {name} points {p[0]:g}/{p[1]:g} != {q[0]:g}/{q[1]:g}")
                if not points_only and p[2:] != q[2:]:
                    differences.append(f"{key}: {name} status {p[2]} != {q[2]}")
        if not points_only:
            hx, hy = x.get("hints", {}), y.get("hints", {})
            for name in sorted(set(hx) | set(hy)):
                if hx.get(name, []) != hy.get(name, []):
                    differences.append(f"{key}: {name} hints {hx.get(name, [])!r} != {hy.get(name, [])!r}")
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} differences")
        return 1
    print(f"identical: {len(left)} submissions, {checks} checks")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", help="where to write the record (JSON)")
    parser.add_argument("--salt", type=int, default=0, help="the salt of every grading (default 0)")
    parser.add_argument("--only", help="grade only the keys matching this glob (a plain string: a substring)")
    parser.add_argument("--training", action="store_true",
                        help="also grade the references and the flawed samples whole, training included "
                             "(confined child; minutes)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two records instead of grading")
    parser.add_argument("--points-only", action="store_true",
                        help="with --compare: compare totals and points only (not statuses, hints, grader errors)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(Path(args.compare[0]), Path(args.compare[1]), args.points_only, args.only)
    if not args.output:
        parser.error("--output is required (or --compare A B)")
    return record(args)


if __name__ == "__main__":
    sys.exit(main())
