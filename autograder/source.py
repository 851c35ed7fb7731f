"""Turn a submission (``.py`` or ``.ipynb``) into the source the grader runs: definitions and imports only.

A notebook's training, plotting and exploration cells are not rerun: from each code cell we keep imports,
function and class definitions, and assignments whose value calls nothing (constants such as ``EMBED_DIM = 64``).
Problems are collected as notes instead of raised, so one broken cell costs only what depends on it.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import message_type

KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class SubmissionFormatError(Exception):
    """The file cannot be read as a submission at all (not a notebook, not text, ...)."""


@message_type
@dataclass
class SourceCell:
    """One unit of submission code, executed on its own so that an error in one does not stop the rest."""

    code: str
    label: str  # "cell 3" or "file"


@message_type
@dataclass
class Submission:
    """What the grader runs: filtered code cells and the notes about what was dropped or broken."""

    path: str
    cells: list[SourceCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
    """Keep the definitions of one cell; returns (code or None, notes)."""
    code = _strip_magics(code)
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


def load_submission(path: str | Path) -> Submission:
    """Read a ``.py`` or ``.ipynb`` file into a ``Submission``; raises ``SubmissionFormatError`` if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SubmissionFormatError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionFormatError(f"{path.name} is not a text file (not UTF-8)") from None
    if not text.strip():
        raise SubmissionFormatError(f"{path.name} is empty")
    submission = Submission(path=str(path))
    if path.suffix == ".ipynb":
        sources = _notebook_code_cells(text, path.name)
    else:
        sources = [(text, "file")]
    for code, label in sources:
        kept, notes = filter_definitions(code, label)
        submission.notes.extend(notes)
        if kept:
            submission.cells.append(SourceCell(code=kept, label=label))
    return submission


def _notebook_code_cells(text: str, name: str) -> list[tuple[str, str]]:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionFormatError(f"{name} is not a valid notebook: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionFormatError(f"{name} is not a notebook: it has no list of cells")
    out = []
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(str(s) for s in src)
        out.append((str(src), f"cell {i}"))
    return out


def namespace_from_source(submission: Submission, module_name: str = "submission") -> tuple[dict, list[str]]:
    """Execute the kept cells one by one into a fresh module's namespace; returns (namespace, errors)."""
    import sys
    import traceback
    import types

    module = types.ModuleType(module_name)
    module.__file__ = f"<{module_name}>"
    sys.modules[module_name] = module
    errors = []
    for cell in submission.cells:
        try:
            exec(compile(cell.code, f"<{cell.label}>", "exec"), module.__dict__)
        except BaseException as exc:  # noqa: BLE001 - anything a submission raises, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" (line {tb[-1].lineno})" if tb else ""
            errors.append(f"{cell.label}: {type(exc).__name__}: {exc}{where}")
    return module.__dict__, errors
