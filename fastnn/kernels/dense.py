"""The fully connected layer in matrix form (tutorial chapter 3, ``fc``), one sample at a time.

Shapes: a layer's weights ``W (out, in)``, bias ``b (out,)``, input
``x (in,)``, output ``y (out,)``.  The tutorial's formulas (its sign
convention: a "delta" is the NEGATIVE gradient of the loss with respect to a
weighted input, and updates add ``rate * gradient``)::

    forward      y = f(W x + b)                         (its formula 2)
    output delta delta_L = f'(y_L) * (t - y_L)          (half squared error)
    backward     delta_in = f'(x) * W^T delta           (formula 8)
    gradients    W_grad = delta x^T,  b_grad = delta
    update       W += rate * W_grad,  b += rate * b_grad

``f'`` is expressed through the activation's output (`activation.derivative`).
A whole network is a tuple of per-layer arrays (all float64 or all float32),
so one compiled call trains it over many samples.
"""

import numpy as np

from .activation import activate, derivative
from ._jit import jit


@jit
def forward(W, b, x, code, out):
    """One layer: ``out = f(W x + b)``."""
    for j in range(W.shape[0]):
        row = W[j]
        total = b[j]
        for i in range(x.shape[0]):
            total += row[i] * x[i]
        out[j] = activate(total, code)


@jit
def backward(W, x, delta, input_code, delta_in, W_grad, b_grad):
    """One layer: ``delta_in = f'(x) * W^T delta``, ``W_grad = delta x^T``, ``b_grad = delta``.

    ``f'`` is the derivative of activation `input_code`, expressed through
    its output `x` (the input of this layer).
    """
    delta_in[:] = 0
    for j in range(W.shape[0]):
        row, grad_row, d = W[j], W_grad[j], delta[j]
        for i in range(x.shape[0]):
            delta_in[i] += row[i] * d
            grad_row[i] = d * x[i]
        b_grad[j] = d
    for i in range(x.shape[0]):
        delta_in[i] *= derivative(x[i], input_code)


@jit
def _add_scaled(target, rate, source):
    """``target += rate * source`` for 1-D arrays."""
    for i in range(target.shape[0]):
        target[i] += rate * source[i]


@jit
def _backward_update(W, b, x, delta, rate, acc):
    """``acc = W^T delta`` with the old weights, then ``W += rate delta x^T``, ``b += rate delta``; one pass."""
    acc[:] = 0
    for j in range(W.shape[0]):
        row, d = W[j], delta[j]
        step = rate * d
        for i in range(x.shape[0]):
            acc[i] += row[i] * d
            row[i] += step * x[i]
        b[j] += step


@jit
def _update_then_forward(W, b, x_old, delta, rate, x_new, code, out):
    """Finish sample i's update of the first layer and compute sample i+1's output in one pass over W."""
    for j in range(W.shape[0]):
        row = W[j]
        step = rate * delta[j]
        total = x_new.dtype.type(0)
        for i in range(x_new.shape[0]):
            row[i] += step * x_old[i]
            total += row[i] * x_new[i]
        b[j] += step
        out[j] = activate(total + b[j], code)


@jit
def predict(weights, biases, codes, x, outputs):
    """Forward pass of a network for one sample: ``outputs[l]`` receives layer l's output."""
    forward(weights[0], biases[0], x, codes[0], outputs[0])
    for l in range(1, len(weights)):
        forward(weights[l], biases[l], outputs[l - 1], codes[l], outputs[l])


@jit
def train(weights, biases, codes, samples, labels, rate, epochs, outputs, input_deltas, weight_grads, bias_grads):
    """Per-sample SGD of a network over `samples` (N, in) and `labels` (N, out), `epochs` times.

    `weights`, `biases`, `outputs`, `input_deltas`, `weight_grads` and
    `bias_grads` are tuples with one array per layer (``input_deltas[l]``
    has layer l's input size).  The result is the tutorial's
    ``train_one_sample`` loop exactly (deltas from the old weights, then the
    update), reorganised so that each weight is read once per sample: the
    back-propagation through layer l shares its pass with that layer's update,
    and the first layer's update shares its pass with the next sample's
    forward.  The error passed down to layer l-1 uses layer l-1's own
    activation derivative.  At least one step must be asked for; on return
    the per-layer tuples hold the last sample's values, as the tutorial's
    layer objects would.
    """
    n_layers = len(weights)
    n_samples = samples.shape[0]
    last = n_layers - 1
    scratch_size = 0
    for l in range(n_layers):
        scratch_size += weights[l].shape[0]
    scratch = np.empty(scratch_size, samples.dtype)  # the delta of every layer's output
    predict(weights, biases, codes, samples[0], outputs)
    total = n_samples * epochs
    for step_index in range(total):
        x = samples[step_index % n_samples]
        y = outputs[last]
        delta = scratch[:y.shape[0]]
        for j in range(y.shape[0]):
            delta[j] = derivative(y[j], codes[last]) * (labels[step_index % n_samples][j] - y[j])
        if step_index == total - 1:
            # Record what the tutorial's objects hold after training, then update.
            for l in range(last, -1, -1):
                below = outputs[l - 1] if l > 0 else x
                below_code = codes[l - 1] if l > 0 else codes[0]
                backward(weights[l], below, delta, below_code, input_deltas[l], weight_grads[l], bias_grads[l])
                delta = input_deltas[l]
            for l in range(n_layers):
                _add_scaled(weights[l].reshape(-1), rate, weight_grads[l].reshape(-1))
                _add_scaled(biases[l], rate, bias_grads[l])
            break
        offset = y.shape[0]
        for l in range(last, 0, -1):
            below = outputs[l - 1]
            acc = scratch[offset:offset + below.shape[0]]
            offset += below.shape[0]
            _backward_update(weights[l], biases[l], below, delta, rate, acc)
            for i in range(below.shape[0]):
                acc[i] *= derivative(below[i], codes[l - 1])
            delta = acc
        x_next = samples[(step_index + 1) % n_samples]
        _update_then_forward(weights[0], biases[0], x, delta, rate, x_next, codes[0], outputs[0])
        for l in range(1, n_layers):
            forward(weights[l], biases[l], outputs[l - 1], codes[l], outputs[l])
