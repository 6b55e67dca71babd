"""Loaders for Fashion-MNIST, MNIST, CIFAR-10 and the bundled Fashion-MNIST sample.

Every loader returns ``(x_train, y_train), (x_test, y_test)``: images as
float32 in [0, 1] of shape ``(N, C, H, W)`` (or ``(N, C*H*W)`` with
``flatten=True``) and labels as int64 ``(N,)``.
"""

import os
import pickle
from pathlib import Path

import numpy as np

from .idx import read_idx

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SYSTEM_DIR = Path("/usr/share/datasets")
SAMPLE_PATH = Path(__file__).with_name("data") / "fashion_mnist_sample.npz"

HOW_TO_GET = {
    "fashion-mnist": (
        "On Debian or Ubuntu: `apt-get install dataset-fashion-mnist` (installs it in "
        "/usr/share/datasets/fashion-mnist). Elsewhere: put the four files train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
        "https://github.com/zalandoresearch/fashion-mnist into ~/.fastnn/data/fashion-mnist "
        "(or $FASTNN_DATA/fashion-mnist). fastnn.datasets.load_sample() needs no download."
    ),
    "mnist": (
        "Put MNIST's four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into ~/.fastnn/data/mnist "
        "(or $FASTNN_DATA/mnist)."
    ),
    "cifar-10-batches-py": (
        "Unpack CIFAR-10's python version (cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html) into ~/.fastnn/data (or $FASTNN_DATA), "
        "giving a folder cifar-10-batches-py."
    ),
}


def search_dirs(name):
    """Folders searched for the data set `name`, in order: $FASTNN_DATA/name, ~/.fastnn/data/name, /usr/share/datasets/name."""
    dirs = []
    if os.environ.get("FASTNN_DATA"):
        dirs.append(Path(os.environ["FASTNN_DATA"]) / name)
    dirs.append(Path.home() / ".fastnn" / "data" / name)
    dirs.append(SYSTEM_DIR / name)
    return dirs


def _idx_file(folder, stem):
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete_idx_set(folder):
    return all(_idx_file(folder, stem) for stem in IDX_FILES.values())


def find_fashion_mnist():
    """The first searched folder that holds Fashion-MNIST's four IDX files, or None (nothing is read)."""
    return next((folder for folder in search_dirs("fashion-mnist") if _complete_idx_set(folder)), None)


def _find(name, path, complete):
    """The folder holding data set `name`: `path` if given, else the first of search_dirs that is `complete`."""
    if path is not None:
        folder = Path(path)
        if not complete(folder):
            raise FileNotFoundError(f"{folder} does not hold the {name} files. {HOW_TO_GET[name]}")
        return folder
    dirs = search_dirs(name)
    for folder in dirs:
        if complete(folder):
            return folder
    raise FileNotFoundError(f"{name} not found; looked in {', '.join(map(str, dirs))}. {HOW_TO_GET[name]}")


def _images(raw, flatten, name):
    """uint8 images (N, H, W) or (N, C, H, W) -> float32 in [0, 1], (N, C, H, W) or flattened."""
    if raw.dtype != np.uint8 or raw.ndim not in (3, 4):
        raise ValueError(f"{name} must hold uint8 images (N, H, W), got {raw.dtype} of shape {raw.shape}")
    images = raw.reshape(raw.shape[0], -1) if flatten else (raw[:, None] if raw.ndim == 3 else raw)
    return np.divide(images, np.float32(255), dtype=np.float32)


def _labels(raw, count, classes, name):
    labels = np.asarray(raw).astype(np.int64)
    if labels.shape != (count,):
        raise ValueError(f"{name} must hold {count} labels, one per image, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name} holds labels outside [0, {classes}): min {labels.min()}, max {labels.max()}")
    return labels


def _load_idx_set(name, path, flatten):
    folder = _find(name, path, _complete_idx_set)
    raw = {key: read_idx(_idx_file(folder, stem)) for key, stem in IDX_FILES.items()}
    result = []
    for part in ("train", "test"):
        images = raw[f"{part}_images"]
        x = _images(images, flatten, f"{folder}/{IDX_FILES[part + '_images']}")
        y = _labels(raw[f"{part}_labels"], images.shape[0], 10, f"{folder}/{IDX_FILES[part + '_labels']}")
        result.append((x, y))
    return tuple(result)


def load_fashion_mnist(path=None, flatten=False):
    """Fashion-MNIST: 60,000 training and 10,000 test images (1, 28, 28) of 10 kinds of clothing.

    Read from `path`, or from the first of ``$FASTNN_DATA/fashion-mnist``,
    ``~/.fastnn/data/fashion-mnist`` and ``/usr/share/datasets/fashion-mnist``
    (Debian's ``dataset-fashion-mnist``) that holds the four IDX files
    (``.gz`` or not).  FileNotFoundError says where it looked and how to get them.
    """
    return _load_idx_set("fashion-mnist", path, flatten)


def load_mnist(path=None, flatten=False):
    """MNIST handwritten digits, from `path` or ``$FASTNN_DATA/mnist``, ``~/.fastnn/data/mnist``, ``/usr/share/datasets/mnist``."""
    return _load_idx_set("mnist", path, flatten)


def _unpickle(path):
    with open(path, "rb") as file:
        try:
            return pickle.load(file, encoding="bytes")
        except Exception as error:  # a broken pickle raises any of a dozen types
            raise ValueError(f"{path} is not a readable CIFAR-10 batch: {type(error).__name__}: {error}") from None


def load_cifar10(path=None, flatten=False):
    """CIFAR-10: 50,000 training and 10,000 test colour images (3, 32, 32) in 10 classes.

    `path` is the folder ``cifar-10-batches-py`` of CIFAR-10's python
    version (default: searched in ``$FASTNN_DATA`` and ``~/.fastnn/data``).
    Those batches are Python pickles, and unpickling runs code chosen by the
    file's author: load only files from a source you trust.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    folder = _find("cifar-10-batches-py", path, lambda f: all((f / n).is_file() for n in names))
    parts = []
    for group in (names[:5], names[5:]):
        images, labels = [], []
        for name in group:
            batch = _unpickle(folder / name)
            data = batch.get(b"data") if isinstance(batch, dict) else None
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError(f"{folder / name} is not a CIFAR-10 batch: expected uint8 data of shape (N, 3072)")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(_labels(batch.get(b"labels"), data.shape[0], 10, str(folder / name)))
        parts.append((_images(np.concatenate(images), flatten, str(folder)), np.concatenate(labels)))
    return tuple(parts)


def load_sample(flatten=False):
    """2,000 training and 500 test images of Fashion-MNIST (200 and 50 per class) that ship with fastnn.

    Made by ``python -m fastnn.datasets.make_sample`` from the Debian
    package's files; Fashion-MNIST is MIT-licensed, (c) 2017 Zalando SE
    (see fastnn/datasets/data/LICENSE-fashion-mnist.txt).
    """
    try:
        with np.load(SAMPLE_PATH, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"the bundled sample {SAMPLE_PATH} is missing or damaged: {error}") from None
    return tuple(
        (_images(arrays[f"x_{part}"], flatten, f"sample x_{part}"),
         _labels(arrays[f"y_{part}"], arrays[f"x_{part}"].shape[0], 10, f"sample y_{part}"))
        for part in ("train", "test")
    )
