"""Plain-Python twin of the recurrent layer (the tutorial's rnn chapter), with correct BPTT.

As the tutorial writes it: column vectors ``(n, 1)``, one numpy call per
matrix product and step, explicit loops over time.  The activator is any
object with the tutorial's ``forward(z)`` and ``backward(output)``.

    net_t = U x_t + W s_{t-1} + b,   s_t = f(net_t),   s_0 = 0
    delta_t = dE/dnet_t = f'(s_t) * (g_t + W^T delta_{t+1})       (g_t = dE/ds_t)
    dE/dU = sum_t delta_t x_t^T,  dE/dW = sum_t delta_t s_{t-1}^T,  dE/db = sum_t delta_t,  dE/dx_t = U^T delta_t

The tutorial's published BPTT multiplies by the state instead of f'(net), one
step late, and never trains U; this twin does what the formulas say.
"""

import numpy as np


def _col(v):
    return np.asarray(v, dtype=float).reshape(-1, 1)


def sequence_forward(xs, U, W, b, activator, reverse=False):
    """States of one sequence: xs is a list of T input vectors; returns a list of T ``(H, 1)`` states.

    With `reverse`, the sequence is read from its last step to its first.
    """
    b = _col(b)
    states = [None] * len(xs)
    prev = np.zeros_like(b)
    for t in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
        states[t] = prev = activator.forward(np.dot(U, _col(xs[t])) + np.dot(W, prev) + b)
    return states


def sequence_backward(xs, states, U, W, activator, grads, grad_is_net=False, reverse=False):
    """BPTT for one sequence.

    `grads` is a list of T vectors: ``dE/ds_t``, or ``dE/dnet_t`` with
    `grad_is_net` (the tutorial's convention, ``delta_t = e_t + f'(s_t) W^T
    delta_{t+1}``).  Returns ``(deltas, grad_xs, U_grad, W_grad, b_grad)``,
    the vectors as ``(n, 1)`` columns.
    """
    order = list(range(len(xs) - 1, -1, -1) if reverse else range(len(xs)))
    deltas, grad_xs = [None] * len(xs), [None] * len(xs)
    U_grad, W_grad = np.zeros(np.shape(U)), np.zeros(np.shape(W))
    b_grad = np.zeros((len(W), 1))
    carry = np.zeros((len(W), 1))
    for position in range(len(order) - 1, -1, -1):
        t = order[position]
        derivative = activator.backward(_col(states[t]))
        g = _col(grads[t])
        delta = g + derivative * carry if grad_is_net else derivative * (g + carry)
        deltas[t] = delta
        grad_xs[t] = np.dot(U.T, delta)
        carry = np.dot(W.T, delta)
        U_grad += np.dot(delta, _col(xs[t]).T)
        if position > 0:
            W_grad += np.dot(delta, _col(states[order[position - 1]]).T)
        b_grad += delta
    return deltas, grad_xs, U_grad, W_grad, b_grad


def per_step(errors, steps, width):
    """A list of `steps` errors: the given list, or zeros with `errors` at the last step."""
    if isinstance(errors, (list, tuple)):
        return list(errors)
    return [np.zeros((width, 1))] * (steps - 1) + [errors]


class RecurrentLayer:
    """The tutorial's ``RecurrentLayer`` with correct BPTT (U trained too).

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
        self.inputs.append(_col(input_array))
        state = np.dot(self.U, self.inputs[-1]) + np.dot(self.W, self.state_list[-1])
        self.state_list.append(self.activator.forward(state))

    def backward(self, sensitivity_array, activator=None):
        grads = per_step(sensitivity_array, self.times, self.state_width)
        deltas, _, self.U_grad, self.W_grad, _ = sequence_backward(
            self.inputs, self.state_list[1:], self.U, self.W, self.activator, grads, grad_is_net=True)
        self.delta_list = [np.zeros((self.state_width, 1))] + deltas
        self.gradient = self.W_grad

    def update(self):
        self.W -= self.learning_rate * self.W_grad
        self.U -= self.learning_rate * self.U_grad


class BiRecurrentLayer(RecurrentLayer):
    """The tutorial's bidirectional layer: a forward-in-time state s_t (U, W) and a backward-in-time
    state s'_t (U_back, W_back); the output at step t is ``[s_t; s'_t]``."""

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        super().__init__(input_width, state_width, activator, learning_rate, rng)
        self.U_back = rng.uniform(-1e-4, 1e-4, (state_width, input_width))
        self.W_back = rng.uniform(-1e-4, 1e-4, (state_width, state_width))

    def reset_state(self):
        self.times = 0
        self.inputs = []

    def forward(self, input_array):
        self.times += 1
        self.inputs.append(_col(input_array))

    def _states(self):
        zero = np.zeros(self.state_width)
        ahead = sequence_forward(self.inputs, self.U, self.W, zero, self.activator)
        behind = sequence_forward(self.inputs, self.U_back, self.W_back, zero, self.activator, reverse=True)
        return ahead, behind

    @property
    def state_list(self):
        ahead, behind = self._states()
        return [np.zeros((2 * self.state_width, 1))] + [np.vstack(pair) for pair in zip(ahead, behind)]

    def backward(self, sensitivity_array, activator=None):
        h = self.state_width
        grads = [_col(g) for g in per_step(sensitivity_array, self.times, 2 * h)]
        ahead, behind = self._states()
        d1, _, self.U_grad, self.W_grad, _ = sequence_backward(
            self.inputs, ahead, self.U, self.W, self.activator, [g[:h] for g in grads], grad_is_net=True)
        d2, _, self.U_back_grad, self.W_back_grad, _ = sequence_backward(
            self.inputs, behind, self.U_back, self.W_back, self.activator, [g[h:] for g in grads],
            grad_is_net=True, reverse=True)
        self.delta_list = [np.zeros((2 * h, 1))] + [np.vstack(pair) for pair in zip(d1, d2)]

    def update(self):
        for name in ("U", "W", "U_back", "W_back"):
            getattr(self, name).__isub__(self.learning_rate * getattr(self, name + "_grad"))
