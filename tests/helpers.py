"""Assertions shared by the test modules."""

import numpy as np

from fastnn.gradcheck import central_difference  # noqa: F401  (tests import it from here)


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


def assert_layer_gradients(layer, x, seed=0, rtol=1e-6, atol=1e-8):
    """Check a fastnn.nn layer's ``grads`` and input gradient against central differences (float64 layer).

    The loss is ``sum(w * layer.forward(x))`` for random weights ``w``.
    """
    weights = np.random.default_rng(seed).normal(size=layer.forward(x).shape)
    grad_x = layer.backward(weights)
    grads = {name: grad.copy() for name, grad in layer.grads.items()}

    def loss():
        return float((layer.forward(x) * weights).sum())

    name = type(layer).__name__
    for param, value in layer.params.items():
        assert_close(grads[param], central_difference(loss, value), rtol, atol, what=f"{name}.{param}")
    assert_close(grad_x, central_difference(loss, x), rtol, atol, what=f"{name} input")


def assert_same_for_thread_counts(run):
    """``run()`` (a list of arrays) under 1 and 2 Numba threads must give the same bits; returns the arrays."""
    import numba

    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            results.append([np.array(a, copy=True) for a in run()])
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, two in zip(*results):
        assert one.dtype == two.dtype and np.array_equal(one, two), "results differ between 1 and 2 threads"
    return results[0]
