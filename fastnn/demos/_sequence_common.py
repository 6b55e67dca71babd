"""What the sequence chapters' demo sections share: their gradient check and their speed line."""

import time

import numpy as np


def largest_gradient_error(error, pairs, epsilon=1e-4):
    """Largest relative difference between analytic gradients and central differences of `error`."""
    from fastnn.gradcheck import central_difference

    worst = 0.0
    for array, grad in pairs:
        expected = central_difference(error, array, epsilon)
        scale = np.maximum(np.maximum(np.abs(expected), np.abs(grad)), 1e-12)
        worst = max(worst, float(np.max(np.abs(expected - grad) / scale)))
    return worst


def steps_per_second(step, minimum_seconds=0.1):
    step()  # compile (or load from the cache) outside the timing
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < minimum_seconds:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def tutorial_step(cls, implementation="fastnn"):
    """One training step (20 forward calls, backward, update; 32 inputs -> 64 states) of a tutorial class.

    `implementation` is "fastnn" (fastnn.tutorial) or "python" (its plain-Python twin).
    """
    from fastnn.benchmarks.sequence import _tutorial_builders

    return _tutorial_builders(cls, 32, 64)[implementation](True)[0]


def speed_line(cls):
    """One line comparing a tutorial class's training step with its twin's."""
    fast = steps_per_second(tutorial_step(cls))
    twin = steps_per_second(tutorial_step(cls, "python"))
    return (f"  {cls:<15} fastnn {1e6 / fast:7,.0f} us vs the tutorial-style twin {1e6 / twin:7,.0f} us: "
            f"{fast / twin:.1f}x")
