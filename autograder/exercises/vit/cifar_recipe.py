"""The course's CIFAR-100 training recipe for the Vision Transformer exercise, for users with a network and a GPU.

From the course's notebook (the Keras ViT example): CIFAR-100 (50,000 training and 10,000 test images, 32x32x3,
100 classes), normalised per channel and augmented with a horizontal flip, a rotation of up to 0.02 of a turn and
a zoom of up to 20% (:class:`autograder.data.augment.Augment`); AdamW (learning rate 1e-3, weight decay 1e-4),
batches of 256, 100 epochs, 10% of the training images held out for validation. The notebook reports about
0.38-0.39 top-1 and 0.68 top-5 test accuracy for the ViT, about 0.45-0.48 and 0.76 for the CCT variant.

    split = load_cifar100("~/data", download=True)     # 163 MB once, checked by MD5
    history = train_cifar(model, split, CifarRecipe(), device="cuda")

Nothing here downloads unless asked. A run is fixed by ``recipe.seed``: the validation split, the shuffling, the
augmentation and torch's global generator (dropout) are all seeded from it (the caller's global generator state
is restored afterwards); the model's initial weights are the caller's. On a GPU, bitwise repetition also needs
``torch.use_deterministic_algorithms(True)``, which this does not switch on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.augment import Augment
from ...data.images import ImageSplit, download_cifar, read_cifar


@dataclass(frozen=True)
class CifarRecipe:
    """The notebook's training settings (defaults) for :func:`train_cifar`."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 100
    validation: float = 0.1  # share of the training images held out, stratified by class
    seed: int = 0
    flip: bool = True
    rotation: float = 0.02  # fraction of a full turn (Keras' RandomRotation factor)
    zoom: float = 0.2  # largest relative change of height and of width (Keras' RandomZoom factors)
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if not 0 <= self.validation < 1:
            raise ValueError(f"validation must lie in [0, 1), got {self.validation}")
        if self.batch_size < 1 or self.epochs < 0 or self.eval_batch_size < 1:
            raise ValueError("batch_size and eval_batch_size must be positive and epochs not negative")


@dataclass
class History:
    """What :func:`train_cifar` measured: one entry per epoch for the first two, then the test split's scores."""

    train_loss: list[float] = field(default_factory=list)  # mean cross-entropy over each epoch's training batches
    validation_top1: list[float] = field(default_factory=list)  # empty when recipe.validation == 0
    test_top1: float = float("nan")
    test_top5: float = float("nan")
    validation_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)


def load_cifar100(root: str | Path, download: bool = False, progress: bool = True) -> ImageSplit:
    """CIFAR-100 (fine labels) from ``root`` (the extracted ``cifar-100-python`` folder or the folder holding it);
    with ``download=True`` the archive is fetched there first (checked by MD5; not fetched again if present)."""
    root = Path(root).expanduser()
    if download:
        return read_cifar(download_cifar(100, root, progress=progress), kind=100)
    try:
        return read_cifar(root, kind=100)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; or call load_cifar100({str(root)!r}, download=True)") from None


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The share of rows of ``logits`` (N, classes) whose label (N,) is among the ``k`` largest logits.

    ``k`` larger than the number of classes counts every row (as k = classes); ties are broken as ``torch.topk``
    breaks them. 0 rows give nan.
    """
    N, classes = logits.shape
    if labels.shape != (N,):
        raise ValueError(f"labels must have shape ({N},), got {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if N == 0:
        return float("nan")
    top = logits.topk(min(k, classes), dim=-1).indices  # (N, k)
    hits = (top == labels.to(top.device).view(N, 1)).any(dim=-1)  # (N, k) vs (N, 1) -> (N,)
    return float(hits.float().mean())


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of the images kept for training and of those held out for validation.

    ``round(fraction * N)`` images are held out, stratified by label when every class has at least two images
    and there are at least as many held out as classes (otherwise drawn at random); ``seed`` fixes the draw.
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_val = int(round(fraction * n))
    index = np.arange(n)
    if n_val == 0:
        return index, index[:0]
    if n_val >= n:
        raise ValueError(f"a validation share of {fraction} leaves no training images out of {n}")
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and n_val >= len(counts) and n - n_val >= len(counts) else None
    train, val = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def _seeds(seed: int, count: int) -> list[int]:
    """``count`` independent 32-bit seeds derived from ``seed`` (scikit-learn's ``random_state`` takes 32 bits)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count, dtype=np.uint32)]


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits for the images ``x`` (N, C, H, W), in eval mode, batch by batch."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def train_cifar(model: nn.Module, split: ImageSplit, recipe: CifarRecipe = CifarRecipe(),
                device: str | torch.device = "cpu", progress: bool = True) -> History:
    """Train ``model`` (images (B, C, H, W) -> logits (B, classes)) in place on ``split`` with ``recipe``.

    The validation images are taken from ``split``'s training images (:func:`validation_split`) and scored after
    every epoch (top-1); the test images are scored once at the end (top-1 and top-5). The images are moved to
    ``device`` once (CIFAR-100's training split is 600 MB in float32), as is the model.
    """
    from tqdm.auto import tqdm

    from ...training import initialise_lazy

    device = torch.device(device)
    split_seed, order_seed, augment_seed, torch_seed = _seeds(recipe.seed, 4)
    train_idx, val_idx = validation_split(split.y_train, recipe.validation, split_seed)
    x_train = torch.from_numpy(split.x_train[train_idx]).to(device)  # (N_train, C, H, W); fancy indexing copies
    y_train = torch.from_numpy(split.y_train[train_idx]).to(device)  # (N_train,)
    x_val = torch.from_numpy(split.x_train[val_idx]).to(device)  # (N_val, C, H, W)
    y_val = torch.from_numpy(split.y_train[val_idx]).to(device)
    x_test = torch.from_numpy(np.array(split.x_test, dtype=np.float32)).to(device)  # a writable copy
    y_test = torch.from_numpy(np.array(split.y_test, dtype=np.int64)).to(device)

    history = History(validation_indices=val_idx)
    fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(torch_seed)
        model.to(device)
        initialise_lazy(model, [x_train[: recipe.batch_size]], device)
        augment = Augment(flip=recipe.flip, rotation=recipe.rotation, zoom=recipe.zoom, seed=augment_seed).to(device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        order_gen = torch.Generator().manual_seed(order_seed)
        epochs = tqdm(range(recipe.epochs), desc="epochs", disable=not progress)
        for epoch in epochs:
            model.train()
            augment.train()
            order = torch.randperm(len(y_train), generator=order_gen).to(device)  # (N_train,)
            starts = tqdm(range(0, len(order), recipe.batch_size), desc=f"epoch {epoch + 1}/{recipe.epochs}",
                          leave=False, disable=not progress)
            total, count = torch.zeros((), dtype=torch.float64, device=device), 0
            for i in starts:
                idx = order[i : i + recipe.batch_size]
                logits = model(augment(x_train[idx]))  # (B, classes)
                if logits.shape != (len(idx), split.num_classes):
                    raise ValueError(f"the model must return logits of shape (batch, {split.num_classes}), "
                                     f"got {tuple(logits.shape)}")
                loss = F.cross_entropy(logits, y_train[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.detach().double() * len(idx)
                count += len(idx)
            mean_loss = float(total) / max(count, 1)
            history.train_loss.append(mean_loss if math.isfinite(mean_loss) else float("nan"))
            postfix = {"loss": f"{mean_loss:.4f}"}
            if len(y_val):
                history.validation_top1.append(top_k_accuracy(_logits(model, x_val, recipe.eval_batch_size), y_val, 1))
                postfix["val_top1"] = f"{history.validation_top1[-1]:.4f}"
            epochs.set_postfix(postfix)
        logits = _logits(model, x_test, recipe.eval_batch_size)  # (N_test, classes)
        history.test_top1 = top_k_accuracy(logits, y_test, 1)
        history.test_top5 = top_k_accuracy(logits, y_test, 5)
    return history
