"""The fully connected layer on a whole mini-batch (fastnn.nn.Dense).

The tutorial's layer (fc chapter) for one column vector is ``a = f(W x + b)``
with ``W`` of shape ``(out, in)``; back propagation gives the error term
``delta = f'(a) * grad_a`` (formula 8, written with the gradient of the loss
instead of the tutorial's negative error), ``W_grad = delta x^T``,
``b_grad = delta`` and the error of the layer below ``W^T delta``.  Here the
samples are the rows of a batch ``x`` of shape ``(N, in)``:

    a = f(x W^T + b)                  (N, out)
    delta = grad_a * f'(a)            (N, out)
    W_grad = delta^T x                (out, in), summed over the batch
    b_grad = sum over n of delta[n]   (out,)
    grad_x = delta W                  (N, in)

fastnn.nn.Dense computes the three matrix products either with numpy's BLAS
or with the compiled loops below.  BLAS is faster for the big layers of an
MLP from a batch of about 4 samples on; below that the loops win (a BLAS
outer product for the weight gradient of one sample costs 10-30x the loop).
A multithreaded BLAS call right after a Numba ``prange`` region stalls for
milliseconds (both thread pools want the same cores, see
PERFORMANCE_NOTES), so a model that also holds parallel compiled layers
(convolutions) runs its dense layers on the parallel loops, and a model that
uses BLAS runs the small batches on the ``_serial`` twins and small
products on one BLAS thread (fastnn._blas).  With plain SGD, small batches
skip the stored weight gradient altogether (:func:`dense_backward_sgd`),
and the dense layers that end a model take their whole step in one call
(:func:`dense_chain_sgd_step`); larger batches add ``-lr * delta^T x``
straight into the weights with BLAS once :func:`dense_delta` and
:func:`magnitude_sum` bound every gradient as finite (fastnn.nn.Dense).

None of the loops reduces across threads: each thread owns whole output rows
and sums over the batch in order, so every thread count gives the same bits.
"""

import math

import numpy as np
from numba import prange

from ._jit import jit
from .activation import IDENTITY, RELU, activate, derivative
from .loss import SOFTMAX_CROSS_ENTROPY, labels_in_range, softmax_cross_entropy, squared_error
from .optim import all_finite

# dense_chain_sgd_step's status when it was asked to check the batch and found a NaN or infinite input,
# a label out of range or a NaN or infinite target (nothing changed).
BAD_BATCH = -2


@jit
def _forward_rows(x, weight, bias, code, out, first, last):
    """Samples ``first..last-1`` of :func:`dense_forward`.

    Four output units at a time share each load of the input row (four
    scalar accumulators stay in registers): about 3x faster than one
    contiguous dot product per output once the weights outgrow the L1 cache.
    """
    n_out = weight.shape[0]
    n_in = weight.shape[1]
    for n in range(first, last):
        row = x[n]
        o = 0
        while o + 4 <= n_out:
            w0 = weight[o]
            w1 = weight[o + 1]
            w2 = weight[o + 2]
            w3 = weight[o + 3]
            a0 = bias[o]
            a1 = bias[o + 1]
            a2 = bias[o + 2]
            a3 = bias[o + 3]
            for i in range(n_in):
                v = row[i]
                a0 += v * w0[i]
                a1 += v * w1[i]
                a2 += v * w2[i]
                a3 += v * w3[i]
            out[n, o] = activate(a0, code)
            out[n, o + 1] = activate(a1, code)
            out[n, o + 2] = activate(a2, code)
            out[n, o + 3] = activate(a3, code)
            o += 4
        for rest in range(o, n_out):
            w = weight[rest]
            acc = bias[rest]
            for i in range(n_in):
                acc += row[i] * w[i]
            out[n, rest] = activate(acc, code)


# prange's index is unsigned: np.int64 lets the call reuse the int64 compilation of the serial kernel
# instead of compiling the block function a second time (seconds per kernel on a cold cache).
@jit(parallel=True)
def dense_forward(x, weight, bias, code, out):
    """``out = f(x W^T + b)``: x (N, in), weight (out, in), bias (out,), out (N, out); parallel over samples."""
    for n in prange(x.shape[0]):
        _forward_rows(x, weight, bias, code, out, np.int64(n), np.int64(n) + 1)


@jit
def dense_forward_serial(x, weight, bias, code, out):
    """:func:`dense_forward` on one thread (small batches, and next to BLAS calls)."""
    _forward_rows(x, weight, bias, code, out, 0, x.shape[0])


@jit
def bias_activate_transposed(product, bias, code, out):
    """``out[n, o] = f(product[o, n] + b[o])`` after the BLAS product ``W x^T``: product (out, N), out (N, out).

    BLAS computes ``W x^T`` (weights as stored) 15-25% faster than ``x W^T``
    at the shapes of an MLP; reading it transposed here costs little.
    """
    for o in range(product.shape[0]):
        column = product[o]
        b = bias[o]
        for n in range(column.shape[0]):
            out[n, o] = activate(column[n] + b, code)


@jit
def dense_delta(grad_out, y, code, delta, grad_bias):
    """``delta = grad_out * f'(y)`` and ``b_grad = sum over n of delta[n]``.

    grad_out, y, delta (N, out); grad_bias (out,).  `delta` may be `grad_out`.
    The batch sum runs in sample order, so it does not depend on threads.
    Returns ``max_o sum_n |delta[n, o]|`` (infinite when some delta is NaN
    or infinite): times ``max |x|`` (or anything larger, such as
    :func:`magnitude_sum`) it bounds every entry of ``W_grad`` and
    ``b_grad``, so a finite bound proves them finite without reading them.
    """
    T = delta.dtype.type
    grad_bias[:] = 0
    magnitude = np.zeros(grad_bias.shape[0], delta.dtype)
    check = T(0)
    for n in range(grad_out.shape[0]):
        g = grad_out[n]
        a = y[n]
        d = delta[n]
        for o in range(g.shape[0]):
            value = g[o] * derivative(a[o], code)
            d[o] = value
            grad_bias[o] += value
            magnitude[o] += abs(value)
            check += value * 0
    if check != 0:
        return T(np.inf)
    largest = T(0)
    for o in range(magnitude.shape[0]):
        largest = max(largest, magnitude[o])
    return largest


@jit
def magnitude_sum(values):
    """``sum |v|`` over `values` (any shape, C order): NaN or infinite when some value is.

    At least ``max |v|``, and a branch-free loop that vectorizes (a running
    maximum does not).
    """
    flat = values.reshape(-1)
    total = flat.dtype.type(0)
    for i in range(flat.shape[0]):
        total += abs(flat[i])
    return total


@jit
def _combine_rows(coefficients, rows, out):
    """``out = sum_k coefficients[k] * rows[k]``, adding k in order, four rows per pass over `out`.

    coefficients (K,), rows (K, M), out (M,).  Four rows per pass cost one
    load and store of `out` per four multiply-adds instead of one each.
    """
    out[:] = 0
    n_rows = rows.shape[0]
    k = 0
    while k + 4 <= n_rows:
        c0 = coefficients[k]
        c1 = coefficients[k + 1]
        c2 = coefficients[k + 2]
        c3 = coefficients[k + 3]
        r0 = rows[k]
        r1 = rows[k + 1]
        r2 = rows[k + 2]
        r3 = rows[k + 3]
        for i in range(out.shape[0]):
            out[i] += c0 * r0[i] + c1 * r1[i] + c2 * r2[i] + c3 * r3[i]
        k += 4
    for rest in range(k, n_rows):
        c = coefficients[rest]
        r = rows[rest]
        for i in range(out.shape[0]):
            out[i] += c * r[i]


@jit
def _grad_weight_rows(delta, x, grad_weight, first, last):
    """Rows ``first..last-1`` of ``W_grad = delta^T x``: row o adds the samples in order."""
    for o in range(first, last):
        _combine_rows(delta[:, o], x, grad_weight[o])


@jit(parallel=True)
def dense_grad_weight(delta, x, grad_weight):
    """``W_grad = delta^T x``: delta (N, out), x (N, in), grad_weight (out, in); parallel over output rows."""
    for o in prange(grad_weight.shape[0]):
        _grad_weight_rows(delta, x, grad_weight, np.int64(o), np.int64(o) + 1)


@jit
def dense_grad_weight_serial(delta, x, grad_weight):
    """:func:`dense_grad_weight` on one thread."""
    _grad_weight_rows(delta, x, grad_weight, 0, grad_weight.shape[0])


@jit
def _grad_input_rows(delta, weight, grad_input, first, last):
    """Samples ``first..last-1`` of ``grad_x = delta W``: sample n adds the output units in order."""
    for n in range(first, last):
        _combine_rows(delta[n], weight, grad_input[n])


@jit(parallel=True)
def dense_grad_input(delta, weight, grad_input):
    """``grad_x = delta W``: delta (N, out), weight (out, in), grad_input (N, in); parallel over samples."""
    for n in prange(delta.shape[0]):
        _grad_input_rows(delta, weight, grad_input, np.int64(n), np.int64(n) + 1)


@jit
def dense_grad_input_serial(delta, weight, grad_input):
    """:func:`dense_grad_input` on one thread."""
    _grad_input_rows(delta, weight, grad_input, 0, delta.shape[0])


@jit
def activation_forward(values, code, out):
    """``out = f(values)`` element-wise (same shape, C order), one branch-free loop per activation.

    Same values as kernels.activation.activate_array; the loop per code lets
    LLVM vectorize it (3-5x on the large outputs of a convolution).
    """
    x = values.reshape(-1)
    y = out.reshape(-1)
    zero = x.dtype.type(0)
    if code == RELU:
        for i in range(x.shape[0]):
            y[i] = max(x[i], zero)
    elif code == IDENTITY:
        y[:] = x
    else:
        for i in range(x.shape[0]):
            y[i] = activate(x[i], code)


@jit
def activation_grad(grad_out, y, code, grad_in):
    """``grad_in = grad_out * f'(y)`` element-wise from the activation's output `y` (same shapes, C order)."""
    g = grad_out.reshape(-1)
    a = y.reshape(-1)
    out = grad_in.reshape(-1)
    zero = g.dtype.type(0)
    if code == RELU:
        for i in range(g.shape[0]):
            out[i] = g[i] if a[i] > zero else zero
    elif code == IDENTITY:
        out[:] = g
    else:
        for i in range(g.shape[0]):
            out[i] = g[i] * derivative(a[i], code)


@jit
def dense_backward_sgd(grad_out, y, code, x, weight, bias, lr, delta, grad_input, need_input):
    """Back propagation and the plain SGD update of a small batch in one pass over the weights.

    ``delta = grad_out * f'(y)``; then, row by row of ``W``, ``grad_x = delta W``
    with the weights before the update (only when `need_input`),
    ``W -= lr * delta^T x`` (sample by sample) and ``b -= lr * sum_n delta[n]``.
    Returns False, having changed nothing, when some delta is NaN or
    infinite.  Shapes as in :func:`dense_delta` and :func:`dense_grad_input`;
    `grad_input` is ignored without `need_input`.  ``W_grad`` is never
    stored: for a batch of one sample the weights are read twice per step
    (forward and this pass) instead of five times.  Rows whose error term is
    exactly zero (ReLU's inactive units, about half of them) are neither
    read nor written: adding ``0 * x`` changes nothing, x being finite.
    """
    T = weight.dtype.type
    rate = T(lr)
    n_samples = grad_out.shape[0]
    n_out = weight.shape[0]
    n_in = weight.shape[1]
    check = T(0)
    for n in range(n_samples):
        for o in range(n_out):
            d = grad_out[n, o] * derivative(y[n, o], code)
            delta[n, o] = d
            check += d * 0
    if check != 0:
        return False
    if need_input:
        grad_input[:] = 0
    if n_samples == 1 and need_input:
        # One sample: the input gradient and the update share one pass over each weight row.
        g = grad_input[0]
        row = x[0]
        for o in range(n_out):
            d = delta[0, o]
            if d != 0:
                w = weight[o]
                step = rate * d
                for i in range(n_in):
                    g[i] += d * w[i]
                    w[i] -= step * row[i]
                bias[o] -= rate * d
        return True
    for o in range(n_out):
        w = weight[o]
        total = T(0)
        for n in range(n_samples):
            d = delta[n, o]
            if d != 0:
                total += d
                if need_input:
                    g = grad_input[n]
                    for i in range(n_in):
                        g[i] += d * w[i]
        for n in range(n_samples):
            d = delta[n, o]
            if d != 0:
                step = rate * d
                row = x[n]
                for i in range(n_in):
                    w[i] -= step * row[i]
        bias[o] -= rate * total
    return True


@jit
def dense_chain_sgd_step(x, weights, biases, codes, outputs, deltas, grad_inputs, grad, loss, labels, targets, lr,
                         input_grad, activation_below, check_batch):
    """One plain SGD step of a chain of dense layers on a small batch, in one call.

    The tuples `weights`, `biases`, `codes`, `outputs`, `deltas` and
    `grad_inputs` hold one entry per layer.  Forward as
    :func:`dense_forward_serial`: ``outputs[k] = f_k(in_k W_k^T + b_k)`` with
    ``in_0 = x`` (N, in) and ``in_k = outputs[k-1]``.  The loss of the last
    output against `labels` (N,) or the target rows `targets` (N, K) (`loss`
    is SOFTMAX_CROSS_ENTROPY or SQUARED_ERROR; see fastnn.kernels.loss) writes
    the gradient of its batch mean into `grad` (N, K).  Then
    :func:`dense_backward_sgd` from the last layer down; the first layer
    computes the gradient for `x` into ``grad_inputs[0]`` only if
    `input_grad` (the chain ends a model with trained layers below it;
    otherwise ``grad_inputs[0]`` is not used), times the derivative of
    `activation_below` read from `x` (IDENTITY for the plain gradient).  The same
    kernels in the same order as Sequential's layer-by-layer step, without
    a Python call per kernel (inlined here, LLVM may round a few operations
    differently).  With `check_batch` the values of x, `labels` and `targets`
    are checked first: a batch this small costs less to check here than
    one more kernel call costs.

    Returns ``(loss_sum, correct, status)``: status 0 when the step is done,
    BAD_BATCH when `check_batch` found a NaN or infinite input or target or
    a label outside ``[0, K)``, -1 when the loss is not finite (nothing
    changed in either case), ``k + 1`` when the error term of layer k is not
    finite (the layers above k are updated).
    """
    n_layers = len(weights)
    n = x.shape[0]
    if check_batch and not (all_finite(x) and labels_in_range(labels, grad.shape[1]) and all_finite(targets)):
        return math.nan, 0, BAD_BATCH
    below = x
    for k in range(n_layers):
        _forward_rows(below, weights[k], biases[k], codes[k], outputs[k], 0, n)
        below = outputs[k]
    scale = 1.0 / n
    if loss == SOFTMAX_CROSS_ENTROPY:
        loss_sum, correct = softmax_cross_entropy(below, labels, scale, grad)
    else:
        loss_sum, correct = squared_error(below, targets, labels, scale, grad)
    if not math.isfinite(loss_sum):
        return loss_sum, correct, -1
    error = grad
    for j in range(n_layers):
        k = n_layers - 1 - j
        below = x if k == 0 else outputs[k - 1]
        if not dense_backward_sgd(error, outputs[k], codes[k], below, weights[k], biases[k], lr, deltas[k],
                                  grad_inputs[k], k > 0 or input_grad):
            return loss_sum, correct, k + 1
        error = grad_inputs[k]
    if input_grad and activation_below != IDENTITY:
        for i in range(n):
            g = grad_inputs[0][i]
            row = x[i]
            for c in range(g.shape[0]):
                g[c] *= derivative(row[c], activation_below)
    return loss_sum, correct, 0
