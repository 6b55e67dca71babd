"""The LSTM layer: the four gates, cell and output over whole sequences, and BPTT.

The tutorial's formulas (its equations 1-6), for t = 1..T with ``h_0 = c_0 = 0``:

    i_t = sigmoid(W_i [h_{t-1}, x_t] + b_i)        input gate
    f_t = sigmoid(W_f [h_{t-1}, x_t] + b_f)        forget gate
    g_t = tanh(W_c [h_{t-1}, x_t] + b_c)           candidate cell state (the tutorial's c~)
    o_t = sigmoid(W_o [h_{t-1}, x_t] + b_o)        output gate
    c_t = f_t * c_{t-1} + i_t * g_t,    h_t = o_t * tanh(c_t)

Back propagation through time, with ``dh_t = dE/dh_t`` (the error from above
plus the recurrent term) and the cell error carried through the forget gate:

    dh_t = grad_t + sum_gates W_*h^T dnet_{*,t+1}
    dc_t = dh_t * o_t * (1 - tanh(c_t)^2) + dc_{t+1} * f_{t+1}
    dnet_o = dh_t * tanh(c_t) * o(1-o),   dnet_f = dc_t * c_{t-1} * f(1-f)
    dnet_i = dc_t * g_t * i(1-i),         dnet_g = dc_t * i_t * (1-g^2)
    dW_*h = sum_t dnet_{*,t} h_{t-1}^T,  dW_*x = sum_t dnet_{*,t} x_t^T,  db_* = sum_t dnet_{*,t}
    dE/dx_t = sum_gates W_*x^T dnet_{*,t}

The tutorial's published code drops the ``dc_{t+1} * f_{t+1}`` term, takes
the input-weight gradients from the last step only, gives the input and
output gate biases the forget gate's gradient and updates with gradient
names that do not exist; the formulas above are the correct ones (checked by
central differences in the tests).

Storage is packed and input-major, gates in the order (i, f, g, o):
``weight_ih`` ``(F, 4H)`` holds ``[W_ix^T | W_fx^T | W_cx^T | W_ox^T]``,
``weight_hh`` ``(H, 4H)`` the h-weights alike, ``bias`` ``(4H,)``, so that
``net_t = x_t @ weight_ih + h_{t-1} @ weight_hh + bias`` and every inner loop
runs over a contiguous row.  Sequences are batch-first: x ``(N, T, F)``;
h, c and tanh(c) ``(N, T, H)``; gates ``(N, T, 4H)`` hold the activated
gates (i, f, g, o).  All arrays share one float dtype, C-contiguous, shapes
checked by the caller.
"""

import numpy as np
from numba import prange

from ._jit import jit
from .blas import dgemm
from .optim import all_finite
from .recurrent import (BAD_ERRORS, BLOCK, accumulate_project, add_step_error, back_project, back_recur, blocks,
                        first_bad_row, gradient_groups, input_gradient, project, project_inputs, recur,
                        weight_gradient_group)
from .vecmath import flush_subnormals, prefer_wide_vectors, restore_fp, sigmoid, tanh


@jit
def lstm_cell(gates, c_prev, c, tanh_c, h):
    """Activate the gates ``(4H,)`` in place (order i, f, g, o) and set c, tanh(c) and h ``(H,)``.

    The gate blocks are slices indexed by j alone, and the activations and
    the cell run as two loops: measured 1.2-1.6x faster than one loop over
    computed indices ``gates[hidden + j]``, in float32 and float64.
    """
    prefer_wide_vectors()
    hidden = h.shape[0]
    i, f, g, o = gates[:hidden], gates[hidden:2 * hidden], gates[2 * hidden:3 * hidden], gates[3 * hidden:]
    for j in range(hidden):
        i[j] = sigmoid(i[j])
        f[j] = sigmoid(f[j])
        g[j] = tanh(g[j])
        o[j] = sigmoid(o[j])
    for j in range(hidden):
        cell = f[j] * c_prev[j] + i[j] * g[j]
        c[j] = cell
        tanh_c[j] = tanh(cell)
        h[j] = o[j] * tanh_c[j]


@jit
def lstm_step(x, h_prev, c_prev, weight_ih, weight_hh, bias, gates, c, tanh_c, h):
    """One step: x ``(F,)``, h_prev and c_prev ``(H,)`` -> gates ``(4H,)``, c, tanh_c, h ``(H,)``."""
    project(x, weight_ih, bias, gates)
    accumulate_project(h_prev, weight_hh, gates)
    lstm_cell(gates, c_prev, c, tanh_c, h)


@jit
def lstm_forward_block(x, weight_ih, weight_hh, bias, h0, c0, gates, c, tanh_c, h, block):
    """Samples ``block*BLOCK ..`` of :func:`lstm_forward`, advanced together through the time loop."""
    n0, n1 = block * BLOCK, min(x.shape[0], (block + 1) * BLOCK)
    steps = x.shape[1]
    start = h0.shape[0] > 0
    zero = np.zeros(h.shape[2], h.dtype)
    project_inputs(x, weight_ih, bias, gates, n0, n1)
    for t in range(steps):
        if t > 0:
            recur(weight_hh, h, t - 1, gates, t, n0, n1)
        elif start:
            recur(weight_hh, h0, 0, gates, 0, n0, n1)
        for n in range(n0, n1):
            c_prev = c[n, t - 1] if t > 0 else (c0[n, 0] if start else zero)
            lstm_cell(gates[n, t], c_prev, c[n, t], tanh_c[n, t], h[n, t])


# prange's index is unsigned: np.int64 lets the call reuse the int64 compilation of the serial kernel
# instead of compiling the block function a second time (seconds per kernel on a cold cache).
@jit(parallel=True)
def lstm_forward(x, weight_ih, weight_hh, bias, h0, c0, gates, c, tanh_c, h):
    """Run whole sequences: x ``(N, T, F)`` -> gates, c, tanh_c, h (overwritten).

    The state before the first step is ``h0[n, 0], c0[n, 0]`` (both ``(N, 1,
    H)``), or zero when they are ``(0, 1, H)``.  Blocks of samples run in
    parallel, the time loop inside.
    """
    for block in prange(blocks(x.shape[0])):
        fp = flush_subnormals()
        lstm_forward_block(x, weight_ih, weight_hh, bias, h0, c0, gates, c, tanh_c, h, np.int64(block))
        restore_fp(fp)


@jit
def lstm_forward_serial(x, weight_ih, weight_hh, bias, h0, c0, gates, c, tanh_c, h):
    """:func:`lstm_forward` on the calling thread: for a single block, where starting threads only costs."""
    fp = flush_subnormals()
    for block in range(blocks(x.shape[0])):
        lstm_forward_block(x, weight_ih, weight_hh, bias, h0, c0, gates, c, tanh_c, h, block)
    restore_fp(fp)


@jit
def lstm_backward_block(h, c, gates, tanh_c, weight_hh, grad_h, dnet, dh, block):
    """The recursion of :func:`lstm_backward` for samples ``block*BLOCK ..``."""
    n0, n1 = block * BLOCK, min(h.shape[0], (block + 1) * BLOCK)
    steps, hidden = h.shape[1], h.shape[2]
    carry_c = np.zeros((n1 - n0, hidden), h.dtype)  # dc_{t+1} * f_{t+1}
    one = type(carry_c[0, 0])(1)
    for n in range(n0, n1):
        dh[n, steps] = 0
    for t in range(steps - 1, -1, -1):
        for n in range(n0, n1):
            dh_t, g_t = dh[n, t + 1], grad_h[n, t]
            gate, tc, d, cc = gates[n, t], tanh_c[n, t], dnet[n, t], carry_c[n - n0]
            for j in range(hidden):
                dh_t[j] += g_t[j]
            for j in range(hidden):
                i = gate[j]
                f = gate[hidden + j]
                g = gate[2 * hidden + j]
                o = gate[3 * hidden + j]
                dc = dh_t[j] * o * (one - tc[j] * tc[j]) + cc[j]
                c_prev = c[n, t - 1, j] if t > 0 else type(dc)(0)
                d[j] = dc * g * i * (one - i)
                d[hidden + j] = dc * c_prev * f * (one - f)
                d[2 * hidden + j] = dc * i * (one - g * g)
                d[3 * hidden + j] = dh_t[j] * tc[j] * o * (one - o)
                cc[j] = dc * f
        back_recur(weight_hh, dnet, t, dh[n0:n1, t], n0, n1)  # recurrent part of dE/dh_{t-1}


@jit(parallel=True)
def lstm_backward(x, h, c, gates, tanh_c, weight_ih, weight_hh, grad_h,
                  dnet, dh, grad_x, grad_weight_ih, grad_weight_hh, grad_bias):
    """BPTT over whole sequences (formulas in the module docstring).

    Inputs: the forward pass's x, h, c, gates, tanh_c (run from zero h and
    c); grad_h ``(N, T, H)`` (``dE/dh_t`` from above).  Outputs
    (overwritten): dnet ``(N, T, 4H)`` (errors on the gates' weighted
    inputs, order i, f, g, o), dh ``(N, T+1, H)`` (total ``dE/dh``; index 0
    is the zero initial state, index t the output of step t), grad_x ``(N,
    T, F)``, grad_weight_ih ``(F, 4H)``, grad_weight_hh ``(H, 4H)``,
    grad_bias ``(4H,)``.

    The recursion runs per block of samples in parallel; the weight
    gradients are then summed in groups of rows, each in one fixed order,
    bit-identical for any thread count.
    """
    for block in prange(blocks(x.shape[0])):
        fp = flush_subnormals()
        b = np.int64(block)
        lstm_backward_block(h, c, gates, tanh_c, weight_hh, grad_h, dnet, dh, b)
        input_gradient(weight_ih, dnet, grad_x, b * BLOCK, min(x.shape[0], (b + 1) * BLOCK))
        restore_fp(fp)
    for g in prange(gradient_groups(x.shape[2], h.shape[2])):
        fp = flush_subnormals()
        weight_gradient_group(x, h, dnet, False, np.int64(g), grad_weight_ih, grad_weight_hh, grad_bias)
        restore_fp(fp)


@jit
def lstm_backward_serial(x, h, c, gates, tanh_c, weight_ih, weight_hh, grad_h,
                         dnet, dh, grad_x, grad_weight_ih, grad_weight_hh, grad_bias):
    """:func:`lstm_backward` on the calling thread (same results, bit for bit)."""
    fp = flush_subnormals()
    for block in range(blocks(x.shape[0])):
        lstm_backward_block(h, c, gates, tanh_c, weight_hh, grad_h, dnet, dh, block)
        input_gradient(weight_ih, dnet, grad_x, block * BLOCK, min(x.shape[0], (block + 1) * BLOCK))
    for g in range(gradient_groups(x.shape[2], h.shape[2])):
        weight_gradient_group(x, h, dnet, False, g, grad_weight_ih, grad_weight_hh, grad_bias)
    restore_fp(fp)


# -- one sequence in growable row buffers (the tutorial's LstmLayer) --------------------------

@jit(inline=True)
def split_lstm_params(params, features, hidden):
    """``(weight_ih (F, 4H), weight_hh (H, 4H), bias (4H,))``: views of the flat ``params``."""
    a, b = features * 4 * hidden, (features + hidden) * 4 * hidden
    return params[:a].reshape((features, 4 * hidden)), params[a:b].reshape((hidden, 4 * hidden)), \
        params[b:b + 4 * hidden]


@jit
def lstm_sequence_forward(x, h, c, tanh_c, gates, params, first, last, gemm):
    """Steps ``first .. last-1`` of one sequence kept in row buffers.

    x ``(R, F)`` holds step t's input in row t; h, c, tanh_c ``(R, H)`` and
    gates ``(R, 4H)`` hold the zero state in row 0 and the results of row
    t's input in row t+1; params is ``[weight_ih | weight_hh | bias]``
    flattened.  Returns -1, or the first row of ``x[first:last]`` holding
    NaN or infinity, in which case nothing is computed.  The input
    projections ``x_t @ weight_ih`` of all the steps run first: one BLAS
    product through the cblas dgemm at address `gemm` (``kernels.blas``),
    or, when `gemm` is 0, loops here (four steps per pass); then the
    recurrence, step by step on rows (one sequence: no samples to block over).
    """
    prefer_wide_vectors()
    bad = first_bad_row(x, first, last)
    if bad >= 0 or last == first:
        return bad
    features, hidden, steps = x.shape[1], h.shape[1], last - first
    weight_ih, weight_hh, bias = split_lstm_params(params, features, hidden)
    fp = flush_subnormals()
    if gemm:
        dgemm(gemm, x[first:last], False, weight_ih, 0.0, gates[first + 1:last + 1])
    else:
        project_inputs(x[first:last].reshape((1, steps, features)), weight_ih, bias,
                       gates[first + 1:last + 1].reshape((1, steps, 4 * hidden)), 0, 1)
    for t in range(first, last):
        net = gates[t + 1]
        if gemm:
            for j in range(net.shape[0]):
                net[j] += bias[j]
        if t > 0:  # row 0 is the zero state: nothing to add
            accumulate_project(h[t], weight_hh, net)
        lstm_cell(net, c[t], c[t + 1], tanh_c[t + 1], h[t + 1])
    restore_fp(fp)
    return -1


@jit
def lstm_sequence_backward(x, h, c, tanh_c, gates, params, first, count, errors, dnet, dh, grads, gemm):
    """BPTT over steps ``0 .. count-1`` of the sequence of :func:`lstm_sequence_forward`, after computing
    its steps ``first .. count-1``.

    errors ``(H, 1)`` (``dE/dh`` of the last step, the others zero) or
    ``(count*H, 1)`` (step after step).  Outputs: dnet ``(count, 4H)``, dh
    ``(count+1, H)`` (as in :func:`lstm_backward`), grads flattened like
    params.  The weight gradients ``x^T dnet`` and ``h_prev^T dnet`` are
    BLAS products through `gemm` as in the forward pass, or loops when it
    is 0.  The input gradient is not computed.  Returns -1; or, computing
    nothing, BAD_ERRORS when the errors hold NaN or infinity, else the
    first row of x holding NaN or infinity.
    """
    prefer_wide_vectors()
    if not all_finite(errors):
        return BAD_ERRORS
    bad = lstm_sequence_forward(x, h, c, tanh_c, gates, params, first, count, gemm)
    if bad >= 0:
        return bad
    features, hidden = x.shape[1], h.shape[1]
    weight_hh = split_lstm_params(params, features, hidden)[1]
    grad_ih, grad_hh, grad_bias = split_lstm_params(grads, features, hidden)
    carry_c = np.zeros(hidden, h.dtype)  # dc_{t+1} * f_{t+1}
    one = h.dtype.type(1)
    fp = flush_subnormals()
    dh[count] = 0
    for t in range(count - 1, -1, -1):
        dh_t = dh[t + 1]  # row t+1 belongs to step t; it holds the recurrent part already
        add_step_error(dh_t, errors, t, count)
        gate, d, tc, c_prev = gates[t + 1], dnet[t], tanh_c[t + 1], c[t]  # c[0] is the zero state
        # the gate blocks as slices, so that the loop indexes them all by j alone and vectorizes
        i, f, g, o = gate[:hidden], gate[hidden:2 * hidden], gate[2 * hidden:3 * hidden], gate[3 * hidden:]
        di, df, dg, do = d[:hidden], d[hidden:2 * hidden], d[2 * hidden:3 * hidden], d[3 * hidden:]
        for j in range(hidden):
            dc = dh_t[j] * o[j] * (one - tc[j] * tc[j]) + carry_c[j]
            di[j] = dc * g[j] * i[j] * (one - i[j])
            df[j] = dc * c_prev[j] * f[j] * (one - f[j])
            dg[j] = dc * i[j] * (one - g[j] * g[j])
            do[j] = dh_t[j] * tc[j] * o[j] * (one - o[j])
            carry_c[j] = dc * f[j]
        back_project(weight_hh, d, dh[t])  # recurrent part of dE/dh_{t-1}
    if gemm:
        dgemm(gemm, x[:count], True, dnet, 0.0, grad_ih)
        dgemm(gemm, h[1:count], True, dnet[1:count], 0.0, grad_hh)  # h[0], the zero state, adds nothing
    rows = slice(1, count + 1)
    seen_h, flat_dnet = h[rows].reshape((1, count, hidden)), dnet.reshape((1, count, 4 * hidden))
    inputs = x[:count].reshape((1, count, features))
    groups = gradient_groups(features, hidden)
    for g in range(groups - 1 if gemm else 0, groups):  # the last group is the bias
        weight_gradient_group(inputs, seen_h, flat_dnet, False, g, grad_ih, grad_hh, grad_bias)
    restore_fp(fp)
    return -1
