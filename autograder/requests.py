"""Requests the grader sends to a submission, and how they are carried out next to the submission's code.

A request is data: build this object, run this method on these inputs in this mode, train this classifier on
this (unlabelled-at-test) data. ``execute`` runs it against a namespace that holds the submission's names and
returns a reply that is data too. It runs in the child process (standalone grading) or in the notebook's
kernel (nbgrader); the parent never trusts a reply beyond its shape.
"""

from __future__ import annotations

import inspect
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from .protocol import message_type

MODULE_ATTRIBUTES = (
    "eps", "p", "in_features", "out_features", "normalized_shape", "num_embeddings", "embedding_dim",
    "padding_idx", "input_size", "hidden_size", "num_layers", "batch_first", "bidirectional",
)


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
    """Build ``target`` (a class, with ``init_args``/``init_kwargs``) or take it as a function, then call it.

    ``inputs`` are positional arguments (arrays become tensors on ``device``), ``state`` is loaded with
    ``load_state_dict`` before the call. With ``backward``, a fixed random projection of the outputs is
    back-propagated and the gradient norms of parameters and floating inputs are returned.
    """

    target: str
    init_args: list | None = None
    init_kwargs: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    call_kwargs: dict = field(default_factory=dict)
    state: dict | None = None
    mode: str = "eval"
    seed: int = 0
    device: str = "cpu"
    repeats: int = 1
    backward: bool = False
    backward_outputs: list | None = None  # which outputs the backward pass starts from (default: all)
    call: bool = True


@message_type
@dataclass
class RunReply:
    outputs: list = field(default_factory=list)  # per repeat: list of arrays (None where not a tensor)
    structure: str = ""  # e.g. "tuple(Tensor, Tensor)"
    dtypes: list = field(default_factory=list)  # per output element: "float32", ... or the Python type
    devices: list = field(default_factory=list)
    params: dict = field(default_factory=dict)  # name -> array (after construction and loading)
    modules: dict = field(default_factory=dict)  # qualified name -> {"type": ..., attributes}
    param_grads: dict = field(default_factory=dict)  # name -> gradient norm or None
    input_grads: list = field(default_factory=list)  # per input: gradient norm or None
    forbidden: list = field(default_factory=list)


@message_type
@dataclass
class Train:
    """Train ``target(**init_kwargs)`` with Adam and cross-entropy, then predict classes for ``x_test``."""

    target: str
    init_kwargs: dict
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    epochs: int
    batch_size: int
    lr: float
    seed: int
    device: str = "cpu"


@message_type
@dataclass
class TrainReply:
    predictions: np.ndarray
    epoch_losses: list
    seconds: float
    step_losses: list = field(default_factory=list)  # mean loss over each training.CURVE_STEPS batches
    forbidden: list = field(default_factory=list)


@message_type
@dataclass
class ErrorReply:
    """The submission raised; ``where`` is the last line of the submission's own code on the way."""

    kind: str
    message: str
    where: str = ""


def _where(exc: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<cell") or frame.filename.startswith("<file") or "submission" in frame.filename:
            return f"{frame.filename.strip('<>')}, line {frame.lineno}, in {frame.name}"
    return ""


def execute(request, namespace: dict, load_errors: list[str] | None = None):
    """Carry out one request; any exception from the submission becomes an ``ErrorReply``."""
    try:
        if isinstance(request, Inspect):
            return _inspect(request, namespace, load_errors or [])
        if isinstance(request, Run):
            return _run(request, namespace)
        if isinstance(request, Train):
            return _train(request, namespace)
        raise TypeError(f"unknown request {type(request).__name__}")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the submission may raise anything
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return ErrorReply(kind=type(exc).__name__, message=message, where=_where(exc))


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
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(_describe(v) for v in value)})"
    return type(value).__name__


def _flatten(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _run(request: Run, namespace: dict) -> RunReply:
    import torch

    from .forbidden import CallLog, scan_modules, watch

    target = _lookup(namespace, request.target)
    device = torch.device(request.device)
    log = CallLog()
    reply = RunReply()
    torch.manual_seed(request.seed)
    with watch(log):
        if request.init_args is not None:
            obj = target(*request.init_args, **request.init_kwargs)
            if not isinstance(obj, torch.nn.Module):
                raise TypeError(f"{request.target}(...) should build an nn.Module, got {type(obj).__name__}")
            scan_modules(obj, log)
            if request.state is not None:
                obj.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in request.state.items()})
            obj.to(device)
            obj.train(request.mode == "train")
            reply.params = {k: v for k, v in obj.state_dict().items()}
            reply.modules = {
                name: {"type": type(m).__name__, **{a: _plain(getattr(m, a)) for a in MODULE_ATTRIBUTES if hasattr(m, a)}}
                for name, m in obj.named_modules()
            }
        else:
            obj = target
        if not request.call:
            reply.forbidden = log.seen
            return reply
        inputs = [_to_tensor(x, device) for x in request.inputs]
        kwargs = {k: _to_tensor(v, device) for k, v in request.call_kwargs.items()}
        if request.backward:
            for x in inputs:
                if isinstance(x, torch.Tensor) and x.is_floating_point():
                    x.requires_grad_(True)
        for repeat in range(request.repeats):
            with torch.set_grad_enabled(request.backward):
                out = obj(*inputs, **kwargs)
            parts = _flatten(out)
            if repeat == 0:
                reply.structure = _describe(out)
                reply.dtypes = [str(p.dtype).replace("torch.", "") if isinstance(p, torch.Tensor) else type(p).__name__ for p in parts]
                reply.devices = [str(p.device.type) if isinstance(p, torch.Tensor) else "" for p in parts]
            reply.outputs.append([p.detach() if isinstance(p, torch.Tensor) else None for p in parts])
            if request.backward and repeat == 0:
                chosen = parts if request.backward_outputs is None else [parts[i] for i in request.backward_outputs if i < len(parts)]
                _backward(chosen, obj, inputs, reply, request.seed)
    reply.forbidden = log.seen
    return reply


def _backward(parts, obj, inputs, reply: RunReply, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    loss = 0.0
    for p in parts:
        if isinstance(p, torch.Tensor) and p.is_floating_point() and p.requires_grad:
            weight = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(device=p.device, dtype=p.dtype)
            loss = loss + (p * weight).sum()
    if isinstance(loss, torch.Tensor):
        loss.backward()
    if isinstance(obj, torch.nn.Module):
        reply.param_grads = {
            name: (None if p.grad is None else float(p.grad.detach().float().norm())) for name, p in obj.named_parameters()
        }
    reply.input_grads = [
        (float(x.grad.float().norm()) if isinstance(x, torch.Tensor) and x.grad is not None else None) for x in inputs
    ]


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value)


def _train(request: Train, namespace: dict) -> TrainReply:
    import torch

    from .forbidden import CallLog, scan_modules
    from .training import fit, predict

    cls = _lookup(namespace, request.target)
    torch.manual_seed(request.seed)
    model = cls(**request.init_kwargs)
    log = CallLog()
    scan_modules(model, log)
    start = time.perf_counter()
    history = fit(model, request.x_train, request.y_train, epochs=request.epochs, batch_size=request.batch_size,
                  lr=request.lr, seed=request.seed, device=request.device)
    preds = predict(model, request.x_test, request.device)
    return TrainReply(predictions=preds, epoch_losses=history.epoch_losses, seconds=time.perf_counter() - start,
                      step_losses=history.step_losses, forbidden=log.seen)
