"""In-place parameter updates (fastnn.nn.SGD and fastnn.nn.Adam).

Every array is C-contiguous and one parameter's worth: param, grad and the
optimizer's state share a shape and a dtype, and the loops run over the
flattened arrays.  The formulas are PyTorch's, so that a recipe written for
``torch.optim`` means the same here; plain SGD (no momentum, no weight decay)
is the tutorial's ``w -= rate * grad``.
"""

import math

from ._jit import jit


@jit
def all_finite(values):
    """True when no element of `values` is NaN or infinite.

    Counts the elements with ``|v| < inf`` (false for NaN): a branch-free
    loop that vectorizes.  A sum of ``v * 0`` would vectorize as well, but
    fast-math's reassociation may turn it into ``(sum v) * 0`` once inlined
    (two values of 1e308 then overflow into a false alarm); a comparison
    has no algebra to rewrite, and the jit options keep NaN semantics.
    """
    flat = values.reshape(-1)
    limit = values.dtype.type(math.inf)
    count = 0
    for i in range(flat.shape[0]):
        count += abs(flat[i]) < limit
    return count == flat.shape[0]


@jit
def sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    """Stochastic gradient descent, with optional momentum and L2 weight decay.

    ``g = grad + weight_decay * w``; without momentum ``w -= lr * g``; with it
    ``v = momentum * v + g`` and ``w -= lr * v`` (Nesterov: ``w -= lr * (g +
    momentum * v)``).  `velocity` starts at zero, which equals PyTorch's first
    step ``v = g``.  It is not touched when ``momentum == 0``.
    """
    T = param.dtype.type
    rate = T(lr)
    mu = T(momentum)
    decay = T(weight_decay)
    w = param.reshape(-1)
    g = grad.reshape(-1)
    if momentum == 0.0:
        for i in range(w.shape[0]):
            w[i] -= rate * (g[i] + decay * w[i])
        return
    v = velocity.reshape(-1)
    for i in range(w.shape[0]):
        step = g[i] + decay * w[i]
        v[i] = mu * v[i] + step
        if nesterov:
            step = step + mu * v[i]
        else:
            step = v[i]
        w[i] -= rate * step


@jit
def descend(params, grads, rate):
    """Gradient descent in place, ``params -= rate * grads`` (flat arrays of one length): the tutorial
    layers' ``update``.  :func:`sgd_update` computes the same; its seven arguments cost about 0.2 us
    more per call, 2% of a tutorial RNN step at 3 -> 2."""
    step = params.dtype.type(rate)
    for i in range(params.shape[0]):
        params[i] -= step * grads[i]


@jit
def adam_update(param, grad, first, second, lr, beta1, beta2, eps, weight_decay, step):
    """Adam (Kingma & Ba) as PyTorch computes it, with L2 weight decay added to the gradient.

    ``g = grad + weight_decay * w``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g^2``; ``w -= lr / (1 - b1^t) * m / (sqrt(v) /
    sqrt(1 - b2^t) + eps)`` at step ``t`` (counted from 1).
    """
    T = param.dtype.type
    b1 = T(beta1)
    b2 = T(beta2)
    one = T(1)
    decay = T(weight_decay)
    step_size = T(lr / (1.0 - beta1 ** step))
    root_correction = T(math.sqrt(1.0 - beta2 ** step))
    epsilon = T(eps)
    w = param.reshape(-1)
    g = grad.reshape(-1)
    m = first.reshape(-1)
    v = second.reshape(-1)
    for i in range(w.shape[0]):
        gi = g[i] + decay * w[i]
        m[i] = b1 * m[i] + (one - b1) * gi
        v[i] = b2 * v[i] + (one - b2) * gi * gi
        w[i] -= step_size * m[i] / (math.sqrt(v[i]) / root_correction + epsilon)


@jit
def sgd_plain_all(params, grads, lr):
    """The tutorial's ``w -= lr * grad`` on several parameter arrays in one call, all of them or none.

    `params` and `grads` are tuples of 1-D arrays of one dtype, each
    gradient as long as its parameter.  Every gradient is checked first:
    returns False, having changed nothing, when one is not finite.  Same
    values as :func:`sgd_update` without momentum and weight decay.
    """
    for k in range(len(grads)):
        if not all_finite(grads[k]):
            return False
    for k in range(len(params)):
        descend(params[k], grads[k], lr)
    return True
