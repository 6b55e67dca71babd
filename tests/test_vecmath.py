"""The vectorizable exp-based sigmoid and tanh used by the recurrent kernels: accuracy, limits, NaN."""

import numpy as np
import pytest

from fastnn.kernels import recurrent, vecmath
from fastnn.kernels.activation import SIGMOID, TANH


def _activate(values, code):
    out = np.array(values)
    for row in out.reshape(-1, out.shape[-1]):
        recurrent.activate_inplace(row, code)
    return out


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 4), (np.float64, 16)])
def test_sigmoid_and_tanh_within_a_few_ulps(dtype, ulps):
    z = np.random.default_rng(0).uniform(-40, 40, (4, 5000)).astype(dtype)
    z[0, :5] = [0.0, 1e-20, -1e-7, 1e-3, -0.0]
    for code, exact in ((SIGMOID, lambda v: 1 / (1 + np.exp(-v))), (TANH, np.tanh)):
        expected = exact(z.astype(np.float64))
        got = _activate(z, code)
        assert got.dtype == dtype
        normal = np.abs(expected) >= np.finfo(dtype).tiny
        error = np.abs(got[normal] - expected[normal]) / np.abs(expected[normal])
        assert error.max() <= ulps * np.finfo(dtype).eps, f"code {code}: {error.max() / np.finfo(dtype).eps:.1f} ulp"
        assert np.all(np.abs(got[~normal]) <= 2 * np.finfo(dtype).tiny)  # flushed to zero or nearly


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_limits_and_nan(dtype):
    z = np.array([[np.inf, -np.inf, np.nan, 1e30, -1e30]], dtype)
    assert np.array_equal(_activate(z, SIGMOID)[0], np.array([1, 0, np.nan, 1, 0], dtype), equal_nan=True)
    assert np.array_equal(_activate(z, TANH)[0], np.array([1, -1, np.nan, 1, -1], dtype), equal_nan=True)


@pytest.mark.needs_jit  # the switch is made by compiled code
@pytest.mark.skipif(not vecmath.X86, reason="flush-to-zero is switched on x86 only")
def test_kernels_flush_subnormals_and_give_the_thread_its_state_back():
    from fastnn.nn import RNN

    layer = RNN(2, 3, activation="identity", rng=0)
    tiny = np.full((1, 2, 2), 1e-40, np.float32)  # subnormal: read as zero inside the kernels
    assert np.array_equal(layer.forward(tiny), np.zeros((1, 2, 3), np.float32))
    assert np.float32(1e-20) * np.float32(1e-20) > 0  # numpy, after the kernel, still has subnormals


@pytest.mark.needs_jit  # the attribute is put on compiled code
def test_prefer_wide_vectors_marks_the_calling_kernel_only():
    from fastnn.kernels._jit import jit

    def scale(values, factor):
        for i in range(values.shape[0]):
            values[i] *= factor

    def wide_scale(values, factor):
        vecmath.prefer_wide_vectors()
        for i in range(values.shape[0]):
            values[i] *= factor

    plain, wide = jit(scale, cache=False), jit(wide_scale, cache=False)
    values = np.arange(37.0)
    plain(values, 2.0)
    wide(values, 0.5)
    assert np.array_equal(values, np.arange(37.0))
    attribute = '"prefer-vector-width"="512"'
    assert attribute in wide.inspect_llvm(wide.signatures[0])
    assert attribute not in plain.inspect_llvm(plain.signatures[0])
