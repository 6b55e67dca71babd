"""Activators (tutorial objects) and activation kernels agree with the formulas and with each other."""

import numpy as np
import pytest

from fastnn.kernels import activation
from fastnn.tutorial.activators import (IdentityActivator, ReluActivator, SigmoidActivator,
                                        TanhActivator, activation_code)

from helpers import assert_close

Z = np.array([-800.0, -20.0, -1.5, -1e-9, 0.0, 1e-9, 0.3, 2.0, 30.0, 800.0])
FORMULAS = {
    SigmoidActivator: (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda y: y * (1 - y)),  # the tutorial's formula
    TanhActivator: (np.tanh, lambda y: 1 - y * y),
    ReluActivator: (lambda z: np.where(z > 0, z, 0.0), lambda y: (y > 0).astype(float)),
    IdentityActivator: (lambda z: z, lambda y: np.ones_like(y)),
}


@pytest.mark.parametrize("cls", list(FORMULAS), ids=lambda c: c.__name__)
@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
def test_objects_and_kernels_follow_the_formulas(cls):
    forward, backward = FORMULAS[cls]
    activator = cls()
    y = activator.forward(Z)
    assert_close(y, forward(Z), rtol=1e-14, atol=1e-300, what="forward on arrays")
    assert_close(activator.backward(y), backward(y), rtol=1e-14, what="backward on arrays")
    assert activator.forward(0.3) == pytest.approx(float(forward(np.array(0.3))))
    out = np.empty_like(Z)
    activation.activate_array(Z, activator.code, out)
    assert_close(out, forward(Z), rtol=1e-14, atol=1e-300, what="activate_array")
    activation.derivative_array(y, activator.code, out)
    assert_close(out, backward(y), rtol=1e-14, what="derivative_array")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
def test_kernels_keep_float32_as_float32(dtype):
    z = Z.astype(dtype)
    out = np.empty_like(z)
    activation.activate_array(z, activation.SIGMOID, out)
    assert out.dtype == dtype
    assert_close(out, SigmoidActivator().forward(Z), rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-30,
                 what="sigmoid")


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        assert SigmoidActivator().forward(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


def test_activation_code_refuses_foreign_objects():
    assert activation_code(TanhActivator()) == activation.TANH
    assert activation_code(TanhActivator) == activation.TANH
    with pytest.raises(TypeError, match="activator must be one of"):
        activation_code(np.tanh)
