"""Convolution: the batched kernels and Conv2D against the tutorial-style twin, gradients, threads, bad input."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import assert_close, central_difference

from fastnn.kernels import conv as kernels
from fastnn.nn import Conv2D
from fastnn.reference import cnn as ref


def reference_forward(x, weight, bias, stride, padding):
    return np.stack([ref.conv_forward(sample, weight, bias, stride, padding) for sample in x])


def reference_backward(x, weight, grad_out, stride, padding):
    """(grad_x, grad_weight, grad_bias) summed over the batch, sample by sample with the twin."""
    parts = [ref.conv_backward(x[n], weight, grad_out[n], stride, padding) for n in range(len(x))]
    return np.stack([p[0] for p in parts]), sum(p[1] for p in parts), sum(p[2] for p in parts)


def check_against_reference(x, weight, bias, stride, padding, rng):
    """Conv2D (float64) forward and backward against the twin, sample by sample."""
    layer = Conv2D(weight.shape[1], weight.shape[0], weight.shape[2:], stride=stride, padding=padding,
                   dtype=np.float64)
    layer.params["weight"][...] = weight
    layer.params["bias"][...] = bias
    out = layer.forward(x)
    np.testing.assert_allclose(out, reference_forward(x, weight, bias, stride, padding), rtol=1e-10, atol=1e-10)
    grad_out = rng.standard_normal(out.shape)
    grad_x = layer.backward(grad_out)
    expected_x, expected_w, expected_b = reference_backward(x, weight, grad_out, stride, padding)
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["weight"], expected_w, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(layer.grads["bias"], expected_b, rtol=1e-10, atol=1e-9)


@st.composite
def conv_problems(draw, max_batch=5):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # sizes from "the filter just fits" upwards, so (H - K + 2P) is often not a multiple of the stride
    height = draw(st.integers(max(1, kh - 2 * ph), kh + 2 * sh + 3))
    width = draw(st.integers(max(1, kw - 2 * pw), kw + 2 * sw + 3))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, 4)), height, width)
    filters = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal(shape), rng.standard_normal((filters, shape[1], kh, kw)),
            rng.standard_normal(filters), (sh, sw), (ph, pw), rng)


@given(conv_problems())
def test_forward_and_backward_match_the_reference(problem):
    check_against_reference(*problem)


# Batches above kernels.MIN_CHUNKS put several samples side by side in one chunk (some chunks
# hold a partial group); the shapes cover both ways of computing the input gradient.
BIG_BATCH_CASES = [
    # (N, C, F, H, W, kernel, stride, padding)
    (37, 1, 6, 12, 12, (5, 5), (1, 1), (2, 2)),
    (23, 6, 16, 7, 6, (5, 5), (1, 1), (0, 0)),
    (37, 3, 8, 9, 7, (3, 2), (2, 3), (1, 0)),
    (19, 2, 9, 6, 8, (2, 4), (1, 2), (2, 1)),
]


def test_big_batches_cover_both_input_gradient_methods():
    methods = set()
    for count, channels, filters, height, width, kernel, stride, padding in BIG_BATCH_CASES:
        chunks = kernels._chunk_count(count)
        layout = kernels._layout(-(-count // chunks), height, width, *kernel, *stride, *padding)
        assert layout[4] > 1, "no chunk holds a group of several samples"
        tables = kernels._backward_tables(np.zeros((filters, channels, *kernel)), height, width, *stride, *padding,
                                          layout, True)
        methods.add(bool(tables[9]))
    assert methods == {True, False}


@pytest.mark.parametrize("case", BIG_BATCH_CASES)
def test_big_batches_match_the_reference(case):
    count, channels, filters, height, width, kernel, stride, padding = case
    rng = np.random.default_rng(count + filters)
    x = rng.standard_normal((count, channels, height, width))
    check_against_reference(x, rng.standard_normal((filters, channels, *kernel)), rng.standard_normal(filters),
                            stride, padding, rng)


@pytest.mark.parametrize("kernel, stride, padding, channels, filters", [
    ((3, 3), (1, 1), (0, 0), 2, 3),
    ((3, 2), (2, 2), (1, 1), 2, 3),
    ((2, 3), (3, 1), (2, 0), 2, 3),
    # 7 filters and 6 channels: the 6-row and 4-row blocks of both engines, input gradient by
    # scatter (no padding) and by the full convolution (padding 1)
    ((3, 3), (1, 1), (0, 0), 6, 7),
    ((3, 3), (1, 1), (1, 1), 6, 7),
])
def test_gradients_match_central_differences(kernel, stride, padding, channels, filters):
    rng = np.random.default_rng(7)
    layer = Conv2D(channels, filters, kernel, stride=stride, padding=padding, dtype=np.float64, rng=1)
    x = rng.standard_normal((2, channels, 6, 7))
    weights_of_loss = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float((layer.forward(x) * weights_of_loss).sum())

    layer.forward(x)
    grad_x = layer.backward(weights_of_loss)
    for name, analytic, array in [("input", grad_x, x), ("weight", layer.grads["weight"], layer.params["weight"]),
                                  ("bias", layer.grads["bias"], layer.params["bias"])]:
        assert_close(analytic, central_difference(loss, array), rtol=1e-6, atol=1e-8, what=name)


def test_float32_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(3)
    layer32 = Conv2D(3, 5, 3, stride=2, padding=1, rng=4)
    layer64 = Conv2D(3, 5, 3, stride=2, padding=1, dtype=np.float64, rng=4)
    assert layer32.params["weight"].dtype == np.float32 and layer32.grads["bias"].dtype == np.float32
    x = rng.standard_normal((4, 3, 9, 8))
    out32 = layer32.forward(x.astype(np.float32))
    out64 = layer64.forward(x)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    grad = rng.standard_normal(out32.shape)
    grad_x32 = layer32.backward(grad.astype(np.float32))
    grad_x64 = layer64.backward(grad)
    assert grad_x32.dtype == np.float32 and layer32.grads["weight"].dtype == np.float32
    np.testing.assert_allclose(grad_x32, grad_x64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer32.grads["weight"], layer64.grads["weight"], rtol=1e-4, atol=1e-4)


def test_results_do_not_depend_on_the_thread_count():
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    if threads < 2:
        pytest.skip("needs two threads")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 3, 10, 9)).astype(np.float32)
    layer = Conv2D(3, 6, 3, padding=1, rng=2)
    grad = rng.standard_normal((37, 6, 10, 9)).astype(np.float32)
    results = []
    for count in (1, threads):
        numba.set_num_threads(count)
        try:
            out = layer.forward(x)
            grad_x = layer.backward(grad)
        finally:
            numba.set_num_threads(threads)
        results.append((out, grad_x, layer.grads["weight"].copy(), layer.grads["bias"].copy()))
    for one, many in zip(*results):
        assert np.array_equal(one, many)


def test_initialisation_follows_pytorch_bound_and_seed():
    layer = Conv2D(3, 4, (2, 5), rng=11)
    bound = 1 / np.sqrt(3 * 2 * 5)
    assert np.abs(layer.params["weight"]).max() <= bound and np.abs(layer.params["bias"]).max() <= bound
    assert layer.params["weight"].std() > bound / 3  # spread over the range, not a constant
    again = Conv2D(3, 4, (2, 5), rng=np.random.default_rng(11))
    assert np.array_equal(layer.params["weight"], again.params["weight"])


def test_config_and_output_shape():
    layer = Conv2D(2, 5, (3, 2), stride=(2, 1), padding=1, dtype=np.float64)
    rebuilt = Conv2D(**layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    assert rebuilt.params["weight"].shape == (5, 2, 3, 2) and rebuilt.dtype == np.float64
    assert layer.output_shape((2, 10, 7)) == (5, 5, 8)
    assert layer.forward(np.zeros((1, 2, 10, 7))).shape == (1, 5, 5, 8)


def test_integer_and_non_contiguous_input_are_converted():
    layer = Conv2D(2, 3, 3, dtype=np.float64, rng=0)
    x = np.arange(2 * 2 * 6 * 12).reshape(2, 2, 6, 12)
    expected = layer.forward(x.astype(np.float64)[..., ::2].copy())
    np.testing.assert_array_equal(layer.forward(x[..., ::2]), expected)


@pytest.mark.parametrize("arguments, error, message", [
    ((0, 3, 3), ValueError, "in_channels"),
    ((2, 3, 0), ValueError, "kernel_size"),
    ((2, 3, (3, 3, 3)), ValueError, "kernel_size"),
    ((2, 3, 3, 0), ValueError, "stride"),
    ((2, 3, 3, 1, -1), ValueError, "padding"),
    ((2, 3, 2.5), TypeError, "kernel_size"),
    ((2, 3, 3, 1, 0, np.int32), TypeError, "dtype"),
])
def test_bad_constructor_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        Conv2D(*arguments)


def test_bad_input_is_refused_with_both_shapes():
    layer = Conv2D(2, 3, 5, padding=1)
    with pytest.raises(ValueError, match=r"x must have shape \(any, 2, any, any\), got \(4, 3, 8, 8\)"):
        layer.forward(np.zeros((4, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is larger than the padded input.*\(1, 2, 2, 8\)"):
        layer.forward(np.zeros((1, 2, 2, 8)))
    with pytest.raises(ValueError, match="at least one sample"):
        layer.forward(np.zeros((0, 2, 8, 8)))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        layer.forward(np.full((1, 2, 8, 8), "a"))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((1, 3, 6, 6)))
    layer.forward(np.zeros((4, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(4, 3, 6, 6\), got \(4, 3, 6, 5\)"):
        layer.backward(np.zeros((4, 3, 6, 5)))
    with pytest.raises(ValueError, match="input_shape"):
        layer.output_shape((3, 8, 8))


@pytest.mark.parametrize("rows, taps", [(1, 3), (2, 9), (3, 8), (5, 13), (6, 4), (7, 10), (11, 17), (16, 25)])
def test_register_blocked_engines_match_plain_sums(rows, taps):
    """Every row block (6, 4, 1 rows of taps; 4, 2, 1 rows of dots) and every tap remainder, against the formula."""
    rng = np.random.default_rng(rows * 100 + taps)
    length = 37
    buf = rng.standard_normal(400)
    offsets = rng.integers(0, 400 - length, taps)
    weights = rng.standard_normal((rows, taps))
    slices = np.stack([buf[o:o + length] for o in offsets])  # (taps, length)
    out = rng.standard_normal(rows * 50)
    out_offsets = np.arange(rows) * 50
    expected = out.reshape(rows, 50).copy()
    expected[:, :length] += weights @ slices
    kernels._accumulate_taps(buf, offsets, weights, length, out, out_offsets)
    np.testing.assert_allclose(out.reshape(rows, 50), expected, rtol=1e-12, atol=1e-12)
    errors = rng.standard_normal((rows, length + 3))
    sums = rng.standard_normal((rows, taps))
    expected = sums + errors[:, :length] @ slices.T
    kernels._accumulate_dots(errors, buf, offsets, length, sums)
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-12)


def test_first_layer_skips_the_input_gradient_with_the_same_parameter_gradients():
    rng = np.random.default_rng(9)
    layer = Conv2D(3, 7, 3, padding=1, rng=3)
    x = rng.standard_normal((10, 3, 8, 8)).astype(np.float32)
    grad = rng.standard_normal(layer.forward(x).shape).astype(np.float32)
    assert layer.backward(grad).shape == x.shape
    full = layer.grads["weight"].copy(), layer.grads["bias"].copy()
    layer.grads["weight"][...] = 0
    assert layer._backward(grad, need_input_grad=False) is None
    assert np.array_equal(layer.grads["weight"], full[0]) and np.array_equal(layer.grads["bias"], full[1])


def test_a_batch_of_one_takes_the_serial_kernels_with_the_same_results():
    rng = np.random.default_rng(12)
    layer = Conv2D(6, 7, 3, rng=5)  # 6 channels, 7 filters, no padding: the scatter path
    x = rng.standard_normal((3, 6, 8, 7)).astype(np.float32)
    out = layer.forward(x)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    grad_x = layer.backward(grad)
    assert np.array_equal(layer.forward(x[1:2]), out[1:2])
    assert np.array_equal(layer.backward(grad[1:2]), grad_x[1:2])
    weight_grad = layer.grads["weight"].copy()
    assert layer._backward(grad[1:2], need_input_grad=False) is None
    assert np.array_equal(layer.grads["weight"], weight_grad)
