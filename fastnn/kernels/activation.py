"""Activation functions as small integer codes, for use inside other kernels.

Kernels never receive an activator object: the Python fronts translate it to
one of the codes below.  Derivatives are expressed through the activation's
OUTPUT, as the tutorial does: sigmoid ``y(1-y)``, tanh ``1-y^2``, relu
``1 if y > 0 else 0``, identity ``1`` (and step ``0``, it is not trained by
gradients).

The scalar functions are dtype-generic: a float32 argument gives a float32
result, so float32 layers stay float32.
"""

import math

from ._jit import jit

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
STEP = 4

NAMES = {IDENTITY: "identity", SIGMOID: "sigmoid", TANH: "tanh", RELU: "relu", STEP: "step"}


@jit
def identity(z):
    return z


@jit
def sigmoid(z):
    """``1 / (1 + exp(-z))``, evaluated without overflow for large ``|z|``."""
    one = type(z)(1)
    if z >= 0:
        return one / (one + math.exp(-z))
    e = math.exp(z)
    return e / (one + e)


@jit
def tanh(z):
    return math.tanh(z)


@jit
def relu(z):
    return z if z > 0 else type(z)(0)


@jit
def step(z):
    """The perceptron's threshold: ``1 if z > 0 else 0``."""
    return type(z)(1) if z > 0 else type(z)(0)


@jit
def activate(z, code):
    """Apply the activation `code` to the scalar `z`."""
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return tanh(z)
    if code == RELU:
        return relu(z)
    if code == STEP:
        return step(z)
    return z


@jit
def derivative(y, code):
    """Derivative of activation `code`, from its output `y` (the tutorial's ``backward``)."""
    one = type(y)(1)
    if code == SIGMOID:
        return y * (one - y)
    if code == TANH:
        return one - y * y
    if code == RELU:
        return one if y > 0 else type(y)(0)
    if code == STEP:
        return type(y)(0)
    return one


@jit
def activate_array(values, code, out):
    """``out = f(values)`` element-wise, arrays of one shape in C order (`out` may be `values`)."""
    flat_in = values.reshape(-1)
    flat_out = out.reshape(-1)
    for i in range(flat_in.shape[0]):
        flat_out[i] = activate(flat_in[i], code)


@jit
def derivative_array(outputs, code, out):
    """``out = f'(outputs)`` element-wise, from the activation's outputs (same shape, C order)."""
    flat_in = outputs.reshape(-1)
    flat_out = out.reshape(-1)
    for i in range(flat_in.shape[0]):
        flat_out[i] = derivative(flat_in[i], code)
