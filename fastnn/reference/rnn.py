"""Plain-Python twin of the recurrent layer (the tutorial's rnn chapter), with correct BPTT.

As the tutorial writes it: column vectors ``(n, 1)``, one numpy call per
matrix product and step, explicit loops over time.  The activator is any
object with the tutorial's ``forward(z)`` and ``backward(output)``.

    net_t = U x_t + W s_{t-1} + b,   s_t = f(net_t),   s_0 = 0
    delta_t = dE/dnet_t = f'(s_t) * (g_t + W^T delta_{t+1})       (g_t = dE/ds_t)
    dE/dU = sum_t delta_t x_t^T,  dE/dW = sum_t delta_t s_{t-1}^T,  dE/db = sum_t delta_t,  dE/dx_t = U^T delta_t

The tutorial's published BPTT multiplies by the state instead of f'(net), one
step late, and never trains U; this twin does what the formulas say.  The
functions work on one sequence (the test oracle of the batched kernels); the
classes follow the tutorial's own methods step by step.
"""

from functools import reduce

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


def element_wise_op(array, op):
    """Apply the scalar function `op` to every element of `array` in place, as the tutorial's helper does."""
    for value in np.nditer(array, op_flags=["readwrite"]):
        value[...] = op(value)


class RecurrentLayer:
    """The tutorial's ``RecurrentLayer``, in its own steps (``calc_delta_k``, ``calc_gradient_t``), made correct.

    As the tutorial computes it: the activation applied element by element,
    ``delta_k = (delta_{k+1}^T W diag(f'(s_k)))^T``, one gradient matrix per
    step summed at the end.  Corrected: the derivative is taken at the right
    step and without overwriting ``state_list``, and U is trained too.
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
        element_wise_op(state, self.activator.forward)
        self.state_list.append(state)

    def backward(self, sensitivity_array, activator=None):
        self.calc_delta(per_step(sensitivity_array, self.times, self.state_width))
        self.calc_gradient()

    def calc_delta(self, errors):
        self.delta_list = [np.zeros((self.state_width, 1)) for _ in range(self.times + 1)]
        self.delta_list[self.times] = _col(errors[-1])
        for k in range(self.times - 1, 0, -1):
            self.calc_delta_k(k, _col(errors[k - 1]))

    def calc_delta_k(self, k, error):
        """``delta_k = e_k + (delta_{k+1}^T W diag(f'(s_k)))^T``."""
        derivative = self.state_list[k].copy()
        element_wise_op(derivative, self.activator.backward)
        self.delta_list[k] = error + np.dot(np.dot(self.delta_list[k + 1].T, self.W), np.diag(derivative[:, 0])).T

    def calc_gradient(self):
        self.gradient_list = [np.zeros((self.state_width, self.state_width))]
        self.U_gradient_list = [np.zeros((self.state_width, self.input_width))]
        for t in range(1, self.times + 1):
            self.gradient_list.append(np.dot(self.delta_list[t], self.state_list[t - 1].T))
            self.U_gradient_list.append(np.dot(self.delta_list[t], self.inputs[t - 1].T))
        self.gradient = self.W_grad = reduce(lambda a, b: a + b, self.gradient_list)
        self.U_grad = reduce(lambda a, b: a + b, self.U_gradient_list)

    def update(self):
        self.W -= self.learning_rate * self.W_grad
        self.U -= self.learning_rate * self.U_grad


class BiRecurrentLayer:
    """The tutorial's bidirectional layer: a forward-in-time state s_t (U, W) and a backward-in-time
    state s'_t (U_back, W_back), each a ``RecurrentLayer`` (the second reads the sequence reversed);
    the output at step t is ``[s_t; s'_t]``."""

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        self.state_width = state_width
        self.ahead = RecurrentLayer(input_width, state_width, activator, learning_rate, rng)
        self.behind = RecurrentLayer(input_width, state_width, activator, learning_rate, rng)
        self.reset_state()

    U = property(lambda self: self.ahead.U, lambda self, v: setattr(self.ahead, "U", v))
    W = property(lambda self: self.ahead.W, lambda self, v: setattr(self.ahead, "W", v))
    U_back = property(lambda self: self.behind.U, lambda self, v: setattr(self.behind, "U", v))
    W_back = property(lambda self: self.behind.W, lambda self, v: setattr(self.behind, "W", v))

    def reset_state(self):
        self.times = 0
        self.inputs = []
        self.ahead.reset_state()

    def forward(self, input_array):
        self.times += 1
        self.inputs.append(_col(input_array))
        self.ahead.forward(input_array)

    def _run_behind(self):
        self.behind.reset_state()
        for x in reversed(self.inputs):
            self.behind.forward(x)
        return self.behind.state_list[:0:-1]  # s'_1 .. s'_T

    @property
    def state_list(self):
        behind = self._run_behind()
        return [np.zeros((2 * self.state_width, 1))] + [np.vstack(p) for p in zip(self.ahead.state_list[1:], behind)]

    def backward(self, sensitivity_array, activator=None):
        h = self.state_width
        errors = [_col(e) for e in per_step(sensitivity_array, self.times, 2 * h)]
        self.ahead.backward([e[:h] for e in errors])
        self._run_behind()
        self.behind.backward([e[h:] for e in errors[::-1]])
        behind = self.behind.delta_list[:0:-1]
        self.delta_list = [np.zeros((2 * h, 1))] + [np.vstack(p) for p in zip(self.ahead.delta_list[1:], behind)]
        self.U_grad, self.W_grad = self.ahead.U_grad, self.ahead.W_grad
        self.U_back_grad, self.W_back_grad = self.behind.U_grad, self.behind.W_grad

    def update(self):
        self.ahead.update()
        self.behind.update()
