"""Requests the grader sends to a submission, and how they are carried out next to the submission's code.

A request is data: build this object with these weights, run it on these inputs in this mode, back-propagate
this projection of its outputs, train this classifier on the training split. ``execute`` runs it against a
namespace that holds the submission's names and returns a reply that is data too. It runs in the child
process (standalone grading) or in the notebook's kernel (nbgrader), where the submission can change anything,
this module included: every number in a reply is the submission's to forge. The parent therefore decides no
verdict on trust: it draws the weights it compares with (``Context.run``), recomputes gradients with its own
float64 references and scores trained weights with a forward pass of its own.

Every tensor in a reply becomes a plain numpy array here, inside ``execute``: a tensor subclass, a
non-contiguous or channels-last view, an output with ``requires_grad`` set all travel as their values, and
what cannot be read back becomes an ``ErrorReply`` that names it, never a failure of the channel.

Lazy modules (``nn.LazyLinear``, ...) have no shapes until their first call. A request that builds one calls it
once first (``_materialise``): on the request's inputs, or, when it has none (a request that only describes a
construction, such as an interface check), on probe inputs (``_probes``); the reply's ``lazy`` names the entries
that had no shape, so that the parent knows this description depends on the inputs it was made with.
"""

from __future__ import annotations

import inspect
import traceback
from dataclasses import dataclass, field

import numpy as np

from .protocol import ARRAY_DTYPES, message_type
from .training import fit  # bound before any submission loads: rebinding ``training.fit`` later changes nothing here

# What a module description holds beyond its type: these attributes wherever a module has them, plus the names
# its class lists in ``__constants__`` (PyTorch's own layers list their hyper-parameters there), ``bias`` as
# whether the module has a bias parameter, and ``length`` for containers (ModuleList, Sequential, ModuleDict).
MODULE_ATTRIBUTES = (
    "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
    "groups", "padding_mode", "output_size", "ceil_mode", "count_include_pad", "eps", "momentum", "affine",
    "track_running_stats", "num_features", "normalized_shape", "elementwise_affine", "p", "inplace",
    "num_embeddings", "embedding_dim", "padding_idx", "max_norm", "input_size", "hidden_size", "num_layers",
    "batch_first", "bidirectional", "embed_dim", "num_heads", "kdim", "vdim", "dropout", "approximate",
    "negative_slope", "dim", "start_dim", "end_dim",
)
MAX_DESCRIBED = 40  # attributes per module at most (a class may list anything in __constants__)


@message_type
@dataclass
class Inspect:
    """Which of these names the submission defines, what they are, and their signatures."""

    names: list[str]


@message_type
@dataclass
class InspectReply:
    kinds: dict  # name -> "class" | "function" | "missing" | "other:<type>"
    parameters: dict  # name -> parameter names of the function or the constructor (without self)
    load_errors: list[str] = field(default_factory=list)


@message_type
@dataclass
class Run:
    """Build ``target`` (a class, with ``init_args``/``init_kwargs``) or take it as a function, then call it
    (or its ``method``).

    ``inputs`` are positional arguments (arrays become tensors on ``device``); ``state`` is loaded with
    ``load_state_dict`` before the call (the parent's drawn weights, see ``Context.run``). With
    ``loss_weights`` (per output: an array of the output's shape, or None to leave that output out), the
    scalar sum_i (output_i * loss_weights[i]).sum() is back-propagated and the gradient arrays of the
    parameters and of the floating inputs are returned. ``call=False`` only builds: the reply describes the
    state (names, shapes, dtypes, buffers, module types) for the parent to draw weights for.
    """

    target: str
    init_args: list | None = None
    init_kwargs: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    call_kwargs: dict = field(default_factory=dict)
    state: dict[str, np.ndarray] | None = None
    mode: str = "eval"
    seed: int = 0
    device: str = "cpu"
    repeats: int = 1
    loss_weights: list[np.ndarray | None] | None = None
    call: bool = True
    method: str = ""  # a named method of the built module to call ("predict"); "": the module itself (forward)
    forbidden: dict | None = None  # the exercise's forbidden.ForbiddenSet as data; None: the attention built-ins
    # The submission's class or function names -> the part each is, which the grader computes in their place
    # inside what this request runs (``autograder.stand_ins``): parts that failed their own checks.
    stand_ins: dict[str, str] = field(default_factory=dict)


@message_type
@dataclass
class RunReply:
    """What the child saw; the parent replaces ``params`` with the weights it drew before any check reads it."""

    outputs: list = field(default_factory=list)  # per repeat: list of arrays (None where not a tensor)
    structure: str = ""  # e.g. "tuple(Tensor, Tensor)"
    dtypes: list = field(default_factory=list)  # per output element: "float32", ... or the Python type
    devices: list = field(default_factory=list)
    # With call=False only: the state_dict (names, shapes, dtypes), which of its entries are buffers, and the
    # modules (qualified name -> {"type": ..., attributes}).
    params: dict[str, np.ndarray] = field(default_factory=dict)
    buffers: list[str] = field(default_factory=list)
    modules: dict = field(default_factory=dict)
    # The state entries that had no shape until a first call (lazy modules): their shapes are those of this
    # request's inputs (or of the probe inputs, see ``_probes``, when it had none).
    lazy: list[str] = field(default_factory=list)
    # Entries that are another entry's very tensor (one module registered under two names): name -> the first
    # name it was found under. The parent draws each tensor once and sends it under every name.
    aliases: dict[str, str] = field(default_factory=dict)
    param_grads: dict[str, np.ndarray | None] = field(default_factory=dict)  # name -> gradient, None if none
    input_grads: list[np.ndarray | None] = field(default_factory=list)  # per input: gradient, None if none
    forbidden: list = field(default_factory=list)


@message_type
@dataclass
class Train:
    """Train ``target(**init_kwargs)`` with Adam and ``loss`` (``training.LOSSES``) on the training split
    (nothing held out): ``inputs`` are the model's positional arguments, ``targets`` what its output is compared
    with."""

    target: str
    init_kwargs: dict
    inputs: list[np.ndarray]
    targets: np.ndarray
    loss: str
    epochs: int
    batch_size: int
    lr: float
    seed: int
    device: str = "cpu"
    forbidden: dict | None = None  # as in ``Run``
    schedule: str = "constant"  # the learning rate over the run (``training.SCHEDULES``)


@message_type
@dataclass
class TrainReply:
    """The trained weights, which the parent scores on held-out data with its own forward pass.

    The losses are the submission's report of its training run: shown to the student, never used for a verdict.
    """

    state: dict[str, np.ndarray]  # the trained model's state_dict
    epoch_losses: list
    step_losses: list = field(default_factory=list)  # mean loss over each training.CURVE_STEPS batches
    forbidden: list = field(default_factory=list)


@message_type
@dataclass
class ErrorReply:
    """The submission raised; ``where`` is the last line of the submission's own code on the way."""

    kind: str
    message: str
    where: str = ""


class LazyInitialisationError(RuntimeError):
    """The lazy modules of a construction could not be given their shapes by a first call.

    ``__cause__`` is what the submission raised, if it raised: the reply names that exception and its line.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(f"lazy modules could not be initialised: {message}")
        self.reason = reason  # what the first call raised, in a line


def _where(exc: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<cell") or frame.filename.startswith("<file") or "submission" in frame.filename:
            return f"{frame.filename.strip('<>')}, line {frame.lineno}, in {frame.name}"
    return ""


def execute(request, namespace: dict, load_errors: list[str] | None = None, ask=None):
    """Carry out one request; any exception from the submission becomes an ``ErrorReply``. ``ask(call)`` sends a
    stand-in's call to the grader and returns its answer (``autograder.stand_ins``); None: no stand-ins."""
    try:
        if isinstance(request, Inspect):
            return _inspect(request, namespace, load_errors or [])
        if isinstance(request, Run):
            return _run(request, namespace, ask)
        if isinstance(request, Train):
            return _train(request, namespace)
        raise TypeError(f"unknown request {type(request).__name__}")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the submission may raise anything
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raised = exc.__cause__ if isinstance(exc, LazyInitialisationError) and exc.__cause__ is not None else exc
        return ErrorReply(kind=type(raised).__name__, message=message, where=_where(raised))


def _inspect(request: Inspect, namespace: dict, load_errors: list[str]) -> InspectReply:
    kinds, parameters = {}, {}
    for name in request.names:
        obj = namespace.get(name)
        if obj is None:
            kinds[name] = "missing"
            continue
        kinds[name] = "class" if inspect.isclass(obj) else "function" if callable(obj) else f"other:{type(obj).__name__}"
        try:
            parameters[name] = list(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            parameters[name] = []
    return InspectReply(kinds=kinds, parameters=parameters, load_errors=list(load_errors))


def _lookup(namespace: dict, name: str):
    if name not in namespace:
        raise NameError(f"your code does not define {name!r}")
    return namespace[name]


def _to_tensor(value, device):
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()).to(device)
    return value


def _describe(value) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return "Tensor"
    if isinstance(value, (tuple, list)):  # a NamedTuple is a tuple, a list subclass a list
        kind = "tuple" if isinstance(value, tuple) else "list"
        return f"{kind}({', '.join(_describe(v) for v in value)})"
    return type(value).__name__


def _flatten(value) -> list:
    """The tensors and other leaves of an output, depth first: ``(logits, [w1, w2])`` -> [logits, w1, w2]; the
    structure (``_describe``) says how they were nested."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def _run(request: Run, namespace: dict, ask=None) -> RunReply:
    import contextlib

    import torch

    from .forbidden import CallLog, ForbiddenSet, watch
    from .stand_ins import install

    target = _lookup(namespace, request.target)
    device = torch.device(request.device)
    log = CallLog()
    reply = RunReply()
    _seed_all(request.seed)
    with watch(log, ForbiddenSet.from_data(request.forbidden)):
        if request.init_args is not None:
            obj, reply.lazy = _build(target, request, device, log)
            if request.state is not None:
                obj.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in request.state.items()})
            obj.to(device)
            obj.train(request.mode == "train")
            if not request.call:
                _describe_state(obj, reply)
        else:
            obj = target
        if not request.call:
            reply.forbidden = log.seen
            return reply
        standing = install(obj, namespace, request.stand_ins, ask) if request.stand_ins and ask else contextlib.nullcontext()
        with standing:
            _call_and_reply(request, obj, device, reply)
    reply.forbidden = log.seen
    return reply


def _call_and_reply(request: Run, obj, device, reply: RunReply) -> None:
    """Call the built module (or the function) on the request's inputs, ``repeats`` times, and back-propagate."""
    import torch

    if request.method:
        if request.init_args is None:
            raise TypeError(f"{request.target} is called as a function: it has no method {request.method!r}")
        obj = getattr(obj, request.method)
    inputs = [_to_tensor(x, device) for x in request.inputs]
    kwargs = {k: _to_tensor(v, device) for k, v in request.call_kwargs.items()}
    backward = request.loss_weights is not None
    if backward:
        for x in inputs:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                x.requires_grad_(True)
    for repeat in range(request.repeats):
        with torch.set_grad_enabled(backward):
            out = obj(*inputs, **kwargs)
        parts = _flatten(out)
        if repeat == 0:
            reply.structure = _describe(out)
            reply.dtypes = [str(p.dtype).replace("torch.", "") if isinstance(p, torch.Tensor) else type(p).__name__ for p in parts]
            reply.devices = [str(p.device.type) if isinstance(p, torch.Tensor) else "" for p in parts]
        reply.outputs.append([_output_array(p) for p in parts])
        if backward and repeat == 0:
            _backward(parts, request.loss_weights, obj, inputs, reply)


def _construct(target, request: Run, log) -> object:
    """``target(*init_args, **init_kwargs)``, checked to be a module and scanned for forbidden layers."""
    import torch

    from .forbidden import ForbiddenSet, scan_modules

    obj = target(*request.init_args, **request.init_kwargs)
    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"{request.target}(...) should build an nn.Module, got {type(obj).__name__}")
    scan_modules(obj, log, ForbiddenSet.from_data(request.forbidden))
    return obj


def _build(target, request: Run, device, log) -> tuple[object, list[str]]:
    """The module ``request`` builds, with every lazy entry given its shape; and the names of those entries.

    A module without lazy entries is returned as built (no call). One with lazy entries is called once on the
    request's inputs, or, when the request has none, rebuilt and called on each probe of ``_probes`` until one
    call gives every entry a shape.
    """
    import torch

    obj = _construct(target, request, log)
    lazy = _uninitialised(obj)
    if not lazy:
        return obj, []
    if request.inputs or request.call_kwargs:
        _materialise(obj, request.inputs, request.call_kwargs, device)
        return obj, lazy
    failures: list[LazyInitialisationError] = []
    for probe in _probes(request, obj):
        if failures:  # a failed call may have fixed some shapes: start again from a fresh module
            _seed_all(request.seed)
            obj = _construct(target, request, log)
        try:
            _materialise(obj, probe, {}, device)
        except LazyInitialisationError as exc:
            failures.append(exc)
            continue
        return obj, lazy
    first = failures[0]
    raise LazyInitialisationError(
        "no inputs came with this request and no probe call succeeded (float (2, 3, n) for each size n given to "
        f"the constructor, token ids (2, 3)); the first failed: {first.reason}", first.reason) from first.__cause__


def _uninitialised(obj) -> list[str]:
    """The state entries of ``obj`` that have no shape yet (the parameters and buffers of lazy modules)."""
    from torch.nn.parameter import is_lazy

    return [name for name, value in obj.state_dict(keep_vars=True).items() if is_lazy(value)]


def _materialise(obj, inputs: list, call_kwargs: dict, device) -> None:
    """Give ``obj``'s lazy entries their shapes by one call on ``inputs`` (eval mode, no gradients).

    Raises ``LazyInitialisationError`` (from what the call raised) when the call fails or leaves an entry without
    a shape; a stub's ``NotImplementedError`` passes through, to be reported as such.
    """
    import torch

    obj.to(device)
    training = obj.training
    obj.eval()
    try:
        with torch.no_grad():
            obj(*[_to_tensor(x, device) for x in inputs], **{k: _to_tensor(v, device) for k, v in call_kwargs.items()})
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the submission may raise anything
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise LazyInitialisationError(f"a first call failed: {reason}", reason) from exc
    finally:
        obj.train(training)
    left = _uninitialised(obj)
    if left:
        reason = f"{', '.join(left[:3])} still {'have' if len(left) > 1 else 'has'} no shape after a call"
        raise LazyInitialisationError(f"{reason} (a lazy module that forward never calls?)", reason)


def _probes(request: Run, obj) -> list[list]:
    """Inputs to give lazy modules their shapes when a request has none (it only describes a construction).

    For each positive integer given to the constructor, in order (the sizes: ``embed_dim`` first, usually),
    every required positional argument of ``forward`` gets the same float32 tensor of shape (2, 3, size); last,
    every such argument gets token ids of shape (2, 3). Shapes a probe fixes wrongly show in the interface
    check; the checks that call the module describe it again on their own inputs.
    """
    sizes = [v for v in [*request.init_args, *request.init_kwargs.values()]
             if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 14]
    try:
        params = inspect.signature(obj.forward).parameters.values()
        arity = sum(1 for p in params if p.default is inspect.Parameter.empty
                    and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD))
    except (TypeError, ValueError):
        arity = 1
    gen = np.random.default_rng(0)
    probes = []
    for size in dict.fromkeys(sizes):
        x = gen.standard_normal((2, 3, size)).astype(np.float32)  # (batch 2, length 3, size)
        probes.append([x] * max(arity, 1))
    probes.append([np.ones((2, 3), dtype=np.int64)] * max(arity, 1))  # token ids (batch 2, length 3)
    return probes


def _array(tensor, what: str) -> np.ndarray:
    """A tensor's values as a plain numpy array the protocol carries (a subclass, a view, a sparse or bfloat16
    tensor, one that requires grad: all as their values); raises TypeError for a dtype that cannot travel."""
    import torch

    try:
        plain = tensor.detach()
        if plain.layout != torch.strided:
            plain = plain.to_dense()
        plain = plain.as_subclass(torch.Tensor).to("cpu").resolve_conj().resolve_neg()
        if plain.dtype == torch.bfloat16:
            plain = plain.float()
        array = np.array(plain.numpy(), copy=True)
    except Exception as exc:  # noqa: BLE001 - a tensor type of the submission's, with methods of its own
        raise TypeError(f"{what} cannot be read as an array ({type(exc).__name__}: {exc})") from exc
    if array.dtype.name not in ARRAY_DTYPES:
        raise TypeError(f"{what} is a {array.dtype} tensor, which the grader cannot read")
    return array


def _output_array(part) -> np.ndarray | None:
    """An output as the parent sees it: a plain array, or None for anything else (the dtypes say what it was)."""
    import torch

    if not isinstance(part, torch.Tensor) or str(part.dtype).replace("torch.", "") not in ARRAY_DTYPES | {"bfloat16"}:
        return None
    return _array(part, "an output")


def _describe_state(obj, reply: RunReply) -> None:
    """What the parent needs to draw weights and check the structure: the state, its buffers, the modules."""
    first: dict[int, str] = {}
    for name, tensor in obj.state_dict(keep_vars=True).items():
        canonical = first.setdefault(id(tensor), name)
        if canonical != name:
            reply.aliases[name] = canonical
    reply.params = {k: _array(v, f"state entry {k}") for k, v in obj.state_dict().items()}
    reply.buffers = [name for name, _ in obj.named_buffers() if name in reply.params]
    reply.modules = {name: _describe_module(m) for name, m in obj.named_modules()}


def _describe_module(module) -> dict:
    """A module's type and hyper-parameters (``MODULE_ATTRIBUTES``), as plain values."""
    import torch

    constants = getattr(type(module), "__constants__", ())
    names = [a for a in dict.fromkeys([*MODULE_ATTRIBUTES, *(constants if isinstance(constants, (list, tuple)) else ())])
             if isinstance(a, str) and not a.startswith("_")]
    described: dict = {"type": type(module).__name__}
    for name in names:
        if len(described) > MAX_DESCRIBED:
            break
        value = getattr(module, name, _MISSING)
        if value is not _MISSING and not isinstance(value, (torch.nn.Module, torch.Tensor)) and not callable(value):
            described[name] = _plain(value)
    bias = getattr(module, "bias", _MISSING)
    if bias is None or isinstance(bias, torch.Tensor):
        described["bias"] = bias is not None
    if isinstance(module, (torch.nn.ModuleList, torch.nn.Sequential, torch.nn.ModuleDict)):
        described["length"] = len(module)
    return described


_MISSING = object()


def _backward(parts: list, loss_weights: list, obj, inputs: list, reply: RunReply) -> None:
    """Back-propagate sum_i (parts[i] * loss_weights[i]).sum(); return the gradients as they are.

    An output of another shape than its weights is left out of the loss: the parent reports the shape.
    """
    import torch

    loss = None
    for part, weight in zip(parts, loss_weights):
        usable = isinstance(part, torch.Tensor) and part.is_floating_point() and part.requires_grad
        if weight is None or not usable or tuple(part.shape) != tuple(np.shape(weight)):
            continue
        term = (part * torch.from_numpy(np.array(weight)).to(device=part.device, dtype=part.dtype)).sum()
        loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    if isinstance(obj, torch.nn.Module):
        reply.param_grads = {name: _gradient(p) for name, p in obj.named_parameters()}
    reply.input_grads = [_gradient(x) if isinstance(x, torch.Tensor) else None for x in inputs]


def _gradient(tensor):
    """A tensor's gradient as a dense plain array, or None."""
    grad = tensor.grad
    if grad is None:
        return None
    return _array(grad, "a gradient")


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value)


def _seed_all(seed: int) -> None:
    """Seed every generator a submission may draw from (torch, numpy's global one, ``random``): the same request
    gives the same answer, whatever the submission's dropout draws with."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _train(request: Train, namespace: dict) -> TrainReply:
    """Train the submission's model from its own initialisation; return its weights, not predictions."""
    import torch

    from .forbidden import CallLog, ForbiddenSet, scan_modules, watch_layers

    cls = _lookup(namespace, request.target)
    _seed_all(request.seed)
    forbidden = ForbiddenSet.from_data(request.forbidden)
    log = CallLog()
    with watch_layers(log, forbidden):  # a layer kept out of the module tree is seen when it computes
        model = cls(**request.init_kwargs)
        scan_modules(model, log, forbidden)
        if _uninitialised(model):  # lazy modules: shapes before the optimiser takes the parameters (fit does it too)
            _materialise(model, [x[: request.batch_size] for x in request.inputs], {}, torch.device(request.device))
        history = fit(model, request.inputs, request.targets, loss=request.loss, epochs=request.epochs,
                      batch_size=request.batch_size, lr=request.lr, seed=request.seed, device=request.device,
                      schedule=request.schedule)
    state = {k: _array(v, f"state entry {k}") for k, v in model.state_dict().items()}
    return TrainReply(state=state, epoch_losses=list(history.epoch_losses),
                      step_losses=list(history.step_losses), forbidden=log.seen)
