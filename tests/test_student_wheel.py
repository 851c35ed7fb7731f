"""Does the student install hold the public checks, and neither the solutions nor the hidden checks?"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

from autograder.exercises import names as exercise_names

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("student_wheel")]  # one wheel, built on one worker
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="session")  # built once per worker
def wheel(tmp_path_factory):
    from build_student_wheel import build_student_wheel

    return build_student_wheel(tmp_path_factory.mktemp("dist"))


def test_does_the_wheel_leave_out_solutions_hidden_checks_and_references(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("autograder/notebook_cell.py") for n in names)
    for name in exercise_names():
        assert any(n.endswith(f"autograder/exercises/{name}/__init__.py") for n in names), name
    assert not [n for n in names if "solutions" in n or n.endswith(("/hidden.py", "/reference.py")) or n.startswith("tests/")]


def test_do_the_public_checks_run_from_the_wheel(wheel, tmp_path):
    """Unpacked alone on the path (the dependencies come from this environment), the public checks give the
    reference full public marks, and no hidden check exists to run."""
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = f"""
import sys, runpy
sys.path.insert(0, {str(tmp_path / "site")!r})
import autograder
assert autograder.__file__.startswith({str(tmp_path)!r}), autograder.__file__
from autograder.exercises import registry
from autograder.notebook_cell import check_part
assert sorted(registry()) == {sorted(exercise_names())!r}, sorted(registry())
for name, exercise in registry().items():
    assert not [c for c in exercise.checks if c.hidden], name
    assert not exercise.probes, name  # the probes are hidden too
    namespace = runpy.run_path({str(ROOT)!r} + "/" + exercise.solution)
    for part in exercise.parts:
        earned = check_part(name, part, namespace)
        total = sum(c.points for c in exercise.checks if c.part == part)
        assert earned == total, (part, earned, total)
print("public checks ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "public checks ok" in proc.stdout
