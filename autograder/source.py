"""Turn a submission (``.py`` or ``.ipynb``) into the source the grader runs: definitions and imports only.

A notebook's training, plotting and exploration cells are not rerun: from each code cell we keep imports,
function and class definitions, and assignments whose value calls nothing (constants such as ``EMBED_DIM = 64``).
Problems are collected as notes instead of raised, so one broken cell costs only what depends on it.

The grader never parses a submission itself: the file's size is capped here, and ``source_filter`` parses it in
a short-lived process of its own, limited in memory, CPU time and wall time, so that no source, however deep,
large or crafted, can crash or stall the grader. What cannot be read at all raises ``SubmissionFormatError``,
whose message the grader reports as a note.
"""

from __future__ import annotations

import json
import linecache
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import message_type
from .source_filter import filter_definitions, filter_source

__all__ = ["MAX_NOTEBOOK_BYTES", "MAX_SOURCE_BYTES", "SourceCell", "Submission", "SubmissionFormatError",
           "filter_definitions", "load_submission", "namespace_from_source", "register_source"]

log = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 2 << 20  # Python code: a .py file, or a notebook's code cells together
MAX_NOTEBOOK_BYTES = 32 << 20  # a whole notebook file, outputs (plots) included
READ_TIMEOUT = 30.0  # wall-clock seconds for the process that parses the source
_FILTER_SCRIPT = Path(__file__).with_name("source_filter.py")


class SubmissionFormatError(Exception):
    """The file cannot be read as a submission at all (not a notebook, not text, too large, ...)."""


@message_type
@dataclass
class SourceCell:
    """One unit of submission code, executed on its own so that an error in one does not stop the rest."""

    code: str
    label: str  # "cell 3" or "file"


@message_type
@dataclass
class Submission:
    """What the grader runs: filtered code cells and the notes about what was dropped or broken.

    ``path`` is the file's name only: the submission is sent to the child, which never learns the tutor's paths.
    """

    path: str
    cells: list[SourceCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_submission(path: str | Path) -> Submission:
    """Read a ``.py`` or ``.ipynb`` file into a ``Submission``; raises ``SubmissionFormatError`` if unreadable."""
    path = Path(path)
    notebook = path.suffix.lower() == ".ipynb"
    limit = MAX_NOTEBOOK_BYTES if notebook else MAX_SOURCE_BYTES
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise SubmissionFormatError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise SubmissionFormatError(f"{path.name} is larger than {limit >> 20} MiB, the limit for "
                                    f"{'a notebook' if notebook else 'a Python file'}; it was not read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionFormatError(f"{path.name} is not a text file (not UTF-8)") from None
    if not text.strip():
        raise SubmissionFormatError(f"{path.name} is empty")
    result = _filter_elsewhere(raw, notebook, path.name)
    if "error" in result:
        raise SubmissionFormatError(f"{path.name} {result['error']}")
    return Submission(path=path.name, cells=[SourceCell(code=code, label=label) for code, label in result["cells"]],
                      notes=list(result["notes"]))


def _filter_elsewhere(raw: bytes, notebook: bool, name: str) -> dict:
    """``source_filter.filter_source`` run in a bounded process of its own; see the module's docstring."""
    if not sys.executable:  # an embedded interpreter: no process to start, parse here (parser errors are caught)
        log.warning("no Python executable to parse %s in a process of its own; parsing it in the grader", name)
        return filter_source(raw.decode("utf-8"), notebook, MAX_SOURCE_BYTES)
    command = [sys.executable, "-I", "-S", str(_FILTER_SCRIPT), "notebook" if notebook else "python",
               str(MAX_SOURCE_BYTES)]
    try:
        proc = subprocess.run(command, input=raw, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=READ_TIMEOUT, check=False)  # -I: no PYTHON* variable, no user site
    except subprocess.TimeoutExpired:
        raise SubmissionFormatError(f"{name} took over {READ_TIMEOUT:.0f} s to parse; it was not read") from None
    if proc.returncode != 0:
        log.warning("the process parsing %s %s", name, _ended(proc.returncode))
        raise SubmissionFormatError(f"{name} could not be parsed: the parser {_ended(proc.returncode)}")
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = None
    if not _well_formed(result):  # the parsing process is ours: an answer of another shape is the grader's bug
        raise RuntimeError(f"source_filter answered {proc.stdout[:200]!r} for {name}")
    return result


def _ended(code: int) -> str:
    """How the parsing process ended, from its exit status."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (out of memory or CPU time?)"
    return f"ended with exit status {code}"


def _well_formed(result: object) -> bool:
    """Whether ``result`` has the shape ``filter_source`` returns."""
    if not isinstance(result, dict):
        return False
    if "error" in result:
        return isinstance(result["error"], str)
    cells, notes = result.get("cells"), result.get("notes")
    return (isinstance(cells, list) and isinstance(notes, list) and all(isinstance(n, str) for n in notes)
            and all(isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in cells))


def register_source(filename: str, code: str) -> None:
    """Let ``inspect.getsource`` find the code compiled under ``filename``, a name no file has.

    ``torch.jit.script`` compiles a function from its source text, which ``inspect`` reads through ``linecache``;
    an entry without a modification time is never checked against the disk nor dropped by
    ``linecache.checkcache``, as IPython does for its cells. Nothing is written anywhere: this works in the
    sandbox and in the grader's process alike. A later cell of the same name (another submission graded in
    the same process) replaces the entry.
    """
    lines = code.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (len(code), None, lines, filename)


def namespace_from_source(submission: Submission, module_name: str = "submission") -> tuple[dict, list[str]]:
    """Execute the kept cells one by one into a fresh module's namespace; returns (namespace, errors).

    Each cell's code is registered with ``register_source`` under the name it is compiled with (``<cell 3>``),
    so that code that reads its own source (``torch.jit.script``, ``inspect.getsource``) works as in a notebook.
    """
    import traceback
    import types

    module = types.ModuleType(module_name)
    module.__file__ = f"<{module_name}>"
    sys.modules[module_name] = module
    errors = []
    for cell in submission.cells:
        filename = f"<{cell.label}>"
        register_source(filename, cell.code)
        try:
            exec(compile(cell.code, filename, "exec"), module.__dict__)
        except BaseException as exc:  # noqa: BLE001 - anything a submission raises, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" (line {tb[-1].lineno})" if tb else ""
            errors.append(f"{cell.label}: {type(exc).__name__}: {exc}{where}")
    return module.__dict__, errors
