"""Demo section: the LSTM chapter, its gradient check and speed, and an LSTM reading images row by row."""

import time

import numpy as np

from ._sequence_common import largest_gradient_error, speed_line, tutorial_step

TITLE = "Chapter 7: LSTM"


def gradient_check():
    """The tutorial's lstm check (error = sum of the last h), over all twelve parameters."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.lstm import LstmLayer

    layer = LstmLayer(3, 2, 1e-3, rng=0)
    xs = [np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [3.0], [4.0]])]

    def error():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.h_list[-1].sum())

    error()
    layer.backward(xs[-1], np.ones((2, 1)), IdentityActivator())
    names = [f"W{g}{k}" for g in "fioc" for k in "hx"] + [f"b{g}" for g in "fioc"]
    return largest_gradient_error(error, [(getattr(layer, n), getattr(layer, f"{n}_grad").copy()) for n in names])


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
    """Compile (or load) every kernel `run` uses, on a small problem: one full batch and one short one."""
    gradient_check()
    tutorial_step("LstmLayer")()
    train_row_lstm(epochs=1, train_count=48)


def run(say):
    say("The tutorial's gradient check (its data set, two steps; largest relative error against central "
        "differences):")
    say(f"  LstmLayer, all twelve parameters: {gradient_check():.1e}  "
        "(the published update mixes up gradient names and biases)")
    say("Speed of one training step (20 forward calls, backward, update), 32 inputs -> 64 states, float64:")
    say(speed_line("LstmLayer"))

    accuracy, seconds = train_row_lstm()
    say("LSTM (64 units) + Dense reading the bundled 2,000 Fashion-MNIST images row by row (28 steps of 28 pixels):")
    say(f"  test accuracy {accuracy:.1%} on the 500 test images after 2 epochs in {seconds:.1f} s "
        "(compile included on a first run)")
    say("  on the full data set, `python examples/lstm_fashion_mnist.py` (128 units, 5 epochs) reached 87.6%")
