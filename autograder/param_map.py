"""Map a submission's parameters onto an exercise contract's names, wherever that is unambiguous.

A naming deviation costs the interface points only: the values and gradients are still checked wherever the
submission's entries map onto the contract's. ``map_params`` tries, for each contract entry:

1. the contract's own name, whatever its shape (a size deviation is the interface's to charge; the reference
   computes with the sizes it gets);
2. (after 3 and 4) the one unclaimed entry of the same shape with the same last name (``weight``, ``bias``) in a
   sibling module whose name plays no other role (``proj.weight`` for ``out_proj.weight``, not for
   ``q_proj.weight``), or a bare parameter named as the contract's module (``pos_emb`` for ``pos_emb.weight``);
   then the one such entry nested in a container of the same scope (``mlp.0.weight`` for ``fc1.weight``), taken
   by the first unmapped contract entry it fits (a contract lists its own layers before optional ones);
3. a fused entry: the first contract entries of one scope with the same last name and shape
   (``q_proj.weight``, ``k_proj.weight``, ``v_proj.weight``) and exactly one spare entry of that scope, with
   that last name, as tall as all of them together (``c_attn.weight``), or ``nn.MultiheadAttention``'s packed
   ``in_proj_weight`` / ``in_proj_bias`` of that scope: its rows are split in the contract's order (the order
   of ``in_proj`` and of the published fused projections);
4. per-head entries: spare entries of the scope whose names differ only by an index (``heads.0.query.weight``,
   ``heads.1.query.weight``, ...), stacked in index order to the contract's shape, when exactly one such group
   plays the contract module's role (query, key or value, read from the names);
5. zeros for the bias of a linear or convolution layer built with ``bias=False``, whatever name its weight was
   mapped from (its own, renamed, nested, fused or per head: ``to_qkv``, ``fc.0``).

Roles are read from module names in the common spellings (``q``, ``to_q``, ``query``, ``w_q``, ``wq``; an output
projection ``o``, ``out_proj``, ``to_out``, ``proj``, ``wo``), so that a role-less name is never taken for a
query. A Linear's (O, I) weight fits a 1x1 convolution's (O, I, 1, 1) (the same maths on pooled features): it is
read in the contract's shape (``ParamMap.shapes``).

Before these, a renamed container (``mha`` for the contract's ``attn``: the one unnamed module beside it that
holds a sub-module entry under the contract's relative name and shape, ``out_proj.weight``) is read under the
contract's name (``renamed_modules``). After rule 2b: a flat layer where the contract has a Sequential's
(``fc1.weight`` for ``mlp.0.weight``), when its shape tells it apart; a bare parameter with leading 1s where the
contract has a table (a (1, N, D) parameter ``position_embedding`` for ``position_embedding.weight`` (N, D)), or
a bare parameter of the contract's under another name beside it (``pos_embedding``).

What cannot be mapped is reported; a reference that needs it cannot be computed, and the check says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

BIASED_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


@dataclass(frozen=True)
class Piece:
    """Rows ``start:stop`` of the submission's entry ``name`` (all rows when ``stop`` is None)."""

    name: str
    start: int = 0
    stop: int | None = None


@dataclass
class ParamMap:
    values: dict = field(default_factory=dict)  # contract name -> array or tensor
    unmapped: list[str] = field(default_factory=list)  # contract names with no counterpart
    sources: dict = field(default_factory=dict)  # contract name -> tuple of Pieces; () for a zero bias
    shapes: dict = field(default_factory=dict)  # contract name -> its shape, where the source's differs by 1s
    shared: dict = field(default_factory=dict)  # contract name -> the contract name whose tensor it would reuse

    def take(self, name: str, entries: dict):
        """The contract entry ``name`` assembled from ``entries`` (e.g. the submission's gradients), or None when
        it has no source there (a zero bias, a missing gradient)."""
        pieces = self.sources.get(name, ())
        parts = [entries.get(p.name) for p in pieces]
        if not pieces or any(part is None for part in parts):
            return None
        rows = [torch.as_tensor(np.asarray(part))[p.start : p.stop] for p, part in zip(pieces, parts)]
        whole = rows[0] if len(rows) == 1 else torch.cat(rows)
        return whole.reshape(self.shapes[name]) if name in self.shapes else whole


def _scope(name: str) -> str:
    """The module that holds the contract entry's module: ``blocks.0.attn`` for ``blocks.0.attn.q_proj.weight``."""
    return name.rpartition(".")[0].rpartition(".")[0]


ROLES = {"q": ("q", "query", "queries", "qs", "wq"), "k": ("k", "key", "keys", "ks", "wk"),
         "v": ("v", "value", "values", "vs", "wv")}
OUTPUT_WORDS = ("o", "out", "output", "proj", "projection", "wo")  # an attention's output projection


def role(module_name: str) -> str | None:
    """query, key or value, read from a module's name (``q_proj``, ``query``, ``w_q``, ``to_k``, ``wq``), else
    "o" for an output projection (``o``, ``out_proj``, ``to_out``, ``proj``, ``wo``); None if unclear."""
    words = set(re.split(r"[_\W\d]+", module_name.lower())) - {""}
    found = [r for r, names in ROLES.items() if words & set(names)]
    if not found and words & set(OUTPUT_WORDS):
        return "o"
    return found[0] if len(found) == 1 else None


def compatible(found: str | None, wanted: str | None) -> bool:
    """Whether an entry whose module plays the role ``found`` may fill a contract entry whose module plays
    ``wanted``: roles conflict only among attention projections (a query is never taken for a key, nor an output
    projection for a query); a contract module with no role (``classifier``, ``fc2``, ``mlp.3``) takes any but
    a query's, key's or value's (``out``, ``fc_out``, ``c_proj``)."""
    return found is None or found == wanted or (wanted is None and found == "o")


LAYER_ENTRIES = ("weight", "bias")  # a layer's own entries; any other last name is a bare parameter (gamma)


def _prefixes(name: str) -> list[str]:
    """The module paths that hold an entry: ``a``, ``a.b`` for ``a.b.weight``."""
    parts = name.split(".")[:-1]
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def renamed_modules(params: dict, required: dict) -> dict[str, str]:
    """Sub-modules under another name: submission path -> contract path. A contract module absent from the
    submission is taken to be the one module of the submission, beside it (the same parent), that the contract
    does not name and that holds at least one entry under the same relative name (``mha`` for ``attn``: both
    hold ``out_proj.weight``)."""
    ours = {p for name in required for p in _prefixes(name)}
    theirs = {p for name in params for p in _prefixes(name)}
    renames: dict[str, str] = {}
    for path in sorted(ours - theirs, key=lambda p: p.count(".")):
        parent = path.rpartition(".")[0]
        if parent in ours and parent not in theirs and parent not in renames.values():
            continue  # its parent is missing too: a rename there, if any, covers it
        relative = {n[len(path) + 1 :]: tuple(shape) for n, shape in required.items() if n.startswith(f"{path}.")}
        if not any("." in r for r in relative):
            continue  # a single layer renamed is rule 2's (by its role among its siblings)
        spare = [q for q in theirs - ours if q.rpartition(".")[0] == parent and q not in renames
                 and _shared(q, params, relative)]
        if len(spare) == 1:
            renames[spare[0]] = path
    return renames


def _shared(module: str, params: dict, relative: dict) -> bool:
    """Whether ``module`` holds an entry of a sub-module under a relative name and shape the contract's has, and
    none under such a name with another shape."""
    mine = {n[len(module) + 1 :]: tuple(np.shape(v)) for n, v in params.items() if n.startswith(f"{module}.")}
    common = [r for r in relative if r in mine and "." in r]
    return bool(common) and all(mine[r] == relative[r] for r in common)


MAX_NAME_CHARS = 256  # a state entry's or module's name (the exercises' are under 60)
MAX_NAME_DEPTH = 32  # its levels (the exercises' are under 8)


def plain_name(name) -> bool:
    """Whether a state or module name is one the grader maps (``MAX_NAME_CHARS``, ``MAX_NAME_DEPTH``)."""
    return isinstance(name, str) and len(name) <= MAX_NAME_CHARS and name.count(".") < MAX_NAME_DEPTH


def map_params(params: dict, modules: dict, required: dict[str, tuple]) -> ParamMap:
    """The submission's entries (``params``, with ``modules``' types) under the contract's names (``required``).

    A renamed sub-module (``renamed_modules``) is mapped as if it had the contract's name; the pieces still
    name the submission's own entries. Names beyond ``plain_name``'s bounds are never mapped (the work grows
    with each name's levels times its length)."""
    params = {name: value for name, value in params.items() if plain_name(name)}
    modules = {name: kind for name, kind in modules.items() if plain_name(name)} if isinstance(modules, dict) else {}
    renames = renamed_modules(params, required)
    if not renames:
        return _one_role_per_tensor(_map_params(params, modules, required), params)
    view = {}
    for name in params:
        prefix = next((q for q in renames if name.startswith(f"{q}.")), None)
        view[renames[prefix] + name[len(prefix):] if prefix else name] = name
    modules = modules if isinstance(modules, dict) else {}
    view_modules = {}
    for path, module in modules.items():
        prefix = next((q for q in renames if path == q or path.startswith(f"{q}.")), None)
        view_modules[renames[prefix] + path[len(prefix):] if prefix else path] = module
    result = _map_params({v: params[n] for v, n in view.items()}, view_modules, required)
    result.sources = {k: tuple(Piece(view.get(p.name, p.name), p.start, p.stop) for p in pieces)
                      for k, pieces in result.sources.items()}
    return _one_role_per_tensor(result, params)


def _one_role_per_tensor(result: ParamMap, params: dict) -> ParamMap:
    """Leave unmapped every contract entry whose rows are rows another contract entry already took from the same
    tensor. Entries are one tensor only where the grader sent them so: the child said they are one (the same
    module registered under two names, ``self.mlp = nn.Sequential(self.fc1, ...)``), and ``draw_weights`` sent one
    drawn array under both names. That is honest as long as the contract's layers each get a tensor of their own;
    two contract layers filled from one tensor (``norm2`` declared to be ``norm1``) would take the child's word
    that two layers the contract keeps apart are one, so the reference that needs the second cannot be computed."""
    taken: dict[tuple, str] = {}
    for name, pieces in list(result.sources.items()):
        keys = [(id(params[p.name]), p.start, p.stop) for p in pieces if p.name in params]
        other = next((taken[k] for k in keys if k in taken), None)
        if other is not None:
            del result.values[name], result.sources[name]
            result.shapes.pop(name, None)
            result.unmapped.append(name)
            result.shared[name] = other
            continue
        taken.update((k, name) for k in keys)
    return result


def _map_params(params: dict, modules: dict, required: dict[str, tuple]) -> ParamMap:
    result = ParamMap()
    modules = modules if isinstance(modules, dict) else {}
    claimed: set[str] = set()

    def assign(name: str, value, *pieces: Piece) -> None:
        shape = required[name]
        if len(pieces) == 1 and tuple(np.shape(value)) == _strip_trailing(shape) != tuple(shape):
            value, result.shapes[name] = value.reshape(tuple(shape)), tuple(shape)  # a Linear for a 1x1 convolution
        result.values[name], result.sources[name] = value, tuple(pieces)
        claimed.update(p.name for p in pieces)

    for name in required:
        if name in params:
            assign(name, params[name], Piece(name))
    spare = [n for n in params if n not in required]
    _fused(params, required, spare, claimed, result, assign)
    _per_head(params, required, spare, claimed, result, assign)
    for name, shape in required.items():
        if name in result.values:
            continue
        owner, _, local = name.rpartition(".")
        wanted = role(owner.rpartition(".")[2])
        candidates = [n for n in spare if n not in claimed and _fits(params[n], shape)
                      and (n == owner or (n.rpartition(".")[2] == local and _scope(n) == _scope(name)
                                          and compatible(role(n.rpartition(".")[0].rpartition(".")[2]), wanted)))]
        if len(candidates) == 1:
            assign(name, params[candidates[0]], Piece(candidates[0]))
    for name, shape in required.items():  # 2b: a layer nested in a container of the same scope (mlp.0 for fc1)
        if name in result.values:
            continue
        scope, local = _scope(name), name.rpartition(".")[2]
        wanted = role(name.rpartition(".")[0].rpartition(".")[2])
        nested = [n for n in spare if n not in claimed and n.rpartition(".")[2] == local
                  and _fits(params[n], shape) and _scope(n).startswith(f"{scope}." if scope else "")
                  and _scope(n) != scope and compatible(role(n.rpartition(".")[0]), wanted)]
        if len(nested) == 1:  # taken by the first contract entry it fits: the contract lists its own layers first
            assign(name, params[nested[0]], Piece(nested[0]))
    for name, shape in required.items():  # 2c: a flat layer where the contract has a Sequential's (fc1 for mlp.0)
        if (name in result.values or name.rpartition(".")[2] not in LAYER_ENTRIES
                or not name.rpartition(".")[0].rpartition(".")[2].isdigit()):
            continue
        container = _scope(name)
        parent, local = container.rpartition(".")[0], name.rpartition(".")[2]
        if not container or any(n.startswith(f"{container}.") for n in params):
            continue  # the container exists: its own layers are the candidates (rules 2 and 2b)
        flat = [n for n in spare if n not in claimed and n.rpartition(".")[2] == local and _scope(n) == parent
                and _fits(params[n], shape)]
        if len(flat) == 1:
            assign(name, params[flat[0]], Piece(flat[0]))
    for name, shape in required.items():  # 2d: a bare parameter renamed (pos_embedding), or with leading 1s
        if name in result.values:
            continue
        owner, _, local = name.rpartition(".")
        squeezed = _squeeze(shape)
        # the module's name as a bare parameter, with leading 1s (a (1, N, D) table for position_embedding.weight)
        named = [owner] if (local in LAYER_ENTRIES and owner in params and owner not in claimed
                            and _squeeze(np.shape(params[owner])) == squeezed) else []
        # a bare parameter of the contract's under another name, beside it, of its shape up to leading 1s
        bare = [] if local in LAYER_ENTRIES else [
            n for n in spare if n not in claimed and n.rpartition(".")[0] == owner
            and n.rpartition(".")[2] not in LAYER_ENTRIES and _squeeze(np.shape(params[n])) == squeezed]
        found = named or bare
        if len(found) == 1:
            value = params[found[0]]
            assign(name, value.reshape(tuple(shape)) if hasattr(value, "reshape") else value, Piece(found[0]))
            if tuple(np.shape(value)) != tuple(shape):
                result.shapes[name] = tuple(shape)
    for name, shape in required.items():
        if name in result.values:
            continue
        owner, _, local = name.rpartition(".")
        bias_elsewhere = any(  # a bias kept apart from its fused layer (timm's q_bias): not made up as zeros
            n not in claimed and _scope(name) in (_scope(n), n.rpartition(".")[0]) and np.shape(params[n]) == tuple(shape)
            for n in spare)
        if (local == "bias" and not bias_elsewhere
                and _built_without_bias(result.sources.get(f"{owner}.weight", ()), params, modules)):
            result.values[name], result.sources[name] = torch.zeros(tuple(shape), dtype=torch.float64), ()
            continue
        result.unmapped.append(name)
    return result


def _built_without_bias(pieces: tuple, params: dict, modules: dict) -> bool:
    """Whether the layers a contract weight was taken from (under any name: its own, renamed, nested, fused or
    per head) are linear or convolution layers built with ``bias=False``: then the contract's bias is zero."""
    def biasless(source: str) -> bool:
        module = modules.get(source.rpartition(".")[0])
        return (isinstance(module, dict) and module.get("type") in BIASED_TYPES
                and source.rpartition(".")[2] == "weight" and f"{source.rpartition('.')[0]}.bias" not in params)
    return bool(pieces) and all(biasless(p.name) for p in pieces)


def _fits(value, shape) -> bool:
    """Whether an entry has the contract's shape, or the contract's without its trailing 1s: a Linear's (O, I)
    weight for a 1x1 convolution's (O, I, 1, 1), the same maths on pooled features."""
    return tuple(np.shape(value)) in (tuple(shape), _strip_trailing(shape))


def _strip_trailing(shape) -> tuple:
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _squeeze(shape) -> tuple:
    """A shape without its leading 1s: a (1, N, D) table is an (N, D) one."""
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _groups(required: dict, result: ParamMap) -> dict[tuple, list[str]]:
    """Unmapped contract entries grouped by scope, last name and shape, in the contract's order."""
    groups: dict[tuple, list[str]] = {}
    for name, shape in required.items():
        if name not in result.values:
            groups.setdefault((_scope(name), name.rpartition(".")[2], tuple(shape)), []).append(name)
    return groups


def _packed(scope: str, local: str) -> str:
    """``nn.MultiheadAttention``'s packed projection of a scope: ``attn.in_proj_weight``, ``attn.in_proj_bias``."""
    return f"{scope}.in_proj_{local}" if scope else f"in_proj_{local}"


def _fused(params, required, spare, claimed, result, assign) -> None:
    for (scope, local, shape), names in _groups(required, result).items():
        for count in range(len(names), 1, -1):  # q, k, v (and out, where it has their shape): the longest first
            if not shape:
                break
            tall = (shape[0] * count,) + shape[1:]
            fused = [n for n in spare if n not in claimed and tuple(np.shape(params[n])) == tall
                     and ((n.rpartition(".")[2] == local and _scope(n) == scope) or n == _packed(scope, local))]
            if len(fused) != 1:
                continue
            whole = params[fused[0]]
            for i, name in enumerate(names[:count]):
                start, stop = i * shape[0], (i + 1) * shape[0]
                assign(name, whole[start:stop], Piece(fused[0], start, stop))
            break


def _per_head(params, required, spare, claimed, result, assign) -> None:
    heads: dict[str, list[tuple[int, str]]] = {}  # "heads.*.query.weight" -> [(index, name), ...]
    for n in spare:
        if n in claimed:
            continue
        found = re.match(r"^(.*)\.(\d+)\.([^.]+\.[^.]+)$", n)  # the last index: heads.3.query.weight
        if found:
            heads.setdefault(f"{found.group(1)}.*.{found.group(3)}", []).append((int(found.group(2)), n))
    for name, shape in required.items():
        if name in result.values or not shape:
            continue
        owner, _, local = name.rpartition(".")
        want = role(owner.rpartition(".")[2])
        if want is None:
            continue
        matches = []
        for pattern, members in heads.items():
            members = sorted(members)
            module_name = pattern.rpartition(".")[0].rpartition(".")[2]
            rows = sum(np.shape(params[n])[0] for _, n in members if np.ndim(params[n]))
            if (pattern.rpartition(".")[2] == local and role(module_name) == want
                    and pattern.startswith(f"{_scope(name)}." if _scope(name) else "")
                    and all(np.shape(params[n])[1:] == tuple(shape[1:]) for _, n in members)
                    and rows == shape[0] and not any(n in claimed for _, n in members)):
                matches.append(members)
        if len(matches) == 1:
            members = matches[0]
            value = np.concatenate([np.asarray(params[n]) for _, n in members]) if not torch.is_tensor(
                params[members[0][1]]) else torch.cat([params[n] for _, n in members])
            assign(name, value, *(Piece(n) for _, n in members))
