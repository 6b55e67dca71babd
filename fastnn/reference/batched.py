"""Plain-Python twins of the batched front's kernels: dense layer, losses, optimizers.

Explicit loops over samples and units, one number at a time, written from
the formulas in the kernels' docstrings (fastnn.kernels.batched_dense,
.loss, .optim).  Activations are named by the strings "identity",
"sigmoid", "tanh" and "relu".  They return new arrays in float64 and
compute slowly on purpose: they are the test oracle and the "before" column
of the benchmarks.
"""

import math

import numpy as np


def activate(z, name):
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return z if z > 0 else 0.0
    return z


def derivative(y, name):
    """The activation's derivative expressed through its output y, as the tutorial does."""
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y * y
    if name == "relu":
        return 1.0 if y > 0 else 0.0
    return 1.0


def dense_forward(x, weight, bias, name):
    """a[n, o] = f(sum_i x[n, i] W[o, i] + b[o])."""
    n_samples, n_in = x.shape
    n_out = weight.shape[0]
    out = np.zeros((n_samples, n_out))
    for n in range(n_samples):
        for o in range(n_out):
            total = float(bias[o])
            for i in range(n_in):
                total += float(x[n, i]) * float(weight[o, i])
            out[n, o] = activate(total, name)
    return out


def dense_backward(x, weight, y, grad_out, name):
    """Returns (grad_x, W_grad, b_grad) of the layer from its input, weights, output and grad_out."""
    n_samples, n_in = x.shape
    n_out = weight.shape[0]
    delta = np.zeros((n_samples, n_out))
    for n in range(n_samples):
        for o in range(n_out):
            delta[n, o] = float(grad_out[n, o]) * derivative(float(y[n, o]), name)
    grad_weight = np.zeros((n_out, n_in))
    grad_bias = np.zeros(n_out)
    grad_x = np.zeros((n_samples, n_in))
    for n in range(n_samples):
        for o in range(n_out):
            grad_bias[o] += delta[n, o]
            for i in range(n_in):
                grad_weight[o, i] += delta[n, o] * float(x[n, i])
                grad_x[n, i] += delta[n, o] * float(weight[o, i])
    return grad_x, grad_weight, grad_bias


def softmax_cross_entropy(logits, labels, scale):
    """Returns (loss_sum, correct, grad) with grad = (softmax - onehot) * scale."""
    loss_sum = 0.0
    correct = 0
    grad = np.zeros(logits.shape)
    for n in range(logits.shape[0]):
        row = [float(v) for v in logits[n]]
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = sum(exps)
        loss_sum += math.log(total) + top - row[labels[n]]
        for k in range(len(row)):
            grad[n, k] = (exps[k] / total - (1.0 if k == labels[n] else 0.0)) * scale
        if row.index(top) == labels[n]:
            correct += 1
    return loss_sum, correct, grad


def squared_error(outputs, targets, scale):
    """Returns (loss_sum, correct, grad) of the tutorial's E = 1/2 sum_k (t_k - y_k)^2 per sample."""
    loss_sum = 0.0
    correct = 0
    grad = np.zeros(outputs.shape)
    for n in range(outputs.shape[0]):
        y = [float(v) for v in outputs[n]]
        t = [float(v) for v in targets[n]]
        for k in range(len(y)):
            loss_sum += 0.5 * (t[k] - y[k]) ** 2
            grad[n, k] = (y[k] - t[k]) * scale
        if y.index(max(y)) == t.index(max(t)):
            correct += 1
    return loss_sum, correct, grad


def sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    """Returns the new (param, velocity) of one SGD step, PyTorch's formulas."""
    new_param = np.array(param, dtype=np.float64)
    new_velocity = np.array(velocity, dtype=np.float64)
    for index in np.ndindex(new_param.shape):
        g = float(grad[index]) + weight_decay * new_param[index]
        if momentum != 0.0:
            new_velocity[index] = momentum * new_velocity[index] + g
            g = g + momentum * new_velocity[index] if nesterov else new_velocity[index]
        new_param[index] -= lr * g
    return new_param, new_velocity


def adam_update(param, grad, first, second, lr, beta1, beta2, eps, weight_decay, step):
    """Returns the new (param, first, second) of Adam's step number `step` (from 1)."""
    new_param = np.array(param, dtype=np.float64)
    m = np.array(first, dtype=np.float64)
    v = np.array(second, dtype=np.float64)
    for index in np.ndindex(new_param.shape):
        g = float(grad[index]) + weight_decay * new_param[index]
        m[index] = beta1 * m[index] + (1.0 - beta1) * g
        v[index] = beta2 * v[index] + (1.0 - beta2) * g * g
        m_hat = m[index] / (1.0 - beta1 ** step)
        v_hat = v[index] / (1.0 - beta2 ** step)
        new_param[index] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return new_param, m, v
