"""Helpers shared by the sequence and tree chapters' tests: central differences and close-enough checks."""

import numpy as np


def central_difference(loss, array, eps=1e-6):
    """``dloss/darray`` by central differences, nudging `array` in place (restored afterwards)."""
    grad = np.zeros(array.shape)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        up = loss()
        array[index] = saved - eps
        down = loss()
        array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


def assert_gradient(analytic, numeric, name, rtol=1e-6, atol=1e-8):
    """Compare an analytic gradient with central differences; the failure message gives the relative error."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    error = np.abs(analytic - numeric).max() / max(np.abs(numeric).max(), atol)
    assert np.allclose(analytic, numeric, rtol=rtol, atol=atol), f"{name}: relative error {error:.2e}"


def assert_close(mine, theirs, name, rtol=1e-10, atol=1e-12):
    """Compare fastnn's result with the reference twin's; the message shows the largest difference."""
    mine, theirs = np.asarray(mine, float), np.asarray(theirs, float)
    assert mine.shape == theirs.shape, f"{name}: shape {mine.shape} vs reference {theirs.shape}"
    assert np.allclose(mine, theirs, rtol=rtol, atol=atol), \
        f"{name}: max difference {np.abs(mine - theirs).max():.3e} (mine vs reference)"
