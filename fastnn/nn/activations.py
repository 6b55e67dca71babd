"""Activation layers: ReLU, Sigmoid, Tanh, Identity, element-wise on a batch of any shape.

The derivative is taken from the layer's output, as the tutorial's
activators do (sigmoid ``y(1-y)``, tanh ``1-y^2``, relu ``1 if y > 0``).
Softmax has no layer: it is folded into the cross-entropy loss, which is
both cheaper and numerically stable.  Inside ``Sequential`` an activation
that follows a ``Dense`` layer runs inside that layer's kernels.
"""

from .._checks import as_float_array
from ..kernels.activation import IDENTITY, RELU, SIGMOID, TANH
from ..kernels.batched_dense import activation_forward, activation_grad
from .base import Layer
from .dense import BatchBuffers
from .pooling import input_dtype


class Activation(Layer):
    """Base of the activation layers: no parameters, output of the input's shape and float dtype."""

    code = IDENTITY
    mixes_with_blas = True

    def __init__(self):
        super().__init__()
        self._buffers = BatchBuffers()
        self._y = None

    def forward(self, x):
        """x (N, ...) -> f(x) of the same shape; float32 and float64 inputs keep their dtype."""
        array = as_float_array(x, "x", input_dtype(x))
        if array.ndim < 2 or array.shape[0] == 0:
            raise ValueError(f"x must be a batch of shape (N, ...) with N >= 1, got shape {array.shape}")
        return self._forward(array).copy()

    def backward(self, grad_output):
        y = self._require("_y")
        grad = as_float_array(grad_output, "grad_output", y.dtype, shape=y.shape)
        return self._backward(grad).copy()

    def _forward(self, x):
        out = self._buffers.get(x.shape, "out", x.shape, x.dtype)
        activation_forward(x, self.code, out)
        self._y = out
        return out

    def _backward(self, grad):
        y = self._y
        grad_input = self._buffers.get(y.shape, "grad_input", y.shape, y.dtype)
        activation_grad(grad, y, self.code, grad_input)
        return grad_input


class ReLU(Activation):
    """``max(x, 0)``."""

    code = RELU


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, the tutorial's activation."""

    code = SIGMOID


class Tanh(Activation):
    """``tanh(x)``."""

    code = TANH


class Identity(Activation):
    """``x`` (for an explicitly linear output layer)."""

    code = IDENTITY
