"""The interface every fastnn.nn layer follows.

A layer works on batch-first arrays: ``forward(x)`` returns the output and
remembers what ``backward`` needs; ``backward(grad_output)`` returns the
gradient of the loss with respect to ``x`` and fills ``grads``.  ``params``
and ``grads`` map a parameter name (``"weight"``, ``"bias"``, ...) to arrays
of the same shape; optimizers update ``params`` in place.  Each array is
bound once (:class:`Parameters`): the kernels, the optimizer's state and
Sequential's plans keep using it.
"""

import numpy as np

from .._checks import as_float_array

DTYPES = (np.float32, np.float64)


def check_dtype(dtype):
    """Return `dtype` as a numpy dtype if it is float32 or float64, else raise TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if dtype is None or resolved not in [np.dtype(d) for d in DTYPES]:  # numpy reads None as float64
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


class Parameters(dict):
    """A layer's ``params`` or ``grads``: parameter name -> array, each array bound once.

    The kernels read and write these arrays without checks, and optimizers
    and Sequential hold on to them, so assigning to a name already there
    copies the values into its array, after checking them (shape, real
    numbers, finite; converted to the array's dtype).  A new name binds the
    array given (a layer fills its dict that way); none can be removed.
    """

    def __init__(self, kind, items=()):
        super().__init__()
        self.kind = kind
        self.update(items)

    def __setitem__(self, name, value):
        target = self.get(name)
        if isinstance(target, np.ndarray):
            target[...] = as_float_array(value, f"{self.kind}[{name!r}]", target.dtype, shape=target.shape)
        else:
            super().__setitem__(name, value)

    def update(self, *args, **kwargs):
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def setdefault(self, name, value=None):
        if name not in self:
            self[name] = value
        return self[name]

    def _refuse(self, *args):
        raise TypeError(f"a layer's {self.kind} cannot be removed: its kernels and the optimizer use them")

    __delitem__ = pop = popitem = clear = _refuse

    # Pickle rebuilds the items through __setitem__, which binds each once.
    def __reduce__(self):
        return type(self), (self.kind, dict(self))


class Layer:
    """Base class: parameters by name, forward/backward, configuration for save/load.

    Subclasses call ``super().__init__()`` and fill ``self.params`` (and the
    matching zero arrays in ``self.grads``).  ``dtype`` is the floating type
    the layer computes in; inputs of another type are converted to it.
    """

    dtype = np.dtype(np.float32)

    # True for layers that also have ``_forward(x)`` and ``_backward(grad)``
    # taking arrays validated already (C-contiguous, finite, of the layer's
    # dtype and shapes): Sequential calls those and checks the data once,
    # not at every layer.
    trusted_path = False

    def __init__(self):
        self._params = Parameters("params")
        self._grads = Parameters("grads")

    # Assigning a dict to either copies its arrays in (Parameters): the bound arrays stay.
    params = property(lambda self: self._params, lambda self, value: self._params.update(value),
                      doc="Parameter name -> array (:class:`Parameters`).")
    grads = property(lambda self: self._grads, lambda self, value: self._grads.update(value),
                     doc="Parameter name -> gradient array of the same shape (:class:`Parameters`).")

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def output_shape(self, input_shape):
        """Shape of one output sample for one input sample of `input_shape` (batch axis excluded)."""
        return tuple(input_shape)

    def get_config(self):
        """Constructor arguments as a JSON-serialisable dict, so ``type(layer)(**config)`` rebuilds it."""
        return {}

    @property
    def num_params(self):
        return int(sum(p.size for p in self.params.values()))

    def zero_grad(self):
        for grad in self.grads.values():
            grad.fill(0)

    def _input(self, x, feature_shape, name="x"):
        """Validate a batch: shape ``(N, *feature_shape)`` with N >= 1, converted to this layer's dtype.

        ``None`` in `feature_shape` accepts any size on that axis.
        """
        array = as_float_array(x, name, self.dtype, shape=(None, *feature_shape))
        if array.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sample, got shape {array.shape}")
        return array

    def _require(self, attribute, method="forward"):
        """The value a backward pass needs from `method`, or a RuntimeError if it was not called."""
        value = getattr(self, attribute, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before {method}()")
        return value

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
