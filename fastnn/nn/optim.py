"""Optimizers: SGD (the tutorial's update, with PyTorch's momentum options) and Adam.

``optimizer.step(layers)`` updates every layer's ``params`` in place from its
``grads`` through compiled kernels (fastnn.kernels.optim).  State (velocity,
moments) is kept per parameter array.  Before writing anything it checks that
every gradient is finite; if one is not, it changes nothing and returns
False, so a diverging model keeps the weights of its last good step.
"""

import numpy as np

from .._checks import check_real
from ..kernels.optim import adam_update, all_finite, sgd_plain_all, sgd_update


class Optimizer:
    """Base class: holds hyper-parameters and per-parameter state.

    The real-valued hyper-parameters in ``checked`` are checked whenever they
    are set, not only by the constructor: callbacks and users change
    ``optimizer.lr`` during training, and a rate that is a string, NaN or
    negative would otherwise reach the kernels.
    """

    state_names = ()
    checked = {"lr": {"positive": True}}  # name -> check_real's limits
    is_plain = False  # see SGD.is_plain

    def __init__(self, lr):
        self.lr = lr
        self._slots = []  # (param, grad, *state) per parameter array, in layer order

    def __setattr__(self, name, value):
        limits = self.checked.get(name)
        super().__setattr__(name, value if limits is None else check_real(value, name, **limits))

    def step(self, layers):
        """Update the parameters of `layers` (a list of Layer) in place; False if a gradient was not finite."""
        self._bind(layers)
        return self._update()

    def reset(self):
        """Forget the state (velocity, moments, step count)."""
        self._slots = []

    def _bind(self, layers):
        """Point the slots at the layers' arrays (an array seen before keeps its state); True if they changed."""
        arrays = [(layer.params[name], layer.grads[name]) for layer in layers for name in layer.params]
        if len(arrays) == len(self._slots) and all(s[0] is p and s[1] is g for s, (p, g) in zip(self._slots, arrays)):
            return False
        seen = {id(slot[0]): slot for slot in self._slots}
        slots = []
        for param, grad in arrays:
            slot = seen.get(id(param))
            if slot is None or slot[0] is not param or slot[1] is not grad:
                slot = (param, grad, *[np.zeros_like(param) for _ in self.state_names])
            slots.append(slot)
        self._slots = slots
        return True

    def _update(self, slots=None):
        """Check every gradient of `slots` (default: all), then update them; False (nothing changed) if one is not finite."""
        slots = self._slots if slots is None else slots
        for slot in slots:
            if not all_finite(slot[1]):
                return False
        self._apply(slots)
        return True

    def _apply(self, slots):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class SGD(Optimizer):
    """Stochastic gradient descent: ``w -= lr * (grad + weight_decay * w)``, with optional momentum.

    With ``momentum`` the step follows a velocity ``v = momentum * v + g``
    (``nesterov=True`` steps along ``g + momentum * v``), as ``torch.optim.SGD``.
    """

    state_names = ("velocity",)
    checked = dict(Optimizer.checked, momentum={"minimum": 0.0}, weight_decay={"minimum": 0.0})

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = momentum
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.nesterov = nesterov
        self.weight_decay = weight_decay

    @property
    def is_plain(self):
        """No momentum and no weight decay: the tutorial's ``w -= lr * grad``, which layers may fuse into back propagation."""
        return self.momentum == 0.0 and self.weight_decay == 0.0

    def __getstate__(self):
        # The flattened views would be pickled as copies: they are rebuilt.
        return dict(self.__dict__, _flat=None)

    def _update(self, slots=None):
        slots = self._slots if slots is None else slots
        if not (self.is_plain and slots):
            return super()._update(slots)
        # Plain SGD checks and updates every array in one kernel call, through 1-D views of them, made
        # once per slot list (parameter and gradient arrays are never rebound).
        flat = getattr(self, "_flat", None)
        if flat is None or flat[0] is not slots:
            arrays = [array for slot in slots for array in slot[:2]]
            if len({array.dtype for array in arrays}) > 1 or not all(array.flags.c_contiguous for array in arrays):
                return super()._update(slots)
            flat = self._flat = (slots, tuple(slot[0].reshape(-1) for slot in slots),
                                 tuple(slot[1].reshape(-1) for slot in slots))
        return sgd_plain_all(flat[1], flat[2], self.lr)

    def _apply(self, slots):
        for param, grad, velocity in slots:
            sgd_update(param, grad, velocity, self.lr, self.momentum, self.nesterov, self.weight_decay)

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam with PyTorch's formulas and defaults; ``weight_decay`` adds ``weight_decay * w`` to the gradient."""

    state_names = ("first_moment", "second_moment")
    checked = dict(Optimizer.checked, eps={"positive": True}, weight_decay={"minimum": 0.0})

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
        self.betas = tuple(check_real(b, name, minimum=0.0) for b, name in ((beta1, "betas[0]"), (beta2, "betas[1]")))
        for value, name in zip(self.betas, ("betas[0]", "betas[1]")):
            if value >= 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.eps = eps
        self.weight_decay = weight_decay
        self.steps = 0

    def reset(self):
        super().reset()
        self.steps = 0

    def _apply(self, slots):
        self.steps += 1
        beta1, beta2 = self.betas
        for param, grad, first, second in slots:
            adam_update(param, grad, first, second, self.lr, beta1, beta2, self.eps, self.weight_decay, self.steps)

    def get_config(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
