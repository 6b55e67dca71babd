"""MaxPool2D and AvgPool2D: batched pooling layers on the pooling kernels.

They have no parameters; they compute in the input's floating type
(float32 or float64; other numbers are converted to float32).
"""

import numpy as np

from .._checks import as_float_array, describe_shape
from ..kernels import pool as _pool
from .base import Layer
from .conv import as_pair, float_batch, pair_config
from .dense import BatchBuffers


def input_dtype(x):
    """float64 for float64 input, float32 for anything else (the fastnn.nn default)."""
    return np.float64 if getattr(x, "dtype", None) == np.float64 else np.float32


class _Pool2D(Layer):
    """Shared by both poolings: window and stride, shapes, validation."""

    trusted_path = True

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = as_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, "stride", 1)
        self._buffers = BatchBuffers()
        self._x = None

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width), got {describe_shape(tuple(input_shape))}")
        return (input_shape[0], *self._spatial(input_shape, "input_shape"))

    def _spatial(self, shape, name):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        height, width = shape[-2:]
        if kh > height or kw > width:
            raise ValueError(f"kernel_size {(kh, kw)} is larger than the input: {name} has shape "
                             f"{describe_shape(tuple(shape))}")
        return (height - kh) // sh + 1, (width - kw) // sw + 1

    def forward(self, x):
        return self._forward(float_batch(x, "x", input_dtype(x))).copy()

    def _forward(self, x):
        """Trusted path (Sequential): `x` is a C-contiguous, finite float batch ``(N, C, H, W)``.

        Returns a buffer that the next call on a batch of the same shape and
        dtype overwrites.
        """
        out = self._buffers.get_made((x.shape, x.dtype), "out",
                                     lambda: np.empty(x.shape[:2] + self._spatial(x.shape, "x"), x.dtype))
        self._forward_kernel(x, *self.kernel_size, *self.stride, out)
        self._x = x
        return out

    def backward(self, grad_output):
        x = self._require("_x")
        expected = x.shape[:2] + self._spatial(x.shape, "x")
        return self._backward(as_float_array(grad_output, "grad_output", x.dtype, shape=expected)).copy()

    def _grad_x(self):
        """The buffer for the gradient of the last input (overwritten by the next backward pass)."""
        x = self._x
        return self._buffers.get((x.shape, x.dtype), "grad_x", x.shape, x.dtype)

    def get_config(self):
        return {"kernel_size": pair_config(self.kernel_size), "stride": pair_config(self.stride)}


class MaxPool2D(_Pool2D):
    """Max pooling, ``(N, C, H, W)`` -> ``(N, C, OH, OW)``, ``OH = (H - KH) // SH + 1``.

    The gradient of each window goes to its first maximum in row-major order
    (the tutorial's rule); overlapping windows add up.  `stride` defaults to
    `kernel_size`.
    """

    _forward_kernel = staticmethod(_pool.max_pool2d_forward)

    def _backward(self, grad_output):
        """Trusted path after ``_forward``: `grad_output` is C-contiguous, of the output's shape and dtype."""
        grad_x = self._grad_x()
        _pool.max_pool2d_backward(self._x, grad_output, *self.kernel_size, *self.stride, grad_x)
        return grad_x


class AvgPool2D(_Pool2D):
    """Average pooling, ``(N, C, H, W)`` -> ``(N, C, OH, OW)``; each window's gradient is shared equally.

    `stride` defaults to `kernel_size`.
    """

    _forward_kernel = staticmethod(_pool.avg_pool2d_forward)

    def _backward(self, grad_output):
        """Trusted path after ``_forward``: `grad_output` is C-contiguous, of the output's shape and dtype."""
        grad_x = self._grad_x()
        _pool.avg_pool2d_backward(grad_output, *self.kernel_size, *self.stride, grad_x)
        return grad_x
