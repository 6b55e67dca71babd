"""Standardize: a fixed input transform that travels with the model (and its checkpoints)."""

import numpy as np

from .._checks import as_float_array
from .base import Layer
from .dense import BatchBuffers
from .pooling import input_dtype


class Standardize(Layer):
    """``y = (x - mean) / std`` with the data set's statistics, for batches ``(N, C, ...)`` or ``(N, F)``.

    `mean` and `std` are numbers, or one number per channel (axis 1).  No
    trainable parameters; placed first in a model it lets the model take raw
    [0, 1] images while its first layer sees zero-mean, unit-variance inputs,
    which trains faster with SGD.
    """

    mixes_with_blas = True

    def __init__(self, mean, std):
        super().__init__()
        self.mean = as_float_array(mean, "mean", np.float64)
        self.std = as_float_array(std, "std", np.float64)
        if self.mean.ndim > 1 or self.std.shape != self.mean.shape:
            raise ValueError(f"mean and std must be two numbers or two lists of one number per channel, "
                             f"got shapes {self.mean.shape} and {self.std.shape}")
        if not (self.std > 0).all():
            raise ValueError(f"std must be > 0, got {self.std.tolist()}")
        self._buffers = BatchBuffers()
        self._scale = None

    def get_config(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def output_shape(self, input_shape):
        if self.mean.ndim == 1 and (len(input_shape) < 1 or input_shape[0] != self.mean.shape[0]):
            raise ValueError(f"Standardize has {self.mean.shape[0]} channel statistics, samples have shape {tuple(input_shape)}")
        return tuple(input_shape)

    def _statistics(self, x):
        """mean and 1/std shaped to broadcast over a batch like `x`, in its dtype."""
        shape = (1, -1) + (1,) * (x.ndim - 2) if self.mean.ndim else ()
        return self.mean.astype(x.dtype).reshape(shape), (1 / self.std).astype(x.dtype).reshape(shape)

    def forward(self, x):
        x = as_float_array(x, "x", input_dtype(x))
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"x must be a batch of shape (N, ...) with N >= 1, got shape {x.shape}")
        self.output_shape(x.shape[1:])
        return self._forward(x).copy()

    def backward(self, grad_output):
        scale = self._require("_scale")
        return self._backward(as_float_array(grad_output, "grad_output", scale.dtype)).copy()

    def _forward(self, x):
        mean, scale = self._statistics(x)
        out = self._buffers.get(x.shape, "out", x.shape, x.dtype)
        np.subtract(x, mean, out=out)
        out *= scale
        self._scale = scale
        return out

    def _backward(self, grad):
        grad_input = self._buffers.get(grad.shape, "grad_input", grad.shape, grad.dtype)
        np.multiply(grad, self._scale, out=grad_input)
        return grad_input
