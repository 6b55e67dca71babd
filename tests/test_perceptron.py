"""The perceptron and the linear unit against the tutorial's published results and the reference twin."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastnn.reference import perceptron as reference
from fastnn.tutorial.linear_unit import LinearUnit
from fastnn.tutorial.perceptron import Perceptron, f, identity

from helpers import assert_close

AND_INPUTS = [[1, 1], [0, 0], [1, 0], [0, 1]]
AND_LABELS = [1, 0, 0, 0]
SALARY_YEARS = [[5], [3], [8], [1.4], [10.1]]
SALARY = [5500, 2300, 7600, 1800, 11400]


def test_and_perceptron_matches_the_tutorial():
    p = Perceptron(2, f)
    p.train(AND_INPUTS, AND_LABELS, 10, 0.1)
    # The tutorial's published output: weights [0.1, 0.2], bias -0.2.
    assert p.weights == pytest.approx([0.1, 0.2], abs=1e-12)
    assert p.bias == pytest.approx(-0.2, abs=1e-12)
    assert [p.predict(x) for x in AND_INPUTS] == AND_LABELS
    assert "weights\t:[" in str(p) and "bias\t:-0.200000" in str(p)


def test_salary_linear_unit_matches_the_tutorial_and_twin():
    lu = LinearUnit(1)
    lu.train(SALARY_YEARS, SALARY, 10, 0.01)
    # The tutorial's published output: weights [1124.0634970262222], bias 85.485289.
    assert lu.weights[0] == pytest.approx(1124.0634970262222, rel=1e-12)
    assert lu.bias == pytest.approx(85.485289, abs=1e-6)
    twin = reference.LinearUnit(1)
    twin.train(SALARY_YEARS, SALARY, 10, 0.01)
    for years in (3.4, 15, 1.5, 6.3):
        assert lu.predict([years]) == pytest.approx(twin.predict([years]), rel=1e-12)


class CallableThreshold:
    """An activator Numba cannot compile (a callable instance): trains through the Python path."""

    def __call__(self, x):
        return 1 if x > 0 else 0


ACTIVATORS = {
    "tutorial step": f,
    "identity": identity,
    "user lambda": lambda x: x if x > 0 else 0.1 * x,
    "user tanh": math.tanh,
    "python-only callable": CallableThreshold(),
}


@pytest.mark.parametrize("name", list(ACTIVATORS))
@given(data=st.data())
def test_training_matches_the_twin(name, data):
    activator = ACTIVATORS[name]
    n_features = data.draw(st.integers(1, 6), label="features")
    n_samples = data.draw(st.integers(1, 12), label="samples")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n_samples, n_features)).tolist()
    labels = rng.integers(0, 2, n_samples).tolist()
    p, twin = Perceptron(n_features, activator), reference.Perceptron(n_features, activator)
    p.train(inputs, labels, 3, 0.05)
    twin.train(inputs, labels, 3, 0.05)
    assert_close(p.weights, twin.weights, what="weights")
    assert_close(p.bias, twin.bias, what="bias")
    assert p.predict(inputs[0]) == pytest.approx(twin.predict(inputs[0]), rel=1e-10, abs=1e-12)


def test_assigned_weights_take_effect():
    p = Perceptron(2, identity)
    p.weights = [2.0, -1.0]
    p.bias = 0.5
    assert p.predict([1.0, 3.0]) == pytest.approx(-0.5)


def test_predict_returns_the_activators_own_type():
    p = Perceptron(2, f)
    assert type(p.predict([1.0, 1.0])) is int


@pytest.mark.parametrize("call, error, message", [
    (lambda: Perceptron(0, f), ValueError, "input_num must be >= 1"),
    (lambda: Perceptron(2.5, f), TypeError, "input_num must be an integer"),
    (lambda: Perceptron(2, "step"), TypeError, "activator must be a callable"),
    (lambda: Perceptron(2, f).predict([1, 2, 3]), ValueError, r"input_vec must have shape \(2,\), got \(3,\)"),
    (lambda: Perceptron(2, f).predict(["a", "b"]), TypeError, "input_vec must hold real numbers"),
    (lambda: Perceptron(2, f).train([[1, 2], [3]], [1, 0], 1, 0.1), TypeError, "input_vecs"),
    (lambda: Perceptron(2, f).train([[1, 2, 3]], [1], 1, 0.1), ValueError, r"input_vecs must have shape \(any, 2\)"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1, 0], 1, 0.1), ValueError, "same length, got 1 and 2"),
    (lambda: Perceptron(2, f).train([[1, float("nan")]], [1], 1, 0.1), ValueError, "input_vecs contains NaN"),
    (lambda: Perceptron(2, f).train([[1, 2]], [float("inf")], 1, 0.1), ValueError, "labels contains NaN or inf"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1], 1, -0.1), ValueError, "rate must be >= 0"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1], 1, float("nan")), ValueError, "rate must be finite"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1], 1, "0.1"), TypeError, "rate must be a real number"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1], -1, 0.1), ValueError, "iteration must be >= 0"),
    (lambda: Perceptron(2, f).train([[1, 2]], [1], 1.5, 0.1), TypeError, "iteration must be an integer"),
])
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_refused_training_leaves_the_weights_alone():
    p = Perceptron(2, f)
    p.weights = [0.3, 0.4]
    with pytest.raises(ValueError):
        p.train([[1, 2]], [1], 1, -1.0)
    assert p.weights == [0.3, 0.4]
