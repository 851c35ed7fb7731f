"""An exercise's contract, in one place: each part's name, arguments, sub-modules and parameter shapes.

The interface checks are made from it (``check_interface``) and so is the notebook's contract table
(``contract_table``, ``submodule_list``): the two cannot disagree. What a part computes is not here: that is
the reference's (``*_reference``) and the checks'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import CheckFailure
from .requests import Inspect


@dataclass(frozen=True)
class Module:
    """A sub-module the contract names (``path`` as in ``named_modules``), its type and the hyper-parameters the
    grader checks (a tuple of values: any of them). ``text`` is how the notebook writes it."""

    path: str
    type: str
    attrs: dict = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True)
class Build:
    """One construction the interface check makes, with the sub-modules and own parameters it must have (the
    parameters of a sub-module that is another part are that part's to check)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    modules: tuple[Module, ...] = ()
    params: dict = field(default_factory=dict)  # parameter name -> shape

    def label(self, name: str) -> str:
        words = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(words)})"


@dataclass(frozen=True)
class Part:
    """One name a submission defines: a class (built by ``builds``) or a function."""

    name: str
    kind: str  # "class" | "function"
    arguments: tuple[str, ...]  # the leading parameters of the constructor (class) or of the function
    signature: str  # as the notebook writes it: "MultiHeadAttention(embed_dim, num_heads, key_dim=None)"
    call: str  # "forward(query (B, Tq, E), key, value, mask=None)"
    returns: str  # "(output (B, Tq, E), weights (B, num_heads, Tq, Tk))"
    builds: tuple[Build, ...] = ()
    notes: str = ""  # what the notebook adds under the part's sub-modules (a formula, a rule)


class Deviations:
    """Everything an interface check finds, reported at once: missing names and wrong types and shapes together."""

    def __init__(self, what: str):
        self.what = what
        self.found: list[str] = []

    def module(self, reply, name: str, type_name: str, **attrs) -> None:
        module = reply.modules.get(name)
        if module is None:
            self.found.append(f"no sub-module {name!r} (expected {type_name})")
            return
        if not isinstance(module, dict) or not isinstance(module.get("type"), str):
            self.found.append(f"the description of {name} could not be read")
            return
        if module["type"] != type_name:
            self.found.append(f"{name} is a {module['type']}; expected {type_name}")
            return
        for attr, value in attrs.items():
            got = module.get(attr)
            if _same(got, value):
                continue
            wanted = " or ".join(repr(v) for v in value) if isinstance(value, tuple) else repr(value)
            self.found.append(f"{name}.{attr} is {got!r}; expected {wanted}")

    def params(self, reply, required: dict[str, tuple]) -> None:
        missing = [name for name in required if name not in reply.params]
        if missing:
            self.found.append(f"no parameter(s) {', '.join(missing)} (the contract names them so)")
        for name, shape in required.items():
            if name in reply.params and tuple(np.shape(reply.params[name])) != tuple(shape):
                self.found.append(f"{name} has shape {tuple(np.shape(reply.params[name]))}; expected {tuple(shape)}")

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.found.append(message)

    def raise_any(self) -> None:
        if self.found:
            raise CheckFailure(f"{self.what}: " + "; ".join(self.found))


def _same(got, value) -> bool:
    """Whether a described attribute matches the contract's: a tuple is a set of allowed values; a number
    matches a list of that number repeated (``kernel_size=3`` and the module's ``(3, 3)``)."""
    if isinstance(value, tuple):
        return any(_same(got, v) for v in value)
    if isinstance(value, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return abs(got - value) < 1e-12
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(got, list) and got:
        return all(g == value for g in got)
    return got == value


def linear_params(name: str, n_in: int, n_out: int) -> dict:
    """An ``nn.Linear``'s parameter shapes under ``name``."""
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def norm_params(name: str, dim: int) -> dict:
    """An ``nn.LayerNorm``'s parameter shapes under ``name``."""
    return {f"{name}.weight": (dim,), f"{name}.bias": (dim,)}


def linear_module(path: str, n_in: int, n_out: int, text: str = "") -> Module:
    return Module(path, "Linear", {"in_features": n_in, "out_features": n_out, "bias": True}, text)


def norm_module(path: str, dim: int, text: str = "nn.LayerNorm(embed_dim, eps=1e-6)") -> Module:
    return Module(path, "LayerNorm", {"normalized_shape": [dim], "eps": 1e-6}, text)


def require_interface(ctx, name: str, kind: str, params: list[str] | tuple[str, ...]) -> None:
    """``name`` is defined, is a ``kind``, and takes ``params`` first."""
    reply = ctx.request(Inspect(names=[name]))
    found = reply.kinds.get(name, "missing")
    if found == "missing":
        raise CheckFailure(f"{name} is not defined (check the spelling, and that its cell has no error)")
    if found != kind:
        raise CheckFailure(f"{name} should be a {kind}; it is a {found}")
    got = reply.parameters.get(name, [])
    if got[: len(params)] != list(params):
        raise CheckFailure(f"{name} should take ({', '.join(params)}); it takes ({', '.join(got)})")


def check_interface(ctx, part: Part) -> None:
    """The interface check of ``part``: its kind and arguments, then for each of its constructions every
    deviation from the contract's sub-modules and parameter shapes, reported together."""
    require_interface(ctx, part.name, part.kind, part.arguments)
    for build in part.builds:
        reply = ctx.run(part.name, init_args=list(build.args), init_kwargs=dict(build.kwargs), call=False)
        deviations = Deviations(build.label(part.name))
        for module in build.modules:
            deviations.module(reply, module.path, module.type, **module.attrs)
        deviations.params(reply, build.params)
        deviations.raise_any()


def contract_table(parts: tuple[Part, ...]) -> str:
    """The notebook's table: name and arguments, what the part is called with, what it returns."""
    rows = ["| name | called with | returns |", "| --- | --- | --- |"]
    rows += [f"| `{p.signature}` | `{p.call}` | {p.returns} |" for p in parts]
    return "\n".join(rows)


def submodule_list(parts: tuple[Part, ...]) -> str:
    """The notebook's list of the sub-modules the grader looks for, part by part."""
    lines = []
    for part in parts:
        modules = [m for m in (part.builds[0].modules if part.builds else ()) if m.text]
        by_text: dict[str, list[str]] = {}  # modules built alike are named together: `norm1`, `norm2` = ...
        for m in modules:
            by_text.setdefault(m.text, []).append(f"`{m.path}`")
        words = ", ".join(f"{', '.join(paths)} = `{text}`" for text, paths in by_text.items())
        if words or part.notes:
            lines.append(f"* `{part.name}`: " + "; ".join(x for x in (words, part.notes) if x))
    return "\n".join(lines)
