"""Plain-Python twins of every fastnn algorithm: the test oracle and the slow baseline.

Written to read like the tutorial (explicit loops, Python objects), using no
Numba and nothing else from fastnn.
"""
