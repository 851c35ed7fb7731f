"""The grader's side of the stand-ins (``autograder.stand_ins``): where each stood-in instance's weights are, and the
answers to its calls, computed with the exercise's float64 references. Never imported by the child.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .stand_ins import MAX_CALLS, MAX_DIM, MAX_ELEMENTS, MAX_TOTAL_ELEMENTS, StandIn, StandInAnswer, StandInCall


class StandInServer:
    """Answers one request's stand-in calls with the exercise's references.

    ``params_for(part, path)`` gives the float64 parameters (the part's contract names) of the instance at ``path``,
    or raises ``LookupError`` with the reason it has none. ``answered`` counts the forward calls per part.
    """

    def __init__(self, specs: dict[str, StandIn], params_for: Callable[[str, str], dict],
                 described: Callable[[str], dict] = lambda path: {}, differentiable: bool = False):
        self.differentiable = differentiable  # a request that back-propagates: keep each call's graph
        self.specs = specs  # only the parts this request stands in for: a call naming another is refused
        self.params_for = params_for
        self.described = described
        self.graphs: list[tuple[list, list]] = []
        self.calls = 0
        self.elements = 0
        self.answered: dict[str, int] = {}

    def answer(self, call: StandInCall) -> StandInAnswer:
        import torch

        self.calls += 1
        if self.calls > MAX_CALLS:
            return StandInAnswer(error=f"more than {MAX_CALLS} calls of the grader's stand-ins in one request")
        self.elements += sum(np.size(v) for v in [*call.args, *call.kwargs.values(), *call.grads]
                             if isinstance(v, np.ndarray))
        if self.elements > MAX_TOTAL_ELEMENTS:
            return StandInAnswer(error="the stand-ins' calls of this request sent more than the grader takes")
        try:
            if call.backward >= 0:
                return self._backward(call)
            spec = self.specs.get(call.part)
            if spec is None:
                return StandInAnswer(error=f"no stand-in for {call.part!r}")
            leaves = [_leaf(v) for v in call.args] + [_leaf(v) for v in call.kwargs.values()]
            inputs = _bind(spec, leaves[: len(call.args)], dict(zip(call.kwargs, leaves[len(call.args):])))
            params = self.params_for(call.part, call.path)
            with torch.set_grad_enabled(self.differentiable):
                found = spec.compute(params, inputs, self.described(call.path) if call.path else {})
                outs = list(found) if isinstance(found, (list, tuple)) else [found]
            if not all(isinstance(o, torch.Tensor) for o in outs):
                raise TypeError("the reference gave no tensor")
        except Exception as exc:  # noqa: BLE001 - arguments the submission chose may break any reference
            return StandInAnswer(error=f"the grader could not stand in for your {call.part}: "
                                       f"{type(exc).__name__}: {str(exc)[:200]}")
        self.graphs.append(([x for x in leaves if isinstance(x, torch.Tensor)], outs) if self.differentiable
                           else ([], []))
        self.answered[call.part] = self.answered.get(call.part, 0) + 1
        return StandInAnswer(outputs=[o.detach().to(torch.float32).numpy() if o.is_floating_point()
                                      else o.detach().numpy() for o in outs], call=len(self.graphs) - 1)

    def _backward(self, call: StandInCall) -> StandInAnswer:
        import torch

        if not self.differentiable or call.backward >= len(self.graphs):
            return StandInAnswer(error="a backward call for no forward call of this request")
        leaves, outs = self.graphs[call.backward]
        pairs = [(o, torch.from_numpy(np.asarray(g, dtype=np.float64))) for o, g in zip(outs, call.grads)
                 if g is not None and o.requires_grad and tuple(np.shape(g)) == tuple(o.shape)]
        wanted = [x for x in leaves if x.requires_grad]
        if not pairs or not wanted:
            return StandInAnswer(outputs=[None] * len(leaves))
        grads = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True,
                                         retain_graph=True))
        back = [next(grads) if x.requires_grad else None for x in leaves]
        return StandInAnswer(outputs=[None if g is None else g.to(torch.float32).numpy() for g in back])


def _leaf(value):
    """A call's argument as the reference takes it: a floating array as a float64 leaf that gradients reach; an
    integer (a size) at most ``MAX_DIM``."""
    import torch

    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_DIM:
        raise ValueError(f"an integer argument of {value} is larger than the grader's stand-in takes")
    if isinstance(value, np.ndarray):
        if value.size > MAX_ELEMENTS or any(n > MAX_DIM for n in value.shape):
            raise ValueError(f"an argument of shape {value.shape} is larger than the grader's stand-in takes")
        if value.dtype.kind == "f":
            return torch.from_numpy(value.astype(np.float64)).requires_grad_(True)
        return torch.from_numpy(value)
    return value


def _bind(spec: StandIn, args: list, kwargs: dict) -> list:
    """The reference's inputs, in the contract's argument order, from a call's positional and keyword arguments."""
    if len(args) > len(spec.arguments):
        raise TypeError(f"{spec.part} takes {len(spec.arguments)} arguments ({', '.join(spec.arguments)}); "
                        f"it was given {len(args)}")
    bound = dict(zip(spec.arguments, args))
    for name, value in kwargs.items():
        if name not in spec.arguments or name in bound:
            raise TypeError(f"{spec.part} was given an unexpected argument {name!r}")
        bound[name] = value
    missing = [a for a in spec.arguments if a not in bound and a not in spec.defaults]
    if missing:
        raise TypeError(f"{spec.part} was called without {', '.join(missing)}")
    return [bound.get(a, spec.defaults.get(a)) for a in spec.arguments]


class StandInPlaces:
    """Where the weights of each stood-in instance are, and the grader's own float64 values there: the part's
    entries under the sub-module's own path, as the contract names them; or, where the check gives the composite's
    ``contract``, the contract prefix whose entries map (``param_map``) onto the sub-module's.

    ``params``: the run's drawn weights (the submission's names); ``meta``: its description (module types), for
    ``param_map``. An instance whose entries do not all map onto one prefix, from under its own path, has none.
    """

    def __init__(self, params: dict, meta, contract: dict | None, specs: dict[str, StandIn]):
        self.params, self.meta, self.contract, self.specs = params, meta, contract, specs
        self._mapping = None
        self.used: list[str] = []

    def described(self, path: str) -> dict:
        """The child's description of the sub-module at ``path`` ({} where there is none), with its own sub-modules'
        under ``modules`` (relative names)."""
        modules = getattr(self.meta, "modules", None) or {}
        found = modules.get(path)
        described = dict(found) if isinstance(found, dict) else {}
        described["modules"] = {name[len(path) + 1:]: value for name, value in modules.items()
                                if name.startswith(f"{path}.") and isinstance(value, dict)}
        return described

    def placeable(self, part: str) -> bool:
        """Whether every instance of ``part`` the description shows (by its class name; the outermost ones) has
        its weights placed: a part that cannot be is not stood in for, and the composite is charged as before."""
        spec = self.specs[part]
        if not spec.entries:
            return True
        modules = getattr(self.meta, "modules", None) or {}
        paths = [path for path, found in modules.items()
                 if path and isinstance(found, dict) and found.get("type") == (spec.name or part)]
        outermost = [path for path in paths if not any(path.startswith(f"{other}.") for other in paths)]
        try:
            for path in outermost:
                self.params_for(part, path)
        except LookupError:
            return False
        finally:
            self.used.clear()
        return True

    def prefixes_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.used))

    def params_for(self, part: str, path: str) -> dict:
        import torch

        from .param_map import map_params

        spec = self.specs[part]
        if not spec.entries:
            return {}
        own = [f"{path}.{entry}" for entry in spec.entries]
        if all(name in self.params for name in own):  # the part's own entries under the contract's names
            self.used.append(path)
            return {entry: torch.as_tensor(self.params[name], dtype=torch.float64) for entry, name in zip(spec.entries, own)}
        if self.meta is None or not self.contract:
            raise LookupError("its weights are not under the contract's names")
        if self._mapping is None:
            self._mapping = map_params(self.params, self.meta.modules, self.contract)
        mapping = self._mapping
        for prefix in _prefixes(self.contract, spec.entries):
            names = [f"{prefix}.{entry}" for entry in spec.entries]
            pieces = [piece for name in names for piece in mapping.sources.get(name, ())]
            if all(name in mapping.values for name in names) and pieces and \
                    all(piece.name.startswith(f"{path}.") for piece in pieces):
                self.used.append(prefix)
                return {entry: torch.as_tensor(np.asarray(mapping.values[name]), dtype=torch.float64)
                        for entry, name in zip(spec.entries, names)}
        raise LookupError(f"the weights of the sub-module {path!r} could not be placed on the contract's")


def _prefixes(contract: dict, entries: tuple[str, ...]) -> list[str]:
    """The prefixes under which ``contract`` holds every one of ``entries``, in the contract's order."""
    found = []
    for name in contract:
        for entry in entries:
            if name.endswith(f".{entry}"):
                prefix = name[: -len(entry) - 1]
                if prefix not in found and all(f"{prefix}.{e}" in contract for e in entries):
                    found.append(prefix)
    return found
