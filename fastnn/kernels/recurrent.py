"""The recurrent layer: one step forward and back propagation through time (BPTT).

The tutorial's recurrent layer computes, for t = 1..T,

    net_t = U x_t + W s_{t-1} + b,    s_t = f(net_t),    s_0 = 0

(the tutorial has no bias; a zero ``b`` gives its layer exactly).  BPTT, with
``delta_t = dE/dnet_t``:

    delta_t = f'(s_t) * (g_t + W^T delta_{t+1}),    delta_{T+1} = 0
    dE/dU = sum_t delta_t x_t^T,   dE/dW = sum_t delta_t s_{t-1}^T,   dE/db = sum_t delta_t
    dE/dx_t = U^T delta_t

where ``g_t = dE/ds_t`` is the error arriving from above at step t.  The
tutorial instead hands its layer ``e_t = dE/dnet_t`` directly (``grad_is_net``):
then ``delta_t = e_t + f'(s_t) * W^T delta_{t+1}``.  Its published
``calc_delta_k`` multiplies by the state instead of ``f'`` (it overwrites
``state_list`` with the derivative and then uses the saved copy), takes that
state one step too late, and never computes U's gradient; the formulas above
are the correct ones, and the tests check them by central differences.

Weights are stored "input-major" so every inner loop runs over a contiguous
row: ``weight_ih`` is ``U^T`` with shape ``(F, H)``, ``weight_hh`` is ``W^T``
with shape ``(H, H)``.  Sequences are batch-first, ``x`` ``(N, T, F)``, states
``(N, T, H)``; with ``reverse`` a sequence is read from its last step to its
first (the backward half of a bidirectional layer), so that ``s_{t-1}`` above
is the state of step t+1.  All arrays share one float dtype (float32 or
float64); C-contiguous, shapes checked by the caller.
"""

import numpy as np
from numba import prange

from ._jit import jit
from .activation import RELU, SIGMOID, TANH, derivative
from .optim import all_finite
from .vecmath import flush_subnormals, restore_fp, sigmoid, tanh

# Samples advanced together through the time loop: each weight row read from
# cache serves all of them.  Blocks are also the unit of parallel work.
BLOCK = 4
# Weight-gradient rows summed together, sharing each read of a delta vector.
GROUP = 4


@jit(inline=True)
def activate_inplace(values, code):
    """``values = f(values)`` for activation `code`: TANH, SIGMOID, RELU or IDENTITY (the fronts pass no other).

    The loops vectorize: no libm call.
    """
    if code == TANH:
        for j in range(values.shape[0]):
            values[j] = tanh(values[j])
    elif code == SIGMOID:
        for j in range(values.shape[0]):
            values[j] = sigmoid(values[j])
    elif code == RELU:
        zero = type(values[0])(0)
        for j in range(values.shape[0]):
            values[j] = values[j] if values[j] > zero else zero


# -- small dense products ---------------------------------------------------------------------
# The hot loops run over contiguous rows (length M = H or 4H).  The 4x4 forms
# combine four rows of one operand with four of the other per pass: sixteen
# multiply-adds for every eight loads and four stores, which keeps the
# vector units busy instead of the load and store ports.

@jit(inline=True)
def axpy(target, a, w):
    """``target += a w``."""
    for j in range(target.shape[0]):
        target[j] += a * w[j]


@jit(inline=True)
def axpy4(target, a0, a1, a2, a3, w0, w1, w2, w3):
    """``target += a0 w0 + a1 w1 + a2 w2 + a3 w3``."""
    for j in range(target.shape[0]):
        target[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]


@jit(inline=True)
def axpy_4x4(t0, t1, t2, t3, a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23,
             a30, a31, a32, a33, w0, w1, w2, w3):
    """``t_q += sum_k a_qk w_k`` for q, k = 0..3: four targets, four rows."""
    for j in range(t0.shape[0]):
        x0, x1, x2, x3 = w0[j], w1[j], w2[j], w3[j]
        t0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        t1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        t2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        t3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3


@jit(inline=True)
def dot(a, b):
    """``sum(a * b)`` over two vectors of one length."""
    acc = type(a[0])(0)
    for j in range(a.shape[0]):
        acc += a[j] * b[j]
    return acc


@jit(inline=True)
def dot4(w0, w1, w2, w3, v):
    """``(w0 . v, w1 . v, w2 . v, w3 . v)``."""
    s0 = s1 = s2 = s3 = type(v[0])(0)
    for j in range(v.shape[0]):
        vj = v[j]
        s0 += w0[j] * vj
        s1 += w1[j] * vj
        s2 += w2[j] * vj
        s3 += w3[j] * vj
    return s0, s1, s2, s3


@jit(inline=True)
def dot_4x4(w0, w1, w2, w3, v0, v1, v2, v3):
    """The sixteen dot products ``w_k . v_q``, returned as ``(k=0: q=0..3, k=1: q=0..3, ..)``."""
    zero = type(v0[0])(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for j in range(v0.shape[0]):
        y0, y1, y2, y3 = v0[j], v1[j], v2[j], v3[j]
        x = w0[j]
        s00 += x * y0
        s01 += x * y1
        s02 += x * y2
        s03 += x * y3
        x = w1[j]
        s10 += x * y0
        s11 += x * y1
        s12 += x * y2
        s13 += x * y3
        x = w2[j]
        s20 += x * y0
        s21 += x * y1
        s22 += x * y2
        s23 += x * y3
        x = w3[j]
        s30 += x * y0
        s31 += x * y1
        s32 += x * y2
        s33 += x * y3
    return s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33


@jit(inline=True)
def accumulate_project(x, weight, out):
    """``out += weight^T x``: x ``(I,)``, weight ``(I, M)`` input-major, out ``(M,)``."""
    rows = x.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        axpy4(out, x[i], x[i + 1], x[i + 2], x[i + 3], weight[i], weight[i + 1], weight[i + 2], weight[i + 3])
    for i in range(full, rows):
        axpy(out, x[i], weight[i])


@jit(inline=True)
def project(x, weight, bias, out):
    """``out = bias + weight^T x``: x ``(I,)``, weight ``(I, M)`` input-major, bias and out ``(M,)``."""
    for j in range(out.shape[0]):
        out[j] = bias[j]
    accumulate_project(x, weight, out)


@jit(inline=True)
def back_project(weight, delta, out):
    """``out = weight delta``: weight ``(I, M)`` input-major, delta ``(M,)``, out ``(I,)``, one dot per row."""
    rows = out.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        out[i], out[i + 1], out[i + 2], out[i + 3] = dot4(weight[i], weight[i + 1], weight[i + 2], weight[i + 3],
                                                          delta)
    for i in range(full, rows):
        out[i] = dot(weight[i], delta)


@jit
def project_inputs(x, weight, bias, out, n0, n1):
    """``out[n, t] = bias + weight^T x[n, t]`` for samples n0..n1-1 and every step.

    x ``(N, T, I)``, weight ``(I, M)``, out ``(N, T, M)``; four steps and
    four weight rows per pass.
    """
    steps, rows = x.shape[1], x.shape[2]
    full_steps, full_rows = steps - steps % 4, rows - rows % 4
    for n in range(n0, n1):
        a, o = x[n], out[n]
        for t in range(0, full_steps, 4):
            o0, o1, o2, o3 = o[t], o[t + 1], o[t + 2], o[t + 3]
            for j in range(o0.shape[0]):
                o0[j] = o1[j] = o2[j] = o3[j] = bias[j]
            for i in range(0, full_rows, 4):
                axpy_4x4(o0, o1, o2, o3,
                         a[t, i], a[t, i + 1], a[t, i + 2], a[t, i + 3],
                         a[t + 1, i], a[t + 1, i + 1], a[t + 1, i + 2], a[t + 1, i + 3],
                         a[t + 2, i], a[t + 2, i + 1], a[t + 2, i + 2], a[t + 2, i + 3],
                         a[t + 3, i], a[t + 3, i + 1], a[t + 3, i + 2], a[t + 3, i + 3],
                         weight[i], weight[i + 1], weight[i + 2], weight[i + 3])
            for i in range(full_rows, rows):
                row = weight[i]
                axpy(o0, a[t, i], row)
                axpy(o1, a[t + 1, i], row)
                axpy(o2, a[t + 2, i], row)
                axpy(o3, a[t + 3, i], row)
        for t in range(full_steps, steps):
            project(a[t], weight, bias, o[t])


@jit(inline=True)
def recur(weight, source, t_source, out, t_out, n0, n1):
    """``out[n, t_out] += weight^T source[n, t_source]`` for samples n0..n1-1.

    Four weight rows at a time, each group applied to all the samples
    (four per pass) while it is in cache.
    """
    rows = weight.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        w0, w1, w2, w3 = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
        n = n0
        while n + 4 <= n1:
            a0, a1, a2, a3 = source[n, t_source], source[n + 1, t_source], source[n + 2, t_source], \
                source[n + 3, t_source]
            axpy_4x4(out[n, t_out], out[n + 1, t_out], out[n + 2, t_out], out[n + 3, t_out],
                     a0[i], a0[i + 1], a0[i + 2], a0[i + 3], a1[i], a1[i + 1], a1[i + 2], a1[i + 3],
                     a2[i], a2[i + 1], a2[i + 2], a2[i + 3], a3[i], a3[i + 1], a3[i + 2], a3[i + 3],
                     w0, w1, w2, w3)
            n += 4
        for m in range(n, n1):
            a = source[m, t_source]
            axpy4(out[m, t_out], a[i], a[i + 1], a[i + 2], a[i + 3], w0, w1, w2, w3)
    for i in range(full, rows):
        for m in range(n0, n1):
            axpy(out[m, t_out], source[m, t_source, i], weight[i])


@jit(inline=True)
def back_recur(weight, deltas, t, out, n0, n1):
    """``out[n - n0] = weight deltas[n, t]`` for samples n0..n1-1 (weight ``(I, M)``, out rows ``(I,)``).

    Four weight rows at a time against four samples' deltas per pass.
    """
    rows = weight.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        w0, w1, w2, w3 = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
        n = n0
        while n + 4 <= n1:
            o0, o1, o2, o3 = out[n - n0], out[n + 1 - n0], out[n + 2 - n0], out[n + 3 - n0]
            (o0[i], o1[i], o2[i], o3[i], o0[i + 1], o1[i + 1], o2[i + 1], o3[i + 1],
             o0[i + 2], o1[i + 2], o2[i + 2], o3[i + 2], o0[i + 3], o1[i + 3], o2[i + 3], o3[i + 3]) = dot_4x4(
                w0, w1, w2, w3, deltas[n, t], deltas[n + 1, t], deltas[n + 2, t], deltas[n + 3, t])
            n += 4
        for m in range(n, n1):
            o = out[m - n0]
            o[i], o[i + 1], o[i + 2], o[i + 3] = dot4(w0, w1, w2, w3, deltas[m, t])
    for i in range(full, rows):
        for m in range(n0, n1):
            out[m - n0, i] = dot(weight[i], deltas[m, t])


@jit
def input_gradient(weight, deltas, grad_x, n0, n1):
    """``grad_x[n, t] = weight deltas[n, t]`` for samples n0..n1-1 and every step; four steps per pass."""
    steps, rows = deltas.shape[1], weight.shape[0]
    full_steps, full_rows = steps - steps % 4, rows - rows % 4
    for n in range(n0, n1):
        d, g = deltas[n], grad_x[n]
        for t in range(0, full_steps, 4):
            g0, g1, g2, g3 = g[t], g[t + 1], g[t + 2], g[t + 3]
            for i in range(0, full_rows, 4):
                (g0[i], g1[i], g2[i], g3[i], g0[i + 1], g1[i + 1], g2[i + 1], g3[i + 1],
                 g0[i + 2], g1[i + 2], g2[i + 2], g3[i + 2], g0[i + 3], g1[i + 3], g2[i + 3], g3[i + 3]) = dot_4x4(
                    weight[i], weight[i + 1], weight[i + 2], weight[i + 3], d[t], d[t + 1], d[t + 2], d[t + 3])
            for i in range(full_rows, rows):
                row = weight[i]
                g0[i], g1[i], g2[i], g3[i] = dot(row, d[t]), dot(row, d[t + 1]), dot(row, d[t + 2]), dot(row, d[t + 3])
        for t in range(full_steps, steps):
            back_project(weight, d[t], g[t])


@jit
def blocks(n_samples):
    """How many blocks of at most BLOCK samples cover `n_samples`."""
    return (n_samples + BLOCK - 1) // BLOCK


# Below this many multiply-adds a call runs on one thread: starting the thread pool costs more than it
# saves, and on a machine busy with other processes a parallel region can wait a whole time slice for
# every thread to be scheduled.
SERIAL_WORK = 1_000_000


def serial(n_samples, work):
    """True when the ``*_serial`` kernels should run: one block of samples, or less than SERIAL_WORK of `work`."""
    return n_samples <= BLOCK or work < SERIAL_WORK


@jit
def gradient_groups(features, hidden):
    """How many parallel work items :func:`weight_gradient_group` splits a weight gradient into."""
    return (features + GROUP - 1) // GROUP + (hidden + GROUP - 1) // GROUP + 1


@jit
def accumulate_rows(source, deltas, r0, r1, previous, reverse, target):
    """``target[r - r0] = sum_{n,t} source[n, t', r] * deltas[n, t]`` for rows r0..r1-1 (at most GROUP).

    ``t' = t`` or, with `previous`, the step before t in reading order (the
    zero state before the first step contributes nothing).  A full group
    takes four steps per pass; the order of the sums is fixed.
    """
    n_samples, steps = deltas.shape[0], deltas.shape[1]
    target[:] = 0
    first = 1 if previous else 0
    for n in range(n_samples):
        src, d = source[n], deltas[n]
        k = first
        if r1 - r0 == GROUP:
            t0, t1, t2, t3 = target[0], target[1], target[2], target[3]
            while k + 4 <= steps:
                # the four steps in reading order, and where their coefficients are
                ta, tb, tc, td = (steps - 1 - k, steps - 2 - k, steps - 3 - k, steps - 4 - k) if reverse \
                    else (k, k + 1, k + 2, k + 3)
                shift = (1 if reverse else -1) if previous else 0
                a, b, c, e = src[ta + shift], src[tb + shift], src[tc + shift], src[td + shift]
                axpy_4x4(t0, t1, t2, t3,
                         a[r0], b[r0], c[r0], e[r0], a[r0 + 1], b[r0 + 1], c[r0 + 1], e[r0 + 1],
                         a[r0 + 2], b[r0 + 2], c[r0 + 2], e[r0 + 2], a[r0 + 3], b[r0 + 3], c[r0 + 3], e[r0 + 3],
                         d[ta], d[tb], d[tc], d[td])
                k += 4
        while k < steps:
            t = steps - 1 - k if reverse else k
            ts = (t + 1 if reverse else t - 1) if previous else t
            for r in range(r0, r1):
                axpy(target[r - r0], src[ts, r], d[t])
            k += 1


@jit
def weight_gradient_group(x, states, deltas, reverse, g, grad_weight_ih, grad_weight_hh, grad_bias):
    """Work item `g` of the weight gradients ``dU^T = sum x_t delta_t``, ``dW^T = sum s_{t-1} delta_t``, ``db``.

    Items cover GROUP rows of ``grad_weight_ih``, then of ``grad_weight_hh``,
    then ``grad_bias``; each is summed over all samples and steps in one
    fixed order, so a parallel loop over items gives the same bits for any
    thread count.  With `reverse`, ``s_{t-1}`` is the state of step t+1.
    """
    features, hidden = x.shape[2], states.shape[2]
    x_groups = (features + GROUP - 1) // GROUP
    h_groups = (hidden + GROUP - 1) // GROUP
    if g < x_groups:
        r0 = g * GROUP
        r1 = min(features, r0 + GROUP)
        accumulate_rows(x, deltas, r0, r1, False, reverse, grad_weight_ih[r0:r1])
    elif g < x_groups + h_groups:
        r0 = (g - x_groups) * GROUP
        r1 = min(hidden, r0 + GROUP)
        accumulate_rows(states, deltas, r0, r1, True, reverse, grad_weight_hh[r0:r1])
    else:
        grad_bias[:] = 0
        for n in range(deltas.shape[0]):
            for t in range(deltas.shape[1]):
                delta = deltas[n, t]
                for j in range(delta.shape[0]):
                    grad_bias[j] += delta[j]


@jit
def rnn_step(x, state_prev, weight_ih, weight_hh, bias, code, state):
    """One step: ``state = f(U x + W state_prev + b)``; x ``(F,)``, states ``(H,)``."""
    project(x, weight_ih, bias, state)
    accumulate_project(state_prev, weight_hh, state)
    activate_inplace(state, code)


@jit
def rnn_forward_block(x, weight_ih, weight_hh, bias, code, reverse, initial, states, block):
    """Samples ``block*BLOCK ..`` of :func:`rnn_forward`, advanced together through the time loop."""
    n0, n1 = block * BLOCK, min(x.shape[0], (block + 1) * BLOCK)
    steps = x.shape[1]
    project_inputs(x, weight_ih, bias, states, n0, n1)
    for k in range(steps):
        t = steps - 1 - k if reverse else k
        if k > 0:
            recur(weight_hh, states, t + 1 if reverse else t - 1, states, t, n0, n1)
        elif initial.shape[0] > 0:
            recur(weight_hh, initial, 0, states, t, n0, n1)
        for n in range(n0, n1):
            activate_inplace(states[n, t], code)


# prange's index is unsigned: np.int64 lets the call reuse the int64 compilation of the serial kernel
# instead of compiling the block function a second time (seconds per kernel on a cold cache).
@jit(parallel=True)
def rnn_forward(x, weight_ih, weight_hh, bias, code, reverse, initial, states):
    """Run whole sequences: x ``(N, T, F)`` -> states ``(N, T, H)``.

    ``states[n, t] = f(U x[n, t] + W states[n, t -/+ 1] + b)``, starting from
    ``initial[n, 0]`` (``initial`` is ``(N, 1, H)``, or ``(0, 1, H)`` for a
    zero state); blocks of samples run in parallel, the time loop inside.
    """
    for block in prange(blocks(x.shape[0])):
        fp = flush_subnormals()
        rnn_forward_block(x, weight_ih, weight_hh, bias, code, reverse, initial, states, np.int64(block))
        restore_fp(fp)


@jit
def rnn_forward_serial(x, weight_ih, weight_hh, bias, code, reverse, initial, states):
    """:func:`rnn_forward` on the calling thread: for a single block, where starting threads only costs."""
    fp = flush_subnormals()
    for block in range(blocks(x.shape[0])):
        rnn_forward_block(x, weight_ih, weight_hh, bias, code, reverse, initial, states, block)
    restore_fp(fp)


@jit
def rnn_backward_block(states, weight_hh, code, reverse, grad, grad_is_net, deltas, block):
    """The delta recursion of :func:`rnn_backward` for samples ``block*BLOCK ..``."""
    n0, n1 = block * BLOCK, min(states.shape[0], (block + 1) * BLOCK)
    steps, hidden = states.shape[1], states.shape[2]
    carry = np.zeros((n1 - n0, hidden), states.dtype)  # W^T delta of the step processed before
    for k in range(steps - 1, -1, -1):
        t = steps - 1 - k if reverse else k
        for n in range(n0, n1):
            delta, s, g, c = deltas[n, t], states[n, t], grad[n, t], carry[n - n0]
            if grad_is_net:
                for j in range(hidden):
                    delta[j] = g[j] + derivative(s[j], code) * c[j]
            else:
                for j in range(hidden):
                    delta[j] = derivative(s[j], code) * (g[j] + c[j])
        if k > 0:
            back_recur(weight_hh, deltas, t, carry, n0, n1)


@jit(parallel=True)
def rnn_backward(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net,
                 deltas, grad_x, grad_weight_ih, grad_weight_hh, grad_bias):
    """BPTT over whole sequences (formulas in the module docstring).

    Inputs: x ``(N, T, F)``, states ``(N, T, H)`` from :func:`rnn_forward`
    run from a zero state, grad ``(N, T, H)`` (``dE/ds_t``, or ``dE/dnet_t``
    with ``grad_is_net``).  Outputs (overwritten): deltas ``(N, T, H)``
    (``dE/dnet_t``), grad_x ``(N, T, F)``, grad_weight_ih ``(F, H)``,
    grad_weight_hh ``(H, H)``, grad_bias ``(H,)``.

    The delta recursion runs per block of samples in parallel; the weight
    gradients are then summed in groups of rows (a parallel loop over
    groups, each summed over samples and steps in one fixed order), so the
    result is bit-identical for any thread count.
    """
    for block in prange(blocks(x.shape[0])):
        fp = flush_subnormals()
        b = np.int64(block)
        rnn_backward_block(states, weight_hh, code, reverse, grad, grad_is_net, deltas, b)
        input_gradient(weight_ih, deltas, grad_x, b * BLOCK, min(x.shape[0], (b + 1) * BLOCK))
        restore_fp(fp)
    for g in prange(gradient_groups(x.shape[2], states.shape[2])):
        fp = flush_subnormals()
        weight_gradient_group(x, states, deltas, reverse, np.int64(g), grad_weight_ih, grad_weight_hh, grad_bias)
        restore_fp(fp)


@jit
def rnn_backward_serial(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net,
                        deltas, grad_x, grad_weight_ih, grad_weight_hh, grad_bias):
    """:func:`rnn_backward` on the calling thread (same results, bit for bit)."""
    fp = flush_subnormals()
    for block in range(blocks(x.shape[0])):
        rnn_backward_block(states, weight_hh, code, reverse, grad, grad_is_net, deltas, block)
        input_gradient(weight_ih, deltas, grad_x, block * BLOCK, min(x.shape[0], (block + 1) * BLOCK))
    for g in range(gradient_groups(x.shape[2], states.shape[2])):
        weight_gradient_group(x, states, deltas, reverse, g, grad_weight_ih, grad_weight_hh, grad_bias)
    restore_fp(fp)


# -- one sequence in growable row buffers (the tutorial's RecurrentLayer) ---------------------
# The tutorial's layer takes one step per Python call and computes on demand.  These kernels read
# its storage as it is: row buffers with room to grow, the weights packed in one flat array, so
# that one call with few arguments does a whole pass.

@jit
def first_bad_row(x, first, last):
    """The first row r in ``first .. last-1`` of x ``(R, F)`` holding NaN or infinity, or -1."""
    for r in range(first, last):
        if not all_finite(x[r]):
            return r
    return -1


@jit(inline=True)
def split_rnn_params(params, features, hidden):
    """``(weight_ih (F, H), weight_hh (H, H))``: views of the flat ``params`` ``(F*H + H*H,)``."""
    cut = features * hidden
    return params[:cut].reshape((features, hidden)), params[cut:cut + hidden * hidden].reshape((hidden, hidden))


@jit
def rnn_sequence_forward(x, states, params, code, first, last):
    """Steps ``first .. last-1`` of one sequence without bias: ``s_{t+1} = f(U x_t + W s_t)``.

    x ``(R, F)`` holds step t's input in row t; states ``(R, H)`` holds the
    zero state in row 0 and writes the state after row t's input to row
    t+1 (rows ``first+1 .. last``); params is ``[U^T | W^T]`` flattened.
    Returns -1, or the first row of ``x[first:last]`` holding NaN or
    infinity, in which case nothing is computed.

    One sequence has no samples to block over: the input projections of all
    the steps run first (four steps per pass), then the recurrence row by
    row, without the batched kernels' per-block bookkeeping, which costs
    more than the arithmetic at the tutorial's 3 -> 2.
    """
    bad = first_bad_row(x, first, last)
    if bad >= 0 or last == first:
        return bad
    features, hidden, steps = x.shape[1], states.shape[1], last - first
    weight_ih, weight_hh = split_rnn_params(params, features, hidden)
    fp = flush_subnormals()
    # No bias: row 0, the zero state, serves as one (it is never written)
    project_inputs(x[first:last].reshape((1, steps, features)), weight_ih, states[0],
                   states[first + 1:last + 1].reshape((1, steps, hidden)), 0, 1)
    for t in range(first, last):
        state = states[t + 1]
        if t > 0:  # row 0 is the zero state: nothing to add
            accumulate_project(states[t], weight_hh, state)
        activate_inplace(state, code)
    restore_fp(fp)
    return -1


# What the single-sequence backward kernels return when the errors they were given hold NaN or infinity.
BAD_ERRORS = -2


@jit(inline=True)
def add_step_error(target, errors, t, count):
    """``target += e_t`` for step t of `count`: errors ``(H, 1)`` is the last step's (the others zero) or
    ``(count*H, 1)`` one per step."""
    hidden = target.shape[0]
    if errors.shape[0] != hidden:
        for j in range(hidden):
            target[j] += errors[t * hidden + j, 0]
    elif t == count - 1:
        for j in range(hidden):
            target[j] += errors[j, 0]


@jit
def rnn_sequence_backward(x, states, params, code, first, count, errors, deltas, grads):
    """BPTT over steps ``0 .. count-1`` of the sequence of :func:`rnn_sequence_forward`, after computing
    its steps ``first .. count-1``, with the tutorial's errors ``e_t = dE/dnet_t``:
    ``delta_t = e_t + f'(s_t) * W^T delta_{t+1}``.

    errors ``(H, 1)`` (the last step's, the others zero) or ``(count*H, 1)``
    (step after step).  Outputs: deltas ``(count, H)``, grads ``[dU^T |
    dW^T]`` flattened like params.  Returns -1; or, computing nothing,
    BAD_ERRORS when the errors hold NaN or infinity, else the first row of x
    holding NaN or infinity.
    """
    if not all_finite(errors):
        return BAD_ERRORS
    bad = rnn_sequence_forward(x, states, params, code, first, count)
    if bad >= 0:
        return bad
    features, hidden = x.shape[1], states.shape[1]
    weight_hh = split_rnn_params(params, features, hidden)[1]
    grad_ih, grad_hh = split_rnn_params(grads, features, hidden)
    fp = flush_subnormals()
    deltas[count - 1] = 0
    for t in range(count - 1, -1, -1):
        delta, state = deltas[t], states[t + 1]  # delta holds W^T delta_{t+1} until here
        for j in range(hidden):
            delta[j] = derivative(state[j], code) * delta[j]
        add_step_error(delta, errors, t, count)
        if t > 0:
            back_project(weight_hh, delta, deltas[t - 1])
    # One sequence: the gradients are sums of a few outer products, added step by step (s_0 = 0 adds nothing).
    grad_ih[:] = 0
    grad_hh[:] = 0
    for t in range(count):
        delta = deltas[t]
        for i in range(features):
            axpy(grad_ih[i], x[t, i], delta)
        if t > 0:
            for i in range(hidden):
                axpy(grad_hh[i], states[t, i], delta)
    restore_fp(fp)
    return -1
