"""The one training loop: used by the grader's training check (inside the child) and by the notebooks.

Adam and cross-entropy over shuffled mini-batches; the shuffling has its own seeded generator, so a run is
fixed by its seed and budget. In the child this module is the submission's to patch: nothing it computes
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


def fit(model, x_train, y_train, *, epochs: int, batch_size: int, lr: float, seed: int, device="cpu",
        progress: bool = False) -> History:
    """Train ``model`` (logits from token ids) in place; ``x_train``, ``y_train`` are numpy arrays."""
    import torch
    import torch.nn.functional as F

    device = torch.device(device)
    model.to(device)
    x = torch.from_numpy(np.ascontiguousarray(x_train))
    y = torch.from_numpy(np.ascontiguousarray(y_train))
    initialise_lazy(model, x[:batch_size], device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history, window = History(), []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"epoch {epoch + 1}/{epochs}", leave=False)
        total, count = 0.0, 0
        for i in starts:
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            value = float(loss.detach())
            total, count = total + value * len(idx), count + len(idx)
            window.append(value)
            if len(window) == CURVE_STEPS:
                history.step_losses.append(sum(window) / CURVE_STEPS)
                window = []
        history.epoch_losses.append(total / max(count, 1) if math.isfinite(total) else float("nan"))
    return history


def initialise_lazy(model, x, device="cpu") -> None:
    """Give lazy modules (``nn.LazyLinear``, ...) their shapes with one call on the batch ``x`` (eval mode, no
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
            model(x.to(device))
    finally:
        model.train(training)


def predict(model, x, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Predicted classes (argmax of the logits) for token ids ``x``, in eval mode."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device))
            out.append(logits.argmax(-1).to("cpu"))
    return torch.cat(out).numpy().astype(np.int64)
