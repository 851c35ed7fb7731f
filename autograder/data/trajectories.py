"""Pedestrian trajectories for the sequence-to-sequence exercise: loaders, the course's windows, the data splits.

Data (see ``datasets/README.md``):

- the Edinburgh Informatics Forum Pedestrian Database (B. Majecka, "Statistical models of pedestrian behaviour in
  the Forum", MSc dissertation, University of Edinburgh, 2009; R. Fisher,
  https://homepages.inf.ed.ac.uk/rbf/FORUMTRACKING/): an overhead camera, 640x480 pixels of 24.7 mm, about
  9 frames a second. ``read_tracks`` reads the database's text format, ``read_mat`` the course's ``.mat``
  conversion; ``download_tracks`` fetches day files (checked by SHA-256);
- the embedded default, a SYNTHETIC plaza (``autograder.data.plaza``, not real data): two simulated days, written
  out with ``write_tracks`` to a cache folder and read back with ``read_tracks``.

``windows`` cuts trajectories into the course's examples ("Sequences Example 2"): x/640 and y/480; windows of 100
rows every 10 rows; every second row of the first 50 is the observed input (25 x 2), every second row of the last
50 the future to predict (25 x 2); a window is kept only when both halves move (mean displacement > 0.005).
``load_split`` gives a :class:`TrajectorySplit` (train on one day, test on another); ``task_data`` gives the
grader's training task, always on the synthetic days, so that it is the same on every machine.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .plaza import PlazaConfig, simulate

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 480  # pixels of the overhead view
METRES_PER_PIXEL = 0.0247  # the database's page: 24.7 mm a pixel on the ground
FPS = 9.0  # about 9 frames a second ("depending on the capture host's load")
STEP = 10  # rows between window starts
ROWS_IN, ROWS_OUT = 50, 50  # rows observed, rows to predict
STRIDE = 2  # every second row
IN_STEPS, OUT_STEPS = ROWS_IN // STRIDE, ROWS_OUT // STRIDE  # 25 observed, 25 predicted
MIN_DISPLACEMENT = 0.005  # a half must move more than this (mean displacement, normalised units)
SCALE = np.array([WIDTH, HEIGHT], dtype=np.float64)

REAL_DAYS = ("01Jul", "01Aug")  # train, test
KNOWN_SHA256 = {
    "01Jul": "89646c7d4be4bcbf7d067e77f9dcc9321b3eba7b499ed651050f6b639bfae726",
    "01Aug": "392e3d04e4d91d67cd704d0703743e65108acc568d166dcbd0136030b0bb9fd1",
}
# The two days as OpenTraj (Amirian et al. 2020, github.com/crowdbotp/OpenTraj) mirrors them; its files match the
# checksums above byte for byte. The database's own page links each day's tracks from a table; pass its address as
# ``url`` (with ``{day}``) and a checksum for other days.
TRACKS_URL = ("https://raw.githubusercontent.com/crowdbotp/OpenTraj/master/datasets/Edinburgh/annotations/"
              "tracks.{day}.txt")
EDINBURGH_ENV = "AUTOGRADER_EDINBURGH_DIR"  # a folder holding tracks.01Jul.txt and tracks.01Aug.txt
CACHE_ENV = "AUTOGRADER_TRAJECTORY_CACHE"  # where the synthetic days are written

REAL_NAME = "Edinburgh forum 01Jul/01Aug (real)"
SYNTHETIC_NAME = "synthetic plaza (synthetic, not real data)"
SYNTHETIC_VERSION = 1  # in the cached files' names: change it with the generator
SYNTHETIC_DAYS = {  # part -> one simulated day (different seeds: different people)
    "train": PlazaConfig(people=1000, seed=20240701, clips=32),
    "test": PlazaConfig(people=260, seed=20240801, clips=8),
}
SYNTHETIC_SHA256 = {  # what this generator writes (numpy's PCG64 streams); checked whenever the cache is read
    "train": "9fb9146ecf2a7831f1e43e3e450a9039c19ed0bb7444c58ff839154f75902bb6",
    "test": "8b2c2c4f9e2684ef8dd3d1bfdc6c0ec4a9e08f66eead0cd7c86400f18f51f6c4",
}


# --- the database's text format ---------------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POINT = rf"\[\s*{_NUM}\s+{_NUM}\s+{_NUM}\s*\]"
_POINTS = re.compile(rf"(?:{_POINT}(?:\s*;\s*{_POINT})*)?")
_TRACK = re.compile(r"\s*TRACK\.R(\d+)\s*=\s*\[(.*)\]\s*;?\s*")
_PROPERTIES = re.compile(r"\s*Properties\.R(\d+)\s*=\s*\[([^\[\]]*)\]\s*;?\s*")
_HEADER = re.compile(r"%\s*Total number of trajectories in file are\s+(\d+)\s*")


def sha256sum(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_tracks(text: str, source: str = "<text>") -> list[np.ndarray]:
    """The trajectories of a tracks file's text, in file order: (n, 3) float64 arrays of x, y (pixels), frame.

    Lines: ``% ...`` comments (``% Total number of trajectories in file are N`` is checked against the count),
    ``Properties.R<k>=[points start end ...];`` (its point count is compared with the track's) and
    ``TRACK.R<k>=[[x y t];[x y t];...];``, each possibly indented; blank lines are skipped. Anything else, a
    repeated ``R<k>``, or a ``Properties`` line without its ``TRACK`` raises ``ValueError`` naming the line.
    """
    promised: int | None = None
    tracks: dict[int, np.ndarray] = {}
    properties: dict[int, tuple[int, np.ndarray]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}, line {number}"
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("%"):
            header = _HEADER.fullmatch(stripped)
            if header:
                promised = int(header.group(1))
            continue
        match = _TRACK.fullmatch(line)
        if match:
            key, body = int(match.group(1)), match.group(2)
            if not _POINTS.fullmatch(body):
                raise ValueError(f"{where}: TRACK.R{key} is not a list of [x y t] points: {stripped[:80]!r}")
            if key in tracks:
                raise ValueError(f"{where}: a second TRACK.R{key}")
            values = np.array(re.sub(r"[\[\];]", " ", body).split(), dtype=np.float64)
            tracks[key] = values.reshape(-1, 3)  # (3n,) -> (n, 3): x, y, frame
            continue
        match = _PROPERTIES.fullmatch(line)
        if match:
            try:
                values = np.array(match.group(2).split(), dtype=np.float64)
            except ValueError:
                raise ValueError(f"{where}: Properties.R{match.group(1)} holds something other than numbers: "
                                 f"{stripped[:80]!r}") from None
            properties[int(match.group(1))] = (number, values)
            continue
        raise ValueError(f"{where}: neither a comment, Properties.R<k>=[...]; nor TRACK.R<k>=[...];: "
                         f"{stripped[:80]!r}")
    for key, (number, values) in properties.items():
        if key not in tracks:
            raise ValueError(f"{source}, line {number}: Properties.R{key} has no TRACK.R{key} (a truncated file?)")
        if len(values) and values[0] != len(tracks[key]):
            log.warning("%s: Properties.R%d gives %d points, TRACK.R%d holds %d", source, key, values[0], key,
                        len(tracks[key]))
    if promised is not None and promised != len(tracks):
        raise ValueError(f"{source}: its header promises {promised} trajectories, it holds {len(tracks)} "
                         "(a truncated file?)")
    return list(tracks.values())


def read_tracks(path: str | Path) -> list[np.ndarray]:
    """A tracks file of the Edinburgh Informatics Forum database (``tracks.01Jul.txt``): see ``parse_tracks``."""
    path = Path(path)
    return parse_tracks(path.read_text(encoding="ascii", errors="strict"), source=str(path))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _as_track(trajectory: np.ndarray) -> np.ndarray:
    """(n, 3) x, y, frame; an (n, 2) trajectory gets frames 0, 1, 2, ..."""
    t = np.asarray(trajectory, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] not in (2, 3):
        raise ValueError(f"a trajectory must be (n, 2) or (n, 3), got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("a trajectory holds NaN or infinite values")
    if t.shape[1] == 2:
        t = np.column_stack([t, np.arange(len(t))])  # (n, 2) -> (n, 3)
    return t


def format_tracks(trajectories: Iterable[np.ndarray], comments: Sequence[str] = ()) -> str:
    """The text ``write_tracks`` writes: the database's layout, with ``Properties`` holding points, start, end."""
    tracks = [_as_track(t) for t in trajectories]
    lines = [f"% Total number of trajectories in file are  {len(tracks)} "]
    lines += [f"% {c}" for c in comments]
    lines.append("")
    for k, t in enumerate(tracks, start=1):
        ints = t.astype(np.int64)
        if np.array_equal(ints, t):  # the database's files: whole pixels and frames
            points = ";".join(f"[{x} {y} {f}]" for x, y, f in ints.tolist())
        else:
            points = ";".join(f"[{_number(x)} {_number(y)} {_number(f)}]" for x, y, f in t.tolist())
        start, end = (_number(t[0, 2]), _number(t[-1, 2])) if len(t) else ("0", "0")
        lines.append(f"Properties.R{k}=[{len(t)} {start} {end}];")
        lines.append(f" TRACK.R{k}=[{points}];")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_tracks(path: str | Path, trajectories: Iterable[np.ndarray], comments: Sequence[str] = ()) -> Path:
    """Write trajectories ((n, 3) x, y, frame; or (n, 2), numbered 0, 1, ...) in the database's text format,
    atomically; ``comments`` become ``%`` lines after the header. Returns the path."""
    path = Path(path)
    _atomic_write(path, format_tracks(trajectories, comments).encode("ascii"))
    return path


# --- the course's .mat files ------------------------------------------------------------------------------------

def _cells(value: np.ndarray) -> list[np.ndarray]:
    """The numeric arrays in a (possibly nested) MATLAB cell array, in MATLAB's column-major order."""
    value = np.asarray(value)
    if value.dtype == object:
        return [a for cell in value.ravel(order="F") for a in _cells(cell)]
    return [value]


def read_mat(path: str | Path, variable: str | None = None) -> list[np.ndarray]:
    """The trajectories in one of the course's ``.mat`` files (``aug24.mat`` ... ``sep06.mat``), as (n, 2)
    float64 arrays of x, y in pixels.

    The course's files hold one variable, named like the file, with a cell array of trajectories whose columns
    0:2 are x and y (any further columns are dropped: the course used only these). ``variable`` picks one by
    name; by default the file's stem (any case), or the only variable there is. MATLAB v7.3 (HDF5) files are not
    read by ``scipy.io.loadmat``: save them with ``-v7`` first.
    """
    from scipy.io import loadmat

    path = Path(path)
    try:
        contents = loadmat(path)
    except NotImplementedError as e:  # scipy's answer to v7.3 files
        raise ValueError(f"{path}: a MATLAB v7.3 (HDF5) file; save it with -v7 to read it here") from e
    names = [k for k in contents if not k.startswith("__")]
    if variable is None:
        by_stem = [k for k in names if k.lower() == path.stem.lower()]
        if by_stem:
            variable = by_stem[0]
        elif len(names) == 1:
            variable = names[0]
        else:
            raise ValueError(f"{path}: no variable named {path.stem!r} and not exactly one variable: {names}")
    if variable not in contents:
        raise ValueError(f"{path}: no variable {variable!r}; it holds {names}")
    out = []
    for i, t in enumerate(_cells(contents[variable])):
        if t.size == 0:
            out.append(np.zeros((0, 2)))
            continue
        if t.ndim != 2 or t.shape[1] < 2 or not np.issubdtype(t.dtype, np.number):
            raise ValueError(f"{path}: trajectory {i} of {variable!r} is not a numeric (n, >=2) array: "
                             f"{t.dtype} {t.shape}")
        out.append(np.array(t[:, :2], dtype=np.float64))
    return out


def write_mat(path: str | Path, name: str, trajectories: Iterable[np.ndarray]) -> Path:
    """Write trajectories as the course's files hold them: variable ``name``, a 1 x N cell array of (n, k)
    double arrays (x, y first)."""
    from scipy.io import savemat

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a MATLAB variable name")
    tracks = list(trajectories)
    cells = np.empty(len(tracks), dtype=object)  # filled one by one: np.array would stack equal shapes
    for i, t in enumerate(tracks):
        cells[i] = np.asarray(t, dtype=np.float64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {name: cells}, oned_as="row")
    return path


# --- the course's windows ---------------------------------------------------------------------------------------

def window_starts(rows: int, last_full_window: bool = True) -> np.ndarray:
    """First rows of the windows of a trajectory with ``rows`` rows: 0, 10, 20, ... while start + 100 <= rows
    (``last_full_window=False``: while start + 100 < rows, which leaves out the window ending on the last row)."""
    span = ROWS_IN + ROWS_OUT
    stop = rows - span + (1 if last_full_window else 0)
    return np.arange(0, max(stop, 0), STEP)


def mean_displacement(steps: np.ndarray) -> np.ndarray:
    """The course's motion measure of (N, T, 2) normalised points: sum over x and y of |last - first|, over T."""
    return np.abs(steps[:, -1] - steps[:, 0]).sum(-1) / steps.shape[1]


def windows(trajectories: Iterable[np.ndarray], last_full_window: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The course's examples: (inputs (N, 25, 2), outputs (N, 25, 2)), float32, x/640 and y/480.

    Over each trajectory's rows (frame numbers and their gaps are ignored), windows of 100 rows start every 10
    rows; rows 0, 2, ..., 48 of a window are the input, rows 50, 52, ..., 98 the output; a window is kept when the
    mean displacement (``mean_displacement``) of both its input and its output exceeds 0.005. Columns 0 and 1 of
    a trajectory are x and y; any others are ignored.
    """
    offsets = np.arange(0, ROWS_IN + ROWS_OUT, STRIDE)  # (50,)
    inputs, outputs = [], []
    for trajectory in trajectories:
        xy = np.asarray(trajectory, dtype=np.float64)[:, :2] / SCALE  # (n, 2), normalised
        starts = window_starts(len(xy), last_full_window)
        if not len(starts):
            continue
        cut = xy[starts[:, None] + offsets]  # (W, 50, 2)
        source, target = cut[:, :IN_STEPS], cut[:, IN_STEPS:]  # (W, 25, 2) each
        keep = (mean_displacement(source) > MIN_DISPLACEMENT) & (mean_displacement(target) > MIN_DISPLACEMENT)
        inputs.append(source[keep])
        outputs.append(target[keep])
    if not inputs:
        empty = np.zeros((0, IN_STEPS, 2), dtype=np.float32)
        return empty, empty.copy()
    return np.concatenate(inputs).astype(np.float32), np.concatenate(outputs).astype(np.float32)


# --- where the data are -----------------------------------------------------------------------------------------

def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _day_file(directory: Path, day: str) -> Path:
    return directory / f"tracks.{day}.txt"


def edinburgh_dir() -> Path | None:
    """The folder holding the two real days: ``$AUTOGRADER_EDINBURGH_DIR`` if set, else ``datasets/downloads/
    edinburgh-forum`` in the checkout, else ``../shared/data/edinburgh-forum`` beside it; None if none has both."""
    override = os.environ.get(EDINBURGH_ENV)
    candidates = [Path(override)] if override else [
        _repo_root() / "datasets" / "downloads" / "edinburgh-forum",
        _repo_root().parent / "shared" / "data" / "edinburgh-forum",
    ]
    for directory in candidates:
        if all(_day_file(directory, day).is_file() for day in REAL_DAYS):
            return directory
    return None


def synthetic_cache_dir() -> Path:
    """``$AUTOGRADER_TRAJECTORY_CACHE``, else ``$XDG_CACHE_HOME/attention-autograder/trajectories`` (``~/.cache``)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attention-autograder" / "trajectories"


def synthetic_path(part: str, cache_dir: str | Path | None = None) -> Path:
    directory = Path(cache_dir) if cache_dir is not None else synthetic_cache_dir()
    return directory / f"tracks.synthetic-plaza-{part}.v{SYNTHETIC_VERSION}.txt"


def synthetic_file(part: str, cache_dir: str | Path | None = None) -> Path:
    """The cached synthetic day ``part`` ("train" or "test"), simulated and written (atomically) if it is missing
    or its SHA-256 is not the generator's; returns its path."""
    if part not in SYNTHETIC_DAYS:
        raise ValueError(f"unknown synthetic day {part!r}; choose from {', '.join(SYNTHETIC_DAYS)}")
    path = synthetic_path(part, cache_dir)
    expected = SYNTHETIC_SHA256.get(part)
    if path.is_file() and (not expected or sha256sum(path) == expected):
        return path
    log.info("simulating the synthetic plaza's %s day into %s", part, path)
    write_tracks(path, simulate(SYNTHETIC_DAYS[part]), _synthetic_comments(part))
    if expected and sha256sum(path) != expected:
        log.warning("the synthetic %s day simulated here differs from the reference (SHA-256 %s): a different numpy "
                    "may draw other random numbers; it is still synthetic data of the same kind", part, expected)
    return path


def _synthetic_comments(part: str) -> list[str]:
    config = SYNTHETIC_DAYS[part]
    return [f"SYNTHETIC, NOT REAL DATA: {SYNTHETIC_NAME}, day {part!r}, autograder.data.plaza v{SYNTHETIC_VERSION}, "
            f"seed {config.seed}, {config.people} people"]


def synthetic_day(part: str, cache_dir: str | Path | None = None) -> list[np.ndarray]:
    """The synthetic day ``part``, read back from its cached file; where the cache cannot be written, simulated
    and parsed in memory (the same text, the same trajectories)."""
    try:
        return read_tracks(synthetic_file(part, cache_dir))
    except OSError as e:
        log.warning("the synthetic plaza's cache is not writable (%s): simulating in memory", e)
        text = format_tracks(simulate(SYNTHETIC_DAYS[part]), _synthetic_comments(part))
        return parse_tracks(text, source=f"<synthetic plaza, {part}>")


# --- splits and the grader's task -------------------------------------------------------------------------------

@dataclass
class TrajectorySplit:
    """Windows of one day to train on and of another to test on: x = observed (N, 25, 2), y = future (N, 25, 2),
    float32, x/640 and y/480."""

    name: str
    synthetic: bool
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __repr__(self) -> str:
        return f"TrajectorySplit({self.name!r}, train {len(self.x_train)}, test {len(self.x_test)} windows)"


def _split(train: list[np.ndarray], test: list[np.ndarray], name: str, synthetic: bool) -> TrajectorySplit:
    x_train, y_train = windows(train)
    x_test, y_test = windows(test)
    return TrajectorySplit(name, synthetic, x_train, y_train, x_test, y_test)


def load_edinburgh(directory: str | Path | None = None, verify: bool = True) -> TrajectorySplit:
    """The real days: windows of 01Jul to train, of 01Aug to test (746 and 127 windows), each file checked against
    its SHA-256 unless ``verify=False``."""
    folder = Path(directory) if directory is not None else edinburgh_dir()
    if folder is None:
        raise FileNotFoundError(
            f"the Edinburgh forum days are not here: download_tracks({list(REAL_DAYS)}, "
            f"'datasets/downloads/edinburgh-forum') fetches them, or set {EDINBURGH_ENV} to their folder")
    days = []
    for day in REAL_DAYS:
        path = _day_file(folder, day)
        if verify and sha256sum(path) != KNOWN_SHA256[day]:
            raise ValueError(f"{path}: its SHA-256 is not the known one (a changed or corrupt copy); "
                             "pass verify=False to read it anyway")
        days.append(read_tracks(path))
    return _split(days[0], days[1], REAL_NAME, synthetic=False)


def load_synthetic(cache_dir: str | Path | None = None) -> TrajectorySplit:
    """The synthetic plaza (NOT real data): windows of its train day and of its test day, from the cache."""
    train, test = (synthetic_day(part, cache_dir) for part in ("train", "test"))
    return _split(train, test, SYNTHETIC_NAME, synthetic=True)


def load_split(name: str = "", *, cache_dir: str | Path | None = None) -> TrajectorySplit:
    """By name: "synthetic"; "edinburgh" (the real days); "" or "default": the real days where they are present
    (``edinburgh_dir()``), else the synthetic ones (the notebook's choice)."""
    key = name.strip().lower()
    if key in ("", "default"):
        key = "edinburgh" if edinburgh_dir() is not None else "synthetic"
    if key == "synthetic":
        return load_synthetic(cache_dir)
    if key in ("edinburgh", "real"):
        return load_edinburgh()
    raise ValueError(f"unknown trajectory data {name!r}; choose from 'synthetic', 'edinburgh' or '' (default)")


def teacher_forcing_inputs(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The decoder's inputs in training: the last observed point, then the target shifted right by one step;
    (N, S, 2) and (N, T, 2) -> (N, T, 2) float32."""
    source, target = np.asarray(source), np.asarray(target)
    return np.concatenate([source[:, -1:], target[:, :-1]], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def task_data(name: str = "synthetic"):
    """The training task's data (``autograder.tasks.TaskData``), loaded once per process.

    The grader's default is the synthetic plaza, whatever files a machine holds, so that grading is the same
    everywhere ("" and "default" mean it too here); "edinburgh" names the real days. Inputs in training are
    ``[observed, teacher_forcing_inputs(observed, future)]``, in testing ``[observed]``.
    """
    from ..tasks import TaskData

    split = load_split("synthetic" if name.strip().lower() in ("", "default") else name)
    return TaskData(
        train_inputs=[split.x_train, teacher_forcing_inputs(split.x_train, split.y_train)],
        train_targets=split.y_train, test_inputs=[split.x_test], test_targets=split.y_test,
        info={"steps": OUT_STEPS, "data": split.name, "synthetic": split.synthetic},
    )


def labelled_data_paths() -> list[Path]:
    """The real days (where present) and the synthetic cache folder (created here if it can be, so that it can
    be hidden before the data are first simulated into it): the grader hides them from submissions."""
    paths: list[Path] = []
    folder = edinburgh_dir()
    if folder is not None:
        paths += [_day_file(folder, day) for day in REAL_DAYS]
    cache = synthetic_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if cache.is_dir():
        paths.append(cache)
    return paths


# --- baselines and metrics --------------------------------------------------------------------------------------

def constant_velocity(source: np.ndarray, steps: int = OUT_STEPS) -> np.ndarray:
    """The last observed step's velocity held: (N, S, 2) -> (N, steps, 2), point k = last + (k + 1) * velocity."""
    source = np.asarray(source)
    velocity = source[:, -1] - source[:, -2]  # (N, 2)
    k = np.arange(1, steps + 1, dtype=source.dtype)[None, :, None]  # (1, steps, 1)
    return source[:, -1:] + k * velocity[:, None, :]  # (N, 1, 2) + (1, steps, 1) * (N, 1, 2)


def _pixel_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, T, 2) normalised predictions and truths -> (N, T) Euclidean distances in pixels."""
    pred, truth = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"predictions {pred.shape} and truths {truth.shape} differ in shape")
    return np.linalg.norm((pred - truth) * SCALE, axis=-1)


def ade(pred: np.ndarray, truth: np.ndarray) -> float:
    """Average displacement error in pixels (times ``METRES_PER_PIXEL`` for metres): over windows and steps."""
    return float(_pixel_errors(pred, truth).mean())


def fde(pred: np.ndarray, truth: np.ndarray) -> float:
    """Final displacement error in pixels: the last step's distance, averaged over windows."""
    return float(_pixel_errors(pred, truth)[:, -1].mean())


# --- download ---------------------------------------------------------------------------------------------------

def _fetch(url: str, target: Path, progress: bool) -> None:
    """Stream ``url`` into ``target`` (a tqdm bar when ``progress``)."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name.lstrip("."),
                  disable=not progress, leave=False) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))


def download_tracks(
    days: str | Sequence[str], dest: str | Path, progress: bool = False, *, url: str = TRACKS_URL,
    sha256: str | Mapping[str, str] | None = None, verify: bool = True,
) -> list[Path]:
    """Download day files (``tracks.<day>.txt``) of the Edinburgh forum database into ``dest``; return their paths.

    Each is checked against its SHA-256: the known days' (``KNOWN_SHA256``) or the caller's (``sha256``: one
    digest for one day, or a mapping day -> digest); a day with no checksum is refused unless ``verify=False``.
    A download is written to a temporary file and renamed into place only once its checksum matches; a mismatch
    deletes it and raises ``ValueError``. A file already there with the right checksum is not fetched again.
    """
    days = [days] if isinstance(days, str) else list(days)
    digests = dict(KNOWN_SHA256)
    if isinstance(sha256, str):
        if len(days) != 1:
            raise ValueError("one sha256 string is for one day; pass a mapping day -> digest for several")
        digests[days[0]] = sha256
    elif sha256 is not None:
        digests.update(sha256)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in days:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", day):
            raise ValueError(f"{day!r} is not a day name like '01Jul'")
        expected = digests.get(day, "").lower() or None
        if expected is None and verify:
            raise ValueError(f"no checksum is known for day {day!r}: pass sha256=... (or verify=False)")
        target = _day_file(dest, day)
        if target.is_file() and expected is not None and sha256sum(target) == expected:
            paths.append(target)
            continue
        source = url.format(day=day)
        log.info("downloading %s", source)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=dest)
        os.close(fd)
        try:
            _fetch(source, Path(temp), progress)
            if verify and sha256sum(temp) != expected:
                raise ValueError(f"checksum mismatch for {source}: the download is corrupt or the file has changed")
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        paths.append(target)
    return paths


# --- the datasheet ----------------------------------------------------------------------------------------------

def trajectory_stats(trajectories: Sequence[np.ndarray]) -> dict:
    """What the datasheet compares: counts, points, speeds (px/frame over frame gaps; m/s), path lengths, windows."""
    tracks = [_as_track(t) for t in trajectories]
    steps = [np.diff(t, axis=0) for t in tracks]  # (n - 1, 3) each: dx, dy, frames
    moving = [s[s[:, 2] >= 1] for s in steps]  # a few rows repeat a frame number
    per_step = [np.linalg.norm(m[:, :2], axis=1) / m[:, 2] for m in moving]  # px/frame
    speed = np.concatenate(per_step)
    track_speed = [np.median(v) for v in per_step if len(v)]
    lengths = np.array([np.linalg.norm(s[:, :2], axis=1).sum() for s in steps])
    x, _ = windows(tracks)
    q25, q50, q75 = np.percentile(speed, [25, 50, 75])
    return {
        "trajectories": len(tracks),
        "median points": float(np.median([len(t) for t in tracks])),
        "speed px/frame": (q50, q25, q75),
        "speed m/s": tuple(v * METRES_PER_PIXEL * FPS for v in (q50, q25, q75)),
        "track speed px/frame": tuple(np.percentile(track_speed, [50, 25, 75])),  # each track's median speed
        "path length px": float(np.median(lengths)),
        "windows": len(x),
        "windows before the filter": int(sum(len(window_starts(len(t))) for t in tracks)),
        "input displacement": float(np.median(mean_displacement(x))) if len(x) else float("nan"),
    }


def datasheet_rows(cache_dir: str | Path | None = None, edinburgh: str | Path | None = None) -> list[tuple[str, dict]]:
    """(day, stats) for the synthetic days and, where present, the real ones."""
    rows = [(f"synthetic {part} (not real)", trajectory_stats(synthetic_day(part, cache_dir)))
            for part in ("train", "test")]
    folder = Path(edinburgh) if edinburgh is not None else edinburgh_dir()
    if folder is not None:
        rows += [(f"real {day}", trajectory_stats(read_tracks(_day_file(folder, day)))) for day in REAL_DAYS]
    return rows


def datasheet_markdown(rows: list[tuple[str, dict]]) -> str:
    """The datasheet's table (``datasets/README.md``) from ``datasheet_rows()``."""
    head = ("| day | trajectories | median points | speed px/frame, median (IQR) | m/s, median (IQR) | "
            "tracks' median speeds px/frame, median (IQR) | median path length px (m) | "
            "windows kept / before the filter | median input displacement |")
    lines = [head, "| " + " | ".join(["---"] * 9) + " |"]
    for day, s in rows:
        px, ms, track = s["speed px/frame"], s["speed m/s"], s["track speed px/frame"]
        lines.append(
            f"| {day} | {s['trajectories']:,} | {s['median points']:g} | {px[0]:.2f} ({px[1]:.2f}-{px[2]:.2f}) | "
            f"{ms[0]:.2f} ({ms[1]:.2f}-{ms[2]:.2f}) | {track[0]:.2f} ({track[1]:.2f}-{track[2]:.2f}) | "
            f"{s['path length px']:.0f} "
            f"({s['path length px'] * METRES_PER_PIXEL:.1f}) | {s['windows']:,} / {s['windows before the filter']:,} "
            f"| {s['input displacement']:.4f} |")
    return "\n".join(lines)
