"""Are the pedestrian trajectories read, windowed and split the course's way: both file formats (written here),
the windows on hand-made trajectories and on the two real days (where they are present), the synthetic plaza
(deterministic, labelled, like the real days), the download (mocked: nothing downloads here)?"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from autograder.data import trajectories as tr
from autograder.data.plaza import PlazaConfig, simulate
from autograder.data.trajectories import (
    ade, constant_velocity, download_tracks, fde, format_tracks, load_split, parse_tracks, read_mat, read_tracks,
    task_data, teacher_forcing_inputs, window_starts, windows, write_mat, write_tracks,
)

REAL_DIR = Path(os.environ.get(tr.EDINBURGH_ENV)
                or Path(__file__).parents[1].parent / "shared" / "data" / "edinburgh-forum")
REAL_PRESENT = all((REAL_DIR / f"tracks.{day}.txt").is_file() for day in tr.REAL_DAYS)
needs_real = pytest.mark.skipif(not REAL_PRESENT, reason=f"the real Edinburgh days are not in {REAL_DIR}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The synthetic days, simulated once into a temporary cache folder (never the user's)."""
    directory = tmp_path_factory.mktemp("trajectory-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tr.CACHE_ENV, str(directory))
        tr.task_data.cache_clear()
        yield directory
    tr.task_data.cache_clear()


@pytest.fixture(scope="module")
def synthetic(cache):
    return {part: read_tracks(tr.synthetic_file(part)) for part in ("train", "test")}


def walk(rows: int, dx: float = 3.0, dy: float = -2.0, x0: float = 10.0, y0: float = 470.0) -> np.ndarray:
    """A straight walk, one row per frame: (rows, 3) x, y, frame."""
    r = np.arange(rows, dtype=np.float64)
    return np.column_stack([x0 + dx * r, y0 + dy * r, 100 + r])


# --- the database's text format ---------------------------------------------------------------------------------

REAL_LAYOUT = """% Total number of trajectories in file are  2 

Properties.R1=[3 4471 4473 454.92 24.49 29.25 76.38 3.04 0.00];
 TRACK.R1=[[601 23 4471];[595 24 4472];[588 25 4473]];
Properties.R2=[2 5000 5003 1.0];
 TRACK.R2=[[1 2 5000];[3.5 4e1 5003]];
"""


def test_is_the_databases_layout_read_with_its_header_properties_and_indented_lines():
    tracks = parse_tracks(REAL_LAYOUT)
    assert len(tracks) == 2 and all(t.dtype == np.float64 for t in tracks)
    assert tracks[0].tolist() == [[601, 23, 4471], [595, 24, 4472], [588, 25, 4473]]
    assert tracks[1].tolist() == [[1, 2, 5000], [3.5, 40, 5003]]  # a frame gap is kept as it is
    assert len(parse_tracks(REAL_LAYOUT.replace("\n", "\r\n"))) == 2  # Windows line ends


def test_do_tracks_round_trip_through_files_written_here(tmp_path):
    whole = walk(30).round()
    fractional = np.array([[1.25, 2.5, 7], [3.125, 4.0, 9]])
    path = write_tracks(tmp_path / "sub" / "tracks.test.txt", [whole, fractional], comments=["made by a test"])
    text = path.read_text()
    assert text.startswith("% Total number of trajectories in file are  2 \n% made by a test\n")
    assert "Properties.R1=[30 100 129];\n TRACK.R1=[[10 470 100];" in text
    back = read_tracks(path)
    assert [b.tolist() for b in back] == [whole.tolist(), fractional.tolist()]
    xy = write_tracks(tmp_path / "xy.txt", [whole[:, :2]])  # (n, 2): frames numbered 0, 1, ...
    assert read_tracks(xy)[0][:, 2].tolist() == list(range(30))
    assert not list(tmp_path.rglob("*.part"))  # written through a temporary file, renamed


@pytest.mark.parametrize("text, line, what", [
    ("% Total number of trajectories in file are 1\nTRACK.R1=[[1 2 3];[4 5]];\n", 2, "not a list of"),
    ("TRACK.R1=[[1 2 3]];\nhello world\n", 2, "neither a comment"),
    ("TRACK.R1=[[1 2 3]];\n\n TRACK.R1=[[1 2 3]];\n", 3, "a second TRACK.R1"),
    ("Properties.R1=[1 2 x];\nTRACK.R1=[[1 2 3]];\n", 1, "other than numbers"),
    ("Properties.R1=[1 3 3];\nTRACK.R1=[[1 2 3]];\nProperties.R2=[1 4 4];\n", 3, "has no TRACK.R2"),
    ("TRACK.R1=[[1 2 three]];\n", 1, "not a list of"),
])
def test_are_malformed_tracks_files_refused_naming_the_line(tmp_path, text, line, what):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"bad.txt, line {line}: .*{what}"):
        read_tracks(path)


def test_is_a_truncated_file_refused_by_its_header():
    text = REAL_LAYOUT.split("Properties.R2")[0]  # cut at a line boundary: every line is well formed
    with pytest.raises(ValueError, match="promises 2 trajectories, it holds 1"):
        parse_tracks(text)


# --- the course's .mat files ------------------------------------------------------------------------------------

def test_do_mat_files_round_trip_as_cell_arrays_named_like_the_file(tmp_path):
    tracks = [walk(5), walk(7)[:, :2], walk(5)]  # equal shapes too: still a cell array, not a 3-D array
    path = write_mat(tmp_path / "aug24.mat", "aug24", tracks)
    raw = loadmat(path)["aug24"]
    assert raw.dtype == object and raw.shape == (1, 3)  # MATLAB's 1 x N cell array
    back = read_mat(path)
    assert [b.shape for b in back] == [(5, 2), (7, 2), (5, 2)] and all(b.dtype == np.float64 for b in back)
    assert all(np.array_equal(b, t[:, :2]) for b, t in zip(back, tracks))  # x, y only
    written = write_mat(tmp_path / "w.mat", "w", [walk(120)])
    assert np.array_equal(windows([walk(120)])[0], windows(read_mat(written))[0])


def test_is_a_mat_files_variable_found_by_name_or_as_the_only_one(tmp_path):
    write_mat(tmp_path / "Sep05.mat", "sep05", [walk(4)])  # any case
    assert len(read_mat(tmp_path / "Sep05.mat")) == 1
    write_mat(tmp_path / "renamed.mat", "sep06", [walk(4), walk(3)])  # the only variable, whatever its name
    assert len(read_mat(tmp_path / "renamed.mat")) == 2
    cells = np.empty(1, dtype=object)
    cells[0] = walk(4)
    savemat(tmp_path / "two.mat", {"a": cells, "b": cells})
    with pytest.raises(ValueError, match="not exactly one variable"):
        read_mat(tmp_path / "two.mat")
    assert len(read_mat(tmp_path / "two.mat", variable="b")) == 1
    savemat(tmp_path / "flat.mat", {"flat": np.zeros((3, 1))})
    with pytest.raises(ValueError, match=r"not a numeric \(n, >=2\) array"):
        read_mat(tmp_path / "flat.mat")
    with pytest.raises(ValueError, match="MATLAB variable name"):
        write_mat(tmp_path / "x.mat", "1bad", [walk(2)])


# --- the course's windows ---------------------------------------------------------------------------------------

def test_do_windows_start_every_ten_rows_up_to_the_last_full_window():
    assert window_starts(99).tolist() == [] and window_starts(100).tolist() == [0]
    assert window_starts(119).tolist() == [0, 10] and window_starts(120).tolist() == [0, 10, 20]
    assert window_starts(100, last_full_window=False).tolist() == []
    assert window_starts(120, last_full_window=False).tolist() == [0, 10]
    assert window_starts(125, last_full_window=False).tolist() == [0, 10, 20]
    assert [len(windows([walk(n)])[0]) for n in (99, 100, 109, 110, 120, 125)] == [0, 1, 1, 2, 3, 3]
    assert len(windows([walk(120)], last_full_window=False)[0]) == 2


def test_are_windows_every_second_row_normalised_by_640_and_480():
    t = walk(110)
    t[:, 2] = np.cumsum(np.r_[0, np.full(109, 3)])  # frame numbers with gaps: ignored, rows count
    x, y = windows([t])
    assert x.shape == (2, 25, 2) and y.shape == (2, 25, 2) and x.dtype == np.float32 and y.dtype == np.float32
    rows = np.arange(0, 50, 2)
    assert np.allclose(x[0], np.column_stack([(10 + 3 * rows) / 640, (470 - 2 * rows) / 480]))
    assert np.allclose(y[0], np.column_stack([(10 + 3 * (rows + 50)) / 640, (470 - 2 * (rows + 50)) / 480]))
    assert np.allclose(x[1], np.column_stack([(10 + 3 * (rows + 10)) / 640, (470 - 2 * (rows + 10)) / 480]))
    assert windows([])[0].shape == (0, 25, 2)


def test_are_windows_kept_only_when_both_halves_move():
    still = np.column_stack([np.full(100, 300.0), np.full(100, 200.0), np.arange(100)])
    moving_then_still, still_then_moving = walk(100), walk(100)
    moving_then_still[50:, :2] = moving_then_still[49, :2]
    still_then_moving[:50, :2] = still_then_moving[50, :2]
    assert [len(windows([t])[0]) for t in (walk(100), still, moving_then_still, still_then_moving)] == [1, 0, 0, 0]

    def half_moves(dx: float, dy: float) -> int:
        """Windows kept of 100 rows whose input (rows 0..48) and output (rows 50..98) each move by dx, dy pixels."""
        t = np.full((100, 2), 300.0)
        t[48:] += [dx, dy]  # the input's last sampled row, and the output's first
        t[98:] += [dx, dy]  # the output's last sampled row
        return len(windows([t])[0])

    # sum over x and y of |last - first| / 25 must EXCEED 0.005: 80 px in x is exactly 0.125 / 25
    assert half_moves(80, 0) == 0 and half_moves(81, 0) == 1
    assert half_moves(40, 30) == 0 and half_moves(40, 31) == 1  # 40/640 + 30/480 = 0.125: the sum of both axes
    assert half_moves(0, -61) == 1 and half_moves(0, 60) == 0  # |.|: either direction; y by 480


@needs_real
def test_do_the_real_days_give_the_courses_window_counts():
    for day, count, kept, without_last, median_points in (("01Jul", 1262, 746, 725, 73), ("01Aug", 146, 127, 124, 74)):
        path = REAL_DIR / f"tracks.{day}.txt"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == tr.KNOWN_SHA256[day]
        tracks = read_tracks(path)
        assert len(tracks) == count and np.median([len(t) for t in tracks]) == median_points
        assert all(t.shape[1] == 3 for t in tracks)
        assert len(windows(tracks)[0]) == kept
        assert len(windows(tracks, last_full_window=False)[0]) == without_last


@needs_real
def test_does_the_default_split_prefer_the_real_days_when_present(monkeypatch, cache, tmp_path):
    monkeypatch.setenv(tr.EDINBURGH_ENV, str(REAL_DIR))
    real = load_split("")
    assert (real.name, real.synthetic, len(real.x_train), len(real.x_test)) == (tr.REAL_NAME, False, 746, 127)
    assert load_split("edinburgh").name == tr.REAL_NAME and load_split("synthetic").synthetic
    monkeypatch.setenv(tr.EDINBURGH_ENV, str(tmp_path))  # a folder without the days
    assert load_split("default").synthetic
    with pytest.raises(FileNotFoundError, match="download_tracks"):
        load_split("edinburgh")
    with pytest.raises(ValueError, match="unknown trajectory data"):
        load_split("eth")


# --- the synthetic plaza ----------------------------------------------------------------------------------------

def test_is_the_synthetic_plaza_deterministic_to_the_byte():
    config = PlazaConfig(people=60, clips=4, seed=5)
    first, second = format_tracks(simulate(config)), format_tracks(simulate(config))
    assert first == second
    assert format_tracks(simulate(PlazaConfig(people=60, clips=4, seed=6))) != first


def test_are_the_synthetic_days_written_pinned_and_labelled_as_synthetic(cache, synthetic):
    for part in ("train", "test"):
        path = tr.synthetic_file(part)
        assert path.parent == cache and "synthetic" in path.name
        assert tr.sha256sum(path) == tr.SYNTHETIC_SHA256[part]  # the same bytes as the reference
        assert "SYNTHETIC, NOT REAL DATA" in path.read_text().splitlines()[1]
    split = load_split("synthetic")
    assert split.synthetic and "synthetic" in split.name and "not real" in split.name
    assert "synthetic" in repr(split)


def test_is_the_synthetic_cache_regenerated_when_missing_or_changed(cache, synthetic, tmp_path):
    path = tr.synthetic_file("test", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[:-100])  # a damaged copy
    assert tr.synthetic_file("test", tmp_path).read_bytes() == good
    path.unlink()
    assert tr.synthetic_file("test", tmp_path).read_bytes() == good
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(ValueError, match="unknown synthetic day"):
        tr.synthetic_file("validation", tmp_path)


def test_is_the_synthetic_day_simulated_in_memory_when_the_cache_cannot_be_written(cache, synthetic, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    day = tr.synthetic_day("test", blocker / "cache")
    assert [t.tolist() for t in day] == [t.tolist() for t in synthetic["test"]]


def test_is_the_cache_folder_chosen_by_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(tr.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tr.synthetic_cache_dir() == tmp_path / "attention-autograder" / "trajectories"
    monkeypatch.setenv(tr.CACHE_ENV, str(tmp_path / "mine"))
    assert tr.synthetic_cache_dir() == tmp_path / "mine"


def test_does_the_synthetic_plaza_look_like_the_forum(synthetic):
    for part, low, high in (("train", 600, 1000), ("test", 150, 400)):
        tracks = synthetic[part]
        stats = tr.trajectory_stats(tracks)
        assert low <= stats["windows"] <= high  # the real days: 746 and 127
        assert min(len(t) for t in tracks) >= 19  # as in the real days
        points = np.concatenate(tracks)
        assert points[:, 0].min() >= 0 and points[:, 0].max() < 640 and points[:, 1].min() >= 0
        assert points[:, 1].max() <= 480 and np.array_equal(points, points.round())  # whole pixels, in view
        walking = np.median([np.median(np.linalg.norm(np.diff(t[:, :2], axis=0), axis=1)) for t in tracks])
        assert 5.0 < walking < 6.8  # 1.34 m/s at 24.7 mm a pixel and 9 frames a second: 6.0 px/frame
        assert any((np.diff(t[:, 2]) > 1).any() for t in tracks)  # missed detections


@needs_real
def test_is_the_synthetic_plaza_within_sensible_ranges_of_the_real_days(synthetic):
    """The datasheet's claims (datasets/README.md): the synthetic training day against 01Jul."""
    real = tr.trajectory_stats(read_tracks(REAL_DIR / "tracks.01Jul.txt"))
    fake = tr.trajectory_stats(synthetic["train"])
    for key in ("median points", "path length px", "windows", "trajectories", "input displacement"):
        assert 1 / 1.5 < fake[key] / real[key] < 1.5, key
    for key in ("speed px/frame", "track speed px/frame"):  # medians and quartiles
        assert all(1 / 1.5 < f / r < 1.5 for f, r in zip(fake[key], real[key])), key
    assert abs(fake["track speed px/frame"][0] - real["track speed px/frame"][0]) < 0.5  # 6.0 px/frame in 01Jul
    table = tr.datasheet_markdown(tr.datasheet_rows(edinburgh=REAL_DIR))
    assert "| real 01Jul | 1,262 | 73 |" in table and "| synthetic train (not real) |" in table


# --- the training task, the baseline and the metrics ------------------------------------------------------------

def test_is_the_graders_task_the_synthetic_plaza_with_teacher_forcing(cache, monkeypatch):
    if REAL_PRESENT:
        monkeypatch.setenv(tr.EDINBURGH_ENV, str(REAL_DIR))  # present or not: the grader's data stay synthetic
    data = task_data()
    assert data is task_data() and data.info == {"steps": 25, "data": tr.SYNTHETIC_NAME, "synthetic": True}
    observed, decoder_in = data.train_inputs
    n = len(data)
    assert observed.shape == decoder_in.shape == data.train_targets.shape == (n, 25, 2)
    assert data.test_inputs[0].shape == data.test_targets.shape and len(data.test_targets) >= 150
    assert all(a.dtype == np.float32 for a in (observed, decoder_in, data.train_targets, data.test_inputs[0]))
    assert np.array_equal(decoder_in[:, 0], observed[:, -1])
    assert np.array_equal(decoder_in[:, 1:], data.train_targets[:, :-1])
    assert task_data("default").info["synthetic"]


def test_does_teacher_forcing_shift_the_target_right_after_the_last_observed_point():
    source = np.arange(2 * 3 * 2, dtype=np.float64).reshape(2, 3, 2)  # (N, S, 2)
    target = 100 + np.arange(2 * 4 * 2).reshape(2, 4, 2)  # (N, T, 2)
    shifted = teacher_forcing_inputs(source, target)
    assert shifted.shape == (2, 4, 2) and shifted.dtype == np.float32
    assert shifted[1].tolist() == [[10, 11], [108, 109], [110, 111], [112, 113]]


def test_does_constant_velocity_hold_the_last_observed_step():
    source = np.array([[[0.0, 0.0], [0.1, 0.5], [0.3, 0.4]]], dtype=np.float32)  # last step: (+0.2, -0.1)
    pred = constant_velocity(source, 3)
    assert pred.shape == (1, 3, 2) and pred.dtype == np.float32
    assert np.allclose(pred[0], [[0.5, 0.3], [0.7, 0.2], [0.9, 0.1]])
    x, y = windows([walk(100)])  # a straight walk at constant speed: predicted exactly
    assert np.allclose(constant_velocity(x), y, atol=1e-6)
    assert tr.ade(constant_velocity(x), y) < 1e-3


def test_are_ade_and_fde_in_pixels():
    truth = np.zeros((2, 25, 2))
    pred = truth + [3 / 640, 4 / 480]  # 3 px right, 4 px down: 5 px everywhere
    assert ade(pred, truth) == pytest.approx(5) and fde(pred, truth) == pytest.approx(5)
    late = truth.copy()
    late[:, -1] = [6 / 640, 8 / 480]  # 10 px off at the last step only
    assert fde(late, truth) == pytest.approx(10) and ade(late, truth) == pytest.approx(10 / 25)
    assert ade(pred, truth) * tr.METRES_PER_PIXEL == pytest.approx(0.1235)
    with pytest.raises(ValueError, match="differ in shape"):
        ade(pred[:, :3], truth)


def test_does_labelled_data_paths_list_the_real_days_and_the_cache(cache, synthetic, monkeypatch):
    if REAL_PRESENT:
        monkeypatch.setenv(tr.EDINBURGH_ENV, str(REAL_DIR))
    paths = tr.labelled_data_paths()
    assert cache in paths and all(p.exists() for p in paths)
    assert sum(p.name.startswith("tracks.01") for p in paths) == (2 if REAL_PRESENT else 0)


# --- the download (mocked) --------------------------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("the connection dropped")
        return super().read(min(size, 100) if size > 0 else size)


@pytest.fixture
def served(monkeypatch):
    """urllib.request.urlopen answering from a dict url -> bytes (or (bytes, fail_after)); records the calls."""
    files: dict[str, object] = {}
    calls: list[str] = []

    def urlopen(url, *args, **kwargs):
        calls.append(url)
        data = files[url]
        return FakeResponse(*data) if isinstance(data, tuple) else FakeResponse(data)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return files, calls


def test_does_download_tracks_check_the_checksum_and_keep_nothing_corrupt(served, tmp_path):
    files, calls = served
    body = REAL_LAYOUT.encode()
    digest = hashlib.sha256(body).hexdigest()
    url = "https://example.org/{day}.txt"
    files["https://example.org/03Jan.txt"] = body
    (path,) = download_tracks("03Jan", tmp_path, url=url, sha256=digest)
    assert path == tmp_path / "tracks.03Jan.txt" and path.read_bytes() == body and len(read_tracks(path)) == 2
    download_tracks(["03Jan"], tmp_path, url=url, sha256={"03Jan": digest.upper()})
    assert len(calls) == 1  # already there with the right checksum: not fetched again

    files["https://example.org/01Jul.txt"] = body  # not the known 01Jul
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_tracks("01Jul", tmp_path, url=url)
    assert not (tmp_path / "tracks.01Jul.txt").exists() and not list(tmp_path.glob(".*part"))

    with pytest.raises(ValueError, match="no checksum is known"):
        download_tracks("04Jan", tmp_path, url=url)
    assert len(calls) == 2  # refused before fetching anything
    files["https://example.org/04Jan.txt"] = b"anything"
    assert download_tracks("04Jan", tmp_path, url=url, verify=False)[0].read_bytes() == b"anything"
    with pytest.raises(ValueError, match="not a day name"):
        download_tracks("../evil", tmp_path, url=url, verify=False)


def test_is_a_broken_download_never_left_in_place(served, tmp_path):
    files, _ = served
    old = b"the previous copy"
    target = tmp_path / "tracks.03Jan.txt"
    target.write_bytes(old)
    body = REAL_LAYOUT.encode()
    files["https://example.org/03Jan.txt"] = (body, 150)  # the connection drops after 150 bytes
    with pytest.raises(ConnectionResetError):
        download_tracks("03Jan", tmp_path, url="https://example.org/{day}.txt", sha256=hashlib.sha256(body).hexdigest())
    assert target.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["tracks.03Jan.txt"]


def test_are_the_known_days_fetched_from_the_mirror_with_their_checksums(served, tmp_path):
    files, calls = served
    assert tr.TRACKS_URL.format(day="01Aug").endswith("/datasets/Edinburgh/annotations/tracks.01Aug.txt")
    if not REAL_PRESENT:
        pytest.skip("the real days are not here to serve")
    for day in tr.REAL_DAYS:
        files[tr.TRACKS_URL.format(day=day)] = (REAL_DIR / f"tracks.{day}.txt").read_bytes()
    paths = download_tracks(list(tr.REAL_DAYS), tmp_path / "edinburgh-forum")
    assert [p.name for p in paths] == ["tracks.01Jul.txt", "tracks.01Aug.txt"] and len(calls) == 2
    split = tr.load_edinburgh(tmp_path / "edinburgh-forum")
    assert (len(split.x_train), len(split.x_test)) == (746, 127)
