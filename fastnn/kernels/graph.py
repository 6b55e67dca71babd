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

import math

import numpy as np

from .activation import sigmoid
from ._jit import jit


@jit(inline=True)
def _sigmoid_unbranched(z):
    """`activation.sigmoid`, the same bits, with a select for its branch on the sign of `z`.

    A hidden layer's sums change sign at random from node to node, so the
    branch is mispredicted about every other node; this was about 15 ns a node.
    """
    one = type(z)(1)
    e = math.exp(-abs(z))
    return (one if z >= 0 else e) / (one + e)


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


# Samples per block of delayed updates (see `train`); `_block_pass` is
# written out for exactly this many.  Its loops run over chunks of `_CHUNK`
# inputs, so that a chunk of the old and the new block's inputs (2 x 8 x 192
# float64, 24 KB) stays in the L1 cache while every weight row passes by
# (it fits a 32 KB L1 too; on a 48 KB L1, chunks of 128 were 3% slower, 64
# 25%, no chunks 5%).
_BLOCK = 8
_CHUNK = 192
# Below this many steps a `train` call should pass no `block_rows`: every
# block costs 8 samples' sums however few of them are used.
MIN_BLOCKED_STEPS = 2 * _BLOCK


@jit
def _block_pass(weights, row_start, steps, old, new, z):
    """Apply a block's 8 pending updates to rows of weights, then dot them with the next block's inputs.

    Row ``r`` is ``weights[row_start[r]:row_start[r] + L]``, `steps` (8, R)
    and `old` (8, L) the pending updates ``w += steps[p, r] * old[p]``,
    applied in sample order p = 0..7, so the weights get the same bits as
    from one update per sample; `new` (8, L) holds the next block's inputs
    and ``z[q, r]`` (8, R) receives ``w_r . new[q]``.  Each weight is read
    and written once per 8 samples, and the 16 multiply-adds done with it in
    registers; two rows at a time share the loads of the inputs.
    """
    run = old.shape[1]
    n_rows = row_start.shape[0]
    zero = z.dtype.type(0)
    z[:] = 0
    for k0 in range(0, run, _CHUNK):
        k1 = min(k0 + _CHUNK, run)
        o0, o1, o2, o3 = old[0, k0:k1], old[1, k0:k1], old[2, k0:k1], old[3, k0:k1]
        o4, o5, o6, o7 = old[4, k0:k1], old[5, k0:k1], old[6, k0:k1], old[7, k0:k1]
        n0, n1, n2, n3 = new[0, k0:k1], new[1, k0:k1], new[2, k0:k1], new[3, k0:k1]
        n4, n5, n6, n7 = new[4, k0:k1], new[5, k0:k1], new[6, k0:k1], new[7, k0:k1]
        for r in range(0, n_rows, 2):
            # With an odd row count the last row is paired with itself: the
            # second copy gets no steps (it stores the first's new values
            # again) and its dots are dropped.
            r2 = min(r + 1, n_rows - 1)
            w = weights[row_start[r] + k0:row_start[r] + k1]
            u = weights[row_start[r2] + k0:row_start[r2] + k1]
            s0, s1, s2, s3 = steps[0, r], steps[1, r], steps[2, r], steps[3, r]
            s4, s5, s6, s7 = steps[4, r], steps[5, r], steps[6, r], steps[7, r]
            if r2 > r:
                t0, t1, t2, t3 = steps[0, r2], steps[1, r2], steps[2, r2], steps[3, r2]
                t4, t5, t6, t7 = steps[4, r2], steps[5, r2], steps[6, r2], steps[7, r2]
            else:
                t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = zero
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
            b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = zero
            for k in range(w.shape[0]):
                x0, x1, x2, x3, x4, x5, x6, x7 = o0[k], o1[k], o2[k], o3[k], o4[k], o5[k], o6[k], o7[k]
                v = w[k] + s0 * x0
                v += s1 * x1
                v += s2 * x2
                v += s3 * x3
                v += s4 * x4
                v += s5 * x5
                v += s6 * x6
                v += s7 * x7
                w[k] = v
                y = u[k] + t0 * x0
                y += t1 * x1
                y += t2 * x2
                y += t3 * x3
                y += t4 * x4
                y += t5 * x5
                y += t6 * x6
                y += t7 * x7
                u[k] = y
                x = n0[k]
                a0 += v * x
                b0 += y * x
                x = n1[k]
                a1 += v * x
                b1 += y * x
                x = n2[k]
                a2 += v * x
                b2 += y * x
                x = n3[k]
                a3 += v * x
                b3 += y * x
                x = n4[k]
                a4 += v * x
                b4 += y * x
                x = n5[k]
                a5 += v * x
                b5 += y * x
                x = n6[k]
                a6 += v * x
                b6 += y * x
                x = n7[k]
                a7 += v * x
                b7 += y * x
            z[0, r] += a0
            z[1, r] += a1
            z[2, r] += a2
            z[3, r] += a3
            z[4, r] += a4
            z[5, r] += a5
            z[6, r] += a6
            z[7, r] += a7
            if r2 > r:
                z[0, r2] += b0
                z[1, r2] += b1
                z[2, r2] += b2
                z[3, r2] += b3
                z[4, r2] += b4
                z[5, r2] += b5
                z[6, r2] += b6
                z[7, r2] += b7


@jit
def train(weights, upstream, in_start, in_end, contiguous_from, hidden_from, compute_nodes, output_start,
          block_rows, block_from, other_nodes, samples, labels, rate, epochs, outputs, delta, gradient):
    """Sequential SGD over `samples` (N, n_inputs) and `labels` (N, n_outputs), `epochs` times.

    Exactly the tutorial's ``train_one_sample`` loop (forward, deltas from the
    old weights, update), reorganised so that each weight is read as few
    times as possible.  `outputs` must hold 1 at every constant node; at
    least one step must be asked for.  On return `outputs`, `delta` and
    `gradient` describe the last sample, as the tutorial's objects would.

    Nodes `block_rows` (possibly none) are fed only by the input layer, all
    by the same contiguous run of ``L`` input nodes from `block_from`: no
    delta but the input layer's (needed after the last sample only) reads
    their weights, so their updates are kept pending over blocks of 8
    samples.  With ``x^p`` the inputs of sample p of a block and ``s_j^p =
    rate * d_j^p``, sample q's sum is ``w_j . x^q + sum_{p<q} s_j^p (x^p .
    x^q)``: the block's first term for all 8 samples and the pending updates
    of the block before come from one pass over the weights
    (`_block_pass`), the dots ``x^p . x^q`` are shared by all those nodes.
    Every other node's update of sample i shares one pass over its weights
    with the forward pass of sample i+1.  Sums differ from the plain loop's
    only by rounding; the weights get the plain loop's updates, in order.

    Serial on purpose: a parallel region per sample was 20% faster on an
    idle 2-core machine but up to 100x slower whenever another process held
    a core, since every sample then waits for a descheduled thread.
    """
    n_samples, n_inputs = samples.shape
    n_rows = block_rows.shape[0]
    run = in_end[block_rows[0]] - in_start[block_rows[0]] if n_rows else 0
    row_start = np.empty(n_rows, np.int64)
    for r in range(n_rows):
        row_start[r] = in_start[block_rows[r]]
    steps = np.zeros((_BLOCK, n_rows), outputs.dtype)
    # Rows 0-7 and 8-15: the inputs of the even and the odd blocks (of this block and the one before).
    blocks = np.zeros((2 * _BLOCK, run), outputs.dtype)
    z = np.empty((_BLOCK, n_rows), outputs.dtype)
    sums = np.empty(n_rows, outputs.dtype)
    gram = np.empty((_BLOCK, _BLOCK), outputs.dtype)
    zero, one = outputs.dtype.type(0), outputs.dtype.type(1)
    acc = np.empty_like(delta)
    # Double buffer: row 0 or 1 holds sample i's outputs, the other sample i+1's.
    # (Copies are loops here: an array assigned to a slice brings a shape
    # error message whose string formatting took 1.4 s of the compile.)
    buffers = np.empty((2, outputs.shape[0]), outputs.dtype)
    for k in range(outputs.shape[0]):
        buffers[0, k] = buffers[1, k] = outputs[k]
    total = n_samples * epochs
    delta[:] = 0  # so that the first forward pass below updates nothing
    for step_index in range(-1, total):
        if step_index >= 0:
            current = buffers[step_index % 2]
            if step_index == total - 1:
                if n_rows:  # the input layer's deltas read the blocked weights: apply what is pending
                    half = (step_index // _BLOCK) % 2 * _BLOCK
                    pending = blocks[half:half + _BLOCK]
                    _block_pass(weights, row_start, steps, pending, pending, z)  # (z unused)
            deltas(weights, upstream, in_start, in_end, contiguous_from, hidden_from, compute_nodes, current,
                   labels[step_index % n_samples], output_start, step_index == total - 1, acc, delta)
            if step_index == total - 1:
                gradients(upstream, in_start, in_end, compute_nodes, current, delta, gradient)
                update(weights, upstream, in_start, in_end, contiguous_from, compute_nodes, current, delta, rate)
                for k in range(outputs.shape[0]):
                    outputs[k] = current[k]
                break
            steps_row = steps[step_index % _BLOCK]
            for r in range(n_rows):
                steps_row[r] = rate * delta[block_rows[r]]
        else:
            current = buffers[0]  # the first forward pass: every step is 0, any finite values do
        following_index = step_index + 1
        following = buffers[following_index % 2]
        sample = samples[following_index % n_samples]
        for k in range(n_inputs):
            following[k] = sample[k]
        position = following_index % _BLOCK
        if n_rows and position == 0:
            half = (following_index // _BLOCK) % 2 * _BLOCK
            new = blocks[half:half + _BLOCK]
            # Input nodes block_from .. block_from + run, the last maybe the constant node n_inputs.
            from_sample = min(run, n_inputs - block_from)
            for p in range(min(_BLOCK, total - following_index)):
                row, values = new[p], samples[(following_index + p) % n_samples, block_from:block_from + from_sample]
                for k in range(from_sample):
                    row[k] = values[k]
                if from_sample < run:
                    row[from_sample] = one
            _block_pass(weights, row_start, steps, blocks[_BLOCK - half:2 * _BLOCK - half], new, z)
            steps[:] = 0
            for q in range(_BLOCK):
                for p in range(q):
                    row, other = new[p], new[q]
                    total_pq = zero
                    for k in range(run):
                        total_pq += row[k] * other[k]
                    gram[p, q] = total_pq
        # The blocked nodes first (they read only the input layer), each
        # sum vectorised across them.
        # (Loops over row views: LLVM vectorised the ones indexing 2-d arrays
        # with the loop variable poorly, or not at all.)
        z_row = z[position]
        for r in range(n_rows):
            sums[r] = z_row[r]
        for p in range(position):
            steps_row, scale = steps[p], gram[p, position]
            for r in range(n_rows):
                sums[r] += steps_row[r] * scale
        for r in range(n_rows):
            following[block_rows[r]] = _sigmoid_unbranched(sums[r])
        for j in other_nodes:
            total_in = _update_then_dot(weights, upstream, in_start[j], in_end[j], contiguous_from[j], rate * delta[j],
                                        current, following)
            following[j] = _sigmoid_unbranched(total_in)
