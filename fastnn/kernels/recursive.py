"""The recursive (tree) layer: forward over every internal node, back propagation through structure.

The tutorial's recursive layer builds a parent from its C children:

    children_data = [c_1; c_2; ..; c_C]          (C*D,)
    parent = f(W children_data + b)               W (D, C*D), b (D,)

Back propagation through structure, with ``delta_p = dE/dnet_p`` for an
internal node p:

    delta_p = f'(parent_p) * dE/dparent_p
    dE/dchildren_data_p = W^T delta_p           (split into the C children)
    dE/dW = sum_p delta_p children_data_p^T,    dE/db = sum_p delta_p

A batch of trees is flattened into arrays: a node table ``nodes (L + I,
D)`` whose first L rows are the leaves and whose row ``L + p`` is internal
node p; internal nodes are numbered in post-order tree by tree (children
before parents), tree k owning ``tree_offsets[k] <= p < tree_offsets[k+1]``;
``children (I, C)`` gives each internal node's children as node-table rows.
The weight is stored input-major, ``weight = W^T`` with shape ``(C*D, D)``.
Every node has exactly one parent (checked by the caller), so each row of
the node gradient is written once.  All float arrays share one dtype.
"""

import numpy as np
from numba import prange

from ._jit import jit
from .activation import derivative
from .optim import all_finite
from .recurrent import GROUP, SERIAL_WORK, accumulate_rows, activate_inplace, axpy, back_project, project
from .vecmath import flush_subnormals, restore_fp


@jit
def node_forward(children_data, weight, bias, code, out):
    """One parent: ``out = f(W children_data + b)``; children_data ``(C*D,)``, out ``(D,)``."""
    project(children_data, weight, bias, out)
    activate_inplace(out, code)


@jit
def tree_forward_one(nodes, children, tree_offsets, n_leaves, weight, bias, code, children_data, k):
    """Tree k of :func:`tree_forward`: its internal nodes in post-order."""
    width = nodes.shape[1]
    for p in range(tree_offsets[k], tree_offsets[k + 1]):
        concat = children_data[p]
        for c in range(children.shape[1]):
            concat[c * width:(c + 1) * width] = nodes[children[p, c]]
        node_forward(concat, weight, bias, code, nodes[n_leaves + p])


# prange's index is unsigned: np.int64 lets the call reuse the int64 compilation of the serial kernel
# instead of compiling the block function a second time (seconds per kernel on a cold cache).
@jit(parallel=True)
def tree_forward(nodes, children, tree_offsets, n_leaves, weight, bias, code, children_data):
    """Compute rows ``L..L+I-1`` of `nodes` (the leaves' rows are given); trees run in parallel.

    Also fills ``children_data (I, C*D)``, the concatenated children of each
    internal node, which the weight gradient needs.
    """
    for k in prange(tree_offsets.shape[0] - 1):
        fp = flush_subnormals()
        tree_forward_one(nodes, children, tree_offsets, n_leaves, weight, bias, code, children_data, np.int64(k))
        restore_fp(fp)


@jit
def tree_forward_serial(nodes, children, tree_offsets, n_leaves, weight, bias, code, children_data):
    """:func:`tree_forward` on the calling thread (for one tree or a few small ones)."""
    fp = flush_subnormals()
    for k in range(tree_offsets.shape[0] - 1):
        tree_forward_one(nodes, children, tree_offsets, n_leaves, weight, bias, code, children_data, k)
    restore_fp(fp)


@jit
def tree_backward_one(nodes, children, tree_offsets, roots, n_leaves, weight, code, grad_roots, grad_is_net,
                      node_grads, deltas, k):
    """Tree k of :func:`tree_backward`: deltas of its internal nodes, gradients of its nodes."""
    width = nodes.shape[1]
    node_grads[roots[k]] = grad_roots[k]
    for p in range(tree_offsets[k + 1] - 1, tree_offsets[k] - 1, -1):
        row = n_leaves + p
        g, s, delta = node_grads[row], nodes[row], deltas[p]
        if grad_is_net and row == roots[k]:
            delta[:] = g
        else:
            for j in range(width):
                delta[j] = derivative(s[j], code) * g[j]
        for c in range(children.shape[1]):
            back_project(weight[c * width:(c + 1) * width], delta, node_grads[children[p, c]])


@jit
def tree_weight_group(children_data, deltas, g, grad_weight, grad_bias):
    """Work item g of the weight gradient: GROUP rows of ``grad_weight``, or (the last) ``grad_bias``."""
    n_internal, rows = children_data.shape
    width = deltas.shape[1]
    r0 = g * GROUP
    if r0 < rows:
        accumulate_rows(children_data.reshape(1, n_internal, rows), deltas.reshape(1, n_internal, width),
                        r0, min(rows, r0 + GROUP), False, False, grad_weight[r0:r0 + GROUP])
    else:
        grad_bias[:] = 0
        for p in range(n_internal):
            for j in range(width):
                grad_bias[j] += deltas[p, j]


@jit(parallel=True)
def tree_backward(nodes, children, tree_offsets, roots, n_leaves, children_data, weight, code,
                  grad_roots, grad_is_net, node_grads, deltas, grad_weight, grad_bias):
    """Back propagation through structure for a batch of trees (formulas in the module docstring).

    grad_roots ``(K, D)`` is ``dE/droot`` per tree, or with `grad_is_net`
    the tutorial's ``dE/dnet`` of each root (a root that is a leaf takes it
    as ``dE/dleaf``).  Outputs (overwritten): node_grads ``(L + I, D)``
    (``dE/dnode``: for a leaf the gradient with respect to its data),
    deltas ``(I, D)``, grad_weight ``(C*D, D)``, grad_bias ``(D,)``.
    Trees run in parallel; the weight gradient is then summed in groups of
    rows, each in one fixed order, bit-identical for any thread count.
    """
    for k in prange(tree_offsets.shape[0] - 1):
        fp = flush_subnormals()
        tree_backward_one(nodes, children, tree_offsets, roots, n_leaves, weight, code, grad_roots, grad_is_net,
                          node_grads, deltas, np.int64(k))
        restore_fp(fp)
    for g in prange((weight.shape[0] + GROUP - 1) // GROUP + 1):
        fp = flush_subnormals()
        tree_weight_group(children_data, deltas, np.int64(g), grad_weight, grad_bias)
        restore_fp(fp)


@jit
def tree_backward_serial(nodes, children, tree_offsets, roots, n_leaves, children_data, weight, code,
                         grad_roots, grad_is_net, node_grads, deltas, grad_weight, grad_bias):
    """:func:`tree_backward` on the calling thread (same results, bit for bit)."""
    fp = flush_subnormals()
    for k in range(tree_offsets.shape[0] - 1):
        tree_backward_one(nodes, children, tree_offsets, roots, n_leaves, weight, code, grad_roots, grad_is_net,
                          node_grads, deltas, k)
    for g in range((weight.shape[0] + GROUP - 1) // GROUP + 1):
        tree_weight_group(children_data, deltas, g, grad_weight, grad_bias)
    restore_fp(fp)


def serial(n_trees, work):
    """True when a batch is too small to pay for starting the thread pool: one tree, or little `work`."""
    return n_trees == 1 or work < SERIAL_WORK


# -- a forest built one parent at a time (the tutorial's RecursiveLayer) ----------------------
# The tutorial's forward(*children) makes one parent per Python call.  Its layer records them in
# growing tables instead: node rows in the order they are met (a leaf's data is copied in, a
# parent's row is computed) and ``links (I, C+1)``: internal node p's children's rows, then its
# own row, p counting forward calls, so children always come before their parent.  The weight
# and bias are one flat array ``params = [W^T (C*D, D) | b (D,)]``.

@jit(inline=True)
def split_tree_params(params, inputs, width):
    """``(weight (inputs, width) input-major, bias (width,))``: views of the flat ``params``."""
    cut = inputs * width
    return params[:cut].reshape((inputs, width)), params[cut:cut + width]


@jit
def forest_forward(nodes, links, children_data, params, code, first, last):
    """Compute internal nodes ``first .. last-1``: ``nodes[links[p, C]] = f(W children_data[p] + b)``.

    nodes ``(R, D)``, links ``(I, C+1)`` node rows, children_data
    ``(I, C*D)`` (filled here).  Returns -1, or ``p*C + c`` for the first
    child c of node p whose row holds NaN or infinity (nodes before p are
    computed then, p and later not).
    """
    width, count = nodes.shape[1], links.shape[1] - 1
    weight, bias = split_tree_params(params, count * width, width)
    fp = flush_subnormals()
    for p in range(first, last):
        concat = children_data[p]
        for c in range(count):
            row = nodes[links[p, c]]
            if not all_finite(row):
                restore_fp(fp)
                return p * count + c
            concat[c * width:(c + 1) * width] = row
        node_forward(concat, weight, bias, code, nodes[links[p, count]])
    restore_fp(fp)
    return -1


@jit
def forest_backward(nodes, links, children_data, params, code, first, last, root, grad_root, reached, table, grads):
    """Back propagation through the tree under internal node `root`, after computing nodes ``first .. last-1``.

    grad_root ``(D, 1)`` is the tutorial's ``dE/dnet`` of the root.
    Outputs: reached ``(R,)`` (1 for the rows of the root's tree), table
    ``(R, D)``: an internal row's delta (``dE/dnet``), a leaf row's
    ``dE/d(data)``; grads ``[dW^T | db]`` flattened like params.  Every node
    of the tree must have one parent (the caller checks).  Returns what
    :func:`forest_forward` returns; nothing is back-propagated unless -1.
    """
    bad = forest_forward(nodes, links, children_data, params, code, first, last)
    if bad >= 0:
        return bad
    width, count = nodes.shape[1], links.shape[1] - 1
    weight = split_tree_params(params, count * width, width)[0]
    grad_weight, grad_bias = split_tree_params(grads, count * width, width)
    reached[:] = 0
    grads[:] = 0
    top = links[root, count]
    for j in range(width):
        table[top, j] = grad_root[j, 0]
    reached[top] = 1
    fp = flush_subnormals()
    for p in range(root, -1, -1):
        row = links[p, count]
        if reached[row] == 0:
            continue
        delta = table[row]
        if p != root:  # the table holds dE/dnode until here
            state = nodes[row]
            for j in range(width):
                delta[j] = derivative(state[j], code) * delta[j]
        for c in range(count):
            child = links[p, c]
            back_project(weight[c * width:(c + 1) * width], delta, table[child])
            reached[child] = 1
        concat = children_data[p]
        for r in range(count * width):
            axpy(grad_weight[r], concat[r], delta)
        for j in range(width):
            grad_bias[j] += delta[j]
    restore_fp(fp)
    return -1
