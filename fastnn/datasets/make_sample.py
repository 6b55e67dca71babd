"""Build the Fashion-MNIST sample bundled with fastnn: ``python -m fastnn.datasets.make_sample``.

Takes 200 training and 50 test images of each of the 10 classes, chosen with
a fixed seed from the full data set (default: the files of Debian's
``dataset-fashion-mnist`` in /usr/share/datasets/fashion-mnist), and writes
them as uint8 arrays to a compressed .npz (x_train (2000, 28, 28), y_train,
x_test (500, 28, 28), y_test).  Fashion-MNIST is MIT-licensed, (c) 2017
Zalando SE; the licence travels with the sample in data/.
"""

import argparse
from pathlib import Path

import numpy as np

from .idx import read_idx
from .loaders import IDX_FILES, SAMPLE_PATH, SYSTEM_DIR, _idx_file

PER_CLASS = {"train": 200, "test": 50}
SEED = 20170825  # Fashion-MNIST's release date; any fixed seed would do


def pick(labels, per_class, rng):
    """Indices of `per_class` samples of each class, in ascending order."""
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SYSTEM_DIR / "fashion-mnist", help="folder with the four IDX files")
    parser.add_argument("--out", type=Path, default=SAMPLE_PATH, help="the .npz to write")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    arrays = {}
    for part in ("train", "test"):
        images = read_idx(_idx_file(args.source, IDX_FILES[f"{part}_images"]))
        labels = read_idx(_idx_file(args.source, IDX_FILES[f"{part}_labels"]))
        index = pick(labels, PER_CLASS[part], rng)
        arrays[f"x_{part}"] = images[index]
        arrays[f"y_{part}"] = labels[index]
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
