"""The tutorial's fully connected network in matrix form (chapter 3, ``fc``), on compiled kernels.

Vectors are column arrays ``(n, 1)`` as in the tutorial.  Sign conventions
are the tutorial's: ``delta`` and ``W_grad``/``b_grad`` are NEGATIVE
gradients of the half squared error and ``update`` adds them.
"""

import numpy as np

from .. import _checks
from .._memory import aligned_empty, is_aligned
from ..kernels import dense as _kernels
from .activators import SigmoidActivator, activation_code


class FullConnectedLayer:
    """``FullConnectedLayer(input_size, output_size, activator, rng=None)``.

    ``W (out, in)`` starts uniform in [-0.1, 0.1], ``b (out, 1)`` at zero.
    ``forward(input_array)`` sets ``input`` and ``output``;
    ``backward(delta_array)`` sets ``delta = activator.backward(input) *
    W^T delta`` (the tutorial's formula: this layer's activator, evaluated
    at its input), ``W_grad`` and ``b_grad``; ``update(rate)`` adds them.
    ``W`` and ``b`` may be reassigned: the next call uses the new arrays.
    """

    def __init__(self, input_size, output_size, activator, rng=None):
        self.input_size = _checks.check_int(input_size, "input_size", minimum=1)
        self.output_size = _checks.check_int(output_size, "output_size", minimum=1)
        self._code = activation_code(activator)
        self.activator = activator
        self.W = aligned_empty((self.output_size, self.input_size))
        self.W[:] = _checks.make_rng(rng).uniform(-0.1, 0.1, self.W.shape)
        self.b = np.zeros((self.output_size, 1))
        self.output = np.zeros((self.output_size, 1))
        self.input = None
        self.delta = np.zeros((self.input_size, 1))
        self.W_grad = np.zeros_like(self.W)
        self.b_grad = np.zeros_like(self.b)

    def _parameters(self):
        """``W`` and ``b`` as C-contiguous float64 arrays the kernels may update in place.

        A user who assigned another array (a list, a transposed view, ...)
        gets it converted once here; the layer keeps the converted array.
        ``W`` is kept on a 64-byte boundary, which makes training faster.
        """
        if not (isinstance(self.W, np.ndarray) and self.W.dtype == np.float64 and self.W.flags.c_contiguous
                and self.W.shape == (self.output_size, self.input_size) and is_aligned(self.W)):
            W = _checks.as_float_array(self.W, "W", shape=(self.output_size, self.input_size))
            self.W = aligned_empty(W.shape)
            self.W[:] = W
        if not (isinstance(self.b, np.ndarray) and self.b.dtype == np.float64 and self.b.flags.c_contiguous
                and self.b.shape == (self.output_size, 1)):
            self.b = _checks.as_float_array(self.b, "b", shape=(self.output_size, 1), copy=True)
        return self.W, self.b

    def _vector(self, value, name, size):
        array = _checks.as_float_array(value, name)
        if array.shape not in ((size, 1), (size,)):
            raise ValueError(f"{name} must have shape ({size}, 1), got {array.shape}")
        return array.reshape(size, 1)

    def forward(self, input_array):
        """``output = f(W input + b)``; `input_array` is ``(input_size, 1)``."""
        W, b = self._parameters()
        self.input = self._vector(input_array, "input_array", self.input_size)
        self.output = np.empty((self.output_size, 1))
        _kernels.forward(W, b.reshape(-1), self.input.reshape(-1), self._code, self.output.reshape(-1))

    def backward(self, delta_array):
        """Gradients for `delta_array` ``(output_size, 1)``, the delta of this layer's weighted input."""
        self._backward(delta_array, self._code)

    def _backward(self, delta_array, input_code):
        if self.input is None:
            raise RuntimeError("FullConnectedLayer.backward called before forward()")
        W, _ = self._parameters()
        delta = self._vector(delta_array, "delta_array", self.output_size)
        self.delta = np.empty((self.input_size, 1))
        self.W_grad = np.empty_like(W)
        self.b_grad = np.empty((self.output_size, 1))
        _kernels.backward(W, self.input.reshape(-1), delta.reshape(-1), input_code, self.delta.reshape(-1),
                          self.W_grad, self.b_grad.reshape(-1))

    def update(self, learning_rate):
        """``W += rate * W_grad``, ``b += rate * b_grad``."""
        rate = _checks.check_rate(learning_rate, "learning_rate")
        W, b = self._parameters()
        W += rate * self.W_grad
        b += rate * self.b_grad

    def dump(self):
        print("W: %s\nb:%s" % (self.W, self.b))


class Network:
    """``Network(layers, rng=None)``: sigmoid FullConnectedLayers of sizes ``layers`` (e.g. ``[784, 100, 10]``)."""

    def __init__(self, layers, rng=None):
        if not isinstance(layers, (list, tuple)) or len(layers) < 2:
            raise ValueError(f"layers must be a list of at least two layer sizes, got {layers!r}")
        sizes = [_checks.check_int(n, f"layers[{i}]", minimum=1) for i, n in enumerate(layers)]
        rng = _checks.make_rng(rng)
        self.layers = [FullConnectedLayer(sizes[i], sizes[i + 1], SigmoidActivator(), rng)
                       for i in range(len(sizes) - 1)]

    @property
    def _input_size(self):
        return self.layers[0].input_size

    @property
    def _output_size(self):
        return self.layers[-1].output_size

    def predict(self, sample):
        """The network's output ``(out, 1)`` for one sample ``(in, 1)``."""
        output = sample
        for layer in self.layers:
            layer.forward(output)
            output = layer.output
        return output

    def train(self, labels, data_set, rate, epoch):
        """`epoch` passes of per-sample SGD; `data_set` and `labels` are sequences of ``(n, 1)`` vectors.

        One compiled call runs every sample of every epoch; afterwards each
        layer's ``input``, ``output``, ``delta``, ``W_grad`` and ``b_grad``
        are those of the last sample, as in the tutorial.
        """
        samples = self._stack(data_set, "data_set", self._input_size)
        targets = self._stack(labels, "labels", self._output_size)
        _checks.check_same_length(targets, "labels", samples, "data_set")
        rate = _checks.check_rate(rate)
        epoch = _checks.check_int(epoch, "epoch", minimum=0)
        if epoch == 0 or len(samples) == 0:
            return
        params = [layer._parameters() for layer in self.layers]
        for layer in self.layers:
            layer.output = np.empty((layer.output_size, 1))
            layer.delta = np.empty((layer.input_size, 1))
            layer.W_grad = np.empty_like(layer.W)
            layer.b_grad = np.empty((layer.output_size, 1))
        _kernels.train(
            tuple(W for W, _ in params), tuple(b.reshape(-1) for _, b in params),
            np.array([layer._code for layer in self.layers], dtype=np.int64),
            samples, targets, rate, epoch,
            tuple(layer.output.reshape(-1) for layer in self.layers),
            tuple(layer.delta.reshape(-1) for layer in self.layers),
            tuple(layer.W_grad for layer in self.layers),
            tuple(layer.b_grad.reshape(-1) for layer in self.layers))
        self.layers[0].input = samples[-1 if epoch * len(samples) else 0].reshape(-1, 1).copy()
        for below, layer in zip(self.layers, self.layers[1:]):
            layer.input = below.output

    @staticmethod
    def _stack(vectors, name, size):
        array = _checks.as_float_array(vectors, name)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim != 2 or array.shape[1] != size:
            raise ValueError(f"{name} must be a sequence of ({size}, 1) vectors, got an array of shape {array.shape}")
        return np.ascontiguousarray(array)

    def train_one_sample(self, label, sample, rate):
        self.train([label], [sample], rate, 1)

    def calc_gradient(self, label):
        """Back-propagate from `label` after a ``predict``: every layer's ``delta``, ``W_grad``, ``b_grad``.

        The error handed to layer l-1 uses layer l-1's activation derivative
        (the tutorial uses layer l's; the two agree in its all-sigmoid network).
        """
        output = self.layers[-1].output
        target = self.layers[-1]._vector(label, "label", self._output_size)
        delta = self.layers[-1].activator.backward(output) * (target - output)
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            layer._backward(delta, self.layers[index - 1]._code if index else layer._code)
            delta = layer.delta
        return delta

    def update_weight(self, rate):
        for layer in self.layers:
            layer.update(rate)

    def dump(self):
        for layer in self.layers:
            layer.dump()

    def loss(self, output, label):
        """Half squared error ``0.5 * sum((label - output)^2)``."""
        return 0.5 * ((label - output) * (label - output)).sum()

    def gradient_check(self, sample_feature, sample_label, epsilon=1e-4, verbose=False):
        """Central differences for every weight; returns ``[(expected, actual), ...]``.

        `expected` is ``(loss(W - eps) - loss(W + eps)) / (2 eps)``: the
        negative gradient, matching the sign of ``W_grad``.  (The tutorial
        prints the positive one beside ``W_grad``, so its two columns differ
        in sign.)  With `verbose` each pair is printed as the tutorial does.
        """
        self.predict(sample_feature)
        self.calc_gradient(sample_label)
        pairs = []
        for fc in self.layers:
            W, _ = fc._parameters()
            analytic = fc.W_grad.copy()
            for i in range(W.shape[0]):
                for j in range(W.shape[1]):
                    original = W[i, j]
                    W[i, j] = original + epsilon
                    err1 = self.loss(self.predict(sample_feature), sample_label)
                    W[i, j] = original - epsilon
                    err2 = self.loss(self.predict(sample_feature), sample_label)
                    W[i, j] = original
                    pairs.append(((err2 - err1) / (2 * epsilon), analytic[i, j]))
                    if verbose:
                        print("weights(%d,%d): expected - actual %.4e - %.4e" % (i, j, *pairs[-1]))
        return pairs
