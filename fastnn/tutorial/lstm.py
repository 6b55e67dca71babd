"""The tutorial's lstm module: ``LstmLayer`` on compiled kernels.

Vectors are ``(n, 1)`` columns, float64.  ``forward(x)`` runs one time
step; ``backward(x, delta_h, activator)`` runs back propagation through time
from ``delta_h``, the error on the last output ``h_T`` (``(state_width,
1)``; a list of one per step is accepted too), over every step since the
last ``reset_state()``.  Gradients are stored and subtracted by ``update()``.
As in ``fastnn.tutorial.rnn``, ``forward`` records its input and the
recorded steps run in one kernel call when their results are first needed.

Corrections to the tutorial's published code, checked by central
differences in the tests: the cell state's error flows back through the
forget gate (``dc_{t-1} += dc_t * f_t``, missing there); the input weights'
gradients are summed over every step (it takes the last step's only); each
bias gets its own gate's gradient (it gives bi and bo the forget gate's);
``update`` uses the gradients' real names for all twelve parameters.  `x`
and `activator` of ``backward`` are accepted for compatibility and not used:
the inputs of every step are kept by ``forward``, and the activations are
the layer's own (sigmoid gates, tanh cell).
"""

import numpy as np

from .._checks import check_int, check_rate
from ..kernels import lstm as _kernels
from .activators import SigmoidActivator, TanhActivator, activation_code
from .rnn import (StepBuffers, check_finite_steps, extend_views, per_step_errors, record_column, view_property,
                  weight_source)

# Gate blocks of the packed kernel arrays, in the kernel's order (i, f, g, o),
# by the tutorial's letter: i input, f forget, c candidate (its c~), o output.
_BLOCK = {"i": 0, "f": 1, "c": 2, "o": 3}
_NAMES = tuple(name for g in "fioc" for name in (f"W{g}h", f"W{g}x", f"b{g}"))
_LISTS = ("h", "c", "f", "i", "o", "ct")


def _views(weight_ih, weight_hh, bias, hidden):
    """The tutorial's twelve arrays as views of the packed input-major ones.

    ``W*h`` are ``(H, H)``, ``W*x`` ``(H, F)``, ``b*`` ``(H, 1)``.
    """
    views = {}
    for gate, k in _BLOCK.items():
        cols = slice(k * hidden, (k + 1) * hidden)
        views[f"W{gate}h"] = weight_hh[:, cols].T
        views[f"W{gate}x"] = weight_ih[:, cols].T
        views[f"b{gate}"] = bias[cols].reshape(hidden, 1)
    return views


def _gradient(name):
    def getter(self):
        if self._grads is None:
            raise AttributeError(f"{name}_grad is set by backward()")
        return self._grad_views[name]

    return property(getter, doc=f"Gradient of ``{name}`` from the last backward().")


class LstmLayer:
    """``LstmLayer(input_width, state_width, learning_rate)``: sigmoid gates, tanh cell, ``h_0 = c_0 = 0``.

    Parameters (the tutorial's names): ``Wfh, Wfx, bf`` (forget gate),
    ``Wih, Wix, bi`` (input gate), ``Woh, Wox, bo`` (output gate), ``Wch,
    Wcx, bc`` (candidate state), views of packed kernel arrays, so writing
    ``layer.Wfh[i, j]`` takes effect in the next forward.  After forward:
    ``times``, ``h_list``, ``c_list``, ``f_list``, ``i_list``, ``o_list``,
    ``ct_list`` (each starting with the zero vector).  After backward:
    ``delta_h_list`` (``dE/dh_t``, t = 0..T), ``delta_f_list``,
    ``delta_i_list``, ``delta_o_list``, ``delta_ct_list`` (errors on the
    gates' weighted inputs, index 0 zero) and ``Wfh_grad`` .. ``bc_grad``.
    `rng` (fastnn's addition) draws the initial weights instead of numpy's
    global generator.
    """

    def __init__(self, input_width, state_width, learning_rate, rng=None):
        self.input_width = check_int(input_width, "input_width", 1)
        self.state_width = check_int(state_width, "state_width", 1)
        self.learning_rate = check_rate(learning_rate, "learning_rate")
        self.gate_activator = SigmoidActivator()
        self.output_activator = TanhActivator()
        hidden = state_width
        self._weight_ih = np.empty((input_width, 4 * hidden))
        self._weight_hh = np.empty((hidden, 4 * hidden))
        self._bias = np.zeros(4 * hidden)
        self._params = _views(self._weight_ih, self._weight_hh, self._bias, hidden)
        uniform = weight_source(rng)
        for gate in "fioc":  # the tutorial's drawing order
            self._params[f"W{gate}h"][...] = uniform(-1e-4, 1e-4, (hidden, hidden))
            self._params[f"W{gate}x"][...] = uniform(-1e-4, 1e-4, (hidden, input_width))
        # Row 0 of h, c and gates is the zero state before the first step; row t belongs to step t.
        self._steps = StepBuffers(x=input_width, h=hidden, c=hidden, tanh_c=hidden, gates=4 * hidden)
        self._grads = None
        self.reset_state()

    def reset_state(self):
        self.times = 0
        self._computed = 0
        self._lists = {name: [] for name in _LISTS}

    def forward(self, x):
        """Add one step for input `x` ``(input_width, 1)``: h, c and the gates."""
        self._steps.reserve(self.times + 2)
        record_column(self._steps.x[self.times], x, "x", self.input_width)
        self.times += 1

    def _settle(self):
        """Compute the recorded steps not computed yet, in one kernel call, and extend the lists."""
        first, last = self._computed, self.times
        if first == last:
            return
        s = self._steps
        check_finite_steps(s.x[first:last], first, "x")
        new = slice(first + 1, last + 1)
        _kernels.lstm_forward_serial(s.x[first:last][None], self._weight_ih, self._weight_hh, self._bias,
                              s.h[first:first + 1][None], s.c[first:first + 1][None],
                              s.gates[new][None], s.c[new][None], s.tanh_c[new][None], s.h[new][None])
        self._computed = last

    def backward(self, x, delta_h, activator=None):
        """BPTT from ``delta_h`` (``dE/dh_T``, or a list of ``dE/dh_t`` per step); `x`, `activator` unused."""
        if self.times == 0:
            raise RuntimeError("LstmLayer.backward called before forward()")
        if activator is not None:
            activation_code(activator)
        hidden, steps = self.state_width, self.times
        grad_h = per_step_errors(delta_h, steps, hidden, "delta_h")
        self._settle()
        s = self._steps
        rows = slice(1, steps + 1)
        x_seq = s.x[:steps][None]
        dnet = np.empty((1, steps, 4 * hidden))
        dh = np.empty((1, steps + 1, hidden))
        grad_x = np.empty_like(x_seq)
        grads = tuple(np.empty_like(a) for a in (self._weight_ih, self._weight_hh, self._bias))
        _kernels.lstm_backward_serial(x_seq, s.h[rows][None], s.c[rows][None], s.gates[rows][None],
                                      s.tanh_c[rows][None], self._weight_ih, self._weight_hh, grad_h,
                                      dnet, dh, grad_x, *grads)
        self._grads = grads
        self._grad_views = _views(*grads, hidden)
        self._errors = (dh[0], dnet[0])
        self._delta_lists = {}

    def update(self):
        """Gradient descent on all twelve parameters: ``W -= learning_rate * W_grad``."""
        if self._grads is None:
            raise RuntimeError("LstmLayer.update called before backward()")
        self._settle()
        for param, grad in zip((self._weight_ih, self._weight_hh, self._bias), self._grads):
            param -= self.learning_rate * grad


def _list_property(name):
    def getter(self):
        self._settle()
        s, hidden = self._steps, self.state_width
        if name in ("h", "c"):
            rows = getattr(s, name)
        else:
            k = _BLOCK["c" if name == "ct" else name]
            rows = s.gates[:, k * hidden:(k + 1) * hidden]
        return extend_views(self._lists[name], rows, self.times + 1)

    return property(getter, doc=f"``{name}`` of every step so far, index 0 the zero state; ``(state_width, 1)`` each.")


def _delta_list_property(name):
    def getter(self):
        if self._grads is None:
            raise AttributeError(f"delta_{name}_list is set by backward()")
        if name not in self._delta_lists:
            dh, dnet = self._errors
            if name == "h":
                self._delta_lists[name] = list(dh[:, :, None])
            else:
                k, hidden = _BLOCK["c" if name == "ct" else name], self.state_width
                self._delta_lists[name] = [np.zeros((hidden, 1))] + list(dnet[:, k * hidden:(k + 1) * hidden, None])
        return self._delta_lists[name]

    doc = ("``dE/dh_t`` for t = 0..T (index 0: the zero initial state)" if name == "h" else
           f"error on the {name} gate's weighted input per step, index 0 zero")
    return property(getter, doc=doc)


for _name in _LISTS:
    setattr(LstmLayer, f"{_name}_list", _list_property(_name))
for _name in ("h", "f", "i", "o", "ct"):
    setattr(LstmLayer, f"delta_{_name}_list", _delta_list_property(_name))
for _name in _NAMES:
    setattr(LstmLayer, _name, view_property(_name, lambda self, n=_name: self._params[n],
                                            f"``{_name}``, a view of the packed kernel weights."))
    setattr(LstmLayer, f"{_name}_grad", _gradient(_name))
