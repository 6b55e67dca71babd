"""The matrix-form network (fc) against its reference twin, plain formulas and central differences."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastnn.reference import fc as reference
from fastnn.tutorial import fc
from fastnn.tutorial.activators import (IdentityActivator, ReluActivator, SigmoidActivator,
                                        TanhActivator)

from helpers import assert_close, central_difference

ACTIVATORS = [SigmoidActivator(), TanhActivator(), ReluActivator(), IdentityActivator()]


def column_vectors(rng, n_samples, size):
    return [rng.random((size, 1)) for _ in range(n_samples)]


@pytest.mark.parametrize("activator", ACTIVATORS, ids=lambda a: type(a).__name__)
def test_layer_forward_backward_follow_the_tutorials_formulas(activator):
    rng = np.random.default_rng(0)
    layer = fc.FullConnectedLayer(5, 3, activator, rng=1)
    layer.b = rng.normal(size=(3, 1))
    x, delta = rng.random((5, 1)), rng.normal(size=(3, 1))
    layer.forward(x)
    assert_close(layer.output, activator.forward(layer.W @ x + layer.b), what="output (formula 2)")
    layer.backward(delta)
    assert_close(layer.delta, activator.backward(x) * (layer.W.T @ delta), what="delta (formula 8)")
    assert_close(layer.W_grad, delta @ x.T, what="W_grad")
    assert_close(layer.b_grad, delta, what="b_grad")
    W, b = layer.W.copy(), layer.b.copy()
    layer.update(0.3)
    assert_close(layer.W, W + 0.3 * (delta @ x.T), what="updated W")
    assert_close(layer.b, b + 0.3 * delta, what="updated b")


@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1),
       epochs=st.integers(1, 3))
def test_training_matches_the_twin(sizes, seed, epochs):
    rng = np.random.default_rng(seed)
    data, labels = column_vectors(rng, 6, sizes[0]), column_vectors(rng, 6, sizes[-1])
    net, twin = fc.Network(sizes, rng=seed), reference.Network(sizes, rng=seed)
    net.train(labels, data, 0.5, epochs)
    twin.train(labels, data, 0.5, epochs)
    for ours, theirs in zip(net.layers, twin.layers):
        assert_close(ours.W, theirs.W, what="trained W")
        assert_close(ours.b, theirs.b, what="trained b")
        # After training each layer holds the last sample's values, as in the tutorial.
        for name in ("input", "output", "delta", "W_grad", "b_grad"):
            assert_close(getattr(ours, name), getattr(theirs, name), what=f"last sample's {name}")
    assert_close(net.predict(data[0]), twin.predict(data[0]), what="prediction")


def test_train_one_sample_and_the_stepwise_methods_agree():
    rng = np.random.default_rng(3)
    x, t = rng.random((4, 1)), rng.random((2, 1))
    stepwise, fused = fc.Network([4, 3, 2], rng=5), fc.Network([4, 3, 2], rng=5)
    stepwise.predict(x)
    stepwise.calc_gradient(t)
    stepwise.update_weight(0.4)
    fused.train_one_sample(t, x, 0.4)
    for a, b in zip(stepwise.layers, fused.layers):
        assert_close(a.W, b.W, what="W")
        assert_close(a.b, b.b, what="b")


@pytest.mark.parametrize("sizes", [[3, 2], [4, 3, 2], [3, 4, 2, 3]])
def test_gradients_match_central_differences(sizes):
    rng = np.random.default_rng(11)
    net = fc.Network(sizes, rng=2)
    for layer in net.layers:
        layer.b = rng.normal(size=layer.b.shape) * 0.1
    x, t = rng.random((sizes[0], 1)), rng.random((sizes[-1], 1))
    net.predict(x)
    net.calc_gradient(t)
    for layer in net.layers:
        def loss():
            return net.loss(net.predict(x), t)
        # W_grad and b_grad are negative gradients (the tutorial's convention).
        assert_close(layer.W_grad, -central_difference(loss, layer.W), rtol=1e-6, atol=1e-10, what="W_grad")
        assert_close(layer.b_grad, -central_difference(loss, layer.b), rtol=1e-6, atol=1e-10, what="b_grad")


def test_gradient_check_pairs_agree_in_sign_and_size():
    net = fc.Network([8, 3, 8], rng=0)
    x = np.full((8, 1), 0.1)
    x[2] = 0.9
    expected, actual = np.array(net.gradient_check(x, x)).T
    assert expected.size == 8 * 3 + 3 * 8
    assert_close(actual, expected, rtol=1e-5, atol=1e-9, what="gradient_check pairs")


def test_reassigned_weights_take_effect():
    layer = fc.FullConnectedLayer(2, 2, IdentityActivator())
    layer.W = np.array([[1.0, 2.0], [3.0, 4.0]]).T  # a transposed (non-contiguous) view
    layer.b = [[0.5], [-0.5]]
    layer.forward(np.array([[1.0], [1.0]]))
    assert_close(layer.output, [[4.5], [5.5]], what="output")


def test_network_learns_the_tutorials_8_bit_codes():
    normalizer_masks = [1 << bit for bit in range(8)]
    data = [np.array([[0.9 if n & m else 0.1] for m in normalizer_masks]) for n in range(256)]
    net = fc.Network([8, 8, 8], rng=0)
    net.train(data, data, 1.0, 300)
    decoded = [sum(m for v, m in zip(net.predict(d)[:, 0], normalizer_masks) if v > 0.5) for d in data]
    assert decoded == list(range(256))


@pytest.mark.parametrize("call, error, message", [
    (lambda: fc.Network([3]), ValueError, "at least two layer sizes"),
    (lambda: fc.Network([3, -1]), ValueError, r"layers\[1\] must be >= 1"),
    (lambda: fc.FullConnectedLayer(3, 2, object()), TypeError, "activator must be one of"),
    (lambda: fc.FullConnectedLayer(3, 2, SigmoidActivator()).forward(np.ones((2, 1))), ValueError,
     r"input_array must have shape \(3, 1\), got \(2, 1\)"),
    (lambda: fc.FullConnectedLayer(3, 2, SigmoidActivator()).backward(np.ones((2, 1))), RuntimeError,
     "backward called before forward"),
    (lambda: fc.Network([3, 2]).train([np.ones((2, 1))], [np.ones((3, 1))] * 2, 0.1, 1), ValueError,
     "same length, got 1 and 2"),
    (lambda: fc.Network([3, 2]).train([np.ones((2, 1))], [np.ones((4, 1))], 0.1, 1), ValueError,
     r"data_set must be a sequence of \(3, 1\) vectors"),
    (lambda: fc.Network([3, 2]).train([np.ones((2, 1))], [np.full((3, 1), np.nan)], 0.1, 1), ValueError,
     "data_set contains NaN"),
    (lambda: fc.Network([3, 2]).train([np.ones((2, 1))], [np.ones((3, 1))], -1, 1), ValueError,
     "rate must be >= 0"),
    (lambda: fc.Network([3, 2]).train([np.ones((2, 1))], [np.ones((3, 1))], 0.1, -1), ValueError,
     "epoch must be >= 0"),
    (lambda: fc.Network([3, 2]).predict(np.ones((4, 1))), ValueError, r"input_array must have shape \(3, 1\)"),
])
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_wrong_sized_replacement_weights_are_refused():
    layer = fc.FullConnectedLayer(3, 2, SigmoidActivator())
    layer.W = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"W must have shape \(2, 3\), got \(3, 2\)"):
        layer.forward(np.ones((3, 1)))
