"""The tutorial's lstm module: ``LstmLayer`` on compiled kernels.

Vectors are ``(n, 1)`` columns, float64.  ``forward(x)`` runs one time
step; ``backward(x, delta_h, activator)`` runs back propagation through time
from ``delta_h``, the error on the last output ``h_T`` (``(state_width,
1)``; a list of one per step is accepted too), over every step since the
last ``reset_state()``.  Gradients are stored and subtracted by ``update()``.
As in ``fastnn.tutorial.rnn``, ``forward`` records its input and the
recorded steps run in one kernel call when their results are first needed.
From ``PRODUCT_WORK`` multiply-adds a pass on (20 steps of 12 -> 12), the
matrix products of the pass, the input projection of its steps and the
weight gradients, are numpy's BLAS (``fastnn.kernels.blas``), called from
inside the kernels, on one BLAS thread.

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

from contextlib import nullcontext

import numpy as np

from .._blas import SERIAL_GEMM_WORK, dgemm_address, one_blas_thread
from .._checks import check_int, rate_attribute
from .._memory import aligned_empty, aligned_zeros
from ..kernels import lstm as _kernels
from ..kernels.optim import descend
from .activators import SigmoidActivator, TanhActivator
from .rnn import StepBuffers, StepRecorder, check_activator, error_column, extend_views, view_property, weight_source

# Gate blocks of the packed kernel arrays, in the kernel's order (i, f, g, o),
# by the tutorial's letter: i input, f forget, c candidate (its c~), o output.
_BLOCK = {"i": 0, "f": 1, "c": 2, "o": 3}
_NAMES = tuple(name for g in "fioc" for name in (f"W{g}h", f"W{g}x", f"b{g}"))
_LISTS = ("h", "c", "f", "i", "o", "ct")
# From this many multiply-adds (steps x 4H (F + H)) on, a pass's matrix products (the input projection of
# its steps, the weight gradients) are calls of numpy's BLAS from inside the kernels: AVX-512 code tuned for
# products, against Numba's loops.  A step of 20 x 32 -> 64 measured 105 us instead of 123 (on a slow hour of
# the host); below about 20 steps of 12 -> 12 the two paths differ by a few percent either way.
PRODUCT_WORK = 20_000
_NO_CONTEXT = nullcontext()


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
        if self._grad_views is None:
            self._grad_views = _views(*self._packed(self._grads), self.state_width)
        return self._grad_views[name]

    return property(getter, doc=f"Gradient of ``{name}`` from the last backward().")


class LstmLayer(StepRecorder):
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

    _input_name = "x"
    learning_rate = rate_attribute()

    def __init__(self, input_width, state_width, learning_rate, rng=None):
        self.input_width = check_int(input_width, "input_width", 1)
        self.state_width = check_int(state_width, "state_width", 1)
        self.learning_rate = learning_rate
        self.gate_activator = SigmoidActivator()
        self.output_activator = TanhActivator()
        hidden = state_width
        # [weight_ih | weight_hh | bias] in one flat array, which the kernels and the update take whole;
        # cache-line aligned: numpy's 16-byte alignment made every other vector load of the weights straddle two
        # cache lines, and a whole step about 20% slower at 32 -> 64
        self._flat = aligned_zeros((input_width + hidden + 1) * 4 * hidden)
        # Row 0 of h, c and gates is the zero state before the first step; row t belongs to step t.
        self._steps = StepBuffers(x=input_width, h=hidden, c=hidden, tanh_c=hidden, gates=4 * hidden)
        self._grads = self._errors = self._lists = None
        self._bind()
        uniform = weight_source(rng)
        for gate in "fioc":  # the tutorial's drawing order
            self._params[f"W{gate}h"][...] = uniform(-1e-4, 1e-4, (hidden, hidden))
            self._params[f"W{gate}x"][...] = uniform(-1e-4, 1e-4, (hidden, input_width))
        self.reset_state()

    _VIEWS = frozenset({"_params", "_grad_views", "_x_rows"})

    def _bind(self):
        self._step_work = 4 * self.state_width * (self.input_width + self.state_width)  # multiply-adds of a step
        self._params = _views(*self._packed(self._flat), self.state_width)
        self._grad_views = None
        super()._bind()

    def _packed(self, flat):
        """``(weight_ih (F, 4H), weight_hh (H, 4H), bias (4H,))``: views of a flat array laid out as ``_flat``."""
        width = 4 * self.state_width
        a, b = self.input_width * width, (self.input_width + self.state_width) * width
        return flat[:a].reshape(-1, width), flat[a:b].reshape(-1, width), flat[b:]

    def reset_state(self):
        if self._lists is not None:  # handed out, and their rows must keep this sequence's values: new rows
            self._steps = self._steps.fresh()
            self._bind()
        self._start()
        self._lists = None  # the per-step lists, made when first read

    def _compute(self):
        s, first, last = self._steps, self._computed, self._times
        gemm, threads = self._products(last - first)
        with threads:
            bad = _kernels.lstm_sequence_forward(s.x, s.h, s.c, s.tanh_c, s.gates, self._flat, first, last, gemm)
        self._checked(bad)

    def _products(self, steps):
        """``(gemm, threads)`` for a pass over `steps` steps: the kernels' ``gemm`` argument, numpy's BLAS
        dgemm from PRODUCT_WORK multiply-adds on, else 0 (the kernels' own loops), and the context to call
        them in: one BLAS thread once the largest product is big enough for OpenBLAS to spread it."""
        gemm = dgemm_address() if steps * self._step_work >= PRODUCT_WORK else 0
        largest = 4 * self.state_width * steps * max(self.input_width, self.state_width)
        return gemm, one_blas_thread if gemm and largest >= SERIAL_GEMM_WORK else _NO_CONTEXT

    def backward(self, x, delta_h, activator=None):
        """BPTT from ``delta_h`` (``dE/dh_T``, or a list of ``dE/dh_t`` per step); `x`, `activator` unused."""
        count = self._times
        if count == 0:
            raise RuntimeError("LstmLayer.backward called before forward()")
        check_activator(activator)
        hidden = self.state_width
        errors = error_column(delta_h, count, hidden, "delta_h")
        s, first = self._steps, self._computed
        dnet, dh, grads = self._outputs(count)
        gemm, threads = self._products(count)
        with threads:
            bad = _kernels.lstm_sequence_backward(s.x, s.h, s.c, s.tanh_c, s.gates, self._flat, first, count, errors,
                                                  dnet, dh, grads, gemm)
        self._checked(bad, "delta_h")
        self._grads, self._grad_views = grads, None
        self._errors = (dh, dnet)
        self._delta_lists = {}

    def _outputs(self, count):
        """``(dnet, dh, grads)`` for a backward pass over `count` steps: the last pass's arrays when no view of
        them was handed out (``delta_*_list``, ``W*_grad``), else new cache-line aligned ones.

        dnet and grads are rows of 4H values that the kernel writes and reads again: aligned and kept warm in
        cache, a 32 -> 64 step measured 2-5% faster than with new numpy arrays every pass.
        """
        hidden = self.state_width
        last = self._errors  # (dh, dnet) of the last backward
        if last is not None and not self._delta_lists and last[1].shape[0] == count:
            dh, dnet = last
        else:
            dnet, dh = aligned_empty((count, 4 * hidden)), np.empty((count + 1, hidden))
        grads = self._grads if self._grads is not None and self._grad_views is None else aligned_empty(self._flat.size)
        return dnet, dh, grads

    def update(self):
        """Gradient descent on all twelve parameters: ``W -= learning_rate * W_grad``."""
        if self._grads is None:
            raise RuntimeError("LstmLayer.update called before backward()")
        self._settle()
        descend(self._flat, self._grads, self.learning_rate)


def _list_property(name):
    def getter(self):
        self._settle()
        s, hidden = self._steps, self.state_width
        if name in ("h", "c"):
            rows = getattr(s, name)
        else:
            k = _BLOCK["c" if name == "ct" else name]
            rows = s.gates[:, k * hidden:(k + 1) * hidden]
        if self._lists is None:
            self._lists = {name: [] for name in _LISTS}
        return extend_views(self._lists[name], rows, self._times + 1)

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
