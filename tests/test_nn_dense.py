"""fastnn.nn.Dense and the activation layers against the reference twin, central differences and bad input."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn.kernels import batched_dense as kernels
from fastnn.kernels.activation import IDENTITY, RELU, SIGMOID, TANH
from fastnn.nn import Dense, Identity, ReLU, Sigmoid, Tanh
from fastnn.nn.dense import SMALL_BATCH
from fastnn.reference import batched as reference

from helpers import assert_close, central_difference

CODES = {IDENTITY: "identity", SIGMOID: "sigmoid", TANH: "tanh", RELU: "relu"}
ACTIVATIONS = [(Identity, "identity"), (Sigmoid, "sigmoid"), (Tanh, "tanh"), (ReLU, "relu")]


@settings(max_examples=12)
@given(n=st.integers(1, 9), n_in=st.integers(1, 12), n_out=st.integers(1, 7), code=st.sampled_from(sorted(CODES)),
       blas=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_dense_matches_the_twin(n, n_in, n_out, code, blas, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(n_in, n_out, rng=seed)
    layer.use_blas = blas
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    grad = rng.normal(size=(n, n_out)).astype(np.float32)
    y = layer._forward(x, code)
    expected = reference.dense_forward(x, layer.params["weight"], layer.params["bias"], CODES[code])
    assert_close(y, expected, rtol=1e-4, atol=1e-5, what="forward")
    grad_x = layer._backward(grad, code, True)
    ref_x, ref_w, ref_b = reference.dense_backward(x, layer.params["weight"], y, grad, CODES[code])
    assert_close(grad_x, ref_x, rtol=1e-4, atol=1e-5, what="grad_x")
    assert_close(layer.grads["weight"], ref_w, rtol=1e-4, atol=1e-5, what="W_grad")
    assert_close(layer.grads["bias"], ref_b, rtol=1e-4, atol=1e-5, what="b_grad")
    assert y.dtype == grad_x.dtype == layer.grads["weight"].dtype == np.float32


@pytest.mark.parametrize("n", [2, 7])
@pytest.mark.parametrize("blas", [True, False])
def test_dense_gradients_match_central_differences(n, blas):
    rng = np.random.default_rng(n)
    dense, act = Dense(5, 3, dtype=np.float64, rng=1), Tanh()
    dense.use_blas = blas
    x = rng.normal(size=(n, 5))
    target = rng.normal(size=(n, 3))

    def loss():
        return 0.5 * float(np.sum((act.forward(dense.forward(x)) - target) ** 2))

    loss()
    grad_x = dense.backward(act.backward(act.forward(dense.forward(x)) - target))
    for name in ("weight", "bias"):
        assert_close(dense.grads[name], central_difference(loss, dense.params[name]), rtol=1e-6, atol=1e-8, what=name)
    assert_close(grad_x, central_difference(loss, x), rtol=1e-6, atol=1e-8, what="grad_x")


@pytest.mark.parametrize("cls, name", ACTIVATIONS)
def test_activation_layers_match_the_twin_and_keep_the_dtype(cls, name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 4)).astype(np.float32)
    layer = cls()
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert_close(y, np.vectorize(lambda v: reference.activate(v, name))(x.astype(float)), rtol=1e-6, atol=1e-7)
    grad = rng.normal(size=x.shape)
    expected = grad * np.vectorize(lambda v: reference.derivative(v, name))(y.astype(float))
    assert_close(layer.backward(grad), expected, rtol=1e-5, atol=1e-6, what="grad_x")
    assert cls().forward(x.astype(np.float64)).dtype == np.float64


def test_small_batches_take_the_serial_loops_and_agree_with_blas():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(SMALL_BATCH + 3, 6)).astype(np.float32)
    layer = Dense(6, 4, rng=2)
    full = layer.forward(x)
    for i in range(x.shape[0]):
        assert_close(layer.forward(x[i:i + 1]), full[i:i + 1], rtol=1e-5, atol=1e-6, what=f"sample {i}")


def test_parallel_kernels_give_the_same_bits_for_any_thread_count():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(33, 40)).astype(np.float32)
    weight = rng.normal(size=(17, 40)).astype(np.float32)
    bias = rng.normal(size=17).astype(np.float32)
    delta = rng.normal(size=(33, 17)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out, gw, gx = np.empty((33, 17), np.float32), np.empty_like(weight), np.empty_like(x)
            kernels.dense_forward(x, weight, bias, RELU, out)
            kernels.dense_grad_weight(delta, x, gw)
            kernels.dense_grad_input(delta, weight, gx)
            results.append((out, gw, gx))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        assert np.array_equal(one, two)
    serial = np.empty_like(results[0][1])
    kernels.dense_grad_weight_serial(delta, x, serial)
    assert np.array_equal(serial, results[0][1])


def test_forward_returns_a_fresh_array_and_backward_needs_forward():
    layer = Dense(3, 2, rng=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((1, 2)))
    first = layer.forward(np.ones((2, 3)))
    layer.forward(np.zeros((2, 3)))
    assert not np.array_equal(first, layer.forward(np.zeros((2, 3))))


def test_dense_rejects_bad_input():
    layer = Dense(4, 2, rng=0)
    with pytest.raises(ValueError, match=r"x must have shape \(any, 4\), got \(3, 5\)"):
        layer.forward(np.ones((3, 5)))
    with pytest.raises(ValueError, match="at least one sample"):
        layer.forward(np.ones((0, 4)))
    with pytest.raises(ValueError, match="NaN"):
        layer.forward(np.full((1, 4), np.nan))
    layer.forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(3, 2\), got \(2, 2\)"):
        layer.backward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        Dense(0, 2)
    with pytest.raises(TypeError, match="out_features must be an integer"):
        Dense(2, 2.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Dense(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match=r"Dense expects samples of shape \(4,\), got \(5,\)"):
        layer.output_shape((5,))
    with pytest.raises(ValueError, match=r"x must be a batch"):
        ReLU().forward(np.ones(3))


def test_dense_init_is_seeded_and_bounded():
    a, b = Dense(50, 8, rng=3), Dense(50, 8, rng=3)
    assert np.array_equal(a.params["weight"], b.params["weight"])
    assert np.abs(a.params["weight"]).max() <= 1 / np.sqrt(50)
    assert a.params["weight"].dtype == np.float32 and a.num_params == 50 * 8 + 8


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 6), n_out=st.integers(1, 7), code=st.sampled_from(sorted(CODES)),
       seed=st.integers(0, 2**32 - 1))
def test_dense_delta_returns_the_bound_of_the_gradients(n, n_out, code, seed):
    rng = np.random.default_rng(seed)
    grad, y = rng.normal(size=(2, n, n_out)).astype(np.float32)
    if code in (SIGMOID, TANH):
        y = np.tanh(y) if code == TANH else 1 / (1 + np.exp(-y))
    delta, grad_bias = np.empty_like(grad), np.empty(n_out, np.float32)
    bound = kernels.dense_delta(grad, y, code, delta, grad_bias)
    expected = reference.dense_backward(np.zeros((n, 1)), np.zeros((n_out, 1)), y, grad, CODES[code])[2]
    assert_close(grad_bias, expected, rtol=1e-5, atol=1e-6, what="b_grad")
    assert bound == pytest.approx(np.abs(delta).sum(axis=0).max(), rel=1e-5)
    grad[n - 1, n_out - 1] = np.nan
    assert kernels.dense_delta(grad, y, code, delta, grad_bias) == np.inf


def test_magnitude_sum_is_not_finite_unless_every_value_is():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert kernels.magnitude_sum(x) == pytest.approx(np.abs(x).sum(), rel=1e-6)
    for bad in (np.nan, -np.inf):
        x[1, 2] = bad
        assert not np.isfinite(kernels.magnitude_sum(x))


def test_add_product_adds_alpha_a_transposed_b_in_place():
    from fastnn._blas import add_product, can_add_product

    if not (can_add_product(np.float32) and can_add_product(np.float64)):
        pytest.skip("numpy's BLAS is not a scipy-openblas with cblas gemm")
    assert not can_add_product(np.int64)
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a, b, c = rng.normal(size=(5, 3)).astype(dtype), rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=(3, 4))
        c = c.astype(dtype)
        expected = c - 0.25 * (a.T.astype(np.float64) @ b)
        add_product(-0.25, a, b, c)
        assert_close(c, expected, rtol=1e-5, atol=1e-6, what=f"c {np.dtype(dtype).name}")
