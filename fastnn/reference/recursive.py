"""Plain-Python twin of the recursive (tree) layer of the tutorial's last chapter.

Explicit loops and recursion over ``TreeNode`` objects, numpy arrays only as
storage.  ``parent = f(W [c_1; ..; c_C] + b)``; back propagation through
structure with ``delta = dE/dnet`` for internal nodes:

    child delta = f'(child) * (W^T delta_parent)[child's slice]     (internal child)
    leaf delta  = (W^T delta_parent)[leaf's slice]                  (dE/dleaf data)
    W_grad = sum delta_p children_data_p^T,  b_grad = sum delta_p

The tutorial also multiplies a leaf's error by f'(leaf data), which is no
gradient of anything when leaves are inputs; here a leaf's delta is the
gradient with respect to its data.
"""

import numpy as np


class TreeNode:
    def __init__(self, data, children=(), children_data=None):
        self.parent = None
        self.children = list(children)
        self.children_data = children_data
        self.data = data
        for child in self.children:
            child.parent = self


def node_forward(children_data, W, b, activator):
    """``f(W children_data + b)`` as a list; W nested lists, the vectors flat lists."""
    return [activator.forward(sum(W[i][j] * children_data[j] for j in range(len(children_data))) + b[i])
            for i in range(len(W))]


def tree_forward(tree, leaves, W, b, activator):
    """Value of a nested-tuple tree whose leaves are row indices of `leaves`; W ``(D, C*D)``, b ``(D,)``."""
    if not isinstance(tree, (tuple, list)):
        return list(np.ravel(leaves[tree]))
    children_data = [v for child in tree for v in tree_forward(child, leaves, W, b, activator)]
    return node_forward(children_data, np.asarray(W).tolist(), list(np.ravel(b)), activator)


class RecursiveLayer:
    """The tutorial's ``RecursiveLayer`` (W ``(D, C*D)``, b ``(D, 1)``), written with explicit loops.

    ``backward(parent_delta)`` takes the error on the root's weighted input.
    """

    def __init__(self, node_width, child_count, activator, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        self.node_width, self.child_count = node_width, child_count
        self.activator, self.learning_rate = activator, learning_rate
        self.W = rng.uniform(-1e-4, 1e-4, (node_width, node_width * child_count))
        self.b = np.zeros((node_width, 1))
        self.root = None

    def forward(self, *children):
        children_data = [float(v) for child in children for v in np.ravel(child.data)]
        parent = node_forward(children_data, self.W.tolist(), list(self.b.ravel()), self.activator)
        self.root = TreeNode(np.array(parent).reshape(-1, 1), children, np.array(children_data).reshape(-1, 1))

    def backward(self, parent_delta):
        self.calc_delta(list(np.ravel(parent_delta)), self.root)
        self.W_grad, self.b_grad = self.calc_gradient(self.root)

    def calc_delta(self, delta, node):
        node.delta = np.array(delta).reshape(-1, 1)
        if not node.children:
            return
        W, width = self.W.tolist(), self.node_width
        back = [sum(W[i][j] * delta[i] for i in range(width)) for j in range(len(W[0]))]
        for c, child in enumerate(node.children):
            part = back[c * width:(c + 1) * width]
            if child.children:
                part = [part[j] * self.activator.backward(v) for j, v in enumerate(np.ravel(child.data))]
            self.calc_delta(part, child)

    def calc_gradient(self, node):
        W_grad = np.zeros((self.node_width, self.node_width * self.child_count))
        b_grad = np.zeros((self.node_width, 1))
        if not node.children:
            return W_grad, b_grad
        delta, data = np.ravel(node.delta), np.ravel(node.children_data)
        for i in range(self.node_width):
            b_grad[i, 0] += delta[i]
            for j in range(len(data)):
                W_grad[i, j] += delta[i] * data[j]
        for child in node.children:
            w, b = self.calc_gradient(child)
            W_grad += w
            b_grad += b
        return W_grad, b_grad

    def update(self):
        self.W -= self.learning_rate * self.W_grad
        self.b -= self.learning_rate * self.b_grad
