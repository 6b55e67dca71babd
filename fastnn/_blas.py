"""One BLAS thread while fastnn computes: ``with one_blas_thread(): ...``.

fastnn's steps mix numpy products (OpenBLAS, two threads by default) with
Numba's parallel regions.  Each pool's threads spin while they wait, so the
two fight for the same cores, and on a machine where another process holds a
core every parallel product waits for a descheduled thread.  With the load
of a busy 2-core machine, batch-64 MLP steps ran 40-90x slower with two
BLAS threads than with one.  The products are small (one layer of a
mini-batch), so fastnn runs them on one thread.

OpenBLAS's count is process-wide: while any fastnn model computes, every
BLAS call of the process runs on one thread; the count in force before the
first of them started is restored when the last one finishes.  Without
numpy's OpenBLAS (0.3.27 or later, as numpy's wheels bundle) this is a no-op.
"""

import contextlib
import ctypes
import glob
import os
import threading

# OpenBLAS's setter that returns the count it replaces.
_SETTER = "openblas_set_num_threads_local"


def _loaded_libraries():
    """Paths of numpy's bundled libraries, then of every shared library this process has mapped (Linux)."""
    import numpy

    root = os.path.dirname(numpy.__file__)
    paths = glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*")) + glob.glob(os.path.join(root, ".dylibs", "*"))
    try:
        with open("/proc/self/maps") as maps:
            paths += [line.split()[-1] for line in maps if ".so" in line]
    except OSError:
        pass
    return paths


def _find_setter():
    for path in dict.fromkeys(_loaded_libraries()):
        if "openblas" in os.path.basename(path):
            try:
                setter = getattr(ctypes.CDLL(path), _SETTER)
            except (OSError, AttributeError):
                continue
            setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
            return setter
    return None


_setter = _find_setter()
_lock = threading.Lock()
_users = 0  # blocks inside one_blas_thread, over all threads
_count_before = None


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with one BLAS thread; the first block to enter sets it, the last to leave restores it."""
    global _users, _count_before
    if _setter is None:
        yield
        return
    with _lock:
        if _users == 0:
            _count_before = _setter(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _setter(_count_before)
