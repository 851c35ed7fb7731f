"""What a check works with: the runner that reaches the submission, the device, and the training profile.

Every reply passes ``Context.request``, which refuses one that used a built-in the exercise asks students to
write (``forbidden``): no check has to remember it.

``Context.run`` is where the grader's weights enter: whenever a request builds a module and calls it, the
parent first learns the module's state (names, shapes, dtypes, module types: one cached request with
call=False), draws every floating entry itself (``autograder.weights``) and has the child load them. The
reply's ``params`` are then the parent's own float64 values, never the child's echo.
"""

from __future__ import annotations

import contextvars
import dataclasses
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .checks import CheckFailure, Uncomparable, Unverifiable
from .param_map import MAX_NAME_CHARS, MAX_NAME_DEPTH, plain_name
from .requests import Run, RunReply
from .stand_in_answers import StandInPlaces, StandInServer
from .weights import DEFAULT_RULES, DrawnWeights, WeightRules, draw_weights


FORBIDDEN_HELP = "this exercise asks you to write it yourself"
MAX_STATE_BYTES = 64 << 20  # the largest state one construction's description may hold (the exercises' are MiBs)
MAX_STATE_ENTRIES = 4096  # entries of one description (the exercises' models have a few hundred)
MAX_KEPT_BYTES = 256 << 20  # descriptions kept together for a grading; beyond, the oldest are dropped (and asked again)


@dataclass
class Context:
    runner: object
    device: str = "cpu"
    profile: object = None  # exercises.TrainingProfile for this device
    task: object = None  # tasks.TrainingTask of the exercise: its data, loss and metric
    forbidden: object = None  # forbidden.ForbiddenSet of the exercise; None: the attention built-ins
    timeout: float = 60.0  # the running check's budget for one request
    artifacts: dict = field(default_factory=dict)
    weight_rules: WeightRules = DEFAULT_RULES  # how the parent draws weights (an exercise may extend the table)
    constructions: dict[str, RunReply] = field(default_factory=dict)  # construction -> its state's description
    probes: dict = field(default_factory=dict)  # part -> probe(ctx) -> the Variant it computes, or None
    functions: dict = field(default_factory=dict)  # part -> what its probe found (cached)
    verdicts: dict[str, bool] = field(default_factory=dict)  # check name -> passed, for the checks run so far
    unknown_parts: set[str] = field(default_factory=set)  # parts whose probe matched no known function
    unrecognised_parts: set[str] = field(default_factory=set)  # those of them compared and matching none
    contradicted: dict = field(default_factory=dict)  # part -> what its probe saw, which its values check did not
    check: object = None  # the check running now (``grading`` sets it)
    stand_ins: dict = field(default_factory=dict)  # part -> stand_ins.StandIn (the exercise's)
    failing_parts: set[str] = field(default_factory=set)  # parts whose probe failed (the part raised, timed out)
    # Of the latest run that called what it built: the parts the grader computed in place of the submission's
    # (part -> forward calls answered), and the contract prefixes of those that have weights.
    stood_in: dict[str, int] = field(default_factory=dict)
    stood_in_prefixes: tuple[str, ...] = ()

    def function(self, part: str):
        """What the submission's ``part`` computes, as a ``compare.Variant`` (switches of the reference), or None
        when no probe is declared, or the part fails, or it computes no known function. Found once per grading.
        """
        if part not in self.functions:
            self.functions[part] = None  # a probe that reaches back here finds "unknown", never recursion
            probe = self.probes.get(part)
            if probe is not None:
                try:
                    self.functions[part] = probe(self)
                except Unverifiable:  # the child's word that two layers are one: nothing recognised
                    self.unknown_parts.add(part)
                    self.unrecognised_parts.add(part)
                except Uncomparable:  # no reference can stand in for it: unknown to the composites built on it
                    self.unknown_parts.add(part)
                except Exception:  # noqa: BLE001 - a failing part is judged by its own checks
                    self.functions[part] = None
                    self.failing_parts.add(part)
                else:
                    if self.functions[part] is None:
                        self.unknown_parts.add(part)
                        self.unrecognised_parts.add(part)
        return self.functions[part]

    def disagreeing(self, part: str):
        """After ``part``'s own values check passed (the contract, given its parts): the known mistake of its own
        its probe saw instead, where that mistake would have shown in the check (``judge`` records it), or None.
        A part that answers the probe otherwise than its checks (told apart by the inputs' shapes or the seed)
        computes no one function: it is then unknown and unrecognised, so that no composite is judged on what
        the probe saw."""
        found = self.contradicted.get(part)
        if found is None:
            return None
        self.functions[part] = None
        self.unknown_parts.add(part)
        self.unrecognised_parts.add(part)
        return found

    def unrecognised(self, part: str) -> bool:
        """Whether ``part`` ran, was compared with its reference, and computes neither the contract nor a known
        mistake: its behaviour checks then pay nothing (returning the input unchanged has many properties)."""
        self.function(part)
        return part in self.unrecognised_parts

    def unknown(self, *parts: str) -> list[str]:
        """Those of ``parts`` that ran but compute neither the contract nor a known mistake."""
        for part in parts:
            self.function(part)
        return [part for part in parts if part in self.unknown_parts]

    def base(self, *parts: str) -> dict:
        """The switches of what ``parts`` compute, merged: the base a composite part is judged on."""
        switches: dict = {}
        for part in parts:
            found = self.function(part)
            if found is not None:
                switches.update(found.switches)
        return switches

    def failed(self, check: str) -> bool:
        """Whether ``check`` ran in this grading and did not pass."""
        return self.verdicts.get(check) is False

    def request(self, request, answer=None):
        """Carry out ``request`` with the exercise's forbidden built-ins; a reply that used one fails the check
        that asked for it. ``answer``: the grader's answer to a stand-in's call (``stand_ins``)."""
        if self.forbidden is not None and getattr(request, "forbidden", False) is None:
            request.forbidden = self.forbidden.as_data()
        if isinstance(request, Run):  # the child sees a seed of the grading's, never which check or probe asks
            request = dataclasses.replace(request, seed=child_seed(request.seed))
        reply = (self.runner.request(request, self.timeout) if answer is None
                 else self.runner.request(request, self.timeout, answer=answer))
        used = getattr(reply, "forbidden", None)
        if used:
            raise CheckFailure(f"{request.target} calls {', '.join(used)}: {FORBIDDEN_HELP}")
        return reply

    def standing_for(self, target: str) -> list[str]:
        """The parts the grader computes in place of the submission's inside ``target``: those declared to stand
        in there (``StandIn.within``) that compute neither the contract nor a known mistake, or fail to run."""
        parts = [part for part, spec in self.stand_ins.items() if target in spec.within and part != target]
        return [part for part in parts if self.unknown(part) or part in self.failing_parts]

    def run(self, target: str, *, draw_weights: bool = True, contract: dict | None = None, **kwargs) -> RunReply:
        """Carry out a ``Run``; a module it builds and calls gets weights the parent draws (the default).

        The weights depend on the construction, ``seed`` and the run's salt, not on the inputs: two runs that
        differ only in their inputs see the same weights (the inputs fix the shapes of lazy modules only, see
        ``metadata``). ``reply.params`` holds them as float64 tensors.
        With an explicit ``state``, that state is loaded instead and ``reply.params`` holds its floating entries.
        ``draw_weights=False`` opts out, for a check that compares no values (dropout, shapes): the module
        keeps its own initialisation and ``reply.params`` is left empty, so that no reference can use it.
        """
        request = Run(target=target, device=self.device, **kwargs)
        standing = self.standing_for(target) if request.call else []
        if request.init_args is None or not request.call:
            return self._standing_request(request, standing, {}, None, contract)
        params: dict[str, torch.Tensor] = {}
        if request.state is not None:
            params = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in request.state.items()
                      if np.asarray(v).dtype.kind == "f"}
        elif draw_weights:
            drawn = self.draw(target, request.init_args, request.init_kwargs, request.seed, inputs=request.inputs,
                              call_kwargs=request.call_kwargs)
            request.state, params = drawn.state, drawn.params
        reply = self._standing_request(request, standing, params, self.metadata(
            target, request.init_args, request.init_kwargs, inputs=request.inputs,
            call_kwargs=request.call_kwargs) if standing else None, contract)
        reply.params = params
        if draw_weights and request.state is not None and not reply.modules:  # the module types, for map_params
            reply.modules = self.metadata(target, request.init_args, request.init_kwargs, inputs=request.inputs,
                                          call_kwargs=request.call_kwargs).modules
        return reply

    def _standing_request(self, request: Run, standing: list[str], params: dict, meta, contract: dict | None):
        """Carry out ``request`` with the grader's references standing in for ``standing`` (``stand_ins``)."""
        placed = StandInPlaces(params, meta, contract, self.stand_ins)
        standing = [part for part in standing if not self.stand_ins[part].entries or
                    (meta is not None and placed.placeable(part))]
        if not standing:
            if request.call:
                self.stood_in, self.stood_in_prefixes = {}, ()
            return self.request(request)
        server = StandInServer({part: self.stand_ins[part] for part in standing}, placed.params_for, placed.described,
                               differentiable=request.loss_weights is not None)
        request.stand_ins = {self.stand_ins[part].name or part: part for part in standing}
        try:
            reply = self.request(request, answer=server.answer)
        finally:
            self.stood_in, self.stood_in_prefixes = dict(server.answered), placed.prefixes_used()
            for part in standing:  # inside a part the grader computed whole, the submission's is never reached
                if part not in self.stood_in and any(q in self.stood_in for q in self.stand_ins[part].within):
                    self.stood_in[part] = 0
        return reply

    def metadata(self, target: str, init_args: list, init_kwargs: dict | None = None, *, inputs: list | None = None,
                 call_kwargs: dict | None = None) -> RunReply:
        """The state a construction has (names, shapes, dtypes, buffers, module types); one request, cached.

        ``inputs`` and ``call_kwargs`` are those of the call the description is for. Only a construction with
        lazy modules (``nn.LazyLinear``, whose shapes come from a first call) depends on them: the child calls
        it on them first, the reply's ``lazy`` says so, and its descriptions are cached per input ``signature``.
        Any other construction is described once, whatever the inputs. Without inputs, a lazy construction is
        described as it was for its latest call, or else on the child's probe inputs (``requests._probes``).
        """
        base = construction(target, init_args, init_kwargs)
        known = self.constructions.get(base)
        if known is not None and not known.lazy:
            return known
        if inputs or call_kwargs:
            key = f"{base} on {signature(list(inputs or []), dict(call_kwargs or {}))}"
        else:
            called = [reply for k, reply in self.constructions.items() if k.startswith(f"{base} on ")]
            if called:
                return called[-1]
            key = base
        if key not in self.constructions:
            reply = self.request(Run(target=target, init_args=list(init_args), init_kwargs=dict(init_kwargs or {}),
                                     inputs=list(inputs or []), call_kwargs=dict(call_kwargs or {}), call=False,
                                     device=self.device))
            if len(reply.params) > MAX_STATE_ENTRIES:  # mapping names onto the contract's costs their square
                raise CheckFailure(f"{target}(...) has {len(reply.params)} parameters and buffers; the grader "
                                   f"describes modules of at most {MAX_STATE_ENTRIES}")
            odd = next((n for n in [*reply.params, *(reply.modules or {})] if not plain_name(n)), None)
            if odd is not None:  # mapping costs each name's prefixes: bound their number and length
                raise CheckFailure(f"{target}(...) has a parameter or module named {odd[:60]!r}... : the grader "
                                   f"reads names of at most {MAX_NAME_CHARS} characters and {MAX_NAME_DEPTH} levels")
            size = state_bytes(reply)
            if size > MAX_STATE_BYTES:  # descriptions are kept for the grading: bound what one may hold
                raise CheckFailure(f"{target}(...) holds {size / 2**20:.0f} MiB of parameters and buffers; the "
                                   f"grader describes at most {MAX_STATE_BYTES >> 20} MiB per module")
            self._keep_within(MAX_KEPT_BYTES - size)
            self.constructions[key] = reply
            if not reply.lazy:  # the same for every input: later calls need no request
                self.constructions[base] = reply
        return self.constructions[key]

    def _keep_within(self, budget: int) -> None:
        """Drop the oldest kept descriptions until those left hold at most ``budget`` bytes."""
        kept = list(self.constructions.items())
        total = sum(state_bytes(reply) for reply in {id(r): r for _, r in kept}.values())
        while kept and total > budget:
            key, reply = kept.pop(0)
            del self.constructions[key]
            if not any(r is reply for _, r in kept):
                total -= state_bytes(reply)

    def draw(self, target: str, init_args: list, init_kwargs: dict | None = None, seed: int = 0, *,
             inputs: list | None = None, call_kwargs: dict | None = None) -> DrawnWeights:
        """The weights ``run`` loads into ``target(*init_args, **init_kwargs)`` for this ``seed``, when called on
        ``inputs`` (``metadata``: they matter for the shapes of lazy modules only, never for the values)."""
        meta = self.metadata(target, init_args, init_kwargs, inputs=inputs, call_kwargs=call_kwargs)
        return draw_weights(meta, self.weight_rules, construction(target, init_args, init_kwargs), seed, SALT.get())


def state_bytes(reply: RunReply) -> int:
    """The bytes of the state a description holds."""
    return sum(np.asarray(v).nbytes for v in reply.params.values())


def construction(target: str, init_args: list, init_kwargs: dict | None) -> str:
    """A construction as text: the key of its cached description and of its weights' generators."""
    return f"{target}({init_args!r}, {sorted((init_kwargs or {}).items())!r})"


def signature(inputs: list, call_kwargs: dict) -> str:
    """A call's arguments as text, by what a lazy module's shapes can depend on: each array's dtype and shape,
    other values as they are."""

    def one(value) -> str:
        if isinstance(value, np.ndarray):
            return f"{value.dtype}{list(value.shape)}"
        return repr(value) if value is None or isinstance(value, (bool, int, float, str)) else type(value).__name__

    keywords = [f"{name}={one(value)}" for name, value in sorted(call_kwargs.items())]
    return f"({', '.join([one(x) for x in inputs] + keywords)})"


def outputs(reply, count: int, what: str, repeat: int = 0) -> list[np.ndarray]:
    """The submission's outputs, after checking their type: ``count`` float32 tensors (1 = a bare tensor)."""
    expected = "Tensor" if count == 1 else f"tuple({', '.join(['Tensor'] * count)})"
    structure = reply.structure
    if structure != expected and not (count > 1 and structure == f"list({', '.join(['Tensor'] * count)})"):
        wanted = "a tensor" if count == 1 else f"a tuple of {count} tensors"
        raise CheckFailure(f"{what} should return {wanted}; it returned {structure or 'nothing'}")
    for i, dtype in enumerate(reply.dtypes):
        if dtype != "float32":
            raise CheckFailure(
                f"{what} returned a {dtype} tensor (output {i}); expected float32, the dtype of the inputs "
                "(a float64 constant or an integer tensor in the computation?)"
            )
    got = list(reply.outputs[repeat])  # NaN and inf are the values checks' to report (compare.require_close)
    return got


# Added to every input seed (and to every draw of weights) of a grading run. 0 gives the same inputs every
# time; a random salt (the command line's default) gives inputs and weights that no submission can have seen,
# so a table of cached answers cannot pass.
SALT: contextvars.ContextVar[int] = contextvars.ContextVar("salt", default=0)


def child_seed(seed: int) -> int:
    """The seed a ``Run`` carries to the child for ``seed``: fixed within a grading, and under a salt the child
    does not know, unknown to it (a constant seed would tell the child which probe or check is asking)."""
    return int(np.random.default_rng([seed, SALT.get(), 0x5EED]).integers(2**31))


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, SALT.get()])


def stream_rng(stream: str, seed: int) -> np.random.Generator:
    """A generator for ``seed`` apart from the inputs' (``rng``): e.g. the projections of a gradient check."""
    return np.random.default_rng([zlib.crc32(stream.encode()), seed, SALT.get()])


def randn(gen: np.random.Generator, *shape) -> np.ndarray:
    return gen.standard_normal(shape).astype(np.float32)
