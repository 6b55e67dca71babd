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
from .vecmath import sigmoid, tanh

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


@jit(inline=True)
def axpy4(target, a0, a1, a2, a3, w0, w1, w2, w3):
    """``target += a0 w0 + a1 w1 + a2 w2 + a3 w3``: four rows per pass, one load and store of `target`."""
    for j in range(target.shape[0]):
        target[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]


@jit(inline=True)
def axpy(target, a, w):
    """``target += a w``."""
    for j in range(target.shape[0]):
        target[j] += a * w[j]


@jit(inline=True)
def dot4(w0, w1, w2, w3, v):
    """``(w0 . v, w1 . v, w2 . v, w3 . v)``: four dot products sharing each read of `v`."""
    s0 = s1 = s2 = s3 = type(v[0])(0)
    for j in range(v.shape[0]):
        vj = v[j]
        s0 += w0[j] * vj
        s1 += w1[j] * vj
        s2 += w2[j] * vj
        s3 += w3[j] * vj
    return s0, s1, s2, s3


@jit(inline=True)
def dot(a, b):
    """``sum(a * b)`` over two vectors of one length."""
    acc = type(a[0])(0)
    for j in range(a.shape[0]):
        acc += a[j] * b[j]
    return acc


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

    x ``(N, T, I)``, weight ``(I, M)``, out ``(N, T, M)``.
    """
    for n in range(n0, n1):
        for t in range(x.shape[1]):
            project(x[n, t], weight, bias, out[n, t])


@jit(inline=True)
def recur(weight, source, t_source, out, t_out, n0, n1):
    """``out[n, t_out] += weight^T source[n, t_source]`` for samples n0..n1-1.

    Four weight rows at a time, read once from cache for all the samples.
    """
    rows = weight.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        w0, w1, w2, w3 = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
        for n in range(n0, n1):
            a = source[n, t_source]
            axpy4(out[n, t_out], a[i], a[i + 1], a[i + 2], a[i + 3], w0, w1, w2, w3)
    for i in range(full, rows):
        for n in range(n0, n1):
            axpy(out[n, t_out], source[n, t_source, i], weight[i])


@jit(inline=True)
def back_recur(weight, deltas, t, out, n0, n1):
    """``out[n - n0] = weight deltas[n, t]`` for samples n0..n1-1 (weight ``(I, M)``, out rows ``(I,)``)."""
    rows = weight.shape[0]
    full = rows - rows % 4
    for i in range(0, full, 4):
        w0, w1, w2, w3 = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
        for n in range(n0, n1):
            o = out[n - n0]
            o[i], o[i + 1], o[i + 2], o[i + 3] = dot4(w0, w1, w2, w3, deltas[n, t])
    for i in range(full, rows):
        for n in range(n0, n1):
            out[n - n0, i] = dot(weight[i], deltas[n, t])


@jit
def input_gradient(weight, deltas, grad_x, n0, n1):
    """``grad_x[n, t] = weight deltas[n, t]`` for samples n0..n1-1 and every step."""
    for n in range(n0, n1):
        for t in range(deltas.shape[1]):
            back_project(weight, deltas[n, t], grad_x[n, t])


@jit
def blocks(n_samples):
    """How many blocks of at most BLOCK samples cover `n_samples`."""
    return (n_samples + BLOCK - 1) // BLOCK


def serial(n_samples):
    """True when one block holds every sample: the ``*_serial`` kernels then avoid starting the thread pool.

    (On a loaded machine a parallel region waits for every thread to be
    scheduled, which costs more than a single block's work.)
    """
    return n_samples <= BLOCK


@jit
def gradient_groups(features, hidden):
    """How many parallel work items :func:`weight_gradient_group` splits a weight gradient into."""
    return (features + GROUP - 1) // GROUP + (hidden + GROUP - 1) // GROUP + 1


@jit
def accumulate_rows(source, deltas, r0, r1, previous, reverse, target):
    """``target[r - r0] = sum_{n,t} source[n, t', r] * deltas[n, t]`` for rows r0..r1-1 (at most GROUP).

    ``t' = t`` or, with `previous`, the step before t in reading order (a
    zero state before the first step contributes nothing).  Four rows share
    each read of ``deltas[n, t]``.
    """
    n_samples, steps = deltas.shape[0], deltas.shape[1]
    target[:] = 0
    for n in range(n_samples):
        for k in range(1 if previous else 0, steps):
            t = steps - 1 - k if reverse else k
            ts = (t + 1 if reverse else t - 1) if previous else t
            delta = deltas[n, t]
            a = source[n, ts]
            if r1 - r0 == GROUP:
                t0, t1, t2, t3 = target[0], target[1], target[2], target[3]
                a0, a1, a2, a3 = a[r0], a[r0 + 1], a[r0 + 2], a[r0 + 3]
                for j in range(delta.shape[0]):
                    d = delta[j]
                    t0[j] += a0 * d
                    t1[j] += a1 * d
                    t2[j] += a2 * d
                    t3[j] += a3 * d
            else:
                for r in range(r0, r1):
                    row, ar = target[r - r0], a[r]
                    for j in range(delta.shape[0]):
                        row[j] += ar * delta[j]


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


@jit(parallel=True)
def rnn_forward(x, weight_ih, weight_hh, bias, code, reverse, initial, states):
    """Run whole sequences: x ``(N, T, F)`` -> states ``(N, T, H)``.

    ``states[n, t] = f(U x[n, t] + W states[n, t -/+ 1] + b)``, starting from
    ``initial[n, 0]`` (``initial`` is ``(N, 1, H)``, or ``(0, 1, H)`` for a
    zero state); blocks of samples run in parallel, the time loop inside.
    """
    for block in prange(blocks(x.shape[0])):
        rnn_forward_block(x, weight_ih, weight_hh, bias, code, reverse, initial, states, block)


@jit
def rnn_forward_serial(x, weight_ih, weight_hh, bias, code, reverse, initial, states):
    """:func:`rnn_forward` on the calling thread: for a single block, where starting threads only costs."""
    for block in range(blocks(x.shape[0])):
        rnn_forward_block(x, weight_ih, weight_hh, bias, code, reverse, initial, states, block)


@jit
def rnn_backward_block(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net, deltas, grad_x, block):
    """The delta recursion and input gradient of :func:`rnn_backward` for samples ``block*BLOCK ..``."""
    n0, n1 = block * BLOCK, min(x.shape[0], (block + 1) * BLOCK)
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
    input_gradient(weight_ih, deltas, grad_x, n0, n1)


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
        rnn_backward_block(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net, deltas, grad_x, block)
    for g in prange(gradient_groups(x.shape[2], states.shape[2])):
        weight_gradient_group(x, states, deltas, reverse, g, grad_weight_ih, grad_weight_hh, grad_bias)


@jit
def rnn_backward_serial(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net,
                        deltas, grad_x, grad_weight_ih, grad_weight_hh, grad_bias):
    """:func:`rnn_backward` on the calling thread (same results, bit for bit)."""
    for block in range(blocks(x.shape[0])):
        rnn_backward_block(x, states, weight_ih, weight_hh, code, reverse, grad, grad_is_net, deltas, grad_x, block)
    for g in range(gradient_groups(x.shape[2], states.shape[2])):
        weight_gradient_group(x, states, deltas, reverse, g, grad_weight_ih, grad_weight_hh, grad_bias)
