"""fastnn.datasets: the IDX reader on generated files, the loaders' search and errors, CIFAR-10, the sample."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from fastnn.datasets import load_cifar10, load_fashion_mnist, load_mnist, load_sample, read_idx
from fastnn.datasets import loaders


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("array, code", [
    (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    (np.array([-5, 3], dtype=np.int16), 0x0B),
    (np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2), 0x0D),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, array, code, compress):
    data = idx_bytes(array, code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    result = read_idx(path)
    assert result.dtype == array.dtype.newbyteorder("=") and np.array_equal(result, array)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "magic number 01000801 does not start with two zero bytes"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"ab", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated inside its header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"abc", "holds 11 bytes but its header announces 13"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"abc", "holds 11 bytes but its header announces 10"),
    (b"", "magic number is missing"),
])
def test_read_idx_rejects_corrupt_files(tmp_path, data, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_read_idx_rejects_a_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((10, 10), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[:-12])
    with pytest.raises(ValueError, match="not a readable gzip file"):
        read_idx(path)


def write_idx_set(folder, n_train=6, n_test=4, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for key, stem in loaders.IDX_FILES.items():
        data = idx_bytes(arrays[key])
        (folder / (stem + (".gz" if compress else ""))).write_bytes(gzip.compress(data) if compress else data)
    return arrays


@pytest.fixture
def no_installed_data(tmp_path, monkeypatch):
    """Point every searched folder into tmp_path, so the machine's installed data sets stay out of the tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(loaders, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    return tmp_path


def test_loaders_search_fastnn_data_home_and_the_system_folder(no_installed_data, monkeypatch):
    root = no_installed_data
    arrays = write_idx_set(root / "home" / ".fastnn" / "data" / "fashion-mnist", compress=False)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (6, 1, 28, 28) and x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.array_equal(x_train[:, 0], arrays["train_images"] / np.float32(255))
    assert np.array_equal(y_test, arrays["test_labels"])
    monkeypatch.setenv("FASTNN_DATA", str(root / "env"))
    write_idx_set(root / "env" / "fashion-mnist", n_train=3)
    assert load_fashion_mnist(flatten=True)[0][0].shape == (3, 784)  # $FASTNN_DATA comes first
    write_idx_set(root / "system" / "mnist", n_train=2)
    assert load_mnist()[0][0].shape == (2, 1, 28, 28)
    write_idx_set(root / "elsewhere", n_train=5)
    assert load_mnist(root / "elsewhere")[0][0].shape == (5, 1, 28, 28)


def test_missing_data_says_where_it_looked_and_how_to_get_it(no_installed_data):
    with pytest.raises(FileNotFoundError, match=r"fashion-mnist not found; looked in .*home/.fastnn/data/fashion-mnist"
                                                r".*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist()
    with pytest.raises(FileNotFoundError, match="does not hold the mnist files"):
        load_mnist(no_installed_data)


def test_labels_out_of_range_are_refused(no_installed_data):
    folder = no_installed_data / "bad"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3, 12], np.uint8))))
    with pytest.raises(ValueError, match=r"labels outside \[0, 10\)"):
        load_fashion_mnist(folder)


def write_cifar(folder, per_batch=3):
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, per_batch))}
        (folder / name).write_bytes(pickle.dumps(batch))


def test_load_cifar10_reads_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar")
    (x_train, y_train), (x_test, y_test) = load_cifar10(tmp_path / "cifar")
    assert x_train.shape == (15, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert 0 <= x_train.min() and x_train.max() <= 1 and y_train.shape == (15,)
    (tmp_path / "cifar" / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8)}))
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        load_cifar10(tmp_path / "cifar")
    (tmp_path / "cifar" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch"):
        load_cifar10(tmp_path / "cifar")


def test_the_bundled_sample_is_balanced_real_images():
    (x_train, y_train), (x_test, y_test) = load_sample()
    assert x_train.shape == (2000, 1, 28, 28) and x_test.shape == (500, 1, 28, 28)
    assert np.array_equal(np.bincount(y_train), [200] * 10) and np.array_equal(np.bincount(y_test), [50] * 10)
    assert x_train.dtype == np.float32 and x_train.min() == 0 and x_train.max() == 1
    assert load_sample(flatten=True)[1][0].shape == (500, 784)


def test_find_fashion_mnist_names_the_folder_or_none(no_installed_data):
    from fastnn.datasets import find_fashion_mnist

    assert find_fashion_mnist() is None
    write_idx_set(no_installed_data / "system" / "fashion-mnist")
    assert find_fashion_mnist() == no_installed_data / "system" / "fashion-mnist"
