"""The tutorial's recursive module: ``TreeNode`` and ``RecursiveLayer`` on compiled kernels.

``RecursiveLayer.forward(*children)`` makes a parent ``f(W [c_1; ..; c_C] +
b)`` of `child_count` nodes and keeps it as ``root``, so trees are built
bottom-up by repeated calls; ``backward(parent_delta)`` back-propagates the
error on the root's weighted input through the whole tree (back propagation
through structure): it sets each node's ``delta``, ``W_grad`` and ``b_grad``;
``update()`` subtracts ``learning_rate`` times them.  The backward pass
flattens the tree into post-order arrays and runs one kernel.

Deviation from the tutorial's published code: a leaf's ``delta`` is the
gradient with respect to the leaf's data, ``(W^T delta_parent)`` restricted
to its slice; the tutorial multiplies it by the activation's derivative at
the leaf's data, which is no gradient of anything when leaves are inputs.
Internal nodes' deltas (errors on their weighted inputs) are the tutorial's.
"""

import numpy as np

from .._checks import check_int, check_rate
from ..kernels import recursive as _kernels
from ..kernels.optim import all_finite
from .activators import activation_code
from .rnn import column, transposed_property, view_property, weight_source


class TreeNode:
    """A tree node: ``data`` ``(width, 1)``, ``children`` (a list), ``children_data`` (their
    concatenation, for a parent made by ``RecursiveLayer.forward``), ``parent``, and ``delta``
    after a backward pass."""

    def __init__(self, data, children=(), children_data=None):
        self.parent = None
        self.children = list(children)
        self.children_data = children_data
        self.data = data
        for child in self.children:
            child.parent = self

    def __repr__(self):
        return f"TreeNode(width={np.size(self.data)}, children={len(self.children)})"


def post_order(root, children_of, child_count, what):
    """Flatten a tree without recursion (any depth): ``(leaves, internal, children, root_code)``.

    ``children_of(node)`` returns None for a leaf, else the node's children.
    `leaves` lists the leaf objects in the order they are reached, `internal`
    the internal ones in post-order (node p); ``children`` is an ``(I, child_count)``
    int64 array whose entries are ``~i`` (negative) for leaf i and p for
    internal node p; root_code encodes the root the same way.  Raises
    ValueError for an internal node with the wrong number of children, and
    for a cycle or an internal node reached twice (a shared node).
    """
    leaves, internal, rows, seen = [], [], [], set()

    def code_of(node):
        kids = children_of(node)
        if kids is None:
            leaves.append(node)
            return ~(len(leaves) - 1), None
        if len(kids) != child_count:
            raise ValueError(f"{what}: every internal node must have {child_count} children, "
                             f"found one with {len(kids)}")
        if id(node) in seen:
            raise ValueError(f"{what} is not a tree: a node is reached twice (a shared node or a cycle)")
        seen.add(id(node))
        return None, [node, list(kids), []]

    code, frame = code_of(root)
    if frame is None:
        return leaves, internal, np.zeros((0, child_count), np.int64), code
    stack = [frame]
    while stack:
        node, kids, done = stack[-1]
        if len(done) == len(kids):
            stack.pop()
            rows.append(done)
            internal.append(node)
            finished = len(rows) - 1
            if not stack:
                return leaves, internal, np.array(rows, np.int64).reshape(-1, child_count), finished
            stack[-1][2].append(finished)
            continue
        code, frame = code_of(kids[len(done)])
        if frame is None:
            done.append(code)
        else:
            stack.append(frame)


def _node_data(data, name, width):
    """A node's data as a finite float64 ``(width, 1)`` column; a contiguous float64 one passes as it is."""
    if type(data) is np.ndarray and data.dtype == np.float64 and data.shape == (width, 1) and data.flags.c_contiguous:
        if not all_finite(data):
            raise ValueError(f"{name} contains NaN or infinity")
        return data
    return column(data, name, width)


def node_rows(codes, n_leaves):
    """Node-table rows for :func:`post_order` codes: leaf i -> i, internal node p -> n_leaves + p."""
    codes = np.asarray(codes, np.int64)
    return np.where(codes < 0, ~codes, n_leaves + codes)


class RecursiveLayer:
    """``RecursiveLayer(node_width, child_count, activator, learning_rate)``.

    ``W`` ``(node_width, node_width*child_count)`` uniform in [-1e-4, 1e-4]
    (a view of the kernel's input-major storage: writing ``layer.W[i, j]``
    takes effect in the next forward), ``b`` ``(node_width, 1)`` zeros,
    ``root`` the last parent made.  `rng` (fastnn's addition) draws the
    initial weights instead of numpy's global generator.
    """

    W = transposed_property("W", "_weight", "``(node_width, node_width*child_count)``")
    b = view_property("b", lambda self: self._bias.reshape(-1, 1), "``(node_width, 1)``")

    def __init__(self, node_width, child_count, activator, learning_rate, rng=None):
        self.node_width = check_int(node_width, "node_width", 1)
        self.child_count = check_int(child_count, "child_count", 1)
        self._code = activation_code(activator)
        self.activator = activator
        self.learning_rate = check_rate(learning_rate, "learning_rate")
        self._weight = np.ascontiguousarray(
            weight_source(rng)(-1e-4, 1e-4, (node_width, node_width * child_count)).T)
        self._bias = np.zeros(node_width)
        self.root = None
        self._grads = None

    def reset_state(self):
        self.root = None

    def _settle(self):
        """Nothing is deferred here: every forward computes its parent at once."""

    def forward(self, *children):
        """Make ``root = TreeNode(f(W children_data + b), children, children_data)``."""
        if len(children) != self.child_count:
            raise ValueError(f"forward takes {self.child_count} children, got {len(children)}")
        for i, child in enumerate(children):
            if not isinstance(child, TreeNode):
                raise TypeError(f"children[{i}] must be a TreeNode, got {type(child).__name__}")
            if any(child is other for other in children[:i]):
                raise ValueError(f"children[{i}] is passed twice: a node can have only one parent")
        width = self.node_width
        children_data = np.concatenate([_node_data(c.data, f"children[{i}].data", width)
                                        for i, c in enumerate(children)])
        parent = np.empty((width, 1))
        _kernels.node_forward(children_data[:, 0], self._weight, self._bias, self._code, parent[:, 0])
        self.root = TreeNode(parent, children, children_data)

    def backward(self, parent_delta):
        """Back propagation through structure from ``parent_delta`` (``(node_width, 1)``, error on the root's net)."""
        if self.root is None:
            raise RuntimeError("RecursiveLayer.backward called before forward()")
        width = self.node_width
        delta = column(parent_delta, "parent_delta", width)
        leaves, internal, codes, root_code = post_order(
            self.root, lambda n: n.children or None, self.child_count, "the tree under root")
        n_leaves, n_internal = len(leaves), codes.shape[0]
        if len({id(leaf) for leaf in leaves}) != n_leaves:
            raise ValueError("the tree under root is not a tree: a leaf is reached twice (a shared node)")
        nodes = np.empty((n_leaves + n_internal, width))
        for i, node in enumerate(leaves + internal):
            nodes[i] = _node_data(node.data, "node data", width)[:, 0]
        children_data = np.ascontiguousarray(nodes[node_rows(codes, n_leaves)].reshape(n_internal, -1))
        node_grads = np.empty_like(nodes)
        deltas = np.empty((n_internal, width))
        grad_weight, grad_bias = np.empty_like(self._weight), np.empty_like(self._bias)
        _kernels.tree_backward_serial(nodes, node_rows(codes, n_leaves), np.array([0, n_internal], np.int64),
                               np.array([n_leaves + root_code], np.int64), n_leaves, children_data, self._weight,
                               self._code, delta.T.copy(), True, node_grads, deltas, grad_weight, grad_bias)
        for i, node in enumerate(leaves):
            node.delta = node_grads[i].reshape(width, 1)
        for p, node in enumerate(internal):
            node.delta = deltas[p].reshape(width, 1)
        self._grads = (grad_weight, grad_bias)
        self.W_grad = grad_weight.T
        self.b_grad = grad_bias.reshape(width, 1)

    def update(self):
        """``W -= learning_rate * W_grad``, ``b -= learning_rate * b_grad``."""
        if self._grads is None:
            raise RuntimeError("RecursiveLayer.update called before backward()")
        self._weight -= self.learning_rate * self._grads[0]
        self._bias -= self.learning_rate * self._grads[1]

    def dump(self, dump_grad=False):
        """Print the root's data and children_data (and the gradients with ``dump_grad=True``)."""
        print(f"root.data: {self.root.data}")
        print(f"root.children_data: {self.root.children_data}")
        if dump_grad:
            print(f"W_grad: {self.W_grad}")
            print(f"b_grad: {self.b_grad}")
