"""The tutorial's activators: ``forward(weighted_input)`` and ``backward(output)``.

``backward`` takes the activation's OUTPUT and returns the derivative
expressed through it (sigmoid ``y(1-y)``, tanh ``1-y^2``, relu
``1 if y > 0 else 0``, identity ``1``).  Both accept scalars and numpy arrays
(element-wise).  Each class carries the integer ``code`` under which the
kernels know it; layers hand kernels the code, never the object.
"""

import numpy as np

from ..kernels import activation as _codes


class _Activator:
    code = None

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


class ReluActivator(_Activator):
    code = _codes.RELU

    def forward(self, weighted_input):
        return np.maximum(weighted_input, 0) if np.ndim(weighted_input) else max(0, weighted_input)

    def backward(self, output):
        return (np.asarray(output) > 0).astype(float) if np.ndim(output) else (1 if output > 0 else 0)


class IdentityActivator(_Activator):
    code = _codes.IDENTITY

    def forward(self, weighted_input):
        return weighted_input

    def backward(self, output):
        return np.ones_like(output, dtype=float) if np.ndim(output) else 1


class SigmoidActivator(_Activator):
    code = _codes.SIGMOID

    def forward(self, weighted_input):
        # Evaluated as 1/(1+exp(-z)) for z >= 0 and exp(z)/(1+exp(z)) below, so no overflow warning.
        z = np.asarray(weighted_input, dtype=float)
        e = np.exp(-np.abs(z))
        result = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return result if np.ndim(weighted_input) else float(result)

    def backward(self, output):
        return output * (1 - output)


class TanhActivator(_Activator):
    code = _codes.TANH

    def forward(self, weighted_input):
        result = np.tanh(weighted_input)
        return result if np.ndim(weighted_input) else float(result)

    def backward(self, output):
        return 1 - output * output


ACTIVATORS = (ReluActivator, IdentityActivator, SigmoidActivator, TanhActivator)


def activation_code(activator, name="activator"):
    """The kernel code of a tutorial activator (an instance or the class itself), or a TypeError."""
    if isinstance(activator, type) and issubclass(activator, _Activator):
        return activator.code
    if isinstance(activator, _Activator):
        return activator.code
    allowed = ", ".join(c.__name__ for c in ACTIVATORS)
    raise TypeError(f"{name} must be one of fastnn.tutorial.activators' {allowed}, got {activator!r}")
