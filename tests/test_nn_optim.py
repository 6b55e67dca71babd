"""Optimizers: kernels against the reference twin over several steps, state handling and bad hyper-parameters."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn.nn import SGD, Adam, Dense
from fastnn.reference import batched as reference

from helpers import assert_close


def gradient_steps(seed, shape, steps):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for _ in range(steps)]


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       weight_decay=st.sampled_from([0.0, 0.01]))
def test_sgd_matches_the_twin(seed, momentum, nesterov, weight_decay):
    nesterov = nesterov and momentum > 0
    layer = Dense(3, 2, rng=seed)
    optimizer = SGD(lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    expected = {name: (p.astype(np.float64), np.zeros(p.shape)) for name, p in layer.params.items()}
    for step, grads in enumerate(zip(gradient_steps(seed, (2, 3), 3), gradient_steps(seed + 1, (2,), 3))):
        for name, grad in zip(("weight", "bias"), grads):
            layer.grads[name][...] = grad
            param, velocity = expected[name]
            expected[name] = reference.sgd_update(param, grad, velocity, 0.1, momentum, nesterov, weight_decay)
        assert optimizer.step([layer])
        for name in layer.params:
            assert_close(layer.params[name], expected[name][0], rtol=1e-5, atol=1e-6, what=f"{name} after step {step + 1}")


def test_adam_matches_the_twin():
    layer = Dense(4, 3, rng=5)
    optimizer = Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    expected = {name: (p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape)) for name, p in layer.params.items()}
    for step in range(1, 5):
        for name, grad in zip(("weight", "bias"), (gradient_steps(step, (3, 4), 1)[0], gradient_steps(step, (3,), 1)[0])):
            layer.grads[name][...] = grad
            param, first, second = expected[name]
            expected[name] = reference.adam_update(param, grad, first, second, 0.01, 0.8, 0.99, 1e-6, 0.1, step)
        assert optimizer.step([layer])
        for name in layer.params:
            assert_close(layer.params[name], expected[name][0], rtol=1e-5, atol=1e-6, what=f"{name} after step {step}")
            assert layer.params[name].dtype == np.float32


def test_a_non_finite_gradient_changes_nothing():
    layer = Dense(3, 2, rng=0)
    before = {name: p.copy() for name, p in layer.params.items()}
    layer.grads["weight"][...] = 1.0
    layer.grads["bias"][1] = np.inf
    assert not SGD(lr=0.1, momentum=0.9).step([layer])
    for name in before:
        assert np.array_equal(layer.params[name], before[name])


def test_state_follows_the_parameter_arrays():
    layer = Dense(2, 2, rng=0)
    optimizer = SGD(lr=0.1, momentum=0.5)
    layer.grads["weight"][...] = 1.0
    optimizer.step([layer])
    velocity = optimizer._slots[0][2].copy()
    assert np.all(velocity == 1.0)
    optimizer.step([layer])
    assert np.all(optimizer._slots[0][2] == 1.5)
    optimizer.reset()
    optimizer.step([layer])
    assert np.all(optimizer._slots[0][2] == 1.0)


@pytest.mark.parametrize("make, error, message", [
    (lambda: SGD(lr=0), ValueError, "lr must be > 0, got 0.0"),
    (lambda: SGD(lr=-0.1), ValueError, "lr must be > 0"),
    (lambda: SGD(lr=float("nan")), ValueError, "lr must be finite"),
    (lambda: SGD(lr=float("inf")), ValueError, "lr must be finite"),
    (lambda: SGD(lr="0.1"), TypeError, "lr must be a real number"),
    (lambda: SGD(momentum=-0.5), ValueError, "momentum must be >= 0"),
    (lambda: SGD(nesterov=True), ValueError, "nesterov=True needs a momentum > 0"),
    (lambda: Adam(lr=0), ValueError, "lr must be > 0"),
    (lambda: Adam(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
    (lambda: Adam(betas=0.9), TypeError, "betas must be a pair"),
    (lambda: Adam(eps=0), ValueError, "eps must be > 0"),
])
def test_optimizers_reject_bad_hyper_parameters(make, error, message):
    with pytest.raises(error, match=message):
        make()
