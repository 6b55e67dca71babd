"""numpy's BLAS on one thread for a while, with nothing beyond ctypes.

The threads of one BLAS call wait for each other at its end.  When another
process holds one of the cores, every call waits for the descheduled
thread's next time slice (milliseconds): a batch-64 step of the 784-100-10
MLP that takes 0.25 ms on an idle machine took 50 ms.  At that size a
second thread gains little even when the cores are free, so Sequential
runs small products on one BLAS thread (``ONE_THREAD_WORK``).

numpy has no API for BLAS threads.  The OpenBLAS that numpy's wheels bundle
(scipy-openblas, in ``numpy.libs`` or ``numpy/.dylibs``) exports one, found
here through ctypes, as threadpoolctl does.  Its setting is global to the
process: ``one_blas_thread`` sets one thread on entry and restores the
previous count when the last nested or concurrent user leaves.  With
another BLAS (MKL, Accelerate) it changes nothing.

``add_product`` exposes the one thing numpy's ``matmul`` cannot do:
``C += alpha * A^T B`` in place (BLAS gemm with beta = 1), which lets a
plain SGD step write ``W -= lr * delta^T x`` without storing the gradient
and reading it back (fastnn.nn.Dense).
"""

import ctypes
import glob
import os
import threading

import numpy as np

# Products of at most this many multiply-adds (batch x inputs x outputs of a
# Dense layer) run on one BLAS thread: 64 x 784 x 300 is about 15 million,
# inference of 256 samples through 784 x 300 about 60 million.
ONE_THREAD_WORK = 1 << 26

_NAMES = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
          ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
          ("openblas_get_num_threads", "openblas_set_num_threads"))


def _openblas_libraries():
    """The OpenBLAS libraries numpy's wheels bundle, as ctypes handles."""
    here = os.path.dirname(np.__file__)
    patterns = (os.path.join(here, os.pardir, "numpy.libs", "*openblas*"), os.path.join(here, ".dylibs", "*openblas*"))
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                yield ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second copy
            except OSError:
                continue


def _find_openblas():
    """``(get_num_threads, set_num_threads)`` of the OpenBLAS numpy loaded, or None."""
    for library in _openblas_libraries():
        for get_name, set_name in _NAMES:
            get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
            if get is not None and set_ is not None:
                get.argtypes, get.restype = [], ctypes.c_int
                set_.argtypes, set_.restype = [ctypes.c_int], None
                return get, set_
    return None


class _OneBlasThread:
    """Context manager: numpy's BLAS uses one thread inside (nests, and is safe across threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 1
        self._functions = False  # not looked up yet

    @property
    def available(self):
        """Whether the thread count of numpy's BLAS can be set (an OpenBLAS was found)."""
        if self._functions is False:
            self._functions = _find_openblas()
        return self._functions is not None

    def __enter__(self):
        if not self.available:
            return self
        get, set_ = self._functions
        with self._lock:
            if self._users == 0:
                self._saved = get()
                if self._saved != 1:
                    set_(1)
            self._users += 1
        return self

    def __exit__(self, *exc):
        if self._functions is None:
            return
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved != 1:
                self._functions[1](self._saved)

    def threads(self):
        """The thread count numpy's BLAS uses now (None when it cannot be read)."""
        return self._functions[0]() if self.available else None


one_blas_thread = _OneBlasThread()

# A gemm of fewer multiply-adds (M N K) than this runs on the calling thread in numpy's OpenBLAS whatever
# its thread count: from OpenBLAS 0.3.27 (numpy 2.0's scipy-openblas on) interface/gemm.c gives a call
# int(M N K / (65536 GEMM_MULTITHREAD_THRESHOLD)) threads, capped by the count, and the threshold is 4.
# Callers whose products are all smaller skip one_blas_thread: its two changes of the thread count cost
# a 32 -> 64 step of the tutorial LSTM 6-8 us, of which the calls themselves take 1.5 us.
SERIAL_GEMM_WORK = 2 * 65536 * 4


# cblas gemm of scipy-openblas, by the integer width its name promises (a
# plain "cblas_sgemm" could be either, so it is not used).
_GEMM_NAMES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("scipy_cblas_{}gemm", ctypes.c_int32))
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS = 101, 111, 112  # cblas's enums (fastnn.kernels.blas uses them too)
_gemm = {}  # dtype -> the cblas function, or None; filled on first use


def _find_gemm(dtype):
    prefix, scalar = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}[dtype]
    for library in _openblas_libraries():
        for name, integer in _GEMM_NAMES:
            function = getattr(library, name.format(prefix), None)
            if function is not None:
                enum, pointer = ctypes.c_int, ctypes.c_void_p
                function.argtypes = [enum, enum, enum, integer, integer, integer, scalar, pointer, integer, pointer,
                                     integer, scalar, pointer, integer]
                function.restype = None
                return function
    return None


def can_add_product(dtype):
    """Whether :func:`add_product` works for arrays of `dtype` (float32 or float64) here."""
    dtype = np.dtype(dtype)
    if dtype not in _gemm:
        _gemm[dtype] = _find_gemm(dtype) if dtype in (np.float32, np.float64) else None
    return _gemm[dtype] is not None


def add_product(alpha, a, b, c):
    """``c += alpha * a^T b`` in place: a (K, M), b (K, N), c (M, N), C-contiguous, one dtype.

    The caller checks :func:`can_add_product` first.  It runs on the BLAS
    threads numpy's BLAS has at the time (see ``one_blas_thread``).
    """
    k, m = a.shape
    n = b.shape[1]
    _gemm[c.dtype](CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_NO_TRANS, m, n, k, alpha, a.ctypes.data, m, b.ctypes.data, n,
                   1.0, c.ctypes.data, n)


def dgemm_address():
    """The address of numpy's OpenBLAS cblas dgemm with 64-bit integers, for kernels (``fastnn.kernels.blas``);
    0 when numpy has no such BLAS."""
    global _dgemm_address
    if _dgemm_address is None:
        function = can_add_product(np.float64) and _gemm[np.dtype(np.float64)]
        wide = function and function.argtypes[3] is ctypes.c_int64  # the kernels pass 64-bit sizes
        _dgemm_address = ctypes.cast(function, ctypes.c_void_p).value if wide else 0
    return _dgemm_address


_dgemm_address = None
