"""Losses of a mini-batch with their gradient, in one pass over the outputs.

Each kernel returns ``(loss_sum, correct)``: the loss summed over the samples
(the caller divides by the batch size) and how many samples the network
classified right (arg-max of the outputs equals the label, or the arg-max of
the target row).  It writes ``grad = d(loss_sum * scale) / d(outputs)``;
``scale = 1 / N`` gives the gradient of the batch mean.  Arrays are C order,
one dtype; accumulation stays in that dtype.
"""

import math

from ._jit import jit

# Codes of the losses for kernels that compute one (batched_dense.dense_chain_sgd_step).
SOFTMAX_CROSS_ENTROPY = 0
SQUARED_ERROR = 1


@jit
def _argmax(row):
    best = 0
    for k in range(1, row.shape[0]):
        if row[k] > row[best]:
            best = k
    return best


@jit
def labels_in_range(labels, n_classes):
    """True when every label lies in ``[0, n_classes)``: one pass, for the fronts' validation."""
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= n_classes:
            return False
    return True


@jit
def softmax_cross_entropy(logits, labels, scale, grad):
    """Softmax cross-entropy of logits (N, K) against integer labels (N,); grad (N, K).

    ``p = softmax(z)``, ``loss_n = log(sum_k exp(z_k)) - z_label`` computed
    as ``m + log(sum_k exp(z_k - m))`` with ``m = max_k z_k`` so that no
    exponential overflows; ``grad = (p - onehot(label)) * scale``.
    Labels must lie in ``[0, K)``; the caller checks.
    """
    T = logits.dtype.type
    s = T(scale)
    loss_sum = T(0)
    correct = 0
    for n in range(logits.shape[0]):
        z = logits[n]
        g = grad[n]
        label = labels[n]
        best = _argmax(z)
        m = z[best]
        total = T(0)
        for k in range(z.shape[0]):
            e = math.exp(z[k] - m)
            g[k] = e
            total += e
        loss_sum += m + math.log(total) - z[label]
        factor = s / total
        for k in range(z.shape[0]):
            g[k] *= factor
        g[label] -= s
        if best == label:
            correct += 1
    return loss_sum, correct


@jit
def softmax(logits, out):
    """Row-wise ``out = exp(z - max z) / sum exp(z - max z)``: logits and out (N, K)."""
    for n in range(logits.shape[0]):
        z = logits[n]
        p = out[n]
        m = z[_argmax(z)]
        total = z[0] * 0
        for k in range(z.shape[0]):
            p[k] = math.exp(z[k] - m)
            total += p[k]
        for k in range(z.shape[0]):
            p[k] /= total


@jit
def squared_error(outputs, targets, labels, scale, grad):
    """The tutorial's loss ``E = 1/2 sum_k (t_k - y_k)^2`` per sample: outputs, grad (N, K).

    The targets are the rows of `targets` (N, K) or, when `labels` (N,) is
    not empty, the one-hot rows of those class labels (`targets` is then
    not read).  ``grad = (y - t) * scale``.  A sample counts as correct when
    the arg-max of its outputs is its label, or the arg-max of its target row.
    """
    T = outputs.dtype.type
    s = T(scale)
    half = T(0.5)
    one = T(1)
    zero = T(0)
    by_label = labels.shape[0] > 0
    loss_sum = zero
    correct = 0
    for n in range(outputs.shape[0]):
        y = outputs[n]
        g = grad[n]
        sample = zero
        for k in range(y.shape[0]):
            if by_label:
                diff = y[k] - (one if k == labels[n] else zero)
            else:
                diff = y[k] - targets[n, k]
            sample += diff * diff
            g[k] = diff * s
        loss_sum += half * sample
        if _argmax(y) == (labels[n] if by_label else _argmax(targets[n])):
            correct += 1
    return loss_sum, correct
