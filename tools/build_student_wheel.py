"""Build the student wheel: the engine and the public checks, without the hidden checks or their references.

    .venv/bin/python tools/build_student_wheel.py [OUT_DIR]      # default: dist/

Students install it to run the public checks in their notebooks (``check_part(...)``); it contains neither
``solutions/`` (never packaged) nor any ``hidden.py`` or ``reference.py`` module. The tutor's install is
the project itself (``pip install .``), which has everything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED = ("hidden.py", "reference.py", "__pycache__", "*.pyc")  # each exercise's hidden checks and references, and the kit's
PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "attention-exercises"
version = "{version}"
description = "Public checks for the neural-attention exercises (student install)"
requires-python = ">=3.10"
dependencies = {dependencies!r}

[tool.setuptools.packages.find]
include = ["autograder*"]
"""


def build_student_wheel(out_dir: Path) -> Path:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-wheel-") as tmp:
        src = Path(tmp)
        shutil.copytree(ROOT / "autograder", src / "autograder", ignore=shutil.ignore_patterns(*EXCLUDED))
        (src / "pyproject.toml").write_text(
            PYPROJECT.format(version=project["version"], dependencies=list(project["dependencies"])).replace("'", '"'))
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out_dir), str(src)], check=True,
                       capture_output=True, text=True)
    return max(out_dir.glob("attention_exercises-*.whl"), key=lambda p: p.stat().st_mtime)


if __name__ == "__main__":
    wheel = build_student_wheel(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
    print(f"built {wheel}")
