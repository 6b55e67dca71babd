"""Pooling and Flatten: MaxPool2D and AvgPool2D against the twin, gradients, dtypes, bad input."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import assert_close, central_difference

from fastnn.nn import AvgPool2D, Flatten, MaxPool2D
from fastnn.reference import cnn as ref


@st.composite
def pool_problems(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(kh, kh + 6)),
             draw(st.integers(kw, kw + 6)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # few distinct values, so windows often hold ties and the first maximum must win
    x = rng.integers(0, 4, shape).astype(np.float64) if draw(st.booleans()) else rng.standard_normal(shape)
    return x, (kh, kw), stride, rng


def per_sample(function, *arrays_and_arguments, count):
    arrays, arguments = arrays_and_arguments[:count], arrays_and_arguments[count:]
    return np.stack([function(*(a[n] for a in arrays), *arguments) for n in range(len(arrays[0]))])


@given(pool_problems())
def test_max_pool_matches_the_reference(problem):
    x, (kh, kw), stride, rng = problem
    layer = MaxPool2D((kh, kw), stride)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, per_sample(ref.pool_forward, x, kh, kw, stride, np.max, count=1))
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(grad),
                               per_sample(ref.max_pool_backward, x, grad, kh, kw, stride, count=2), rtol=1e-12)


@given(pool_problems())
def test_avg_pool_matches_the_reference(problem):
    x, (kh, kw), stride, rng = problem
    layer = AvgPool2D((kh, kw), stride)
    out = layer.forward(x)
    np.testing.assert_allclose(out, per_sample(ref.pool_forward, x, kh, kw, stride, np.mean, count=1), rtol=1e-12)
    grad = rng.standard_normal(out.shape)
    expected = np.stack([ref.avg_pool_backward(x.shape[1:], g, kh, kw, stride) for g in grad])
    np.testing.assert_allclose(layer.backward(grad), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 2, 7, 9), (2, 1, 8, 8), (1, 1, 2, 3)])
def test_max_pool_2x2_fast_path_matches_the_reference(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 3, shape).astype(np.float64)  # many ties
    layer = MaxPool2D(2)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, per_sample(ref.pool_forward, x, 2, 2, 2, np.max, count=1))
    grad = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(grad), per_sample(ref.max_pool_backward, x, grad, 2, 2, 2, count=2))


def test_max_pool_error_goes_to_the_first_maximum():
    layer = MaxPool2D(2)
    x = np.array([[[[1.0, 3.0], [3.0, 3.0]]]])
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.array([[[[5.0]]]])), [[[[0.0, 5.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("layer", [MaxPool2D(2), MaxPool2D((3, 2), stride=(2, 1)), AvgPool2D(2),
                                   AvgPool2D((2, 3), stride=(1, 2))], ids=repr)
def test_gradients_match_central_differences(layer):
    rng = np.random.default_rng(2)
    # a permutation of well-separated values: no ties, so the maximum does not move under +-eps
    x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.01
    weights_of_loss = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float((layer.forward(x) * weights_of_loss).sum())

    layer.forward(x)
    assert_close(layer.backward(weights_of_loss), central_difference(loss, x), rtol=1e-6, atol=1e-8, what="input")


@pytest.mark.parametrize("layer_type", [MaxPool2D, AvgPool2D])
def test_float32_stays_float32_and_thread_count_does_not_matter(layer_type):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 3, 8, 8)).astype(np.float32)
    layer = layer_type(3, 2)
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    results = []
    for count in (1, threads):
        numba.set_num_threads(count)
        try:
            out = layer.forward(x)
            results.append((out, layer.backward(np.ones_like(out))))
        finally:
            numba.set_num_threads(threads)
    (out, grad), (out2, grad2) = results
    assert out.dtype == np.float32 and grad.dtype == np.float32
    assert np.array_equal(out, out2) and np.array_equal(grad, grad2)
    assert layer.forward(x.astype(np.float64)).dtype == np.float64
    assert layer.forward(np.ones((1, 1, 4, 4), dtype=np.int64)).dtype == np.float32


def test_config_and_output_shape():
    layer = MaxPool2D((3, 2))
    assert layer.stride == (3, 2)
    assert layer.get_config() == {"kernel_size": [3, 2], "stride": [3, 2]}
    assert AvgPool2D(**AvgPool2D(2, 1).get_config()).get_config() == {"kernel_size": 2, "stride": 1}
    assert layer.output_shape((4, 10, 7)) == (4, 3, 3)
    assert layer.forward(np.zeros((2, 4, 10, 7))).shape == (2, 4, 3, 3)


@pytest.mark.parametrize("layer_type", [MaxPool2D, AvgPool2D])
def test_bad_input_is_refused(layer_type):
    with pytest.raises(ValueError, match="kernel_size"):
        layer_type(0)
    with pytest.raises(ValueError, match="stride"):
        layer_type(2, (1, 0))
    layer = layer_type((3, 2))
    with pytest.raises(ValueError, match=r"kernel_size \(3, 2\) is larger than the input: x has shape \(1, 1, 2, 5\)"):
        layer.forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ValueError, match=r"x must have shape \(any, any, any, any\), got \(2, 5, 5\)"):
        layer.forward(np.zeros((2, 5, 5)))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 1, 1, 2)))
    layer.forward(np.zeros((2, 3, 6, 4)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 3, 2, 2\), got \(2, 3, 2, 3\)"):
        layer.backward(np.zeros((2, 3, 2, 3)))
    with pytest.raises(TypeError, match="grad_output must hold real numbers"):
        layer.backward(np.full((2, 3, 2, 2), None))


def test_flatten_round_trip():
    layer = Flatten()
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    out = layer.forward(x)
    assert out.shape == (2, 60) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(out), x)
    assert layer.output_shape((3, 4, 5)) == (60,)
    assert layer.forward(np.zeros((1, 2), dtype=np.float64)).dtype == np.float64
    assert Flatten(**layer.get_config()).get_config() == {}


def test_flatten_bad_input():
    layer = Flatten()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"x must have shape \(N >= 1, \.\.\.\)"):
        layer.forward(np.zeros(5))
    layer.forward(np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 6\), got \(2, 5\)"):
        layer.backward(np.zeros((2, 5)))


@pytest.mark.parametrize("layer", [MaxPool2D(2), MaxPool2D((3, 2), stride=(2, 1)), AvgPool2D((2, 3), stride=(1, 2))],
                         ids=repr)
def test_a_batch_of_one_takes_the_serial_path_with_the_same_results(layer):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 7, 8))
    out = layer.forward(x)
    grad = rng.standard_normal(out.shape)
    grad_x = layer.backward(grad)
    assert np.array_equal(layer.forward(x[1:2]), out[1:2])
    assert np.array_equal(layer.backward(grad[1:2]), grad_x[1:2])
