"""The record that lets the 30-draw reproducibility run resume across sessions (a pytest plugin of
``bench/reproducibility.py``).

Each test that passes is recorded, one JSON line in ``bench/reproducibility.jsonl``, with the number of draws and a
fingerprint of everything its verdicts depend on: the engine (``autograder/`` outside the other exercises'
packages), its exercise's package, solution, known-mistake edits and fixtures, the test helpers that grade it, and
the torch version. A later run skips the tests whose record still holds (same fingerprint, at least as many draws),
so that the full set can be run in pieces; changing an exercise re-runs that exercise's tests only, changing the
engine re-runs them all.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(os.environ.get("REPRODUCIBLE_RECORD", ROOT / "bench" / "reproducibility.jsonl"))
HELPERS = ("tests/conftest.py", "tests/mutations.py", "tests/realworld_fixtures.py", "tests/test_reproducible.py",
           "tests/mistake_edits/__init__.py")


def exercise_of(item) -> str | None:
    """The exercise a test grades, from its parameters (``exercise``, or a fixture's)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if isinstance(params.get("exercise"), str):
        return params["exercise"]
    fixture = params.get("fixture")
    return getattr(fixture, "exercise", None)


@functools.lru_cache(maxsize=None)
def fingerprint(exercise: str | None) -> str:
    """A hash of the files the verdicts of ``exercise``'s tests depend on (every exercise's, for None)."""
    import torch

    packages = ROOT / "autograder" / "exercises"
    others = {p.name for p in packages.iterdir() if p.is_dir() and p.name != exercise} if exercise else set()
    files = [p for p in (ROOT / "autograder").rglob("*.py")
             if not (p.is_relative_to(packages) and len(p.relative_to(packages).parts) > 1
                     and p.relative_to(packages).parts[0] in others)]
    files += [ROOT / h for h in HELPERS]
    if exercise:
        files += [ROOT / "solutions" / f"{exercise}.py", ROOT / "tests" / "mistake_edits" / f"{exercise}.py"]
        files += list((ROOT / "tests" / "submissions").rglob(f"{exercise}_*.py"))
    else:
        files += list((ROOT / "solutions").glob("*.py")) + list((ROOT / "tests").rglob("*.py"))
    import numpy
    import platform

    digest = hashlib.sha256(f"{torch.__version__} {numpy.__version__} {platform.python_version()}".encode())
    for path in sorted(set(files)):
        if path.exists():
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def draws() -> int:
    return int(os.environ.get("REPRODUCIBLE_DRAWS", 0))


def recorded() -> dict[tuple[str, str], int]:
    """(test id, fingerprint) -> the most draws it passed with."""
    best: dict[tuple[str, str], int] = {}
    if RECORD.exists():
        for line in RECORD.read_text().splitlines():
            try:
                entry = json.loads(line)
                key, count = (entry["test"], entry["fingerprint"]), int(entry["draws"])
            except (ValueError, KeyError, TypeError):  # a line cut short by a stopped run proves nothing
                continue
            best[key] = max(best.get(key, 0), count)
    return best


def fresh() -> bool:
    """Run every test, whatever the record proves (still recording what passes)."""
    return os.environ.get("REPRODUCIBLE_FRESH") == "1"


def pytest_collection_modifyitems(config, items):
    if not draws() or fresh():
        return
    done = recorded()
    keep, proven = [], []
    for item in items:
        key = (item.nodeid, fingerprint(exercise_of(item)))
        (proven if done.get(key, 0) >= draws() else keep).append(item)
    if proven:
        config.hook.pytest_deselected(items=proven)
        items[:] = keep


_failed: set[str] = set()  # tests with a phase that did not pass (setup, call or teardown)
_started: dict[str, float] = {}


def pytest_runtest_logstart(nodeid, location):
    _started[nodeid] = time.perf_counter()


def pytest_runtest_logreport(report):
    """Record a test once all its phases passed (a teardown error or an unexpected xfail pass is no proof). Under
    pytest-xdist the workers record; the controller, which sees the same reports, does not."""
    if not draws() or os.environ.get("PYTEST_XDIST_WORKER") is None and _is_controller():
        return
    if report.failed or hasattr(report, "wasxfail") or report.skipped:
        _failed.add(report.nodeid)
    if report.when != "teardown" or report.nodeid in _failed:
        return
    item_exercise = _exercises.get(report.nodeid)
    entry = {"test": report.nodeid, "exercise": item_exercise, "fingerprint": fingerprint(item_exercise),
             "draws": draws(), "seconds": round(time.perf_counter() - _started.get(report.nodeid, time.perf_counter()), 1),
             "date": datetime.date.today().isoformat()}
    with open(RECORD, "a") as f:  # one short line, appended: safe from both workers
        f.write(json.dumps(entry, sort_keys=True) + "\n")


_exercises: dict[str, str | None] = {}
_config = None


def pytest_configure(config):
    global _config
    _config = config


def _is_controller() -> bool:
    """This process hands tests to xdist workers (and so runs none itself)."""
    return _config is not None and bool(getattr(_config.option, "numprocesses", None)) and \
        not hasattr(_config, "workerinput")


def pytest_itemcollected(item):
    _exercises[item.nodeid] = exercise_of(item)
