"""Fashion-MNIST read row by row: an LSTM over 28 steps of 28 pixels, then a dense softmax layer.

    python examples/lstm_fashion_mnist.py                 # full data set, 5 epochs
    python examples/lstm_fashion_mnist.py --limit 5000    # a quick look
    python examples/lstm_fashion_mnist.py --sample        # the 2,000 images bundled with fastnn

Each 28x28 image is a sequence of its 28 rows: `fastnn.nn.LSTM` (128 units,
float32) reads it and hands its last state to `fastnn.nn.Dense`, trained
together with Adam on the cross-entropy.  The full data set comes from
``fastnn.datasets.load_fashion_mnist`` (``--data``, ``$FASTNN_DATA``,
``~/.fastnn/data`` or ``/usr/share/datasets/fashion-mnist``).
"""

import argparse
import time

import numpy as np

from fastnn.datasets import load_fashion_mnist, load_sample
from fastnn.nn import LSTM, Adam, Dense, Sequential


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with the four IDX files")
    parser.add_argument("--sample", action="store_true", help="use the sample bundled with fastnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--limit", type=int, help="use only the first LIMIT training and test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_sample() if args.sample else load_fashion_mnist(args.data)
    # (N, 1, 28, 28) images in [0, 1] -> (N, 28, 28): 28 steps of 28 features.
    x_train, y_train = x_train[:args.limit, 0], y_train[:args.limit]
    x_test, y_test = x_test[:args.limit, 0], y_test[:args.limit]
    print(f"Fashion-MNIST: {len(x_train)} training and {len(x_test)} test images, read as 28 rows of 28 pixels")

    rng = np.random.default_rng(args.seed)
    lstm = LSTM(28, args.hidden, return_sequences=False, rng=rng)
    lstm.params["bias"][args.hidden:2 * args.hidden] = 1.0  # forget gates open at the start
    model = Sequential([lstm, Dense(args.hidden, 10, rng=rng)], loss="cross_entropy", optimizer=Adam(lr=args.lr))

    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(x_test, y_test), seed=args.seed, verbose=2)
    accuracy = model.history_["val_accuracy"][-1]
    print(f"LSTM {args.hidden} units + Dense: test accuracy {accuracy:.2%} after {args.epochs} epochs, "
          f"{time.perf_counter() - started:.0f} s of training (Numba compile included on a first run)")


if __name__ == "__main__":
    main()
