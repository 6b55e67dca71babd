"""Central-difference gradients for the tests (float64)."""

import numpy as np


def numerical_gradient(loss, array, eps=1e-6):
    """``d loss() / d array`` by central differences, nudging `array` in place element by element."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        up = loss()
        array[index] = saved - eps
        down = loss()
        array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


def assert_gradient(analytic, numeric, name, tolerance=1e-6):
    """Largest absolute difference, relative to the largest numerical gradient, below `tolerance`."""
    error = np.abs(analytic - numeric).max() / max(np.abs(numeric).max(), 1e-8)
    assert error < tolerance, f"{name}: largest relative error {error:.2e}"
