"""Dense: the fully connected layer on a mini-batch (the tutorial's fc chapter, batch-first)."""

import math

import numpy as np

from .._blas import add_product
from .._checks import as_float_array, check_int, make_rng
from .._memory import aligned_empty, aligned_zeros
from ..kernels.activation import IDENTITY
from ..kernels.batched_dense import (
    bias_activate_transposed,
    dense_backward_sgd,
    dense_delta,
    dense_forward,
    dense_forward_serial,
    dense_grad_input,
    dense_grad_input_serial,
    dense_grad_weight,
    dense_grad_weight_serial,
    magnitude_sum,
)
from ..kernels.optim import sgd_update
from .base import Layer, check_dtype

# Below this batch size the products run on one thread in compiled loops:
# BLAS and thread start-up cost more than the work (kernels/batched_dense.py).
SMALL_BATCH = 4

# Weight matrices of at least this many entries take a plain SGD step on a
# batch as one BLAS gemm with beta = 1 (_apply_sgd): a quarter faster than
# the product and then the update at 300 x 784; for small matrices the gemm
# call costs more than numpy's product and the update together.
ADD_PRODUCT_SIZE = 1 << 16

# Buffers are kept for this many batch sizes (training, last partial batch,
# evaluation, and one spare) before the oldest is dropped.
_KEPT_BATCH_SIZES = 4


class NonFiniteGradient(ArithmeticError):
    """Raised by a fused update that found a NaN or infinite gradient and changed nothing."""


class BatchBuffers:
    """Arrays a layer reuses from step to step, one set per batch size.

    ``get(key, name, shape, dtype)`` returns the array `name` of the set
    `key` (a batch size or a batch shape), allocating it on first use only,
    so a training loop allocates nothing large after its first step.
    """

    def __init__(self):
        self._sets = {}

    def get(self, key, name, shape, dtype):
        arrays = self._set(key)
        array = arrays.get(name)
        if array is None:
            array = arrays[name] = np.empty(shape, dtype)
        return array

    def get_made(self, key, name, make):
        """What ``make()`` returns (a tuple of arrays, say), made on first use and kept under `name` as by ``get``."""
        arrays = self._set(key)
        found = arrays.get(name)
        if found is None:
            found = arrays[name] = make()
        return found

    def _set(self, key):
        arrays = self._sets.get(key)
        if arrays is None:
            if len(self._sets) >= _KEPT_BATCH_SIZES:
                del self._sets[next(iter(self._sets))]
            arrays = self._sets[key] = {}
        return arrays


class Dense(Layer):
    """Fully connected layer ``y = x W^T + b`` on a batch ``x`` of shape ``(N, in_features)``.

    ``params["weight"]`` has shape ``(out_features, in_features)`` and
    ``params["bias"]`` ``(out_features,)``, both drawn uniform in
    ``[-1/sqrt(in_features), 1/sqrt(in_features)]`` (PyTorch's default for
    ``nn.Linear``).  The activation comes as a separate layer (``ReLU()``,
    ``Sigmoid()``, ...); ``Sequential`` folds it into this layer's kernels.
    See :mod:`fastnn.kernels.batched_dense` for the formulas and for
    ``use_blas``: True computes the products with numpy's BLAS, False with
    compiled loops parallel over the batch (``Sequential`` picks); batches
    under ``SMALL_BATCH`` samples always take the single-thread loops.
    """

    mixes_with_blas = True

    def __init__(self, in_features, out_features, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        self.dtype = check_dtype(dtype)
        generator = make_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        shapes = {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}
        for name, shape in shapes.items():
            # Rows that start on a cache line: a batch-1 step streams the weights twice and every vector
            # load then touches one line, not two (a quarter faster for 784-300 float32, see _memory).
            self.params[name] = aligned_empty(shape, self.dtype)
            self.params[name][...] = generator.uniform(-bound, bound, shape)
            self.grads[name] = aligned_zeros(shape, self.dtype)
        self.use_blas = True
        self._buffers = BatchBuffers()
        self._x = None
        self._y = None
        self._delta = None
        self._bound = math.inf

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"Dense expects samples of shape ({self.in_features},), got {tuple(input_shape)}")
        return (self.out_features,)

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "dtype": self.dtype.name}

    def forward(self, x):
        """x (N, in_features) -> (N, out_features)."""
        return self._forward(self._input(x, (self.in_features,)), IDENTITY).copy()

    def backward(self, grad_output):
        """grad_output (N, out_features) -> gradient for x (N, in_features); fills ``grads``."""
        y = self._require("_y")
        grad = as_float_array(grad_output, "grad_output", self.dtype, shape=y.shape)
        return self._backward(grad, IDENTITY, True).copy()

    def _forward(self, x, code):
        """Trusted path: x is a C-contiguous batch of this layer's dtype; `code` is a fused activation.

        Returns a buffer that the next call of the same batch size overwrites.
        """
        n = x.shape[0]
        out = self._buffers.get(n, "out", (n, self.out_features), self.dtype)
        weight = self.params["weight"]
        bias = self.params["bias"]
        if n < SMALL_BATCH:
            dense_forward_serial(x, weight, bias, code, out)
        elif self.use_blas:
            product = self._buffers.get(n, "product", (self.out_features, n), self.dtype)
            np.matmul(weight, x.T, out=product)
            bias_activate_transposed(product, bias, code, out)
        else:
            dense_forward(x, weight, bias, code, out)
        self._x = x
        self._y = out
        return out

    def _backward(self, grad, code, need_input_grad):
        """Trusted path of backward after ``_forward(x, code)``; returns None without `need_input_grad`."""
        x = self._x
        n = x.shape[0]
        delta = self._buffers.get(n, "delta", (n, self.out_features), self.dtype)
        dense_delta(grad, self._y, code, delta, self.grads["bias"])
        weight = self.params["weight"]
        if n < SMALL_BATCH:
            dense_grad_weight_serial(delta, x, self.grads["weight"])
        elif self.use_blas:
            np.matmul(delta.T, x, out=self.grads["weight"])
        else:
            dense_grad_weight(delta, x, self.grads["weight"])
        if not need_input_grad:
            return None
        grad_input = self._buffers.get(n, "grad_input", (n, self.in_features), self.dtype)
        if n < SMALL_BATCH:
            dense_grad_input_serial(delta, weight, grad_input)
        elif self.use_blas:
            np.matmul(delta, weight, out=grad_input)
        else:
            dense_grad_input(delta, weight, grad_input)
        return grad_input

    def _backward_sgd(self, grad, code, need_input_grad, lr):
        """Trusted path: back propagation fused with the plain SGD update ``w -= lr * grad`` (small batches).

        ``grads`` is not filled.  Raises NonFiniteGradient, leaving the
        weights as they were, when the error term is not finite.
        """
        x = self._x
        n = x.shape[0]
        delta = self._buffers.get(n, "delta", (n, self.out_features), self.dtype)
        grad_input = self._buffers.get(n, "grad_input", (n, self.in_features), self.dtype) if need_input_grad else delta
        if not dense_backward_sgd(grad, self._y, code, x, self.params["weight"], self.params["bias"], lr, delta,
                                  grad_input, need_input_grad):
            raise NonFiniteGradient(f"{type(self).__name__}: the error term is not finite")
        return grad_input if need_input_grad else None

    def _backward_deferred(self, grad, code, need_input_grad):
        """Trusted BLAS path for plain SGD: the error term, ``grads["bias"]`` and the input gradient now.

        The weights are left for :meth:`_apply_sgd` (or
        :meth:`_store_weight_grad`), once every layer's gradient is known
        to be finite.  Sets ``_bound``, which bounds every entry of the
        weight and bias gradients (infinite when the error term is not
        finite; see kernels.batched_dense.dense_delta).
        """
        x = self._x
        n = x.shape[0]
        delta = self._delta = self._buffers.get(n, "delta", (n, self.out_features), self.dtype)
        column_sum = dense_delta(grad, self._y, code, delta, self.grads["bias"])
        # |W_grad[o, i]| <= sum_n |delta[n, o]| |x[n, i]| <= column_sum * sum |x| (NaN or inf if not finite)
        self._bound = float(column_sum) * max(float(magnitude_sum(x)), 1.0)
        if not need_input_grad:
            return None
        grad_input = self._buffers.get(n, "grad_input", (n, self.in_features), self.dtype)
        np.matmul(delta, self.params["weight"], out=grad_input)
        return grad_input

    def _apply_sgd(self, lr):
        """After ``_backward_deferred``, the gradients known finite: ``W -= lr * delta^T x``, ``b -= lr * b_grad``.

        Large weight matrices take the product straight into the weights in
        one BLAS call, and ``grads["weight"]`` is not stored; small ones
        store it and update from it.
        """
        weight = self.params["weight"]
        if weight.size >= ADD_PRODUCT_SIZE:
            add_product(-lr, self._delta, self._x, weight)
        else:
            self._store_weight_grad()
            sgd_update(weight, self.grads["weight"], weight, lr, 0.0, False, 0.0)
        bias = self.params["bias"]
        sgd_update(bias, self.grads["bias"], bias, lr, 0.0, False, 0.0)

    def _store_weight_grad(self):
        """After ``_backward_deferred``: ``grads["weight"] = delta^T x``, for the optimizer's checked update."""
        np.matmul(self._delta.T, self._x, out=self.grads["weight"])
