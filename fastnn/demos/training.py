"""Demo section: fastnn.nn training on the Fashion-MNIST sample bundled with fastnn: an MLP, and an LSTM reading rows."""

import time

import numpy as np

TITLE = "Training on 2,000 Fashion-MNIST images (fastnn.nn): a 784-300-10 MLP, and an LSTM reading rows"


def train_mlp(epochs=5, train_count=None):
    """The 784-300-10 ReLU MLP, SGD with momentum, batch 64; returns the fitted model.

    With `train_count`, only the first that many training images are used.
    """
    from fastnn.datasets import load_sample
    from fastnn.nn import SGD
    from fastnn.nn.models import mlp

    (x_train, y_train), (x_test, y_test) = load_sample(flatten=True)
    model = mlp(optimizer=SGD(lr=0.05, momentum=0.9), rng=0)
    model.fit(x_train[:train_count], y_train[:train_count], epochs=epochs, batch_size=64,
              validation_data=(x_test, y_test), seed=0, verbose=0)
    return model


def train_row_lstm(hidden=64, epochs=2, seed=0, train_count=None):
    """LSTM over the bundled Fashion-MNIST sample read row by row; returns (test accuracy, seconds).

    The short form of examples/lstm_fashion_mnist.py: each 28x28 image is a
    sequence of 28 rows of 28 pixels, the LSTM's last state feeds a Dense
    softmax layer, and both train with Adam on the cross-entropy.  With
    `train_count`, only the first that many training images are used.
    """
    from fastnn.datasets import load_sample
    from fastnn.nn import LSTM, Adam, Dense, Sequential

    (x_train, y_train), (x_test, y_test) = load_sample()
    x_train, y_train = x_train[:train_count], y_train[:train_count]
    rng = np.random.default_rng(seed)
    lstm = LSTM(28, hidden, return_sequences=False, rng=rng)
    lstm.params["bias"][hidden:2 * hidden] = 1.0  # forget gates open at the start
    model = Sequential([lstm, Dense(hidden, 10, rng=rng)], optimizer=Adam(lr=5e-3))
    started = time.perf_counter()
    model.fit(x_train[:, 0], y_train, epochs=epochs, batch_size=32, seed=seed, verbose=0)
    seconds = time.perf_counter() - started
    return model.evaluate(x_test[:, 0], y_test)["accuracy"], seconds


def warm():
    """Compile (or load) every kernel `run` uses, on small problems: one full batch and one short one each."""
    train_mlp(epochs=1, train_count=80)
    train_row_lstm(epochs=1, train_count=48)


def run(say):
    say("A 784-300-10 MLP (ReLU, softmax cross-entropy, SGD with momentum 0.9, batch 64):")
    started = time.perf_counter()
    model = train_mlp()
    seconds = time.perf_counter() - started
    for epoch, (accuracy, val_accuracy) in enumerate(zip(model.history_["accuracy"], model.history_["val_accuracy"]), 1):
        say(f"  epoch {epoch}: training accuracy {accuracy * 100:5.1f}%, test accuracy {val_accuracy * 100:5.1f}%")
    say(f"  5 epochs in {seconds:.1f} s (compile included on a first run); "
        "`fastnn train --model lenet --dataset fashion-mnist` trains LeNet-5 on the full data set")

    accuracy, seconds = train_row_lstm()
    say("An LSTM (64 units) + Dense reading each image row by row (28 steps of 28 pixels), Adam:")
    say(f"  test accuracy {accuracy:.1%} on the 500 test images after 2 epochs in {seconds:.1f} s "
        "(compile included on a first run)")
    say("  on the full data set, `python examples/lstm_fashion_mnist.py` (128 units, 5 epochs) reached 87.6%")
