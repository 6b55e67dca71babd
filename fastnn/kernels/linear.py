"""The perceptron and the linear unit (tutorial chapters 1 and 2).

Training is the perceptron rule, sample by sample in the order given::

    output = f(w . x + b)
    w += rate * (label - output) * x
    b += rate * (label - output)

With ``f`` the step function this is the perceptron; with the identity it is
the linear unit trained by stochastic gradient descent on the squared error.
Shapes: ``weights (F,)``, ``bias (1,)`` (an array so the kernel can update it
in place), ``inputs (N, F)``, ``labels (N,)``.
"""

from . import activation
from ._jit import jit


@jit
def weighted_sum(weights, bias, x):
    """``w . x + b`` for one input vector."""
    total = bias
    for j in range(x.shape[0]):
        total += weights[j] * x[j]
    return total


@jit
def update(weights, bias, x, delta, rate):
    """The perceptron rule for one sample: ``w += rate * delta * x``, ``b += rate * delta``."""
    for j in range(x.shape[0]):
        weights[j] += rate * delta * x[j]
    bias[0] += rate * delta


def _train(weights, bias, inputs, labels, iterations, rate, activate):
    for _ in range(iterations):
        for s in range(inputs.shape[0]):
            x = inputs[s]
            update(weights, bias, x, labels[s] - activate(weighted_sum(weights, bias[0], x)), rate)


# Specialised on a user's own activation function (compiled by
# compile_scalar_function); this compiles once per function and process.
train_with_function = jit(_train, cache=False)


@jit
def train(weights, bias, inputs, labels, iterations, rate, code):
    """Run `iterations` passes of the perceptron rule with the activation `code`, in place."""
    if code == activation.STEP:
        train_with_function(weights, bias, inputs, labels, iterations, rate, activation.step)
    elif code == activation.SIGMOID:
        train_with_function(weights, bias, inputs, labels, iterations, rate, activation.sigmoid)
    elif code == activation.TANH:
        train_with_function(weights, bias, inputs, labels, iterations, rate, activation.tanh)
    elif code == activation.RELU:
        train_with_function(weights, bias, inputs, labels, iterations, rate, activation.relu)
    else:
        train_with_function(weights, bias, inputs, labels, iterations, rate, activation.identity)


def compile_scalar_function(function):
    """Compile a user's ``float -> number`` activation with Numba, or return None.

    The compiled version is kept only if it agrees with `function` itself on
    a spread of probe points (negative, zero, tiny and positive values), so a
    function Numba types differently from Python never trains silently wrong.
    """
    import numba

    probes = (-40.0, -3.5, -1.0, -0.25, -1e-12, 0.0, 1e-12, 0.25, 1.0, 3.5, 40.0)
    try:
        compiled = numba.njit(function)
        for z in probes:
            expected, got = float(function(z)), float(compiled(z))
            if not (expected == got or (expected != expected and got != got)):
                return None
    except Exception:  # anything Numba cannot compile, or the function itself raises
        return None
    return compiled
