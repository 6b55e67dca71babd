"""The tutorial's rnn module: ``RecurrentLayer`` and ``BiRecurrentLayer`` on compiled kernels.

Vectors are ``(n, 1)`` columns, float64.  ``forward(input_array)`` runs one
time step; ``backward(sensitivity_array, activator)`` runs back propagation
through time over every step since the last ``reset_state()``.
``sensitivity_array`` is the tutorial's delta of the last step, the error
with respect to that step's weighted input ``U x_T + W s_{T-1}``; a list of
one such ``(n, 1)`` array per step is accepted too (an error at every step).
Gradients are stored and subtracted: ``update()`` does ``W -= rate * W_grad``
and ``U -= rate * U_grad``.

Corrections to the tutorial's published code, checked by central
differences in the tests: its ``calc_delta_k`` overwrites ``state_list`` with
the activation's derivative and then multiplies by the saved state instead
(one step late as well), and its ``update`` never trains U.  Here
``delta_k = f'(s_k) * W^T delta_{k+1}`` and both U and W are trained.  The
``activator`` argument of ``backward`` is accepted for compatibility; the
derivative is the layer's own activator's, the only one that is correct.
"""

import numpy as np

from .._checks import as_float_array, check_int, check_rate, describe_shape, make_rng
from ..kernels import recurrent as _kernels
from .activators import activation_code


def column(value, name, size):
    """`value` as a float64 ``(size, 1)`` column (a flat ``(size,)`` vector is accepted), or a ValueError."""
    array = as_float_array(value, name, np.float64)
    if array.shape not in ((size, 1), (size,)):
        raise ValueError(f"{name} must have shape {describe_shape((size, 1))}, got {describe_shape(array.shape)}")
    return array.reshape(size, 1)


def weight_source(rng):
    """``uniform(low, high, shape)`` drawing the tutorial's initial weights.

    numpy's global generator when `rng` is None (so ``np.random.seed`` in a
    tutorial script still fixes them), else a Generator made from `rng`.
    """
    return np.random.uniform if rng is None else make_rng(rng).uniform


def input_major(uniform, rows, cols):
    """A tutorial ``(rows, cols)`` weight drawn uniform in [-1e-4, 1e-4], stored transposed and C-contiguous."""
    return np.ascontiguousarray(uniform(-1e-4, 1e-4, (rows, cols)).T)


def per_step_errors(errors, steps, width, name):
    """A ``(1, steps, width)`` array: one ``(width, 1)`` error for the last step, or a list of `steps` of them."""
    out = np.zeros((1, steps, width))
    if isinstance(errors, (list, tuple)):
        if len(errors) != steps:
            raise ValueError(f"{name} must be one ({width}, 1) array or a list of {steps} (one per step), "
                             f"got a list of {len(errors)}")
        for t, error in enumerate(errors):
            out[0, t] = column(error, f"{name}[{t}]", width)[:, 0]
    else:
        out[0, -1] = column(errors, name, width)[:, 0]
    return out


def view_property(name, view, doc):
    """Attribute `name` reading ``view(self)``, a view of kernel storage (so ``layer.W[i, j] += eps`` reaches
    the kernels); assigning copies the new values in, after checking the shape."""

    def getter(self):
        return view(self)

    def setter(self, value):
        target = view(self)
        target[...] = as_float_array(value, name, np.float64, shape=target.shape)

    return property(getter, setter, doc=doc)


def transposed_property(name, storage, doc):
    """Attribute `name`: the tutorial-oriented ``(out, in)`` view of the input-major array `storage`."""
    return view_property(name, lambda self: getattr(self, storage).T, doc)


class RecurrentLayer:
    """``s_t = f(U x_t + W s_{t-1})``, ``s_0 = 0``; U ``(state, input)``, W ``(state, state)``.

    Attributes the tutorial's scripts read: ``times``, ``state_list`` (``s_0
    .. s_T``), ``delta_list`` (``delta_0 = 0 .. delta_T``), ``gradient`` and
    ``W_grad`` (W's gradient summed over time), ``gradient_list`` (its
    per-step terms, index 0 zero), ``U_grad``.  U and W are views of the
    kernel's input-major arrays: writing ``layer.W[i, j]`` or assigning
    ``layer.W = array`` takes effect in the next forward.  `rng` (a seed or
    Generator, fastnn's addition) draws the initial weights instead of
    numpy's global generator.
    """

    U = transposed_property("U", "_weight_ih", "``(state_width, input_width)``")
    W = transposed_property("W", "_weight_hh", "``(state_width, state_width)``")

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        self.input_width = check_int(input_width, "input_width", 1)
        self.state_width = check_int(state_width, "state_width", 1)
        self._code = activation_code(activator)
        self.activator = activator
        self.learning_rate = check_rate(learning_rate, "learning_rate")
        uniform = weight_source(rng)
        self._weight_ih = input_major(uniform, state_width, input_width)
        self._weight_hh = input_major(uniform, state_width, state_width)
        self._bias = np.zeros(state_width)  # the tutorial's layer has none; the kernel's stays zero
        self.reset_state()

    def reset_state(self):
        self.times = 0
        self.state_list = [np.zeros((self.state_width, 1))]
        self._inputs = []

    def forward(self, input_array):
        """Append ``s_t = f(U x_t + W s_{t-1})`` to ``state_list``; `input_array` is ``(input_width, 1)``."""
        x = column(input_array, "input_array", self.input_width)
        state = np.empty((self.state_width, 1))
        _kernels.rnn_step(x[:, 0], self.state_list[-1][:, 0].copy(), self._weight_ih, self._weight_hh,
                          self._bias, self._code, state[:, 0])
        self._inputs.append(x)
        self.state_list.append(state)
        self.times += 1

    def backward(self, sensitivity_array, activator=None):
        """BPTT from ``delta_T`` (error on the last weighted input, ``(state_width, 1)``) or a list of per-step deltas."""
        if self.times == 0:
            raise RuntimeError("RecurrentLayer.backward called before forward()")
        if activator is not None:
            activation_code(activator)
        errors = per_step_errors(sensitivity_array, self.times, self.state_width, "sensitivity_array")
        x = np.stack(self._inputs, axis=0).reshape(1, self.times, self.input_width)
        states = np.stack(self.state_list[1:], axis=0).reshape(1, self.times, self.state_width)
        self._deltas, self._grad_ih, self._grad_hh = _bptt(
            x, states, self._weight_ih, self._weight_hh, self._code, False, errors)
        self.delta_list = [np.zeros((self.state_width, 1))] + list(self._deltas[0, :, :, None])
        self.U_grad = self._grad_ih.T
        self.W_grad = self.gradient = self._grad_hh.T

    @property
    def gradient_list(self):
        """W's gradient term of each step, ``delta_t s_{t-1}^T``; index 0 is zero as in the tutorial."""
        if not hasattr(self, "_deltas"):
            raise RuntimeError("RecurrentLayer.gradient_list read before backward()")
        deltas = self._deltas[0]
        previous = np.stack(self.state_list[:-1], axis=0)[:, :, 0]
        terms = np.einsum("ti,tj->tij", deltas, previous)
        return [np.zeros((self.state_width, self.state_width))] + list(terms)

    def update(self):
        """Gradient descent on both weights: ``W -= rate * W_grad``, ``U -= rate * U_grad``."""
        if not hasattr(self, "_grad_hh"):
            raise RuntimeError("RecurrentLayer.update called before backward()")
        self._weight_hh -= self.learning_rate * self._grad_hh
        self._weight_ih -= self.learning_rate * self._grad_ih


def _bptt(x, states, weight_ih, weight_hh, code, reverse, errors):
    """Run the BPTT kernel on one sequence with the tutorial's net-input errors; (deltas, dU^T, dW^T)."""
    n, steps, hidden = states.shape
    deltas = np.empty_like(states)
    grad_x = np.empty_like(x)
    grad_ih = np.empty_like(weight_ih)
    grad_hh = np.empty_like(weight_hh)
    grad_bias = np.empty(hidden)
    _kernels.rnn_backward(x, states, weight_ih, weight_hh, code, reverse, errors, True,
                          deltas, grad_x, grad_ih, grad_hh, grad_bias)
    return deltas, grad_ih, grad_hh


class BiRecurrentLayer:
    """The tutorial's bidirectional layer: ``s_t = f(U x_t + W s_{t-1})`` forward in time and
    ``s'_t = f(U_back x_t + W_back s'_{t+1})`` backward in time; the output at step t is ``[s_t; s'_t]``.

    ``forward(input_array)`` appends one step; the backward-in-time states
    depend on the whole sequence, so ``state_list`` (``[0; 0], [s_1; s'_1],
    ..``, ``(2*state_width, 1)`` each) is computed when it is read.
    ``backward`` takes the error on the weighted inputs of both halves,
    ``(2*state_width, 1)`` for the last step or a list of one per step, and
    sets ``delta_list`` (both halves' deltas, concatenated), ``U_grad``,
    ``W_grad``, ``U_back_grad``, ``W_back_grad``; ``update()`` trains all four.
    """

    U = transposed_property("U", "_weight_ih", "forward in time, ``(state_width, input_width)``")
    W = transposed_property("W", "_weight_hh", "forward in time, ``(state_width, state_width)``")
    U_back = transposed_property("U_back", "_back_ih", "backward in time, ``(state_width, input_width)``")
    W_back = transposed_property("W_back", "_back_hh", "backward in time, ``(state_width, state_width)``")

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        self.input_width = check_int(input_width, "input_width", 1)
        self.state_width = check_int(state_width, "state_width", 1)
        self._code = activation_code(activator)
        self.activator = activator
        self.learning_rate = check_rate(learning_rate, "learning_rate")
        uniform = weight_source(rng)
        self._weight_ih = input_major(uniform, state_width, input_width)
        self._weight_hh = input_major(uniform, state_width, state_width)
        self._back_ih = input_major(uniform, state_width, input_width)
        self._back_hh = input_major(uniform, state_width, state_width)
        self._bias = np.zeros(state_width)
        self.reset_state()

    def reset_state(self):
        self.times = 0
        self._inputs = []

    def forward(self, input_array):
        """Append one step ``(input_width, 1)``."""
        self._inputs.append(column(input_array, "input_array", self.input_width))
        self.times += 1

    def _run(self):
        x = np.stack(self._inputs, axis=0).reshape(1, self.times, self.input_width)
        ahead = np.empty((1, self.times, self.state_width))
        behind = np.empty_like(ahead)
        _kernels.rnn_forward(x, self._weight_ih, self._weight_hh, self._bias, self._code, False, ahead)
        _kernels.rnn_forward(x, self._back_ih, self._back_hh, self._bias, self._code, True, behind)
        return x, ahead, behind

    @property
    def state_list(self):
        if self.times == 0:
            return [np.zeros((2 * self.state_width, 1))]
        _, ahead, behind = self._run()
        both = np.concatenate([ahead[0], behind[0]], axis=1)
        return [np.zeros((2 * self.state_width, 1))] + list(both[:, :, None])

    def backward(self, sensitivity_array, activator=None):
        if self.times == 0:
            raise RuntimeError("BiRecurrentLayer.backward called before forward()")
        if activator is not None:
            activation_code(activator)
        h = self.state_width
        errors = per_step_errors(sensitivity_array, self.times, 2 * h, "sensitivity_array")
        x, ahead, behind = self._run()
        d1, self._grad_ih, self._grad_hh = _bptt(
            x, ahead, self._weight_ih, self._weight_hh, self._code, False, np.ascontiguousarray(errors[:, :, :h]))
        d2, self._grad_back_ih, self._grad_back_hh = _bptt(
            x, behind, self._back_ih, self._back_hh, self._code, True, np.ascontiguousarray(errors[:, :, h:]))
        self.delta_list = [np.zeros((2 * h, 1))] + list(np.concatenate([d1[0], d2[0]], axis=1)[:, :, None])
        self.U_grad, self.W_grad = self._grad_ih.T, self._grad_hh.T
        self.U_back_grad, self.W_back_grad = self._grad_back_ih.T, self._grad_back_hh.T

    def update(self):
        if not hasattr(self, "_grad_hh"):
            raise RuntimeError("BiRecurrentLayer.update called before backward()")
        rate = self.learning_rate
        self._weight_ih -= rate * self._grad_ih
        self._weight_hh -= rate * self._grad_hh
        self._back_ih -= rate * self._grad_back_ih
        self._back_hh -= rate * self._grad_back_hh
