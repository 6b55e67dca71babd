"""numpy's BLAS matrix product called from inside a kernel.

A kernel that needs a mid-sized matrix product between two compiled loops
(the tutorial LSTM's input projection and weight gradients) would otherwise
return to Python for ``np.matmul`` and come back: a few microseconds of
calls per product, against OpenBLAS's AVX-512 code, which Numba's loops do
not match there.  The kernel gets the address of the double-precision cblas
gemm of the OpenBLAS numpy bundles (``fastnn._blas.dgemm_address``) as an
integer argument, so that the compiled code holds no address of this process
and stays in the disk cache; 0 means there is none, and the caller's own
loops run instead.  It runs on the BLAS threads numpy's BLAS has at the time
(``fastnn._blas.one_blas_thread``).
"""

import ctypes

from numba import typeof, types
from numba.extending import intrinsic, overload

from .._blas import CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS
from ._jit import jit

# cblas_dgemm of scipy-openblas64 (64-bit integers): order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
# beta, C, ldc; the arrays travel as addresses.
_PROTOTYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                              ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int64)
_DGEMM = typeof(_PROTOTYPE())


def dgemm_at(address):
    """The cblas dgemm at integer `address`, callable (in Python, with NUMBA_DISABLE_JIT, through ctypes)."""
    return _PROTOTYPE(address)


@intrinsic
def _dgemm_at(typingctx, address):
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(_DGEMM))

    return _DGEMM(address), codegen


@overload(dgemm_at)
def _dgemm_at_overload(address):
    return lambda address: _dgemm_at(address)


@jit(inline=True)
def dgemm(address, a, transpose_a, b, beta, c):
    """``c = op(a) @ b + beta * c`` through the cblas dgemm at `address`, ``op(a)`` = a or ``a^T``.

    a, b and c are float64 2-D arrays whose rows are contiguous (row slices
    of C-contiguous arrays): a ``(M, K)`` (``(K, M)`` with `transpose_a`),
    b ``(K, N)``, c ``(M, N)``; shapes are the caller's to check.  With
    ``K = 0``, c becomes ``beta * c`` (zeros for ``beta = 0``, whatever c
    held), as BLAS defines it and as OpenBLAS does not: it returns.
    """
    m, n = c.shape
    k = a.shape[0] if transpose_a else a.shape[1]
    if k == 0:
        for i in range(m):
            for j in range(n):
                c[i, j] = 0.0 if beta == 0.0 else beta * c[i, j]
    if m == 0 or n == 0 or k == 0:
        return
    dgemm_at(address)(CBLAS_ROW_MAJOR, CBLAS_TRANS if transpose_a else CBLAS_NO_TRANS, CBLAS_NO_TRANS, m, n, k,
                      1.0, a.ctypes.data, a.strides[0] // 8, b.ctypes.data, b.strides[0] // 8, beta,
                      c.ctypes.data, c.strides[0] // 8)
