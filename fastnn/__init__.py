"""fastnn: the classic "deep learning from zero" networks, compiled with Numba.

`fastnn.tutorial` mirrors the tutorial's own modules (a drop-in: change the
imports of a tutorial script), `fastnn.nn` is the batched front for real
training, `fastnn.reference` holds the plain-Python twins used as test oracle
and slow baseline. Importing fastnn compiles nothing: every kernel compiles on
first use and is cached on disk by Numba.
"""

__version__ = "0.1.0"
