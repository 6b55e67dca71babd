"""Assertions shared by the test modules."""

import numpy as np


def relative_error(expected, actual):
    """Largest element-wise ``|a - e| / max(|a|, |e|, tiny)``."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    scale = np.maximum(np.maximum(np.abs(expected), np.abs(actual)), 1e-300)
    return float(np.max(np.abs(actual - expected) / scale)) if expected.size else 0.0


def assert_close(actual, expected, rtol=1e-10, atol=1e-12, what="values"):
    """Like numpy's assert_allclose, with the largest errors in the message."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol,
                               err_msg=f"{what}: max abs error {np.max(np.abs(actual - expected)):.3e}")


def central_difference(f, x, epsilon=1e-6):
    """Gradient of the scalar function ``f()`` with respect to the float64 array `x`, modified in place.

    `x` may be a non-contiguous view (a transposed weight, say): it is nudged element by element.
    """
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + epsilon
        up = f()
        x[index] = original - epsilon
        down = f()
        x[index] = original
        grad[index] = (up - down) / (2 * epsilon)
    return grad
