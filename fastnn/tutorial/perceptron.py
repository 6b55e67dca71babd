"""The tutorial's perceptron (chapter 1), trained by a compiled kernel.

A script written against the tutorial's ``perceptron`` module runs unchanged
with ``from fastnn.tutorial.perceptron import Perceptron``.
"""

from .. import _checks
from ..kernels import activation as _codes
from ..kernels import linear as _kernels


def f(x):
    """The tutorial's step activation: ``1 if x > 0 else 0``."""
    return 1 if x > 0 else 0


def identity(x):
    """The linear unit's activation."""
    return x


# Activations fastnn knows take the cached kernel, selected by code.
_KNOWN_FUNCTIONS = {f: _codes.STEP, identity: _codes.IDENTITY}


class Perceptron:
    """``Perceptron(input_num, activator)``: weights start at 0.0, bias at 0.0.

    `activator` is any Python callable ``float -> number``.  fastnn's own
    (`f`, `identity`) run on a cached compiled kernel; any other function is
    compiled with Numba on first training (about a second, once per process)
    and checked against the original on probe points; a function Numba cannot
    compile faithfully is called from Python per sample instead (correct,
    slower).  ``weights`` is a plain list of floats and ``bias`` a float, as
    in the tutorial: assigning either takes effect on the next call.
    """

    def __init__(self, input_num, activator):
        self.input_num = _checks.check_int(input_num, "input_num", minimum=1)
        if not callable(activator):
            raise TypeError(f"activator must be a callable float -> number, got {activator!r}")
        self.activator = activator
        self.weights = [0.0] * self.input_num
        self.bias = 0.0
        self._compiled_activator = None

    def __str__(self):
        return "weights\t:%s\nbias\t:%f\n" % (self.weights, self.bias)

    def _state(self):
        weights = _checks.as_float_array(self.weights, "weights", shape=(self.input_num,), copy=True)
        bias = _checks.as_float_array([self.bias], "bias", shape=(1,), copy=True)
        return weights, bias

    def _vectors(self, input_vecs, name):
        return _checks.as_float_array(input_vecs, name, shape=(None, self.input_num))

    def predict(self, input_vec):
        """``activator(w . x + b)`` for one input vector of length ``input_num``; the activator's own return type."""
        x = _checks.as_float_array(input_vec, "input_vec", shape=(self.input_num,))
        weights, bias = self._state()
        return self.activator(_kernels.weighted_sum(weights, bias[0], x))

    def train(self, input_vecs, labels, iteration, rate):
        """``iteration`` passes of the perceptron rule over the samples, in order (see kernels.linear)."""
        inputs = self._vectors(input_vecs, "input_vecs")
        targets = _checks.as_float_array(labels, "labels", ndim=1)
        _checks.check_same_length(inputs, "input_vecs", targets, "labels")
        iteration = _checks.check_int(iteration, "iteration", minimum=0)
        rate = _checks.check_rate(rate)
        weights, bias = self._state()
        code = _KNOWN_FUNCTIONS.get(self.activator)
        if code is not None:
            _kernels.train(weights, bias, inputs, targets, iteration, rate, code)
        else:
            compiled = self._compile_activator()
            if compiled is not None:
                _kernels.train_with_function(weights, bias, inputs, targets, iteration, rate, compiled)
            else:
                self._train_calling_python(weights, bias, inputs, targets, iteration, rate)
        self.weights = weights.tolist()
        self.bias = float(bias[0])

    def _compile_activator(self):
        if self._compiled_activator is None:
            self._compiled_activator = _kernels.compile_scalar_function(self.activator) or False
        return self._compiled_activator or None

    def _train_calling_python(self, weights, bias, inputs, targets, iteration, rate):
        # The activator stays in Python; the dot product and the update are still compiled.
        for _ in range(iteration):
            for x, label in zip(inputs, targets):
                output = self.activator(_kernels.weighted_sum(weights, bias[0], x))
                _kernels.update(weights, bias, x, label - _checks.check_real(output, "activator output"), rate)
