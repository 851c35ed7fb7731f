"""Read a submission's source, in the trusted parent, for the built-ins it must not use and for the switches
that would blind the runtime watch.

The runtime watch (``autograder.forbidden``) runs in the child process beside the submission, so a
submission can switch it off (``torch._C.DisableTorchFunction``, ``_disable_current_modes``, popping the mode
stacks, patching the grader's own log). This scan needs no execution: it parses each cell with ``ast`` and
reports

- any reference to a forbidden built-in: an attribute (``F.scaled_dot_product_attention``,
  ``torch.nn.TransformerEncoderLayer``), an import (``from torch.nn.functional import
  scaled_dot_product_attention as fast``), a bare name that only a star import can have bound, and a
  string (``getattr(F, "scaled_dot_product_attention")``, ``vars(F)[...]``, ``operator.attrgetter(...)``,
  ``"scaled_dot_" + "product_attention"``);
- any reference at all (attribute, name, import or string) to torch's switches that pop, push, replace or
  switch off the torch-function and dispatch modes, and to the grader's watch itself.

A student's own function named like a built-in (an exercise may ask for
``scaled_dot_product_attention``) is fine, as are comments, docstrings and ``__all__``. A name built at run
time (``exec`` or ``getattr`` of a decoded or computed string, ``gc.get_objects()`` searched for the watch)
is beyond a static reading: a built-in reached that way is still seen by the runtime watch, but a switch
reached that way is not seen at all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .forbidden import DEFAULT_FORBIDDEN, Forbidden

if TYPE_CHECKING:
    from .source import SourceCell  # only ``.code`` and ``.label`` are read

FORBIDDEN_KIND = "built-in"
BYPASS_KIND = "bypass"

_FUNCTION_OFF = "switches off PyTorch's function modes"
_DISPATCH_OFF = "switches off PyTorch's dispatch modes"
_STACK = "pops, pushes or replaces PyTorch's active modes"
_HOLD = "takes hold of PyTorch's active modes"
_GRADER = "reaches into the grader's own watch"
_CHANGES_GRADER = "changes the grader's own code"
_CHANGES_WHY = "the grader runs its checks and its training with the code it was given"
_UNREADABLE = "is nested too deeply for the grader to read"
_BYPASS_WHY = "the grader cannot then see which built-ins you call"
_FORBIDDEN_WHY = "this exercise asks you to write it yourself"


@dataclass(frozen=True)
class Bypass:
    """A name that switches off or reaches into the runtime watch; any reference to it is a finding.

    ``attribute`` is the last component (what code writes after the dot, imports or puts in a string),
    ``shown`` its full path for the message, ``does`` what it does, in the message's words.
    """

    attribute: str
    shown: str
    does: str


def _bypasses(does: str, module: str, *names: str) -> tuple[Bypass, ...]:
    return tuple(Bypass(attribute=name, shown=f"{module}.{name}", does=does) for name in names)


# Read from torch 2.13's torch/_C/__init__.pyi, torch/overrides.py, torch/utils/_python_dispatch.py and
# torch/utils/_mode_utils.py; tests/test_forbidden_source.py checks that each exists and that torch has no
# other name of the same kind.
BYPASSES: tuple[Bypass, ...] = (
    *_bypasses(
        _FUNCTION_OFF, "torch._C",
        "DisableTorchFunction", "DisableTorchFunctionSubclass", "_EnableTorchFunction",
        "_set_torch_function_state", "_get_torch_function_state", "_TorchFunctionState",
        "_disabled_torch_function_impl", "_skip_one_hop_torch_function", "_set_skip_next_torch_function",
    ),
    *_bypasses(_FUNCTION_OFF, "torch.overrides", "_enable_torch_function"),
    *_bypasses(
        _STACK, "torch._C",
        "_pop_torch_function_stack", "_push_on_torch_function_stack", "_pop_torch_dispatch_stack",
        "_push_on_torch_dispatch_stack", "_set_dispatch_mode", "_unset_dispatch_mode", "_TorchDispatchModeKey",
    ),
    *_bypasses(_STACK, "torch.overrides", "_pop_mode", "_pop_mode_temporarily", "_push_mode"),
    *_bypasses(
        _STACK, "torch.utils._python_dispatch",
        "_pop_mode", "_pop_mode_temporarily", "_push_mode", "_disable_current_modes", "_disable_infra_mode",
        "_unset_infra_mode",
    ),
    *_bypasses(_HOLD, "torch._C", "_get_function_stack_at", "_get_dispatch_stack_at", "_get_dispatch_mode"),
    *_bypasses(_HOLD, "torch.overrides", "_get_current_function_mode", "_get_current_function_mode_stack"),
    *_bypasses(
        _HOLD, "torch.utils._python_dispatch", "_get_current_dispatch_mode", "_get_current_dispatch_mode_stack"
    ),
    *_bypasses(
        _DISPATCH_OFF, "torch._C",
        "_DisableTorchDispatch", "_disabled_torch_dispatch_impl", "ExcludeDispatchKeyGuard",
        "_ExcludeDispatchKeyGuard", "_SetExcludeDispatchKeyGuard", "_IncludeDispatchKeyGuard",
        "_ForceDispatchKeyGuard", "_PreserveDispatchKeyGuard", "_dispatch_tls_set_dispatch_key_excluded",
        "_dispatch_tls_set_dispatch_key_included", "_RestorePythonTLSSnapshot",
    ),
    *_bypasses(_DISPATCH_OFF, "torch.utils._mode_utils", "no_dispatch"),
    *_bypasses(
        _GRADER, "autograder.forbidden",
        "CallLog", "_FunctionWatch", "_OpWatch", "scan_modules", "watch_layers", "_module_classes",
        "FORBIDDEN_FUNCTIONS", "FORBIDDEN_OPS",
        "FORBIDDEN_MODULES", "ForbiddenSet", "ATTENTION_BUILTINS",
    ),
)
# The grader's modules that run beside the submission in the child; importing or naming them is a bypass.
GRADER_MODULES: tuple[str, ...] = ("autograder.forbidden", "autograder.requests", "autograder.child")

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_IMPORTERS = frozenset({"__import__", "import_module"})
_EXECUTORS = frozenset({"exec", "eval", "compile"})
# Syntax nodes the scan reads in all (a student's code has thousands; 2 MiB of code at most some hundred
# thousand): beyond, the code counts as unread against every part, so that the scan's time is bounded.
MAX_NODES = 400_000
_TOO_LARGE = f"is too large for the grader to read (over {MAX_NODES:,} syntax nodes)"
# Callees that reach an attribute or a module by a name given as a string.
_REACHERS = _IMPORTERS | _EXECUTORS | {"getattr", "attrgetter", "methodcaller", "__getattribute__", "getattr_static",
                                       "locate", "resolve_name", "get_submodule"}


@dataclass(frozen=True)
class SourceFinding:
    """One place in the submission's source that uses a forbidden built-in or bypasses the runtime watch.

    ``part`` is the exercise part (top-level function or class) that contains it, or ``None`` when it lies
    outside every part (module level, or a helper any part may call): such a finding concerns every part.
    ``kind`` is ``"built-in"`` or ``"bypass"``; ``shown`` names what was used.
    """

    part: str | None
    cell: str
    line: int
    message: str
    kind: str
    shown: str

    def concerns(self, part: str) -> bool:
        """Whether this finding counts against ``part``."""
        return self.part is None or self.part == part


@dataclass
class _Context:
    """What the scan knows about the whole submission before it reads any cell."""

    forbidden: dict[str, Forbidden]
    bypasses: dict[str, list[Bypass]]
    aliases: dict[str, str]  # local name -> dotted path it was imported as
    bound: set[str]  # every name the submission binds itself (defs, assignments, arguments, imports)
    own_attributes: set[str]  # method names and ``self.x = ...`` attributes the submission defines
    star_import: bool
    nodes_left: int = 0  # syntax nodes the readers may still read (``MAX_NODES`` in all)
    parts: frozenset = frozenset()  # the exercise's part names: the contract's own words, as labels too


class _TooLarge(Exception):
    """The submission's code has more syntax nodes than the scan reads (``MAX_NODES``)."""


def scan_source(
    cells: Iterable[SourceCell], parts: Sequence[str], forbidden: Sequence[Forbidden] = DEFAULT_FORBIDDEN
) -> list[SourceFinding]:
    """Findings for a submission's cells, in cell order, then line order; an empty list when it is clean.

    ``parts`` are the exercise's part names (``Exercise.parts``), ``forbidden`` its forbidden built-ins. A
    cell that does not parse contributes nothing (the submission loader reports it).
    """
    read: list[tuple[SourceCell, ast.Module | None]] = []  # None: valid Python, but too deep to parse here
    for cell in cells:
        try:
            read.append((cell, ast.parse(cell.code)))
        except (SyntaxError, ValueError):
            continue  # not Python: the loader reports it, and the child cannot run it either
        except (RecursionError, MemoryError):
            # Nested beyond this process's limits; a child that raised its recursion limit could still run
            # it, so it counts as unread code against every part.
            read.append((cell, None))
    bypasses: dict[str, list[Bypass]] = {}
    for bypass in BYPASSES:
        bypasses.setdefault(bypass.attribute, []).append(bypass)
    context = _Context(
        forbidden={f.attribute: f for f in forbidden}, bypasses=bypasses, aliases={}, bound=set(),
        own_attributes=set(), star_import=False, nodes_left=MAX_NODES, parts=frozenset(parts),
    )
    for _, tree in read:
        if tree is not None:
            _learn(tree, context)
    findings: list[SourceFinding] = []
    seen: set[tuple] = set()
    part_names = set(parts)
    for cell, tree in read:
        if tree is None:
            where = "line 1" if cell.label == "file" else f"{cell.label}, line 1"
            findings.append(SourceFinding(part=None, cell=cell.label, line=1, kind=BYPASS_KIND, shown=_UNREADABLE,
                                          message=f"{_UNREADABLE} ({where}): {_BYPASS_WHY}"))
            continue
        cell_findings = []
        try:
            for statement in tree.body:
                part = statement.name if _defines_part(statement, part_names) else None
                cell_findings.extend(_Reader(context, cell.label, part).read(statement))
        except _TooLarge:
            where = "line 1" if cell.label == "file" else f"{cell.label}, line 1"
            findings.append(SourceFinding(part=None, cell=cell.label, line=1, kind=BYPASS_KIND, shown=_TOO_LARGE,
                                          message=f"{_TOO_LARGE} ({where}): {_BYPASS_WHY}"))
            return findings
        for finding in sorted(cell_findings, key=lambda f: f.line):
            key = (finding.part, finding.cell, finding.line, finding.shown)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    return findings


def _defines_part(statement: ast.stmt, parts: set[str]) -> bool:
    return isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and statement.name in parts


def _learn(tree: ast.Module, context: _Context) -> None:
    """Collect imports (with what they bind), the names the submission binds and its own attributes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                context.aliases[local] = alias.name if alias.asname else local
                context.bound.add(local)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    context.star_import = True
                    continue
                local = alias.asname or alias.name
                context.bound.add(local)
                if node.module and not node.level:
                    context.aliases[local] = f"{node.module}.{alias.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            context.bound.add(node.name)
            context.own_attributes.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            context.bound.add(node.id)
        elif isinstance(node, ast.arg):
            context.bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            context.bound.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
            context.own_attributes.add(node.attr)


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Reader:
    """Reads one top-level statement without recursion (a hostile cell may nest deeply)."""

    def __init__(self, context: _Context, label: str, part: str | None):
        self.context = context
        self.label = label
        self.part = part
        self.findings: list[SourceFinding] = []
        self.folded: set[int] = set()  # ids of ``+`` nodes already read as part of a larger concatenation
        self.exec_line: int | None = None  # set while reading code found in a string given to exec/eval
        # A node inside a call's argument or a subscript (``argument``): only there can a built-in's name in a
        # string reach the built-in (getattr, vars()[...], importlib); elsewhere (``MODEL = "Transformer"``) it
        # is a label. Inside what reaches an attribute by name (``reaching``: getattr, attrgetter, imports,
        # exec, a subscript): only there does a layer class's name, which may be a plain word, count. Both are
        # carried down the walk, so that reading stays linear in the size of the code however deep it nests.
        self.argument = False
        self.reaching = False

    def read(self, statement: ast.stmt) -> list[SourceFinding]:
        """The findings in ``statement`` and everything it contains."""
        # (node, inside ``__all__ = ...``, the line of the ``exec``/``eval`` whose code string holds it,
        #  inside an argument, inside what reaches an attribute by name)
        stack: list[tuple[ast.AST, bool, int | None, bool, bool]] = [(statement, False, None, False, False)]
        while stack:
            node, in_all, exec_line, argument, reaching = stack.pop()
            self.context.nodes_left -= 1
            if self.context.nodes_left < 0:
                raise _TooLarge
            if isinstance(node, ast.Expr) and _is_string(node.value):
                continue  # a docstring, or a string standing alone as a comment: it does nothing
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and self._assigns_all(node):
                in_all = True
            self.exec_line, self.argument, self.reaching = exec_line, argument, reaching
            self._inspect(node, in_all)
            inner: dict[int, tuple[bool, bool]] = {}  # child id -> (argument, reaching), where it starts one
            if isinstance(node, ast.Call):
                reaches = _callee_name(node) in _REACHERS
                if _callee_name(node) in ("setattr", "delattr") and node.args:  # setattr(training, "fit", ...)
                    first = node.args[0]
                    if isinstance(first, ast.Attribute):
                        self._changes_grader(self._resolve(first), node)
                    elif isinstance(first, ast.Name):
                        self._changes_grader(self.context.aliases.get(first.id), node)
                for a in [*node.args, *(k.value for k in node.keywords)]:
                    inner[id(a)] = (True, reaching or reaches)
            elif isinstance(node, ast.Subscript):
                inner[id(node.slice)] = (True, True)
            stack.extend((child, in_all, exec_line, *inner.get(id(child), (argument, reaching)))
                         for child in ast.iter_child_nodes(node))
            if isinstance(node, ast.Call) and exec_line is None:
                line = getattr(node, "lineno", 0)
                stack.extend((code, False, line, False, False) for code in _executed_code(node))
        return self.findings

    @staticmethod
    def _assigns_all(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)

    def _inspect(self, node: ast.AST, in_all: bool) -> None:
        if isinstance(node, ast.Attribute):
            self._attribute(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                self._module(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            self._import_from(node)
        elif not in_all:
            for text in self._strings(node):
                self._string(text, node)

    # --- references by attribute, name and import -------------------------------------------------------

    def _attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if _is_self(node.value) and name in self.context.own_attributes:
            return  # the submission's own method or attribute, named like a built-in
        if name in self.context.bypasses:
            self._bypass(name, node, self._resolve(node))
        if name in self.context.forbidden:
            self._forbidden(self.context.forbidden[name], node)
        if any(module.rsplit(".", 1)[-1] == name for module in GRADER_MODULES):
            path = self._resolve(node)
            if path in GRADER_MODULES:
                self._bypass_module(path, node)
        if isinstance(node.ctx, (ast.Store, ast.Del)):  # ``training.fit = faster_fit``
            self._changes_grader(self._resolve(node), node)

    def _name(self, node: ast.Name) -> None:
        # A bare name the submission binds itself is its own (a name it imports is reported at the import);
        # one it never binds can only come from a star import.
        if node.id in self.context.bound:
            return
        if node.id in self.context.bypasses:
            self._bypass(node.id, node, None)
        elif node.id in self.context.forbidden and self.context.star_import:
            self._forbidden(self.context.forbidden[node.id], node)

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = node.module if not node.level else None
        if module:
            self._module(module, node)
        for alias in node.names:
            if alias.name in self.context.bypasses:
                self._bypass(alias.name, node, f"{module}.{alias.name}" if module else None)
            if alias.name in self.context.forbidden:
                self._forbidden(self.context.forbidden[alias.name], node)
            if module and f"{module}.{alias.name}" in GRADER_MODULES:
                self._bypass_module(f"{module}.{alias.name}", node)

    def _module(self, module: str, node: ast.AST) -> None:
        for grader_module in GRADER_MODULES:
            if module == grader_module or module.startswith(grader_module + "."):
                self._bypass_module(grader_module, node)
        for component in module.split("."):
            if component in self.context.bypasses:
                self._bypass(component, node, None)

    def _resolve(self, node: ast.Attribute) -> str | None:
        """The dotted path an attribute chain stands for, when its root is an import; else None."""
        names = []
        root: ast.expr = node
        while isinstance(root, ast.Attribute):
            names.append(root.attr)
            root = root.value
        if isinstance(root, ast.Name) and root.id in self.context.aliases:
            base = self.context.aliases[root.id]
        elif (
            isinstance(root, ast.Call)
            and root.args
            and _is_string(root.args[0])
            and _callee_name(root) in _IMPORTERS
        ):
            base = root.args[0].value
            if _callee_name(root) == "__import__" and len(root.args) < 4 and not any(
                k.arg == "fromlist" for k in root.keywords
            ):
                base = base.split(".")[0]  # ``__import__("a.b")`` without a fromlist returns ``a``
        else:
            return None
        return ".".join([base, *reversed(names)])

    # --- references by string ---------------------------------------------------------------------------

    def _strings(self, node: ast.AST) -> Iterator[str]:
        """The constant strings ``node`` stands for: itself, or the constant runs of a concatenation."""
        if _is_string(node):
            yield node.value
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and id(node) not in self.folded:
            yield from self._concatenation(node)
        elif isinstance(node, (ast.JoinedStr, ast.Call)):
            text = _constant_text(node)
            if text is not None:
                yield text

    def _concatenation(self, node: ast.BinOp) -> Iterator[str]:
        leaves: list[ast.expr] = []
        stack: list[ast.expr] = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Add):
                self.folded.add(id(item))
                stack.extend([item.right, item.left])
            else:
                leaves.append(item)
        run: list[str] = []
        for leaf in [*leaves, None]:
            text = _constant_text(leaf) if leaf is not None else None
            if text is not None:
                run.append(text)
                continue
            if len(run) > 1:
                yield "".join(run)
            run = []

    def _string(self, text: str, node: ast.AST) -> None:
        text = text.strip()
        if text in self.context.bypasses:
            self._bypass(text, node, None)
        def counts(entry: Forbidden, word: str) -> bool:
            """A layer's name, or a name the contract gives a part (a profiler label), counts where it reaches."""
            plain_word = entry.layer or word in self.context.parts
            return self.argument and (not plain_word or self.reaching)

        if text in self.context.forbidden and counts(self.context.forbidden[text], text):
            self._forbidden(self.context.forbidden[text], node, in_string=True)
        if len(text) > 1000 or not _DOTTED.fullmatch(text):
            return
        for grader_module in GRADER_MODULES:
            if text == grader_module or text.startswith(grader_module + "."):
                self._bypass_module(grader_module, node)
        for component in text.split("."):
            if component in self.context.bypasses:
                self._bypass(component, node, text)
            if component in self.context.forbidden and counts(self.context.forbidden[component], component):
                self._forbidden(self.context.forbidden[component], node, in_string=True)

    # --- findings -----------------------------------------------------------------------------------------

    def _line(self, node: ast.AST) -> int:
        return self.exec_line if self.exec_line is not None else getattr(node, "lineno", 0)

    def _where(self, node: ast.AST) -> str:
        line = self._line(node)
        return f"line {line}" if self.label == "file" else f"{self.label}, line {line}"

    def _add(self, node: ast.AST, message: str, kind: str, shown: str) -> None:
        self.findings.append(
            SourceFinding(part=self.part, cell=self.label, line=self._line(node), message=message, kind=kind,
                          shown=shown)
        )

    def _forbidden(self, entry: Forbidden, node: ast.AST, in_string: bool = False) -> None:
        verb = "names" if in_string else "uses"
        text = " in a string" if in_string else ""
        self._add(node, f"{verb} {entry.shown}{text} ({self._where(node)}): {_FORBIDDEN_WHY}", FORBIDDEN_KIND,
                  entry.shown)

    def _bypass(self, name: str, node: ast.AST, path: str | None) -> None:
        candidates = self.context.bypasses[name]
        entry = next((b for b in candidates if path is not None and path.endswith(b.shown)), candidates[0])
        self._add(node, f"{entry.does} ({entry.shown}, {self._where(node)}): {_BYPASS_WHY}", BYPASS_KIND,
                  entry.shown)

    def _bypass_module(self, module: str, node: ast.AST) -> None:
        self._add(node, f"{_GRADER} ({module}, {self._where(node)}): {_BYPASS_WHY}", BYPASS_KIND, module)

    def _changes_grader(self, path: str | None, node: ast.AST) -> None:
        """An assignment to (or deletion of) anything the grader's package holds, by attribute or ``setattr``."""
        if path is not None and (path == "autograder" or path.startswith("autograder.")):
            self._add(node, f"{_CHANGES_GRADER} ({path}, {self._where(node)}): {_CHANGES_WHY}", BYPASS_KIND, path)


def _executed_code(call: ast.Call) -> list[ast.stmt]:
    """The statements of a constant code string given to ``exec``, ``eval`` or ``compile`` (one level)."""
    if _callee_name(call) not in _EXECUTORS or not call.args:
        return []
    text = _constant_text(call.args[0])
    if text is None or len(text) > 100_000:
        return []
    try:
        return ast.parse(text).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []


def _callee_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _constant_text(node: ast.AST) -> str | None:
    """The text of a string expression made of constants only (a string, an f-string of constants, a
    ``"sep".join([...])`` of constants), else None. Deliberately shallow: it never recurses."""
    if _is_string(node):
        return node.value
    if isinstance(node, ast.JoinedStr):
        pieces = []
        for value in node.values:
            if _is_string(value):
                pieces.append(value.value)
            elif (
                isinstance(value, ast.FormattedValue)
                and value.format_spec is None
                and value.conversion in (-1, ord("s"))
                and _is_string(value.value)
            ):
                pieces.append(value.value.value)
            else:
                return None
        return "".join(pieces)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and _is_string(node.func.value)
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], (ast.List, ast.Tuple))
        and all(_is_string(e) for e in node.args[0].elts)
    ):
        return node.func.value.value.join(e.value for e in node.args[0].elts)
    return None
