"""Conv2D: a batched convolution layer on the tutorial's convolution kernels."""

import math

import numpy as np

from .._checks import as_float_array, check_int, describe_shape, make_rng
from ..kernels import conv as _conv
from ..kernels.activation import IDENTITY
from ..kernels.batched_dense import activation_grad
from .base import Layer, check_dtype
from .dense import BatchBuffers


def as_pair(value, name, minimum):
    """``(vertical, horizontal)`` from an int or a pair of ints, each at least `minimum`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return check_int(value[0], name, minimum), check_int(value[1], name, minimum)
    value = check_int(value, name, minimum)
    return value, value


def pair_config(pair):
    """An int for a square pair, else a list: JSON-friendly and accepted back by :func:`as_pair`."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def float_batch(x, name, dtype, channels=None):
    """`x` as a C-contiguous, finite ``(N, C, H, W)`` array of `dtype` with N >= 1 (and C = `channels` if given)."""
    array = as_float_array(x, name, dtype, shape=(None, channels, None, None))
    if array.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {describe_shape(array.shape)}")
    return array


class Conv2D(Layer):
    """2-D convolution, batch-first: ``(N, C, H, W)`` -> ``(N, F, OH, OW)``.

    ``y[n,f,i,j] = b[f] + sum_{c,u,v} w[f,c,u,v] * xp[n, c, i*SH+u, j*SW+v]``
    with ``xp`` the input zero-padded by `padding`, ``OH = (H - KH + 2*PH) //
    SH + 1``.  Parameters ``"weight"`` ``(F, C, KH, KW)`` and ``"bias"``
    ``(F,)``, both uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` with
    ``fan_in = C*KH*KW`` (PyTorch's default).  `kernel_size`, `stride` and
    `padding` are ints or ``(vertical, horizontal)`` pairs.
    """

    trusted_path = True
    # Sequential may call ``_backward(grad, need_input_grad=False)`` on a first layer.
    optional_input_grad = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = as_pair(kernel_size, "kernel_size", 1)
        self.stride = as_pair(stride, "stride", 1)
        self.padding = as_pair(padding, "padding", 0)
        self.dtype = check_dtype(dtype)
        generator = make_rng(rng)
        shape = self._weight_shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self._bias_shape = (self.out_channels,)
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.params["weight"] = generator.uniform(-bound, bound, shape).astype(self.dtype)
        self.params["bias"] = generator.uniform(-bound, bound, self.out_channels).astype(self.dtype)
        self.grads["weight"] = np.zeros(shape, self.dtype)
        self.grads["bias"] = np.zeros(self.out_channels, self.dtype)
        self._buffers = BatchBuffers()
        self._x = None
        self._y = None

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"input_shape must be ({self.in_channels}, height, width), "
                             f"got {describe_shape(tuple(input_shape))}")
        return (self.out_channels, *self._spatial(input_shape[1], input_shape[2], "input_shape", input_shape))

    def _spatial(self, height, width, name, shape):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_h = _conv.output_size(height, kh, ph, sh)
        out_w = _conv.output_size(width, kw, pw, sw)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"kernel_size {(kh, kw)} is larger than the padded input: {name} has shape "
                             f"{describe_shape(tuple(shape))}, padded to {(height + 2 * ph, width + 2 * pw)}")
        return out_h, out_w

    def _weights(self):
        """The parameters as the kernels need them (converted only if someone replaced them)."""
        weight, bias = self.params["weight"], self.params["bias"]
        if (weight.dtype == bias.dtype == self.dtype and weight.flags.c_contiguous
                and weight.shape == self._weight_shape and bias.shape == self._bias_shape):
            return weight, bias  # the usual case, checked without building tuples
        expected = (self.out_channels, self.in_channels, *self.kernel_size)
        if weight.shape != expected or bias.shape != (self.out_channels,):
            raise ValueError(f"params['weight'] and params['bias'] must have shapes {expected} and "
                             f"({self.out_channels},), got {weight.shape} and {bias.shape}")
        return np.ascontiguousarray(weight, self.dtype), np.ascontiguousarray(bias, self.dtype)

    def forward(self, x):
        return self._forward(float_batch(x, "x", self.dtype, self.in_channels)).copy()

    def _forward(self, x, code=IDENTITY):
        """Trusted path (Sequential): `x` is a C-contiguous, finite batch of this layer's dtype and channels.

        `code` is an activation applied to the output (Sequential folds a
        following activation layer in).  Returns a buffer that the next
        call on a batch of the same shape overwrites.
        """
        out = self._buffers.get_made(x.shape, "out", lambda: np.empty(
            (x.shape[0], self.out_channels, *self._spatial(x.shape[2], x.shape[3], "x", x.shape)), self.dtype))
        weight, bias = self._weights()
        if x.shape[0] == 1:  # the serial kernel: no threads to wake for one sample
            _conv.conv_forward_sample(x[0], weight, bias, *self.stride, *self.padding, code, out[0])
        else:
            _conv.conv2d_forward(x, weight, bias, *self.stride, *self.padding, code, out)
        self._x = x
        self._y = out
        return out

    def backward(self, grad_output):
        x = self._require("_x")
        expected = (x.shape[0], self.out_channels, *self._spatial(x.shape[2], x.shape[3], "x", x.shape))
        grad_x = self._backward(as_float_array(grad_output, "grad_output", self.dtype, shape=expected))
        return grad_x.copy()

    def _backward(self, grad_output, need_input_grad=True, code=IDENTITY, activation_below=IDENTITY):
        """Trusted path after ``_forward(x, code)``: `grad_output` is C-contiguous, of the output's shape and dtype.

        Without `need_input_grad` (the first trained layer of a model) only
        the parameter gradients are computed, and None is returned.  The
        input gradient is a buffer that the next call overwrites, multiplied
        by the derivative of `activation_below` read from `x` (the
        activation of a layer below, when Sequential folds it in here).
        """
        x = self._x
        weight, _ = self._weights()
        if code != IDENTITY:
            error = self._buffers.get(x.shape, "error", grad_output.shape, self.dtype)
            activation_grad(grad_output, self._y, code, error)
            grad_output = error
        if need_input_grad:
            grad_x = self._buffers.get(x.shape, "grad_x", x.shape, x.dtype)
        else:
            grad_x = self._buffers.get(x.shape, "no_grad_x", (1, 0) + x.shape[2:], x.dtype)
        if x.shape[0] == 1:
            _conv.conv_gradients_sample(x[0], weight, grad_output[0], *self.stride, *self.padding, activation_below,
                                        need_input_grad, grad_x[0], self.grads["weight"], self.grads["bias"])
        else:
            _conv.conv2d_backward(x, weight, grad_output, *self.stride, *self.padding, activation_below,
                                  need_input_grad,
                                  grad_x, self.grads["weight"], self.grads["bias"])
        return grad_x if need_input_grad else None

    def _forward_pool(self, x, code, pool):
        """Trusted path: ``pool._forward(self._forward(x, code))`` for a MaxPool2D `pool`, in one call on one sample."""
        if x.shape[0] != 1:
            return pool._forward(self._forward(x, code))
        out, pooled = self._buffers.get_made(x.shape, ("pooled", pool), lambda: self._pool_buffers(x, pool))
        weight, bias = self._weights()
        _conv.conv_pool_forward_sample(x[0], weight, bias, *self.stride, *self.padding, code, *pool.kernel_size,
                                       *pool.stride, out[0], pooled[0])
        self._x = x
        self._y = pool._x = out
        return pooled

    def _pool_buffers(self, x, pool):
        """The output buffers of ``_forward`` and ``pool._forward`` for `x`, shared with those methods."""
        out = self._buffers.get_made(x.shape, "out", lambda: np.empty(
            (1, self.out_channels, *self._spatial(x.shape[2], x.shape[3], "x", x.shape)), self.dtype))
        pooled = pool._buffers.get_made((out.shape, out.dtype), "out",
                                        lambda: np.empty(out.shape[:2] + pool._spatial(out.shape, "x"), out.dtype))
        return out, pooled

    def _backward_pool(self, grad_pooled, pool, need_input_grad=True, code=IDENTITY, activation_below=IDENTITY):
        """Trusted path after ``_forward_pool``: ``self._backward(pool._backward(grad_pooled), ...)``."""
        x = self._x
        if x.shape[0] != 1:
            return self._backward(pool._backward(grad_pooled), need_input_grad, code, activation_below)
        weight, _ = self._weights()
        error = self._buffers.get(x.shape, "error", self._y.shape, self.dtype)
        if need_input_grad:
            grad_x = self._buffers.get(x.shape, "grad_x", x.shape, x.dtype)
        else:
            grad_x = self._buffers.get(x.shape, "no_grad_x", (1, 0) + x.shape[2:], x.dtype)
        _conv.pool_conv_gradients_sample(x[0], weight, self._y[0], grad_pooled[0], *self.stride, *self.padding, code,
                                         *pool.kernel_size, *pool.stride, activation_below, need_input_grad,
                                         error[0], grad_x[0], self.grads["weight"], self.grads["bias"])
        return grad_x if need_input_grad else None

    def get_config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": pair_config(self.kernel_size),
            "stride": pair_config(self.stride),
            "padding": pair_config(self.padding),
            "dtype": self.dtype.name,
        }
