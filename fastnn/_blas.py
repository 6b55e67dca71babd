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


def _find_openblas():
    """``(get_num_threads, set_num_threads)`` of the OpenBLAS numpy loaded, or None."""
    here = os.path.dirname(np.__file__)
    patterns = (os.path.join(here, os.pardir, "numpy.libs", "*openblas*"), os.path.join(here, ".dylibs", "*openblas*"))
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                library = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second copy
            except OSError:
                continue
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
