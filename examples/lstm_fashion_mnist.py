"""Fashion-MNIST read row by row: an LSTM over 28 steps of 28 pixels, then a softmax head.

    python examples/lstm_fashion_mnist.py                 # full data set, 5 epochs
    python examples/lstm_fashion_mnist.py --limit 5000    # a quick look

Each 28x28 image is a sequence of its 28 rows; `fastnn.nn.LSTM` (128 units,
float32) reads it and hands its last state to a dense softmax layer written
here with numpy, trained with Adam on the cross-entropy.  The data are the
IDX files (``train-images-idx3-ubyte.gz`` etc.) from ``--data``,
``$FASTNN_DATA``, ``~/.fastnn/data`` or ``/usr/share/datasets/fashion-mnist``.
"""

import argparse
import gzip
import os
import time
from pathlib import Path

# The head's small matrix products gain nothing from BLAS threads, and BLAS
# threads waiting next to Numba's parallel kernels slow both down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from fastnn.nn import LSTM  # noqa: E402

PLACES = ("FASTNN_DATA", "~/.fastnn/data", "/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def find_data(explicit):
    candidates = [explicit] if explicit else [os.environ.get(PLACES[0])] + list(PLACES[1:])
    for place in candidates:
        if place and (Path(place).expanduser() / FILES["train"][0]).exists():
            return Path(place).expanduser()
    raise SystemExit(f"Fashion-MNIST not found in {', '.join(p for p in candidates if p)}; pass --data DIR")


def read_idx(path):
    """An IDX file (gzip) as a numpy array: magic, dimensions, then unsigned bytes."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(folder, split, limit=None):
    images, labels = (read_idx(folder / name) for name in FILES[split])
    images = images[:limit].astype(np.float32) / 255.0
    return images, labels[:limit].astype(np.int64)  # (N, 28, 28): 28 steps of 28 features


class Adam:
    """Adam on a list of arrays, updated in place."""

    def __init__(self, params, rate, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.rate, (self.b1, self.b2), self.eps = params, rate, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        scale = self.rate * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (scale * m / (np.sqrt(v) + self.eps)).astype(p.dtype)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.log(probabilities[np.arange(n), labels] + 1e-12).mean()
    grad = probabilities
    grad[np.arange(n), labels] -= 1
    return loss, grad / n


def predict(lstm, head_w, head_b, images, batch=1000):
    return np.concatenate([(lstm.forward(images[i:i + batch]) @ head_w + head_b).argmax(axis=1)
                           for i in range(0, len(images), batch)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with the four IDX files")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rate", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--limit", type=int, help="use only the first LIMIT training and test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    folder = find_data(args.data)
    train_x, train_y = load(folder, "train", args.limit)
    test_x, test_y = load(folder, "test", args.limit)
    print(f"Fashion-MNIST from {folder}: {len(train_x)} training and {len(test_x)} test images")

    rng = np.random.default_rng(args.seed)
    lstm = LSTM(28, args.hidden, return_sequences=False, rng=rng)
    lstm.params["bias"][args.hidden:2 * args.hidden] = 1.0  # forget gate open at the start
    head_w = rng.normal(0, 1 / np.sqrt(args.hidden), (args.hidden, 10)).astype(np.float32)
    head_b = np.zeros(10, np.float32)
    params = list(lstm.params.values()) + [head_w, head_b]
    optimizer = Adam(params, args.rate)

    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train_x))
        total, correct = 0.0, 0
        for first in range(0, len(order), args.batch_size):
            batch = order[first:first + args.batch_size]
            last = lstm.forward(train_x[batch])
            logits = last @ head_w + head_b
            loss, grad_logits = softmax_cross_entropy(logits, train_y[batch])
            lstm.backward(grad_logits @ head_w.T)
            optimizer.step(list(lstm.grads.values()) + [last.T @ grad_logits, grad_logits.sum(axis=0)])
            total += loss * len(batch)
            correct += int((logits.argmax(axis=1) == train_y[batch]).sum())
        accuracy = (predict(lstm, head_w, head_b, test_x) == test_y).mean()
        print(f"epoch {epoch}: loss {total / len(train_x):.4f}, train accuracy {correct / len(train_x):.2%}, "
              f"test accuracy {accuracy:.2%}, {time.perf_counter() - started:.0f} s")
    print(f"LSTM {args.hidden} units: test accuracy {accuracy:.2%} after {args.epochs} epochs, "
          f"{time.perf_counter() - started:.0f} s of training (Numba compile included)")


if __name__ == "__main__":
    main()
