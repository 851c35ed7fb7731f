"""The one training loop: used by the grader's training check (inside the child) and by the notebooks.

Adam over shuffled mini-batches with the exercise's loss (``LOSSES``: cross-entropy for a classifier, mean
squared error for a regression); the shuffling has its own seeded generator, so a run is fixed by its seed and
budget. A model takes one input (token ids, images) or several (a source and a target sequence). In the child this module is the submission's to patch: nothing it computes
decides a verdict (the grader scores the trained weights with its own forward pass; the losses are only shown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CURVE_STEPS = 20  # one point of the training curve per this many batches


@dataclass
class History:
    epoch_losses: list = field(default_factory=list)  # mean loss of each epoch
    step_losses: list = field(default_factory=list)  # mean loss of each CURVE_STEPS batches


LOSSES = ("cross_entropy", "mse")  # the losses a training task may name
SCHEDULES = ("constant", "linear")  # the learning rate: constant, or decaying linearly to 0 over the run


def learning_rate_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate's multiplier before optimiser step ``step`` (0-based) of ``total_steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    return 1.0 if schedule == "constant" else 1.0 - step / max(total_steps, 1)


def loss_function(name: str):
    """The loss named ``name`` (one of ``LOSSES``): (model output, targets) -> a scalar."""
    import torch.nn.functional as F

    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    return F.cross_entropy if name == "cross_entropy" else F.mse_loss


def _tensors(inputs) -> list:
    """One numpy array or a list of them (the model's positional inputs) as CPU tensors."""
    import torch

    arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def fit(model, x_train, y_train, *, epochs: int, batch_size: int, lr: float, seed: int, device="cpu",
        loss: str = "cross_entropy", schedule: str = "constant", progress: bool = False) -> History:
    """Train ``model`` in place: ``x_train`` is a numpy array or a list of them (the model's positional inputs),
    ``y_train`` the targets its output is compared with under ``loss``; the learning rate follows ``schedule``
    (``SCHEDULES``: constant, or linear decay to 0 over the ``epochs``)."""
    import torch

    criterion = loss_function(loss)
    device = torch.device(device)
    model.to(device)
    xs = _tensors(x_train)
    y = torch.from_numpy(np.ascontiguousarray(y_train))
    initialise_lazy(model, [x[:batch_size] for x in xs], device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    total_steps = epochs * math.ceil(len(y) / batch_size)
    learning_rate_factor(schedule, 0, total_steps)  # an unknown schedule fails before any training
    gen = torch.Generator().manual_seed(seed)
    history, window, step = History(), [], 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        total, count = 0.0, 0
        for i in starts:
            idx = order[i : i + batch_size]
            for group in optimiser.param_groups:
                group["lr"] = lr * learning_rate_factor(schedule, step, total_steps)
            step += 1
            batch_loss = criterion(model(*[x[idx].to(device) for x in xs]), y[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimiser.step()
            value = float(batch_loss.detach())
            total, count = total + value * len(idx), count + len(idx)
            window.append(value)
            if len(window) == CURVE_STEPS:
                history.step_losses.append(sum(window) / CURVE_STEPS)
                window = []
        history.epoch_losses.append(total / max(count, 1) if math.isfinite(total) else float("nan"))
    return history


def initialise_lazy(model, xs: list, device="cpu") -> None:
    """Give lazy modules (``nn.LazyLinear``, ...) their shapes with one call on the batch ``xs`` (eval mode, no
    gradients), so that the optimiser takes parameters usable as usual, as PyTorch's documentation of lazy
    modules asks (a dry run first). Does nothing for a model without lazy modules."""
    import itertools

    import torch
    from torch.nn.parameter import is_lazy

    if not any(is_lazy(t) for t in itertools.chain(model.parameters(), model.buffers())):
        return
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*[x.to(device) for x in xs])
    finally:
        model.train(training)


def outputs(model, x, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for ``x`` (an array or a list of arrays, its positional inputs), in eval mode."""
    import torch

    model.eval()
    xs = _tensors(x)
    out = []
    with torch.no_grad():
        for i in range(0, len(xs[0]), batch_size):
            out.append(model(*[a[i : i + batch_size].to(device) for a in xs]).to("cpu"))
    return torch.cat(out).numpy()


def predict(model, x, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Predicted classes (argmax of the logits) for ``x``, in eval mode."""
    return outputs(model, x, device, batch_size).argmax(-1).astype(np.int64)
