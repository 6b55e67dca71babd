"""Compiled kernels: plain functions over contiguous arrays, the only code that imports numba.

One module per algorithm family. Kernels trust their callers: shapes, dtypes
and value ranges are validated by the Python fronts (`fastnn.tutorial`,
`fastnn.nn`) before a kernel is reached.
"""
