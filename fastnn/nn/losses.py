"""Losses for ``Sequential``: softmax cross-entropy and the tutorial's squared error.

A loss is chosen by name (``"cross_entropy"``, ``"mse"``) or given as an
object.  Calling it returns the mean loss over the batch and keeps the
gradient for ``backward()``.  Both losses report how many samples were
classified right, so that training accuracy costs nothing extra.
"""

import numpy as np

from .._checks import as_float_array
from ..kernels.loss import labels_in_range, softmax_cross_entropy, squared_error
from .pooling import input_dtype


def check_labels(labels, n_samples, n_classes, name="y"):
    """Integer class labels (N,) in ``[0, n_classes)`` as an int64 array, or a clear error."""
    if (type(labels) is np.ndarray and labels.dtype == np.int64 and labels.shape == (n_samples,)
            and labels.flags.c_contiguous and labels_in_range(labels, n_classes)):
        return labels  # already what the kernels take (a training loop's batches): one pass over the values
    array = np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got an array of dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape ({n_samples},) (one class label per sample), got {array.shape}")
    if array.shape[0] != n_samples:
        raise ValueError(f"{name} must hold one label per sample: expected {n_samples}, got {array.shape[0]}")
    array = np.ascontiguousarray(array, dtype=np.int64)
    if not labels_in_range(array, n_classes):
        raise ValueError(
            f"{name} holds labels outside [0, {n_classes}) (the model has {n_classes} outputs): "
            f"min {array.min()}, max {array.max()}"
        )
    return array


_NO_LABELS = np.empty(0, np.int64)


class Loss:
    """A loss of a batch of outputs ``(N, K)`` against targets."""

    name = None

    def __init__(self):
        self._grad = None

    def prepare_targets(self, targets, n_samples, n_outputs, dtype, name="y"):
        """Validate `targets` for `n_samples` outputs of `n_outputs` units; return what ``_compute`` takes."""
        raise NotImplementedError

    def has_accuracy(self, targets, n_outputs):
        """Whether "correct" counts mean something for these prepared targets."""
        return True

    def _compute(self, outputs, targets, scale, grad):
        """Trusted path: ``(loss_sum, correct)``; writes ``grad = d(scale * loss_sum)/d(outputs)``."""
        raise NotImplementedError

    def __call__(self, outputs, targets):
        """Mean loss of `outputs` (N, K) against `targets`; ``backward()`` then gives its gradient."""
        outputs = as_float_array(outputs, "outputs", input_dtype(outputs), ndim=2)
        n, k = outputs.shape
        if n == 0:
            raise ValueError("outputs must hold at least one sample, got shape (0, ...)")
        prepared = self.prepare_targets(targets, n, k, outputs.dtype)
        self._grad = np.empty_like(outputs)
        loss_sum, _ = self._compute(outputs, prepared, 1.0 / n, self._grad)
        return float(loss_sum) / n

    def backward(self):
        """Gradient of the last mean loss with respect to the outputs, shape (N, K)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss was computed")
        return self._grad

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}()"


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits: ``mean_n (log sum_k exp(z_nk) - z_n,label)``.

    Targets are integer class labels ``(N,)``.  The network's last layer
    outputs logits (no softmax layer); ``Sequential.predict_proba`` applies
    the softmax.
    """

    name = "cross_entropy"

    def prepare_targets(self, targets, n_samples, n_outputs, dtype, name="y"):
        return check_labels(targets, n_samples, n_outputs, name)

    def _compute(self, outputs, targets, scale, grad):
        return softmax_cross_entropy(outputs, targets, scale, grad)


class MeanSquaredError(Loss):
    """The tutorial's loss ``E = 1/2 sum_k (t_k - y_k)^2``, averaged over the samples of the batch.

    Targets are real rows ``(N, K)`` (one-hot or the tutorial's 0.1/0.9 codes)
    or integer class labels ``(N,)``, read as one-hot rows.  Note the 1/2 and
    the sum over outputs: it is the tutorial's ``E_d``, not PyTorch's
    ``MSELoss`` (mean over every element).
    """

    name = "mse"

    def prepare_targets(self, targets, n_samples, n_outputs, dtype, name="y"):
        array = np.asarray(targets)
        if array.ndim == 1 and array.dtype.kind in "iu" and n_outputs > 1:
            return check_labels(array, n_samples, n_outputs, name)
        if array.ndim == 1 and n_outputs == 1:
            array = array.reshape(-1, 1)
        return as_float_array(array, name, dtype, shape=(n_samples, n_outputs))

    def has_accuracy(self, targets, n_outputs):
        return targets.ndim == 1 or n_outputs > 1

    def _compute(self, outputs, targets, scale, grad):
        if targets.ndim == 1:
            return squared_error(outputs, np.empty((0, 0), outputs.dtype), targets, scale, grad)
        return squared_error(outputs, targets, _NO_LABELS, scale, grad)


LOSSES = {CrossEntropy.name: CrossEntropy, MeanSquaredError.name: MeanSquaredError}


def get_loss(loss):
    """A Loss from a name in LOSSES or a Loss object."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"loss must be one of {sorted(LOSSES)} or a Loss object, got {loss!r}")
