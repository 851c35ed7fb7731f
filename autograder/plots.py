"""Figures people would rather see than read: attention over words and over images (gates, maps, one position's
attention, importance over a grid of patches or tokens), training curves, scores."""

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
    """Heatmap of a (T, T) self-attention matrix over a sequence's tokens (queries down, keys across)."""
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
    """One sequence per row, each token in a cell coloured by its attention weight (a (n, T) heatmap)."""
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


def _as_2d(array):
    """A (H, W) view of an image or map given as (H, W), (1, H, W) or (C, H, W) (the mean over C)."""
    import numpy as np

    a = np.asarray(array, dtype=float)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.mean(0)
    if a.ndim != 2:
        raise ValueError(f"expected an image or a map of shape (H, W), (1, H, W) or (C, H, W), not {a.shape}")
    return a


def image_maps(images, maps, titles: list[str] | None = None, columns: int = 4, map_title: str = "attention",
               vmin: float | None = None, vmax: float | None = None, cmap: str = "magma"):
    """Each image beside its attention map (CBAM's spatial gate, say): ``images`` (n, H, W), (n, 1, H, W) or
    (n, C, H, W) (shown as the mean over C), ``maps`` (n, h, w) or (n, 1, h, w), drawn over the image's extent so
    that a coarser map lines up with it. ``columns`` pairs per row; the maps share one colour scale (``vmin`` to
    ``vmax``, by default their smallest and largest values) with one colour bar. Returns the figure."""
    plt = _pyplot()
    import numpy as np

    images = [_as_2d(i) for i in images]
    maps = [_as_2d(m) for m in maps]
    if len(images) != len(maps):
        raise ValueError(f"{len(images)} images but {len(maps)} maps")
    vmin = min(float(m.min()) for m in maps) if vmin is None else vmin
    vmax = max(float(m.max()) for m in maps) if vmax is None else vmax
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(3.2 * columns + 1.2, 1.8 * rows + 0.6), squeeze=False)
    shown = None
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        n = (k // (2 * columns)) * columns + (k % (2 * columns)) // 2  # the image of this pair
        which = k % 2  # 0: the image, 1: its map
        if n >= len(images):
            continue
        h, w = images[n].shape
        if which == 0:
            ax.imshow(images[n], cmap="gray_r")
            ax.set_title(titles[n] if titles else f"image {n}", fontsize=8)
        else:
            shown = ax.imshow(maps[n], cmap=cmap, vmin=vmin, vmax=vmax, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
            ax.set_title(map_title, fontsize=8)
    if shown is not None:
        fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02)
    return fig


def channel_weights_per_class(weights, labels, classes: list[str] | None = None, ax=None,
                              title: str = "mean channel weight per class"):
    """Heatmap of channel-attention weights (SE's or CBAM's gates) averaged over the examples of each class:
    ``weights`` (N, C) or (N, C, 1, 1), ``labels`` (N,) integers; rows are classes, columns channels. Rows that
    differ show gates that depend on the class; equal rows, gates that do not. Returns the axes."""
    plt = _pyplot()
    import numpy as np

    w = np.asarray(weights, dtype=float).reshape(len(weights), -1)
    labels = np.asarray(labels)
    present = np.unique(labels)
    grid = np.stack([w[labels == c].mean(0) for c in present])
    names = [classes[c] if classes is not None else str(c) for c in present]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.22 * w.shape[1] + 2.0, 0.3 * len(present) + 1.4))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="channel", ylabel="class", title=title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def position_attention(image, weights, position: tuple[int, int], map_shape: tuple[int, int] | None = None,
                       axes=None, title: str = "self-attention"):
    """Where one position attends, beside the image: ``weights`` (N, N) self-attention weights over N = h * w
    positions in row-major order (row i: where position i attends); ``position`` (row, column) on the (h, w)
    map, ``map_shape`` (h, w) (by default the image's (H, W), which must then hold N positions). The row of
    ``position`` is reshaped to (h, w) and drawn over the image's extent; a cross marks the position on both.
    Returns the two axes."""
    plt = _pyplot()
    import numpy as np

    img = _as_2d(image)
    H, W = img.shape
    h, w = map_shape if map_shape is not None else (H, W)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (h * w, h * w):
        raise ValueError(f"weights of shape {weights.shape} do not match a ({h}, {w}) map of positions")
    r, c = position
    row = weights[r * w + c].reshape(h, w)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    extent = (-0.5, W - 0.5, H - 0.5, -0.5)
    centre = ((c + 0.5) * W / w - 0.5, (r + 0.5) * H / h - 0.5)  # the position's centre in image pixels
    axes[0].imshow(img, cmap="gray_r")
    axes[0].set_title("image", fontsize=9)
    shown = axes[1].imshow(row, cmap="magma", vmin=0.0, extent=extent)
    axes[1].set_title(f"{title}: where ({r}, {c}) attends", fontsize=9)
    for ax in axes:
        ax.plot(*centre, marker="x", color="tab:cyan", markersize=10, markeredgewidth=2)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].figure.colorbar(shown, ax=axes[1], fraction=0.046)
    return axes


def grid_overlay(images, grids, titles: list[str] | None = None, cell: int | None = None, columns: int = 4,
                 title: str = "importance", path: str | None = None, vmin: float | None = 0.0,
                 vmax: float | None = None, cmap: str = "Reds", alpha: float = 0.55):
    """Each image with a coarse map over it, one value per cell of a grid of patches or tokens (an importance or
    a pooling weight each): ``images`` (n, H, W), (n, 1, H, W) or (n, C, H, W) (shown as the mean over C),
    ``grids`` (n, h, w). The map is upsampled by repeating each value over its cell (no smoothing), so that cell
    borders stay visible, and drawn with transparency ``alpha`` over the image. ``cell``: the side of a cell in
    pixels, cell (i, j) covering rows i * cell .. (i + 1) * cell - 1 and the same columns, cut off at the image's
    edge (for grids of ceil(H / cell) x ceil(W / cell)); by default the grid is stretched over the whole image.
    The maps share one colour scale (``vmin`` to ``vmax``, by default 0 to their largest value) with one colour
    bar; ``title`` names it. With ``path`` the figure is also saved there (PNG by the suffix) and closed.
    Returns the figure."""
    plt = _pyplot()
    import numpy as np

    images = [_as_2d(i) for i in images]
    grids = [np.asarray(g, dtype=float) for g in grids]
    if len(images) != len(grids):
        raise ValueError(f"{len(images)} images but {len(grids)} maps")
    bad = [g.shape for g in grids if g.ndim != 2]
    if bad:
        raise ValueError(f"expected maps of shape (n, h, w), got one of shape {bad[0]}")
    vmin = min(float(g.min()) for g in grids) if vmin is None else vmin
    vmax = max(float(g.max()) for g in grids) if vmax is None else vmax
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns + 1.0, 2.3 * rows + 0.4), squeeze=False)
    shown = None
    for n, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if n >= len(images):
            continue
        H, W = images[n].shape
        h, w = grids[n].shape
        extent = (-0.5, W - 0.5, H - 0.5, -0.5) if cell is None else (-0.5, w * cell - 0.5, h * cell - 0.5, -0.5)
        ax.imshow(images[n], cmap="gray_r")
        shown = ax.imshow(grids[n], cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha, extent=extent,
                          interpolation="nearest")
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_title(titles[n] if titles else f"image {n}", fontsize=8)
    if shown is not None:
        fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label=title)
    if path:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
