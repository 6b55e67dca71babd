"""The tutorial's network of nodes and connections (chapter 3, ``bp``), connection by connection.

The graph is stored as arrays.  Nodes have one global index, layer after
layer, each layer ending with its constant node (output 1, the bias).
Connections are sorted by downstream node, then upstream node, so the
connections into node ``j`` are ``in_start[j] .. in_end[j]`` with upstream
nodes ``upstream[c]`` and weights ``weights[c]`` (the caller may leave unused
slots between nodes, to start every node's weights on a cache line).  ``contiguous_from[j]`` is
the first upstream node when those upstream nodes form one contiguous run
(always, for a fully connected layer) and -1 otherwise; contiguous runs take
a vectorised loop over slices, the rest an indexed loop, so sparse, pruned or
skip-layer connection lists train the same way.  ``hidden_from[j]`` is the
first connection of ``j`` whose upstream node is not in the input layer.
``compute_nodes`` lists the nodes whose output is computed (every node of
layers 1.. except the constant ones), in layer order.

The tutorial's formulas, sigmoid everywhere:

* output      ``y_j = sigmoid(sum_c w_c * y_upstream(c))``
* output delta ``d_j = y_j (1 - y_j) (t_j - y_j)``
* hidden delta ``d_i = y_i (1 - y_i) * sum_{c: i -> j} w_c * d_j``
* gradient    ``g_c = d_downstream(c) * y_upstream(c)`` (the negative gradient
  of the half squared error), update ``w_c += rate * g_c``.
"""

import numpy as np

from .activation import sigmoid
from ._jit import jit


# The contiguous loops run over ``range(w.shape[0])`` of slices made by the
# caller: written so, LLVM vectorises them fully; a loop over ``range(end -
# start)`` with offsets computed inside ran about 25% slower here.
@jit(inline=True)
def _dot_slices(w, v):
    total = v.dtype.type(0)
    for k in range(w.shape[0]):
        total += w[k] * v[k]
    return total


@jit(inline=True)
def _dot(weights, upstream, start, end, first, values):
    """``sum_c weights[c] * values[upstream[c]]`` over connections ``start .. end``."""
    if first >= 0:
        return _dot_slices(weights[start:end], values[first:first + end - start])
    total = values.dtype.type(0)
    for c in range(start, end):
        total += weights[c] * values[upstream[c]]
    return total


@jit(inline=True)
def _scatter_slices(w, scale, acc):
    for k in range(w.shape[0]):
        acc[k] += w[k] * scale


@jit(inline=True)
def _scatter(weights, upstream, start, end, first, scale, acc):
    """``acc[upstream[c]] += weights[c] * scale`` over connections ``start .. end``."""
    if first >= 0:
        _scatter_slices(weights[start:end], scale, acc[first:first + end - start])
    else:
        for c in range(start, end):
            acc[upstream[c]] += weights[c] * scale


@jit(inline=True)
def _update_then_dot_slices(w, step, old, new):
    total = new.dtype.type(0)
    for k in range(w.shape[0]):
        w[k] += step * old[k]
        total += w[k] * new[k]
    return total


@jit(inline=True)
def _update_then_dot(weights, upstream, start, end, first, step, old_values, new_values):
    """``w_c += step * old_values[up(c)]``, then return ``sum_c w_c * new_values[up(c)]``.

    One pass over the weights both finishes sample i's update and starts
    sample i+1's forward pass: the weights are read from memory once.
    """
    if first >= 0:
        n = end - start
        return _update_then_dot_slices(weights[start:end], step, old_values[first:first + n],
                                       new_values[first:first + n])
    total = new_values.dtype.type(0)
    for c in range(start, end):
        weights[c] += step * old_values[upstream[c]]
        total += weights[c] * new_values[upstream[c]]
    return total


@jit
def forward(weights, upstream, in_start, in_end, contiguous_from, compute_nodes, outputs):
    """Compute the output of every node in `compute_nodes`, in order (inputs already in `outputs`)."""
    for j in compute_nodes:
        outputs[j] = sigmoid(_dot(weights, upstream, in_start[j], in_end[j], contiguous_from[j], outputs))


@jit(inline=True)
def _first(contiguous_from, in_start, j, start):
    """The first upstream node of connections ``start ..`` of node ``j``, or -1 if not contiguous."""
    return contiguous_from[j] + (start - in_start[j]) if contiguous_from[j] >= 0 else -1


@jit
def deltas(weights, upstream, in_start, in_end, contiguous_from, hidden_from, compute_nodes, outputs, labels,
           output_start, input_deltas, acc, delta):
    """Fill `delta` for every node from the outputs of the last forward pass and the `labels`.

    Output nodes (``output_start ..``) get ``y(1-y)(t-y)``, every other node
    ``y(1-y) * sum(w * downstream delta)``.  The input layer's deltas feed
    nothing; they are computed only when `input_deltas` is true.  `acc` is a
    scratch array as long as `delta`.
    """
    acc[:] = 0
    delta[:] = 0
    one = outputs.dtype.type(1)
    for k in range(compute_nodes.shape[0] - 1, -1, -1):
        j = compute_nodes[k]
        y = outputs[j]
        if j >= output_start:
            delta[j] = y * (one - y) * (labels[j - output_start] - y)
        else:
            delta[j] = y * (one - y) * acc[j]
        start = in_start[j] if input_deltas else hidden_from[j]
        if start < in_end[j]:
            _scatter(weights, upstream, start, in_end[j], _first(contiguous_from, in_start, j, start), delta[j], acc)
    # Nodes computed by no one (the input layer and every constant node):
    # constants have y(1-y) = 0, the input layer gets its delta if asked.
    if input_deltas:
        for i in range(compute_nodes[0]):
            delta[i] = outputs[i] * (one - outputs[i]) * acc[i]


@jit
def gradients(upstream, in_start, in_end, compute_nodes, outputs, delta, gradient):
    """``gradient[c] = delta[downstream] * output[upstream]`` for every connection."""
    for j in compute_nodes:
        for c in range(in_start[j], in_end[j]):
            gradient[c] = delta[j] * outputs[upstream[c]]


@jit
def update(weights, upstream, in_start, in_end, contiguous_from, compute_nodes, outputs, delta, rate):
    """``w_c += rate * delta[downstream] * output[upstream]`` for every connection."""
    for j in compute_nodes:
        step = rate * delta[j]
        start, end, first = in_start[j], in_end[j], contiguous_from[j]
        if first >= 0:
            _scatter_slices(outputs[first:first + end - start], step, weights[start:end])
        else:
            for c in range(start, end):
                weights[c] += step * outputs[upstream[c]]


@jit
def train(weights, upstream, in_start, in_end, contiguous_from, hidden_from, compute_nodes, output_start,
          samples, labels, rate, epochs, outputs, delta, gradient):
    """Sequential SGD over `samples` (N, n_inputs) and `labels` (N, n_outputs), `epochs` times.

    Exactly the tutorial's ``train_one_sample`` loop (forward, deltas from the
    old weights, update), reorganised so that the update of sample i and the
    forward pass of sample i+1 share one pass over the weights.  `outputs`
    must hold 1 at every constant node; at least one step must be asked
    for.  On return `outputs`, `delta` and `gradient` describe the last
    sample, as the tutorial's objects would.

    Serial on purpose: a parallel region per sample was 20% faster on an
    idle 2-core machine but up to 100x slower whenever another process held
    a core, since every sample then waits for a descheduled thread.
    """
    n_samples, n_inputs = samples.shape
    acc = np.empty_like(delta)
    # Double buffer: row 0 or 1 holds sample i's outputs, the other sample i+1's.
    buffers = np.empty((2, outputs.shape[0]), outputs.dtype)
    buffers[0] = outputs
    buffers[1] = outputs
    buffers[0, :n_inputs] = samples[0]
    forward(weights, upstream, in_start, in_end, contiguous_from, compute_nodes, buffers[0])
    total = n_samples * epochs
    for step_index in range(total):
        current = buffers[step_index % 2]
        deltas(weights, upstream, in_start, in_end, contiguous_from, hidden_from, compute_nodes, current,
               labels[step_index % n_samples], output_start, step_index == total - 1, acc, delta)
        if step_index == total - 1:
            gradients(upstream, in_start, in_end, compute_nodes, current, delta, gradient)
            update(weights, upstream, in_start, in_end, contiguous_from, compute_nodes, current, delta, rate)
            outputs[:] = current
            break
        following = buffers[(step_index + 1) % 2]
        following[:n_inputs] = samples[(step_index + 1) % n_samples]
        for j in compute_nodes:
            following[j] = sigmoid(_update_then_dot(weights, upstream, in_start[j], in_end[j], contiguous_from[j],
                                                    rate * delta[j], current, following))
