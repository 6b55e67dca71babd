"""``fastnn bench``: the tutorial's way, fastnn and PyTorch side by side, measured in one run.

Every workload runs in fresh processes (one for the plain-Python twin and
fastnn, one per PyTorch thread count), after a warm-up that excludes
compilation, and reports the median throughput of several timed repeats
with their spread.  Compilation is its own row: a cold Numba cache in a
temporary ``NUMBA_CACHE_DIR``, then the same cache warm.
"""

from .command import add_arguments, run

__all__ = ["add_arguments", "run"]
