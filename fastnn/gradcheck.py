"""Central differences: the numerical gradient every analytic gradient in fastnn is checked against."""

import numpy as np


def central_difference(f, x, epsilon=1e-6):
    """Gradient of the scalar function ``f()`` with respect to the float array `x`, which it nudges in place.

    ``(f(x + eps) - f(x - eps)) / (2 eps)`` element by element; `x` may be a
    non-contiguous view (a transposed weight, say) and is restored exactly.
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
