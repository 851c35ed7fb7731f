"""Figures people would rather see than read: attention over a tweet's words, training curves, scores."""

from __future__ import annotations


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and not _in_notebook():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


def attention_heatmap(weights, words: list[str], ax=None, title: str = "attention"):
    """Heatmap of a (T, T) self-attention matrix over a tweet's words (queries down, keys across)."""
    plt = _pyplot()
    import numpy as np

    w = np.asarray(weights)[: len(words), : len(words)]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(words) + 2, 0.45 * len(words) + 1.5))
    image = ax.imshow(w, cmap="viridis", vmin=0.0)
    ax.set_xticks(range(len(words)), words, rotation=90)
    ax.set_yticks(range(len(words)), words)
    ax.set(xlabel="key (attended to)", ylabel="query", title=title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def training_curves(curves: dict, path: str | None = None, threshold: float | None = None, ax=None,
                    ylabel: str = "loss"):
    """Loss curves: ``curves`` maps a label to a list of mean losses (one per ``CURVE_STEPS`` batches);
    ``ylabel`` names the loss (the exercise's, e.g. "cross-entropy loss")."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=label)
    ax.set(xlabel="training progress (groups of 20 batches)", ylabel=ylabel, title="training curve")
    ax.legend()
    if path:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
        plt.close(ax.figure)
    return ax


def attention_over_words(rows: list[tuple[list[str], list[float]]], ax=None, title: str = "attention over words"):
    """One tweet per row, each word in a cell coloured by its attention weight (a (n, T) heatmap)."""
    plt = _pyplot()
    import numpy as np

    width = max(len(words) for words, _ in rows)
    grid = np.full((len(rows), width), np.nan)
    for r, (words, weights) in enumerate(rows):
        grid[r, : len(words)] = np.asarray(weights)[: len(words)]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 * width + 1, 0.6 * len(rows) + 1.2))
    image = ax.imshow(grid, cmap="Reds", vmin=0.0, aspect="auto")
    for r, (words, weights) in enumerate(rows):
        for c, word in enumerate(words):
            ax.text(c, r, word, ha="center", va="center", fontsize=7)
    ax.set(xticks=[], yticks=[], title=title)
    ax.figure.colorbar(image, ax=ax, fraction=0.03)
    return ax
