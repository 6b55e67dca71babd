"""Batched recurrent layers: ``RNN``, ``BiRNN`` and ``LSTM`` over batch-first sequences.

Input ``x`` is ``(N, T, F)``: N sequences of T steps of F features.  The
output is ``(N, T, H)`` (every step's state) or, with
``return_sequences=False``, ``(N, H)`` (the last step's).  ``backward``
takes the gradient of the loss with respect to that output and returns the
one with respect to ``x``, ``(N, T, F)``, so recurrent layers stack and feed
a Dense head.  Each call runs the whole sequence inside one compiled kernel,
parallel over the batch.  Every sequence starts from a zero state.

Weights are stored input-major, the layout the kernels' inner loops read
contiguously: ``y = x @ weight_ih + h @ weight_hh + bias``.  (PyTorch's
``weight_ih_l0`` is the transpose of ``weight_ih`` here.)  Initial weights are
uniform in ``[-1/sqrt(H), 1/sqrt(H)]`` as in PyTorch; biases start at zero.
"""

import numpy as np

from .._checks import check_int, make_rng
from ..kernels import activation as _activation
from ..kernels import lstm as _lstm
from ..kernels import recurrent as _recurrent
from .base import Layer, check_dtype

ACTIVATIONS = {name: code for code, name in _activation.NAMES.items() if code != _activation.STEP}


class _Sequence(Layer):
    """Shared parts: sizes, dtype, weight initialisation, input and gradient checks."""

    def __init__(self, input_size, hidden_size, return_sequences, dtype, rng):
        super().__init__()
        self.input_size = check_int(input_size, "input_size", 1)
        self.hidden_size = check_int(hidden_size, "hidden_size", 1)
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise TypeError(f"return_sequences must be True or False, got {return_sequences!r}")
        self.return_sequences = bool(return_sequences)
        self.dtype = check_dtype(dtype)
        self._rng = make_rng(rng)
        self._cache = None

    def _add(self, name, shape, scale):
        """Register parameter `name`: uniform in [-scale, scale] (zeros for scale 0), and its zero gradient."""
        value = self._rng.uniform(-scale, scale, shape) if scale else np.zeros(shape)
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros(shape, self.dtype)

    def _sequence(self, x):
        """The checked input of forward, a copy of the caller's array: backward reads it again, whatever
        the caller does with it in between."""
        checked = self._input(x, (None, self.input_size))
        if checked.shape[1] == 0:
            raise ValueError(f"x must hold at least one time step, got shape {checked.shape}")
        return checked.copy() if checked is x else checked

    def _output_grad(self, grad_output, n, steps, width):
        """Check `grad_output` against the last forward.

        ``(N, T, width)``, or ``(N, width)`` without return_sequences.
        """
        shape = (steps, width) if self.return_sequences else (width,)
        grad = self._input(grad_output, shape, "grad_output")
        if grad.shape[0] != n:
            raise ValueError(f"grad_output must hold {n} samples (the batch of the last forward), got {grad.shape[0]}")
        return grad

    def _last_step_grad(self, grad_output, n, steps, width):
        """``dE/dh_t`` for every step, ``(N, T, width)``: zero but at the last step without return_sequences."""
        grad = self._output_grad(grad_output, n, steps, width)
        if self.return_sequences:
            return grad
        full = np.zeros((n, steps, width), self.dtype)
        full[:, -1] = grad
        return full

    def _serial(self, x):
        """Whether the kernels run on the calling thread: a small batch or little work (see kernels.recurrent)."""
        n, steps = x.shape[0], x.shape[1]
        width = self.params["weight_hh"].shape[1]
        return _recurrent.serial(n, n * steps * width * (self.input_size + self.hidden_size))

    def _zero_state(self):
        """The kernels' marker for "start from zero": an initial state with no rows."""
        return np.empty((0, 1, self.hidden_size), self.dtype)

    def output_shape(self, input_shape):
        steps, _ = input_shape
        width = self._output_width()
        return (steps, width) if self.return_sequences else (width,)

    def _output_width(self):
        return self.hidden_size


class RNN(_Sequence):
    """Simple recurrent layer: ``h_t = f(x_t @ weight_ih + h_{t-1} @ weight_hh + bias)``, ``h_0 = 0``.

    Parameters: ``weight_ih`` ``(input_size, hidden_size)``, ``weight_hh``
    ``(hidden_size, hidden_size)``, ``bias`` ``(hidden_size,)``.
    `activation` is "tanh", "sigmoid", "relu" or "identity".  Gradients by
    back propagation through time over the whole sequence.
    """

    def __init__(self, input_size, hidden_size, activation="tanh", return_sequences=True,
                 dtype=np.float32, rng=None):
        super().__init__(input_size, hidden_size, return_sequences, dtype, rng)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self._code = ACTIVATIONS[activation]
        self._add_direction("")

    def _add_direction(self, suffix):
        scale = 1.0 / np.sqrt(self.hidden_size)
        self._add("weight_ih" + suffix, (self.input_size, self.hidden_size), scale)
        self._add("weight_hh" + suffix, (self.hidden_size, self.hidden_size), scale)
        self._add("bias" + suffix, (self.hidden_size,), 0)

    def _run(self, x, suffix, reverse):
        p = self.params
        states = np.empty((x.shape[0], x.shape[1], self.hidden_size), self.dtype)
        forward = _recurrent.rnn_forward_serial if self._serial(x) else _recurrent.rnn_forward
        forward(x, p["weight_ih" + suffix], p["weight_hh" + suffix], p["bias" + suffix],
                self._code, reverse, self._zero_state(), states)
        return states

    def _backprop(self, x, states, grad, suffix, reverse, grad_x):
        """BPTT for one direction; fills that direction's grads and returns its input gradient."""
        p, g = self.params, self.grads
        deltas = np.empty_like(states)
        backward = _recurrent.rnn_backward_serial if self._serial(x) else _recurrent.rnn_backward
        backward(x, states, p["weight_ih" + suffix], p["weight_hh" + suffix], self._code, reverse, grad, False,
                 deltas, grad_x, g["weight_ih" + suffix], g["weight_hh" + suffix], g["bias" + suffix])
        return grad_x

    def forward(self, x):
        """x ``(N, T, input_size)`` -> ``(N, T, hidden_size)``, or ``(N, hidden_size)`` without return_sequences."""
        x = self._sequence(x)
        states = self._run(x, "", False)
        self._cache = (x, states)
        # A copy: backward needs the states as they were, whatever the caller does with the output.
        return states.copy() if self.return_sequences else states[:, -1].copy()

    def backward(self, grad_output):
        """Gradient w.r.t. the output -> gradient w.r.t. x ``(N, T, input_size)``; fills ``grads``."""
        x, states = self._require("_cache")
        grad = self._last_step_grad(grad_output, x.shape[0], x.shape[1], self.hidden_size)
        return self._backprop(x, states, grad, "", False, np.empty_like(x))

    def get_config(self):
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, activation=self.activation,
                    return_sequences=self.return_sequences, dtype=self.dtype.name)


class BiRNN(RNN):
    """Bidirectional recurrent layer: an RNN forward in time and one backward in time, outputs concatenated.

    Output at step t: ``[h_t, h'_t]`` with ``h_t`` from the forward-in-time
    half (parameters ``weight_ih``, ``weight_hh``, ``bias``) and ``h'_t`` from
    the backward-in-time half (``weight_ih_reverse``, ``weight_hh_reverse``,
    ``bias_reverse``), ``(N, T, 2*hidden_size)``.  With
    ``return_sequences=False`` the output is each half's final state,
    ``[h_T, h'_1]``, ``(N, 2*hidden_size)``.
    """

    def __init__(self, input_size, hidden_size, activation="tanh", return_sequences=True,
                 dtype=np.float32, rng=None):
        super().__init__(input_size, hidden_size, activation, return_sequences, dtype, rng)
        self._add_direction("_reverse")

    def _output_width(self):
        return 2 * self.hidden_size

    def forward(self, x):
        """x ``(N, T, input_size)`` -> ``(N, T, 2*hidden_size)``, or ``(N, 2*hidden_size)``."""
        x = self._sequence(x)
        ahead, behind = self._run(x, "", False), self._run(x, "_reverse", True)
        self._cache = (x, ahead, behind)
        if self.return_sequences:
            return np.concatenate([ahead, behind], axis=2)
        return np.concatenate([ahead[:, -1], behind[:, 0]], axis=1)

    def backward(self, grad_output):
        x, ahead, behind = self._require("_cache")
        n, steps, h = x.shape[0], x.shape[1], self.hidden_size
        grad = self._output_grad(grad_output, n, steps, 2 * h)
        if self.return_sequences:
            grad_ahead, grad_behind = np.ascontiguousarray(grad[:, :, :h]), np.ascontiguousarray(grad[:, :, h:])
        else:
            grad_ahead = np.zeros((n, steps, h), self.dtype)
            grad_behind = np.zeros((n, steps, h), self.dtype)
            grad_ahead[:, -1] = grad[:, :h]
            grad_behind[:, 0] = grad[:, h:]
        grad_x = self._backprop(x, ahead, grad_ahead, "", False, np.empty_like(x))
        grad_x += self._backprop(x, behind, grad_behind, "_reverse", True, np.empty_like(x))
        return grad_x


class LSTM(_Sequence):
    """Long short-term memory layer (the tutorial's LSTM), ``h_0 = c_0 = 0``.

    ``net_t = x_t @ weight_ih + h_{t-1} @ weight_hh + bias`` splits into the
    four gates' weighted inputs in the order (input i, forget f, candidate g,
    output o); ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``.  Parameters:
    ``weight_ih`` ``(input_size, 4*hidden_size)``, ``weight_hh``
    ``(hidden_size, 4*hidden_size)``, ``bias`` ``(4*hidden_size,)``.
    The tutorial's twelve matrices are slices: ``W_fx = weight_ih[:, H:2H].T``.
    """

    def __init__(self, input_size, hidden_size, return_sequences=True, dtype=np.float32, rng=None):
        super().__init__(input_size, hidden_size, return_sequences, dtype, rng)
        scale = 1.0 / np.sqrt(hidden_size)
        self._add("weight_ih", (self.input_size, 4 * self.hidden_size), scale)
        self._add("weight_hh", (self.hidden_size, 4 * self.hidden_size), scale)
        self._add("bias", (4 * self.hidden_size,), 0)

    def forward(self, x):
        """x ``(N, T, input_size)`` -> h ``(N, T, hidden_size)``, or ``(N, hidden_size)`` without return_sequences."""
        x = self._sequence(x)
        n, steps, hidden = x.shape[0], x.shape[1], self.hidden_size
        p = self.params
        gates = np.empty((n, steps, 4 * hidden), self.dtype)
        c, tanh_c, h = (np.empty((n, steps, hidden), self.dtype) for _ in range(3))
        zero = self._zero_state()
        forward = _lstm.lstm_forward_serial if self._serial(x) else _lstm.lstm_forward
        forward(x, p["weight_ih"], p["weight_hh"], p["bias"], zero, zero, gates, c, tanh_c, h)
        self._cache = (x, h, c, gates, tanh_c)
        # A copy: backward needs h as it was, whatever the caller does with the output.
        return h.copy() if self.return_sequences else h[:, -1].copy()

    def backward(self, grad_output):
        """Gradient w.r.t. the output -> gradient w.r.t. x ``(N, T, input_size)``; fills ``grads``."""
        x, h, c, gates, tanh_c = self._require("_cache")
        n, steps, hidden = h.shape
        grad = self._last_step_grad(grad_output, n, steps, hidden)
        p, g = self.params, self.grads
        grad_x = np.empty_like(x)
        dnet = np.empty_like(gates)
        dh = np.empty((n, steps + 1, hidden), self.dtype)
        backward = _lstm.lstm_backward_serial if self._serial(x) else _lstm.lstm_backward
        backward(x, h, c, gates, tanh_c, p["weight_ih"], p["weight_hh"], grad,
                 dnet, dh, grad_x, g["weight_ih"], g["weight_hh"], g["bias"])
        return grad_x

    def get_config(self):
        return dict(input_size=self.input_size, hidden_size=self.hidden_size,
                    return_sequences=self.return_sequences, dtype=self.dtype.name)
