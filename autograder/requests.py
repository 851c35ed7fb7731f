"""Requests the grader sends to a submission, and how they are carried out next to the submission's code.

A request is data: build this object with these weights, run it on these inputs in this mode, back-propagate
this projection of its outputs, train this classifier on the training split. ``execute`` runs it against a
namespace that holds the submission's names and returns a reply that is data too. It runs in the child
process (standalone grading) or in the notebook's kernel (nbgrader), where the submission can change anything,
this module included: every number in a reply is the submission's to forge. The parent therefore decides no
verdict on trust: it draws the weights it compares with (``Context.run``), recomputes gradients with its own
float64 references and scores trained weights with a forward pass of its own.
"""

from __future__ import annotations

import inspect
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
    param_grads: dict[str, np.ndarray | None] = field(default_factory=dict)  # name -> gradient, None if none
    input_grads: list[np.ndarray | None] = field(default_factory=list)  # per input: gradient, None if none
    forbidden: list = field(default_factory=list)


@message_type
@dataclass
class Train:
    """Train ``target(**init_kwargs)`` with Adam and cross-entropy on the training split (nothing held out)."""

    target: str
    init_kwargs: dict
    x_train: np.ndarray
    y_train: np.ndarray
    epochs: int
    batch_size: int
    lr: float
    seed: int
    device: str = "cpu"


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
            reply.outputs.append([p.detach() if isinstance(p, torch.Tensor) else None for p in parts])
            if backward and repeat == 0:
                _backward(parts, request.loss_weights, obj, inputs, reply)
    reply.forbidden = log.seen
    return reply


def _describe_state(obj, reply: RunReply) -> None:
    """What the parent needs to draw weights and check the structure: the state, its buffers, the modules."""
    reply.params = {k: v for k, v in obj.state_dict().items()}
    reply.buffers = [name for name, _ in obj.named_buffers() if name in reply.params]
    reply.modules = {
        name: {"type": type(m).__name__, **{a: _plain(getattr(m, a)) for a in MODULE_ATTRIBUTES if hasattr(m, a)}}
        for name, m in obj.named_modules()
    }


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
    """A tensor's gradient as a dense detached tensor, or None."""
    grad = tensor.grad
    if grad is None:
        return None
    return (grad.to_dense() if grad.is_sparse else grad).detach()


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value)


def _train(request: Train, namespace: dict) -> TrainReply:
    """Train the submission's classifier from its own initialisation; return its weights, not predictions."""
    import torch

    from .forbidden import CallLog, scan_modules
    from .training import fit

    cls = _lookup(namespace, request.target)
    torch.manual_seed(request.seed)
    model = cls(**request.init_kwargs)
    log = CallLog()
    scan_modules(model, log)
    history = fit(model, request.x_train, request.y_train, epochs=request.epochs, batch_size=request.batch_size,
                  lr=request.lr, seed=request.seed, device=request.device)
    return TrainReply(state=dict(model.state_dict()), epoch_losses=list(history.epoch_losses),
                      step_losses=list(history.step_losses), forbidden=log.seen)
