"""Flatten: ``(N, d1, d2, ...)`` -> ``(N, d1*d2*...)`` and back for the gradient."""

import math

from .._checks import as_float_array, describe_shape
from .base import Layer
from .pooling import input_dtype


class Flatten(Layer):
    """Keeps the batch axis and joins the others, e.g. ``(N, 16, 5, 5)`` -> ``(N, 400)``.

    No parameters; float32 and float64 pass through unchanged, other numbers
    become float32.
    """

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x):
        x = as_float_array(x, "x", input_dtype(x), finite=False)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"x must have shape (N >= 1, ...) with at least 2 axes, got {describe_shape(x.shape)}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        shape = self._require("_shape")
        expected = (shape[0], math.prod(shape[1:]))
        grad_output = as_float_array(grad_output, "grad_output", input_dtype(grad_output), shape=expected,
                                     finite=False)
        return grad_output.reshape(shape)
