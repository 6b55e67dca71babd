"""fastnn.tutorial.cnn: the tutorial's ConvLayer, Filter and MaxPoolingLayer as drop-ins."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import central_difference

from fastnn.demos.cnn import largest_gradient_error
from fastnn.demos.cnn import tutorial_example as init_test
from fastnn.reference import cnn as ref
from fastnn.tutorial import cnn
from fastnn.tutorial.activators import IdentityActivator, ReluActivator, SigmoidActivator, TanhActivator

ACTIVATORS = [IdentityActivator(), ReluActivator(), SigmoidActivator(), TanhActivator()]


def test_tutorial_example_forward_backward_update():
    a, b, fast = init_test(cnn)
    _, _, slow = init_test(ref)
    fast.forward(a)
    slow.forward(a)
    np.testing.assert_allclose(fast.output_array, slow.output_array, rtol=1e-12)
    fast.backward(a, b, IdentityActivator())
    slow.backward(a, b, IdentityActivator())
    fast.update()
    slow.update()
    np.testing.assert_allclose(fast.delta_array, slow.delta_array, rtol=1e-12)
    for mine, theirs in zip(fast.filters, slow.filters):
        np.testing.assert_allclose(mine.weights, theirs.weights, rtol=1e-12)
        assert mine.bias == pytest.approx(theirs.bias, rel=1e-12)
        assert repr(mine).startswith("filter weights:\narray(")


def test_demo_runs():
    from fastnn.demos import cnn as demo

    lines = []
    demo.run(lines.append)
    assert "largest relative error" in "\n".join(lines) and "reference twin" in lines[-1]


def test_tutorial_gradient_check():
    """The tutorial's gradient_check on every weight of both filters (the demo's), then on the biases."""
    assert largest_gradient_error(cnn) < 1e-8
    a, _, cl = init_test(cnn)
    cl.forward(a)
    cl.backward(a, np.ones(cl.output_array.shape), IdentityActivator())
    epsilon = 1e-4
    for f in cl.filters:
        bias = f.bias
        f.bias = bias + epsilon
        cl.forward(a)
        up = cl.output_array.sum()
        f.bias = bias - epsilon
        cl.forward(a)
        down = cl.output_array.sum()
        f.bias = bias
        assert f.bias_grad == pytest.approx((up - down) / (2 * epsilon), abs=1e-6)


def test_delta_array_is_the_input_gradient_times_the_lower_derivative():
    rng = np.random.default_rng(0)
    cl = cnn.ConvLayer(7, 6, 2, 3, 2, 3, 2, 2, IdentityActivator(), 0.1, rng=1)
    x = rng.random((2, 6, 7))
    sensitivity = rng.standard_normal(cl.output_array.shape)

    def loss():
        cl.forward(x)
        return float((cl.output_array * sensitivity).sum())

    numeric = central_difference(loss, x)
    cl.backward(x, sensitivity, SigmoidActivator())
    np.testing.assert_allclose(cl.delta_array, numeric * x * (1 - x), rtol=1e-6, atol=1e-9)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2), st.integers(1, 3), st.sampled_from(ACTIVATORS), st.sampled_from(ACTIVATORS),
       st.integers(0, 2**32 - 1))
def test_random_layers_match_the_reference(channels, filters, fw, fh, stride, padding, extra, activator, below, seed):
    rng = np.random.default_rng(seed)
    width, height = max(1, fw - 2 * padding) + extra, max(1, fh - 2 * padding) + extra + 1
    fast = cnn.ConvLayer(width, height, channels, fw, fh, filters, padding, stride, activator, 0.5, rng=seed)
    slow = ref.ConvLayer(width, height, channels, fw, fh, filters, padding, stride, activator, 0.5, rng=seed)
    x = rng.standard_normal((channels, height, width))
    sensitivity = rng.standard_normal(fast.output_array.shape)
    fast.backward(x, sensitivity, below)
    slow.backward(x, sensitivity, below)
    np.testing.assert_allclose(fast.output_array, slow.output_array, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.delta_array, slow.delta_array, rtol=1e-10, atol=1e-12)
    fast.update()
    slow.update()
    for mine, theirs in zip(fast.filters, slow.filters):
        np.testing.assert_allclose(mine.weights_grad, theirs.weights_grad, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mine.weights, theirs.weights, rtol=1e-10, atol=1e-12)
        assert mine.bias == pytest.approx(theirs.bias, rel=1e-10, abs=1e-12)


def test_filter_assignment_and_replacement_take_effect():
    a, _, cl = init_test(cnn)
    cl.forward(a)
    first = cl.output_array.copy()
    cl.filters[1].bias = 2.5
    cl.forward(a)
    np.testing.assert_allclose(cl.output_array[1], first[1] + 2.5)
    cl.filters[0].weights[0, 0, 0] += 1.0  # in place, as the tutorial's gradient check does
    cl.forward(a)
    assert not np.allclose(cl.output_array[0], first[0])
    replacement = cnn.Filter(3, 3, 3, rng=0)
    replacement.weights = np.zeros((3, 3, 3))
    replacement.bias = -1
    cl.filters[0] = replacement
    cl.forward(a)
    np.testing.assert_array_equal(cl.output_array[0], -1.0)
    cl.backward(a, np.ones((2, 3, 3)), IdentityActivator())
    assert cl.filters[0].weights_grad.shape == (3, 3, 3) and cl.filters[0].bias_grad == 9.0


def test_calculate_output_size_uses_integer_division():
    assert cnn.ConvLayer.calculate_output_size(6, 3, 0, 2) == 2
    assert cnn.ConvLayer.calculate_output_size(28, 5, 2, 1) == 28
    layer = cnn.ConvLayer(6, 7, 1, 3, 2, 1, 0, 2, ReluActivator(), 0.1)
    assert (layer.output_height, layer.output_width) == (3, 2)


@pytest.mark.parametrize("width, height, filter_width, filter_height, stride", [
    (4, 4, 2, 2, 2), (5, 4, 2, 3, 1), (7, 6, 3, 2, 2),
])
def test_max_pooling_matches_the_reference(width, height, filter_width, filter_height, stride):
    rng = np.random.default_rng(width * height)
    fast = cnn.MaxPoolingLayer(width, height, 2, filter_width, filter_height, stride)
    slow = ref.MaxPoolingLayer(width, height, 2, filter_width, filter_height, stride)
    x = rng.integers(0, 3, (2, height, width))  # integer input with ties, as in the tutorial's example
    sensitivity = rng.standard_normal(fast.output_array.shape)
    fast.forward(x)
    slow.forward(x)
    np.testing.assert_array_equal(fast.output_array, slow.output_array)
    fast.backward(x, sensitivity)
    slow.backward(x, sensitivity)
    np.testing.assert_array_equal(fast.delta_array, slow.delta_array)


def test_bad_input_is_refused():
    a, b, cl = init_test(cnn)
    with pytest.raises(ValueError, match=r"input_array must have shape \(3, 5, 5\), got \(3, 5, 4\)"):
        cl.forward(a[:, :, :4])
    with pytest.raises(ValueError, match=r"sensitivity_array must have shape \(2, 3, 3\), got \(2, 3, 2\)"):
        cl.backward(a, b[:, :, :2], IdentityActivator())
    with pytest.raises(TypeError, match="activator"):
        cl.backward(a, b, lambda v: v)
    with pytest.raises(TypeError, match="input_array must hold real numbers"):
        cl.forward(np.full((3, 5, 5), "x"))
    with pytest.raises(ValueError, match=r"weights must have shape \(3, 3, 3\), got \(3, 3\)"):
        cl.filters[0].weights = np.zeros((3, 3))
    with pytest.raises(ValueError, match="filter_size 7 is larger than the padded input"):
        cnn.ConvLayer(5, 5, 1, 7, 3, 1, 0, 1, ReluActivator(), 0.1)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cnn.ConvLayer(5, 5, 1, 3, 3, 1, 0, 0, ReluActivator(), 0.1)
    with pytest.raises(ValueError, match="zero_padding must be >= 0"):
        cnn.ConvLayer(5, 5, 1, 3, 3, 1, -1, 1, ReluActivator(), 0.1)
    with pytest.raises(ValueError, match="filter"):
        cnn.MaxPoolingLayer(4, 4, 1, 5, 2, 1)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cnn.MaxPoolingLayer(4, 4, 1, 2, 2, 0)
    pool = cnn.MaxPoolingLayer(4, 4, 2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"input_array must have shape \(2, 4, 4\), got \(2, 4, 3\)"):
        pool.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"sensitivity_array must have shape \(2, 2, 2\), got \(2, 1, 2\)"):
        pool.backward(np.zeros((2, 4, 4)), np.zeros((2, 1, 2)))
    cl.filters.append(cnn.Filter(3, 3, 3))
    with pytest.raises(ValueError, match="filters must hold 2 Filter objects, got 3"):
        cl.forward(a)
