"""Helpers for the scripts that write the nbgrader source notebooks (``tools/make_*_notebook.py``).

Solution cells are left as placeholders and filled from ``solutions/`` by ``autograder.authoring``; test
cells' points come from the exercise's checks, so the notebook and the grader cannot disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from autograder.authoring import sync_notebook
from autograder.contract import contract_table, submodule_list
from autograder.exercises import Exercise


class NotebookBuilder:
    def __init__(self, exercise: Exercise):
        self.exercise = exercise
        self.cells: list[dict] = []

    @staticmethod
    def _meta(grade_id: str, *, solution=False, grade=False, locked=True, points=None, section=None) -> dict:
        nb = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
              "task": False}
        if points is not None:
            nb["points"] = points
        meta = {"nbgrader": nb}
        if section:
            meta["autograder"] = {"section": section}
        return meta

    def markdown(self, grade_id: str, text: str) -> None:
        self.cells.append({"cell_type": "markdown", "metadata": self._meta(grade_id), "source": text.strip("\n")})

    def contract(self, before: str, after: str = "") -> None:
        """The contract cell: ``before``, then the table and the sub-modules made from the exercise's contract
        (``autograder.contract``, which the interface checks use too), then ``after``."""
        parts = self.exercise.contracts
        text = (f"## The contract\n\n{before.strip()}\n\n{contract_table(parts)}\n\n"
                f"Sub-modules the grader looks for:\n\n{submodule_list(parts)}\n")
        self.markdown("contract", text + (f"\n{after.strip()}\n" if after.strip() else ""))

    def code(self, grade_id: str, text: str, **kw) -> None:
        self.cells.append({"cell_type": "code", "execution_count": None, "metadata": self._meta(grade_id, **kw),
                           "outputs": [], "source": text.strip("\n")})

    def solution(self, section: str) -> None:
        self.code(f"{section}_solution", f"# filled from {self.exercise.solution}", solution=True, locked=False,
                  section=section)

    def tests(self, part: str, short: str) -> None:
        """A cell of public checks and a cell of hidden checks for ``part``, worth what its checks are worth."""
        name = self.exercise.name
        public = sum(c.points for c in self.exercise.checks if c.part == part and not c.hidden)
        hidden = sum(c.points for c in self.exercise.checks if c.part == part and c.hidden)
        self.code(f"{short}_public_checks", f'check_part("{name}", "{part}", globals())', grade=True, points=public)
        self.code(f"{short}_hidden_checks",
                  f'### BEGIN HIDDEN TESTS\ncheck_part("{name}", "{part}", globals(), hidden=True)\n### END HIDDEN TESTS',
                  grade=True, points=hidden)

    def write(self, root: Path) -> Path:
        notebook = {
            "cells": self.cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for cell in notebook["cells"]:
            cell["id"] = cell["metadata"]["nbgrader"]["grade_id"].replace("_", "-")
            cell["source"] = cell["source"].splitlines(keepends=True)
        path = root / self.exercise.notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        sync_notebook(path, root / self.exercise.solution)
        return path
