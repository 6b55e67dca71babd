"""Plain-Python twin of the recurrent layer (the tutorial's rnn chapter), with correct BPTT.

Explicit loops over scalars, numpy arrays only as storage.  The activator is
any object with the tutorial's scalar ``forward(z)`` and ``backward(output)``.

    net_t = U x_t + W s_{t-1} + b,   s_t = f(net_t),   s_0 = 0
    delta_t = dE/dnet_t = f'(s_t) * (g_t + W^T delta_{t+1})       (g_t = dE/ds_t)
    dE/dU = sum_t delta_t x_t^T,  dE/dW = sum_t delta_t s_{t-1}^T,  dE/db = sum_t delta_t,  dE/dx_t = U^T delta_t

The tutorial's published BPTT multiplies by the state instead of f'(net), one
step off, and never trains U; this twin does what the formulas say.
"""

import numpy as np


def _matvec(matrix, vector):
    rows, cols = len(matrix), len(vector)
    return [sum(matrix[i][j] * vector[j] for j in range(cols)) for i in range(rows)]


def _matvec_t(matrix, vector):
    rows, cols = len(matrix), len(matrix[0])
    return [sum(matrix[i][j] * vector[i] for i in range(rows)) for j in range(cols)]


def step_forward(x, prev, U, W, b, activator):
    """One step: ``f(U x + W prev + b)`` as a list; U, W nested lists, the vectors flat lists."""
    ux, ws = _matvec(U, x), _matvec(W, prev)
    return [activator.forward(ux[j] + ws[j] + b[j]) for j in range(len(b))]


def sequence_forward(xs, U, W, b, activator, reverse=False):
    """States of one sequence: xs is a list of T input vectors; returns a list of T state vectors.

    U ``(H, F)``, W ``(H, H)``, b ``(H,)`` (nested lists or arrays).  With
    `reverse`, the sequence is read from its last step to its first.
    """
    U, W, b = np.asarray(U).tolist(), np.asarray(W).tolist(), list(np.ravel(b))
    steps = len(xs)
    states = [None] * steps
    prev = [0.0] * len(b)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        states[t] = prev = step_forward(list(np.ravel(xs[t])), prev, U, W, b, activator)
    return states


def sequence_backward(xs, states, U, W, activator, grads, grad_is_net=False, reverse=False):
    """BPTT for one sequence.

    `grads` is a list of T vectors: ``dE/ds_t``, or ``dE/dnet_t`` with
    `grad_is_net` (the tutorial's convention, ``delta_t = e_t + f'(s_t) W^T
    delta_{t+1}``).  Returns ``(deltas, grad_xs, U_grad, W_grad, b_grad)``
    as nested lists, the gradients in the shapes of U, W and b.
    """
    U, W = np.asarray(U).tolist(), np.asarray(W).tolist()
    steps, hidden, features = len(states), len(W), len(U[0])
    order = list(range(steps - 1, -1, -1) if reverse else range(steps))
    deltas = [None] * steps
    grad_xs = [None] * steps
    U_grad = [[0.0] * features for _ in range(hidden)]
    W_grad = [[0.0] * hidden for _ in range(hidden)]
    b_grad = [0.0] * hidden
    carry = [0.0] * hidden
    for position in range(steps - 1, -1, -1):
        t = order[position]
        g = list(np.ravel(grads[t]))
        derivs = [activator.backward(s) for s in states[t]]
        if grad_is_net:
            delta = [g[j] + derivs[j] * carry[j] for j in range(hidden)]
        else:
            delta = [derivs[j] * (g[j] + carry[j]) for j in range(hidden)]
        deltas[t] = delta
        grad_xs[t] = _matvec_t(U, delta)
        carry = _matvec_t(W, delta)
        x = list(np.ravel(xs[t]))
        prev = states[order[position - 1]] if position > 0 else [0.0] * hidden
        for i in range(hidden):
            b_grad[i] += delta[i]
            for j in range(features):
                U_grad[i][j] += delta[i] * x[j]
            for j in range(hidden):
                W_grad[i][j] += delta[i] * prev[j]
    return deltas, grad_xs, U_grad, W_grad, b_grad


class RecurrentLayer:
    """The tutorial's ``RecurrentLayer`` with correct BPTT (U trained too), written with explicit loops.

    ``backward(sensitivity_array)`` takes ``dE/dnet_T`` of the last step (a
    ``(H, 1)`` array) or a list of T such arrays, one per step.
    """

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        self.input_width, self.state_width = input_width, state_width
        self.activator, self.learning_rate = activator, learning_rate
        self.U = rng.uniform(-1e-4, 1e-4, (state_width, input_width))
        self.W = rng.uniform(-1e-4, 1e-4, (state_width, state_width))
        self.reset_state()

    def reset_state(self):
        self.times = 0
        self.inputs = []
        self.state_list = [np.zeros((self.state_width, 1))]

    def forward(self, input_array):
        self.times += 1
        self.inputs.append(np.array(input_array, dtype=float).reshape(-1, 1))
        state = step_forward(list(self.inputs[-1].ravel()), list(self.state_list[-1].ravel()),
                             self.U.tolist(), self.W.tolist(), [0.0] * self.state_width, self.activator)
        self.state_list.append(np.array(state).reshape(-1, 1))

    def backward(self, sensitivity_array, activator=None):
        grads = _per_step(sensitivity_array, self.times, self.state_width)
        states = [list(s.ravel()) for s in self.state_list[1:]]
        deltas, _, U_grad, W_grad, _ = sequence_backward(
            self.inputs, states, self.U, self.W, self.activator, grads, grad_is_net=True)
        self.delta_list = [np.zeros((self.state_width, 1))] + [np.array(d).reshape(-1, 1) for d in deltas]
        self.U_grad, self.W_grad = np.array(U_grad), np.array(W_grad)
        self.gradient = self.W_grad

    def update(self):
        self.W -= self.learning_rate * self.W_grad
        self.U -= self.learning_rate * self.U_grad


def _per_step(sensitivity_array, steps, width):
    """A list of `steps` vectors: the given list, or zeros with `sensitivity_array` at the last step."""
    if isinstance(sensitivity_array, (list, tuple)):
        return [list(np.ravel(s)) for s in sensitivity_array]
    return [[0.0] * width for _ in range(steps - 1)] + [list(np.ravel(sensitivity_array))]


class BiRecurrentLayer:
    """The tutorial's bidirectional layer: a forward-in-time state s_t (U, W) and a backward-in-time
    state s'_t (U_back, W_back); the output at step t is ``[s_t; s'_t]``."""

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        self.input_width, self.state_width = input_width, state_width
        self.activator, self.learning_rate = activator, learning_rate
        self.U = rng.uniform(-1e-4, 1e-4, (state_width, input_width))
        self.W = rng.uniform(-1e-4, 1e-4, (state_width, state_width))
        self.U_back = rng.uniform(-1e-4, 1e-4, (state_width, input_width))
        self.W_back = rng.uniform(-1e-4, 1e-4, (state_width, state_width))
        self.reset_state()

    def reset_state(self):
        self.times = 0
        self.inputs = []

    def forward(self, input_array):
        self.times += 1
        self.inputs.append(np.array(input_array, dtype=float).reshape(-1, 1))

    def _states(self):
        zero = [0.0] * self.state_width
        ahead = sequence_forward(self.inputs, self.U, self.W, zero, self.activator)
        behind = sequence_forward(self.inputs, self.U_back, self.W_back, zero, self.activator, reverse=True)
        return ahead, behind

    @property
    def state_list(self):
        ahead, behind = self._states()
        return [np.zeros((2 * self.state_width, 1))] + [np.array(a + b).reshape(-1, 1) for a, b in zip(ahead, behind)]

    def backward(self, sensitivity_array, activator=None):
        h = self.state_width
        grads = _per_step(sensitivity_array, self.times, 2 * h)
        ahead, behind = self._states()
        d1, _, self.U_grad, self.W_grad, _ = sequence_backward(
            self.inputs, ahead, self.U, self.W, self.activator, [g[:h] for g in grads], grad_is_net=True)
        d2, _, self.U_back_grad, self.W_back_grad, _ = sequence_backward(
            self.inputs, behind, self.U_back, self.W_back, self.activator, [g[h:] for g in grads],
            grad_is_net=True, reverse=True)
        self.U_grad, self.W_grad = np.array(self.U_grad), np.array(self.W_grad)
        self.U_back_grad, self.W_back_grad = np.array(self.U_back_grad), np.array(self.W_back_grad)
        self.delta_list = [np.zeros((2 * h, 1))] + [np.array(a + b).reshape(-1, 1) for a, b in zip(d1, d2)]

    def update(self):
        for name in ("U", "W", "U_back", "W_back"):
            getattr(self, name).__isub__(self.learning_rate * getattr(self, name + "_grad"))
