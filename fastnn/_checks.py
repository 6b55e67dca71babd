"""Input validation shared by the Python fronts.

Kernels trust their arguments; everything a user hands to fastnn goes through
these helpers first, so that a mistake raises a ``TypeError`` or
``ValueError`` that names the argument, what was expected and what was given,
instead of a Numba typing error, a crash or a silently wrong result.
"""

import math
import numbers

import numpy as np

from .kernels.optim import all_finite

SMALL_ARRAY = 4096  # elements: see as_float_array's check of the values


def describe_shape(shape):
    """``(3, 1)`` for a shape tuple, with ``None`` shown as ``any``."""
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def as_float_array(value, name, dtype=np.float64, *, shape=None, ndim=None, finite=True, copy=False):
    """Return `value` as a C-contiguous float array of `dtype`, or raise.

    `shape` may contain ``None`` for any size; `ndim` checks only the rank.
    Lists, tuples and integer arrays are converted; booleans, strings, objects
    and complex numbers are refused with a TypeError naming `name`.  With
    `finite`, NaN and infinity are refused with a ValueError.
    """
    # An array that is already what the caller wants (the usual case in a training loop) skips the dtype
    # tests and the conversion: they cost about 2 us, a third of a recurrent layer's step on one sequence.
    as_is = type(value) is np.ndarray and value.dtype == dtype and value.flags.c_contiguous and not copy
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:  # ragged nested lists
            raise TypeError(f"{name} must be a numeric array; could not convert it: {error}") from None
    if not as_is and (array.dtype == object
                      or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating))):
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    if shape is not None:
        check_shape(array, shape, name)
    elif ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if not as_is:
        # np.asarray with order="C" keeps a 0-d array 0-d (ascontiguousarray would make it 1-d).
        array = np.array(array, dtype=dtype, order="C", copy=True) if copy else np.asarray(array, dtype=dtype, order="C")
    # A compiled pass (no boolean array, one call) is 0.6 us faster on a batch of a few samples; on large
    # arrays numpy's isfinite is as fast, and stays fast when the kernels run as Python (NUMBA_DISABLE_JIT).
    if finite and array.size and not (all_finite(array.reshape(-1)) if array.size <= SMALL_ARRAY
                                      else np.isfinite(array).all()):
        if array is not value and np.isfinite(np.asarray(value)).all():  # finite until converted
            raise ValueError(f"{name} holds values beyond the range of {array.dtype}")
        raise ValueError(f"{name} contains NaN or infinity")
    return array


def check_shape(array, expected, name):
    """Raise ValueError unless ``array.shape`` matches `expected` (``None`` matches any size)."""
    if len(array.shape) != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
        raise ValueError(f"{name} must have shape {describe_shape(expected)}, got {describe_shape(array.shape)}")


def check_int(value, name, minimum=None):
    """Return `value` as an int, refusing booleans, floats and values below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_real(value, name, *, minimum=None, positive=False):
    """Return `value` as a finite float, optionally >= `minimum` or > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_rate(value, name="rate"):
    """A learning rate: finite and not negative (zero trains nothing, which is allowed)."""
    return check_real(value, name, minimum=0.0)


def rate_attribute(name="learning_rate"):
    """A class attribute `name` holding a learning rate, checked by :func:`check_rate` whenever it is
    assigned (in ``__init__`` or later), so that ``update()`` never meets a bad one."""
    private = f"_{name}"

    def setter(self, value):
        setattr(self, private, check_rate(value, name))

    return property(lambda self: getattr(self, private), setter, doc=f"{name}: finite and >= 0, checked when set.")


def check_same_length(first, first_name, second, second_name):
    """Raise ValueError unless two sequences hold as many items each."""
    if len(first) != len(second):
        raise ValueError(f"{first_name} and {second_name} must have the same length, got {len(first)} and {len(second)}")


def make_rng(rng, name="rng"):
    """A numpy Generator from `rng` (the argument `name`): None (fresh entropy), a seed, or a Generator."""
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng < 0:
        raise ValueError(f"{name} must be a seed >= 0, got {rng}")
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"{name} must be None, an integer seed or a numpy.random.Generator, got {type(rng).__name__}")
