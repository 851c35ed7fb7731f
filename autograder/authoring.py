"""Keep the nbgrader source notebooks in step with ``solutions/``, the single source of truth.

A solution file is divided into sections by ``# %% [name]`` lines. A notebook cell whose metadata holds
``{"autograder": {"section": name}}`` must contain exactly that section; ``sync_notebook`` rewrites such cells
and reports which ones changed (a test fails on any drift).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SECTION = re.compile(r"^# %% \[(?P<name>[\w.-]+)\]\s*$")


def solution_sections(path: str | Path) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in Path(path).read_text().splitlines():
        match = SECTION.match(line)
        if match:
            current = match["name"]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def sync_notebook(notebook: str | Path, solution: str | Path, write: bool = True) -> list[str]:
    """Copy each section of ``solution`` into its notebook cell; returns the names of sections that differed."""
    notebook = Path(notebook)
    nb = json.loads(notebook.read_text())
    sections = solution_sections(solution)
    changed, seen = [], set()
    for cell in nb["cells"]:
        name = cell.get("metadata", {}).get("autograder", {}).get("section")
        if name is None:
            continue
        if name not in sections:
            raise KeyError(f"{notebook.name} refers to section {name!r}, which {Path(solution).name} lacks")
        seen.add(name)
        if _source(cell) != sections[name]:
            changed.append(name)
            cell["source"] = sections[name].splitlines(keepends=True)
    missing = [n for n in sections if n not in seen]
    if missing:
        raise KeyError(f"{notebook.name} has no cell for section(s) {', '.join(missing)} of {Path(solution).name}")
    if changed and write:
        notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed
