"""A class gradebook's grades written into nbgrader's own gradebook, by nbgrader itself.

``write_scores(gradebook, course)`` runs ``nbgrader autograde`` in the nbgrader course folder ``course`` with the
confined grading preprocessor told to take each student's grade from the class gradebook
(``ConfinedGrading.class_gradebook``): nbgrader sanitizes each submitted notebook, writes the autograded copy
with the feedback in its test cells and records the scores in its database, exactly as when it grades; nothing
is graded again. A student the class gradebook did not grade (or whose submitted file changed since) is graded
then, with the class's seed. Afterwards ``nbgrader generate_feedback`` and ``nbgrader export`` work as usual.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

from .exercises import get_exercise
from .gradebook import grades


def write_scores(gradebook, course, exercise: str | None = None, assignment: str | None = None,
                 timeout: float = 6 * 3600) -> str:
    from .exports import ExportError

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ExportError(f"{course} is not an nbgrader course folder (no nbgrader_config.py): pass the course "
                          "folder as --output")
    found = {g.exercise for g in grades(gradebook)}
    if exercise is None:
        if len(found) != 1:
            raise ExportError(f"pass --exercise: the gradebook holds {', '.join(sorted(found)) or 'no grades'}")
        exercise = found.pop()
    assignment = assignment or PurePosixPath(get_exercise(exercise).notebook).parent.name or exercise
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs alembic from the environment's bin directory
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--create", "--force",
               f"--ConfinedGrading.class_gradebook={Path(gradebook).resolve()}",
               f"--ConfinedGrading.course_root={course}"]
    proc = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ExportError(f"nbgrader autograde failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    graded_now = proc.stderr.count("not in the class gradebook")
    return (f"{exercise}: the class gradebook's grades are in nbgrader's gradebook of {course} (assignment "
            f"{assignment}; {graded_now} notebooks were not in the class gradebook and were graded now)")
