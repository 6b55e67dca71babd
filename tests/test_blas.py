"""numpy's BLAS called from inside kernels (fastnn.kernels.blas): the products against numpy's."""

import numpy as np
import pytest

from fastnn._blas import dgemm_address
from fastnn.kernels.blas import dgemm

from helpers import assert_close


@pytest.fixture
def address():
    found = dgemm_address()
    if not found:
        pytest.skip("numpy's BLAS is not a scipy-openblas64 with cblas dgemm")
    return found


def test_dgemm_on_row_slices_with_and_without_transpose(address):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(9, 5)), rng.normal(size=(5, 7))
    out = rng.normal(size=(11, 7))
    kept = out.copy()
    dgemm(address, x[2:8], False, w, 0.0, out[3:9])  # rows of larger arrays, as the LSTM kernels pass them
    expected = kept.copy()
    expected[3:9] = x[2:8] @ w
    assert_close(out, expected, what="out rows 3..8 replaced, the others untouched")

    grad = rng.normal(size=(5, 7))
    start = grad.copy()
    dgemm(address, x[1:4], True, out[:3], 1.0, grad)
    assert_close(grad, start + x[1:4].T @ out[:3], what="transposed a, accumulated")


def test_dgemm_with_nothing_to_sum_scales_c_by_beta(address):
    c = np.full((3, 4), np.nan)  # what an empty buffer may hold: beta = 0 replaces it
    dgemm(address, np.ones((0, 3)), True, np.ones((0, 4)), 0.0, c)
    assert np.array_equal(c, np.zeros((3, 4)))
    c = np.ones((3, 4))
    dgemm(address, np.ones((3, 0)), False, np.ones((0, 4)), 0.5, c)
    assert np.array_equal(c, np.full((3, 4), 0.5))
