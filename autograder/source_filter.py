"""Read a submission's source into definitions: the part of ``source`` that parses what a student wrote.

From each code cell we keep imports, function and class definitions, and assignments whose value calls nothing
(constants such as ``EMBED_DIM = 64``). Problems are collected as notes instead of raised, so one broken cell costs
only what depends on it.

Parsing hostile text can exhaust the parser (``RecursionError``, ``MemoryError``, and on some Python versions a
crash of the interpreter), so the grader runs this module as a script in a short-lived process of its own,
``python -I -S source_filter.py KIND MAX_SOURCE_BYTES``, with the file's bytes on stdin and JSON on stdout; it then
sets its own memory and CPU limits. It imports the standard library only.
"""

from __future__ import annotations

import ast
import json
import sys

KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
MAX_NOTES = 50  # notes beyond these are summed up in one
MAX_CODE_CELLS = 5_000
MEMORY_LIMIT = 2 << 30  # address space of the reading process
CPU_SECONDS = 20


class FormatError(Exception):
    """The text cannot be read as a submission at all (not a notebook, too much code, ...)."""


def _calls_nothing(node: ast.AST) -> bool:
    return not any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)) for n in ast.walk(node))


def _keep(node: ast.stmt) -> bool:
    if isinstance(node, KEPT_STATEMENTS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) for t in targets) and _calls_nothing(node.value)
    return False


def _strip_magics(code: str) -> str:
    """IPython magics and shell escapes are not Python; blank them out, keeping line numbers."""
    lines = []
    for line in code.splitlines():
        stripped = line.lstrip()
        lines.append("" if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def filter_definitions(code: str, label: str) -> tuple[str | None, list[str]]:
    """Keep the definitions of one cell; returns (code or None, notes).

    Code nested too deeply for Python's parser costs its cell, with a note; nothing is raised.
    """
    try:
        return _filter(_strip_magics(code), label)
    except (RecursionError, MemoryError) as exc:
        return None, [f"{label}: the code is nested too deeply for Python's parser ({type(exc).__name__}); "
                      "its definitions are missing"]


def _filter(code: str, label: str) -> tuple[str | None, list[str]]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return None, [f"{label}: syntax error on line {exc.lineno}: {exc.msg}; its definitions are missing"]
    kept = [node for node in tree.body if _keep(node)]
    if not kept:
        return None, []
    # Keep the kept statements' own lines and blank the rest, so that line numbers in tracebacks stay true.
    lines = code.splitlines()
    keep_lines: set[int] = set()
    for node in kept:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        keep_lines.update(range(first - 1, node.end_lineno))
    dropped_lines = {i for node in tree.body if not _keep(node) for i in range(node.lineno - 1, node.end_lineno)}
    if keep_lines & dropped_lines:  # statements sharing a line (``import x; train()``): rebuild instead
        return ast.unparse(ast.Module(body=kept, type_ignores=[])), []
    return "\n".join(line if i in keep_lines else "" for i, line in enumerate(lines)), []


def notebook_code_cells(text: str) -> list[tuple[str, str]]:
    """The code cells of a notebook's JSON as (source, "cell N"); raises ``FormatError`` if it is no notebook."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"is not a valid notebook: not JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise FormatError("is not a valid notebook: its JSON is nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise FormatError("is not a notebook: it has no list of cells")
    out = []
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(str(s) for s in src)
        out.append((str(src), f"cell {i}"))
    if len(out) > MAX_CODE_CELLS:
        raise FormatError(f"has {len(out)} code cells, over the limit of {MAX_CODE_CELLS}")
    return out


def filter_source(text: str, notebook: bool, max_source_bytes: int) -> dict:
    """Filter a whole submission: ``{"cells": [[code, label], ...], "notes": [...]}`` or ``{"error": why}``."""
    try:
        sources = notebook_code_cells(text) if notebook else [(text, "file")]
    except FormatError as exc:
        return {"error": str(exc)}
    size = sum(len(code.encode("utf-8", "replace")) for code, _ in sources)
    if size > max_source_bytes:
        return {"error": f"holds {size / (1 << 20):.1f} MiB of code, over the limit of {max_source_bytes >> 20} MiB"}
    cells, notes = [], []
    for code, label in sources:
        kept, cell_notes = filter_definitions(code, label)
        notes.extend(cell_notes)
        if kept:
            cells.append([kept, label])
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES] + [f"... and {len(notes) - MAX_NOTES} more notes like these"]
    return {"cells": cells, "notes": notes}


def _limit_self() -> None:
    """Cap this process's memory and CPU time (where the platform allows) before reading anything."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    for which, value in ((resource.RLIMIT_AS, MEMORY_LIMIT), (resource.RLIMIT_CPU, CPU_SECONDS),
                         (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def main(argv: list[str]) -> int:
    """Script entry: ``KIND MAX_SOURCE_BYTES``, the file's UTF-8 bytes on stdin, the result's JSON on stdout."""
    _limit_self()
    kind, max_source_bytes = argv[0], int(argv[1])
    try:
        result = filter_source(sys.stdin.buffer.read().decode("utf-8"), kind == "notebook", max_source_bytes)
    except (MemoryError, RecursionError) as exc:
        result = {"error": f"could not be read within the reader's limits ({type(exc).__name__})"}
    sys.stdout.buffer.write(json.dumps(result).encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
