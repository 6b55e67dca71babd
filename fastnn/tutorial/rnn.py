"""The tutorial's rnn module: ``RecurrentLayer`` and ``BiRecurrentLayer`` on compiled kernels.

Vectors are ``(n, 1)`` columns, float64.  ``forward(input_array)`` adds one
time step; ``backward(sensitivity_array, activator)`` runs back propagation
through time over every step since the last ``reset_state()``.
``sensitivity_array`` is the tutorial's delta of the last step, the error
with respect to that step's weighted input ``U x_T + W s_{T-1}``; a list of
one such ``(n, 1)`` array per step is accepted too (an error at every step).
Gradients are stored and subtracted: ``update()`` does ``W -= rate * W_grad``
and ``U -= rate * U_grad``.

``forward`` only records its input: the steps recorded since the last
computation run together in one kernel call when their results are first
needed (reading ``state_list``, the weights, or calling ``backward``, which
computes them in its own kernel call), with the weights of that moment,
which are the weights the tutorial's eager ``forward`` would have used,
since reaching a weight goes through the same attributes.  (Not so for a
weight array kept from before ``forward`` and written through afterwards:
the steps not computed yet then see the new values.  Read a result, such
as ``state_list``, before such a write.)  A NaN or infinite input is
reported then.  At the tutorial's sizes a step costs
less than the Python around it, so the common case (a float64 ``(n, 1)``
array) takes a short path and every list attribute is built when read.

Corrections to the tutorial's published code, checked by central
differences in the tests: its ``calc_delta_k`` overwrites ``state_list`` with
the activation's derivative and then multiplies by the saved state instead
(one step late as well), and its ``update`` never trains U.  Here
``delta_k = f'(s_k) * W^T delta_{k+1}`` and both U and W are trained.  The
``activator`` argument of ``backward`` is accepted for compatibility; the
derivative is the layer's own activator's, the only one that is correct.
"""

import numpy as np

from .._checks import as_float_array, check_int, describe_shape, make_rng, rate_attribute
from .._memory import aligned_empty, aligned_zeros
from ..kernels import recurrent as _kernels
from ..kernels.optim import all_finite, descend
from .activators import ACTIVATORS, activation_code

FLOAT64 = np.dtype(np.float64)
_KNOWN_ACTIVATORS = frozenset(ACTIVATORS)
ndarray = np.ndarray


def column(value, name, size, finite=True):
    """`value` as a C-contiguous float64 ``(size, 1)`` column (a flat ``(size,)`` vector is accepted), finite
    unless `finite` is False (for a kernel that checks the values itself), or a ValueError.  Such a column
    itself is returned as it is (a step's input, an error: the usual case)."""
    if type(value) is ndarray and value.dtype is FLOAT64 and value.shape == (size, 1) and value.flags.c_contiguous:
        if finite and not all_finite(value):
            raise ValueError(f"{name} contains NaN or infinity")
        return value
    array = as_float_array(value, name, np.float64, finite=finite)
    if array.shape not in ((size, 1), (size,)):
        raise ValueError(f"{name} must have shape {describe_shape((size, 1))}, got {describe_shape(array.shape)}")
    return array.reshape(size, 1)


def check_activator(activator):
    """Check the `activator` that backward accepts for compatibility (None, or a tutorial activator)."""
    if activator is not None and type(activator) not in _KNOWN_ACTIVATORS:  # the common case costs one lookup
        activation_code(activator)


def weight_source(rng):
    """``uniform(low, high, shape)`` drawing the tutorial's initial weights.

    numpy's global generator when `rng` is None (so ``np.random.seed`` in a
    tutorial script still fixes them), else a Generator made from `rng`.
    """
    return np.random.uniform if rng is None else make_rng(rng).uniform




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


def error_column(errors, steps, width, name):
    """The tutorial's error(s) as one C-contiguous float64 column: ``(width, 1)`` for the last step, or the
    ``(steps*width, 1)`` concatenation of a list of one per step.  One array's values are left to the
    backward kernel, which checks them (kernels.recurrent.BAD_ERRORS) in a call that runs anyway."""
    if isinstance(errors, (list, tuple)):
        if len(errors) != steps:
            raise ValueError(f"{name} must be one ({width}, 1) array or a list of {steps} (one per step), "
                             f"got a list of {len(errors)}")
        return np.concatenate([column(error, f"{name}[{t}]", width) for t, error in enumerate(errors)])
    return column(errors, name, width, finite=False)


class StepBuffers:
    """Per-step float64 rows that grow by doubling: ``buffers.x[t]`` etc., one array per name, and
    ``buffers.x_columns[t]``, the same row as a ``(width, 1)`` column.

    Views handed out earlier stay valid after growth (they keep the old
    memory, whose rows are final by then).
    """

    def __init__(self, **widths):
        self._widths = widths
        self.capacity = 0
        self.reserve(16)

    def reserve(self, rows):
        if rows <= self.capacity:
            return
        capacity = max(rows, 2 * self.capacity)
        for name, width in self._widths.items():
            grown = aligned_zeros((capacity, width))
            if self.capacity:
                grown[:self.capacity] = getattr(self, name)
            setattr(self, name, grown)
        self.capacity = capacity
        self._bind()

    def _bind(self):
        for name in self._widths:
            setattr(self, f"{name}_columns", getattr(self, name)[:, :, None])

    def fresh(self):
        """New, empty buffers of the same widths (for a sequence whose rows must not overwrite these)."""
        return StepBuffers(**self._widths)

    # Pickle keeps the rows, not the views of them.
    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if not key.endswith("_columns")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()


class StepRecorder:
    """What ``forward`` of the tutorial's sequence layers shares: recording step inputs, computing later.

    A subclass sets ``_steps`` (with an ``x`` buffer), ``_compute()`` (run
    the recorded steps ``_computed .. times-1``) and ``_input_name``.
    """

    def _start(self):
        self._times = 0
        self._computed = 0

    @property
    def times(self):
        """The tutorial's step counter: forward calls since ``reset_state()``."""
        return self._times

    @times.setter
    def times(self, value):
        # The kernels read this many recorded steps: any count but 0 (a new sequence) would reach past them.
        if check_int(value, "times", 0) != 0:
            raise ValueError(f"times counts the steps forward recorded ({self._times}); it can only be set to 0, "
                             f"which starts a new sequence as reset_state() does")
        self.reset_state()

    def _bind(self):
        """Make the views of the storage (after construction, growth or unpickling)."""
        self._room = self._steps.capacity - 1  # step t writes row t+1 of the state buffers
        # Assigning into a view made beforehand is the cheapest copy; one view per row there is room for,
        # so that indexing past the end is the sign to grow.
        self._x_rows = list(self._steps.x_columns[:self._room])
        self._column = (self.input_width, 1)

    # Pickle copies a view as an array of its own: keep the storage, make the views again.
    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key not in self._VIEWS}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    def forward(self, input_array):
        """Record one step's input ``(input_width, 1)``; it is computed when a result is first needed."""
        t = self._times
        if type(input_array) is ndarray and input_array.dtype is FLOAT64 and input_array.shape == self._column:
            try:
                self._x_rows[t][...] = input_array
            except IndexError:  # no room left
                self._record(input_array)
                return
            self._times = t + 1
        else:
            self._record(input_array)

    def _record(self, input_array):
        """:meth:`forward` when the buffers are full or the input is not a float64 column: copy or raise."""
        t = self._times
        if t >= self._room:
            self._steps.reserve(t + 2)
            StepRecorder._bind(self)
        record_column(self._steps.x[t], input_array, self._input_name, self.input_width)
        self._times = t + 1

    def _settle(self):
        """Compute the recorded steps not computed yet (in one kernel call)."""
        if self._computed != self._times:
            self._compute()

    def _checked(self, bad, errors=None):
        """Raise for what a kernel found not finite: the input of step ``bad + 1`` (`bad` >= 0), or the errors
        of a backward pass, named `errors` (BAD_ERRORS); else mark all steps computed."""
        if bad == _kernels.BAD_ERRORS:
            raise ValueError(f"{errors} contains NaN or infinity")
        if bad >= 0:
            raise ValueError(f"{self._input_name} of step {bad + 1} contains NaN or infinity")
        self._computed = self._times


def record_column(row, value, name, size):
    """Copy the ``(size, 1)`` (or ``(size,)``) vector `value` into `row`, or raise; NaN is checked later."""
    row[:] = column(value, name, size)[:, 0]


def extend_views(items, rows, count):
    """Append to the list `items` the ``(width, 1)`` views of rows ``len(items)..count-1`` of the 2-D `rows`.

    The tutorial's per-step lists are built this way only when read, and
    only for the steps added since.
    """
    if len(items) < count:
        items.extend(rows[len(items):count, :, None])
    return items


def check_finite_steps(x, first, name):
    """ValueError naming the first step whose input row (from index `first`) is not finite."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} of step {first + int(np.argmax(bad)) + 1} contains NaN or infinity")


def view_property(name, view, doc):
    """Attribute `name` reading ``view(self)``, a view of kernel storage (so ``layer.W[i, j] += eps`` reaches
    the kernels); assigning copies the new values in, after checking the shape.

    Both first call ``self._settle()``, which finishes the work that must use
    the weights as they were (the steps recorded by forward so far).
    """

    def getter(self):
        self._settle()
        return view(self)

    def setter(self, value):
        self._settle()
        target = view(self)
        target[...] = as_float_array(value, name, np.float64, shape=target.shape)

    return property(getter, setter, doc=doc)


def transposed_property(name, storage, doc):
    """Attribute `name`: the tutorial-oriented ``(out, in)`` view of the input-major array `storage`."""
    return view_property(name, lambda self: getattr(self, storage).T, doc)


class _Recurrent:
    """Checks and weights shared by the two layers: one (U, W) pair per half, stored input-major.

    Each half's ``[U^T | W^T]`` is one flat array (``_params`` for the
    forward-in-time half), which the single-sequence kernels and the update
    take whole.
    """

    learning_rate = rate_attribute()

    def __init__(self, input_width, state_width, activator, learning_rate, rng, halves):
        self.input_width = check_int(input_width, "input_width", 1)
        self.state_width = check_int(state_width, "state_width", 1)
        self._code = activation_code(activator)
        self.activator = activator
        self.learning_rate = learning_rate
        uniform = weight_source(rng)
        self._halves = halves  # "_weight" for the forward-in-time half, "_back" for the other
        for half in halves:  # cache-line aligned, as fastnn.tutorial.lstm's weights (see there)
            setattr(self, f"{half}_params", aligned_empty(input_width * state_width + state_width * state_width))
        _Recurrent._bind(self)
        for half in halves:
            getattr(self, f"{half}_ih").T[...] = uniform(-1e-4, 1e-4, (state_width, input_width))  # U, then W
            getattr(self, f"{half}_hh").T[...] = uniform(-1e-4, 1e-4, (state_width, state_width))
        self._bias = np.zeros(state_width)  # the tutorial's layer has none; the kernel's stays zero
        self._grads = None

    _VIEWS = frozenset({"_params", "_weight_ih", "_weight_hh", "_back_ih", "_back_hh", "_x_rows"})

    def _bind(self):
        cut = self.input_width * self.state_width
        for half in self._halves:
            params = getattr(self, f"{half}_params")
            setattr(self, f"{half}_ih", params[:cut].reshape(self.input_width, self.state_width))
            setattr(self, f"{half}_hh", params[cut:].reshape(self.state_width, self.state_width))
        self._params = self._weight_params
        if "_steps" in self.__dict__:
            StepRecorder._bind(self)


class RecurrentLayer(_Recurrent, StepRecorder):
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
    _input_name = "input_array"

    def __init__(self, input_width, state_width, activator, learning_rate, rng=None):
        super().__init__(input_width, state_width, activator, learning_rate, rng, ("_weight",))
        self._steps = StepBuffers(x=input_width, s=state_width)  # s[0] is s_0 = 0, s[t] is s_t
        self._deltas, self._shared = None, False  # _shared: a view of the last backward's outputs was handed out
        self._state_list = []
        self._bind()
        self.reset_state()

    def reset_state(self):
        if self._state_list:  # handed out, and its rows must keep this sequence's states: new rows for the next
            self._steps = self._steps.fresh()
            self._bind()
        self._times = self._computed = 0  # StepRecorder._start, without a call: once per sequence of the tutorial
        self._state_list = []

    def _compute(self):
        self._checked(_kernels.rnn_sequence_forward(self._steps.x, self._steps.s, self._params, self._code,
                                                    self._computed, self._times))

    @property
    def state_list(self):
        """``[s_0, s_1, .., s_T]``, ``(state_width, 1)`` each."""
        self._settle()
        return extend_views(self._state_list, self._steps.s, self._times + 1)

    def backward(self, sensitivity_array, activator=None):
        """BPTT from ``delta_T``, the error on the last weighted input ``(state_width, 1)``, or from a list of
        one such delta per step."""
        count = self._times
        if count == 0:
            raise RuntimeError("RecurrentLayer.backward called before forward()")
        check_activator(activator)
        errors = error_column(sensitivity_array, count, self.state_width, "sensitivity_array")
        deltas, grads = self._deltas, self._grads
        if grads is None or self._shared or deltas.shape[0] != count:  # else the last pass's arrays are free
            deltas, grads = np.empty((count, self.state_width)), np.empty(self._params.shape[0])
            self._shared = False
        self._checked(_kernels.rnn_sequence_backward(self._steps.x, self._steps.s, self._params, self._code,
                                                     self._computed, count, errors, deltas, grads),
                      "sensitivity_array")
        self._deltas, self._grads, self._delta_list = deltas, grads, None

    def _grad(self, which):
        if self._grads is None:
            raise AttributeError(f"{which} is set by backward()")
        self._shared = True  # a view of the gradients is out: the next backward writes new arrays
        cut = self.input_width * self.state_width
        if which == "U_grad":
            return self._grads[:cut].reshape(self.input_width, self.state_width).T
        return self._grads[cut:].reshape(self.state_width, self.state_width).T

    U_grad = property(lambda self: self._grad("U_grad"), doc="U's gradient ``(state_width, input_width)``.")
    W_grad = property(lambda self: self._grad("W_grad"), doc="W's gradient summed over time.")
    gradient = property(lambda self: self._grad("gradient"), doc="The tutorial's name of ``W_grad``.")

    @property
    def delta_list(self):
        """``[delta_0 = 0, delta_1, .., delta_T]``: errors on each step's weighted input, after backward."""
        if self._grads is None:
            raise AttributeError("delta_list is set by backward()")
        if self._delta_list is None:
            self._delta_list = [np.zeros((self.state_width, 1))] + list(self._deltas[:, :, None])
            self._shared = True
        return self._delta_list

    @property
    def gradient_list(self):
        """W's gradient term of each step, ``delta_t s_{t-1}^T``; index 0 is zero as in the tutorial."""
        if self._grads is None:
            raise AttributeError("gradient_list is set by backward()")
        deltas = self._deltas
        terms = np.einsum("ti,tj->tij", deltas, self._steps.s[:deltas.shape[0]])
        return [np.zeros((self.state_width, self.state_width))] + list(terms)

    def update(self):
        """Gradient descent on both weights: ``W -= rate * W_grad``, ``U -= rate * U_grad``."""
        if self._grads is None:
            raise RuntimeError("RecurrentLayer.update called before backward()")
        if self._computed != self._times:  # steps recorded since backward use the weights as they are now
            self._compute()
        descend(self._params, self._grads, self.learning_rate)


def _bptt(x, states, weight_ih, weight_hh, code, reverse, errors):
    """Run the BPTT kernel on one sequence with the tutorial's net-input errors; (deltas, dU^T, dW^T)."""
    hidden = states.shape[2]
    deltas = np.empty_like(states)
    grad_x = np.empty_like(x)
    grad_ih = np.empty_like(weight_ih)
    grad_hh = np.empty_like(weight_hh)
    grad_bias = np.empty(hidden)
    _kernels.rnn_backward_serial(x, states, weight_ih, weight_hh, code, reverse, errors, True,
                          deltas, grad_x, grad_ih, grad_hh, grad_bias)
    return deltas, grad_ih, grad_hh


class BiRecurrentLayer(_Recurrent, StepRecorder):
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
        super().__init__(input_width, state_width, activator, learning_rate, rng, ("_weight", "_back"))
        self._steps = StepBuffers(x=input_width)
        self._bind()
        self.reset_state()

    _input_name = "input_array"

    def reset_state(self):
        self._start()
        self._states = None

    def _settle(self):
        # Weights may change after this: states computed so far would then be stale.
        self._states = None

    def _run(self):
        """Both halves' states over the whole sequence, ``(1, T, state_width)`` each (cached until a step
        is added or the weights are reached)."""
        if self._states is None or self._computed != self._times:
            self._computed = self._times
            x = self._steps.x[:self._times][None]
            check_finite_steps(x[0], 0, "input_array")
            ahead = np.empty((1, self._times, self.state_width))
            behind = np.empty_like(ahead)
            zero = np.empty((0, 1, self.state_width))
            _kernels.rnn_forward_serial(x, self._weight_ih, self._weight_hh, self._bias, self._code, False, zero, ahead)
            _kernels.rnn_forward_serial(x, self._back_ih, self._back_hh, self._bias, self._code, True, zero, behind)
            self._states = (x, ahead, behind)
        return self._states

    @property
    def state_list(self):
        zero = [np.zeros((2 * self.state_width, 1))]
        if self._times == 0:
            return zero
        _, ahead, behind = self._run()
        return zero + list(np.concatenate([ahead[0], behind[0]], axis=1)[:, :, None])

    def backward(self, sensitivity_array, activator=None):
        if self._times == 0:
            raise RuntimeError("BiRecurrentLayer.backward called before forward()")
        check_activator(activator)
        h = self.state_width
        errors = per_step_errors(sensitivity_array, self._times, 2 * h, "sensitivity_array")
        x, ahead, behind = self._run()
        d1, grad_ih, grad_hh = _bptt(
            x, ahead, self._weight_ih, self._weight_hh, self._code, False, np.ascontiguousarray(errors[:, :, :h]))
        d2, grad_back_ih, grad_back_hh = _bptt(
            x, behind, self._back_ih, self._back_hh, self._code, True, np.ascontiguousarray(errors[:, :, h:]))
        self._grads = (grad_ih, grad_hh, grad_back_ih, grad_back_hh)
        self.delta_list = [np.zeros((2 * h, 1))] + list(np.concatenate([d1[0], d2[0]], axis=1)[:, :, None])
        self.U_grad, self.W_grad = grad_ih.T, grad_hh.T
        self.U_back_grad, self.W_back_grad = grad_back_ih.T, grad_back_hh.T

    def __getattr__(self, name):  # only for names not set (yet)
        if name in ("delta_list", "U_grad", "W_grad", "U_back_grad", "W_back_grad"):
            raise AttributeError(f"{name} is set by backward()")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def update(self):
        if self._grads is None:
            raise RuntimeError("BiRecurrentLayer.update called before backward()")
        self._states = None
        for weight, grad in zip((self._weight_ih, self._weight_hh, self._back_ih, self._back_hh), self._grads):
            weight -= self.learning_rate * grad
