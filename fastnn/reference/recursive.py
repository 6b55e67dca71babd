"""Plain-Python twin of the recursive (tree) layer of the tutorial's last chapter.

As the tutorial writes it: recursion over ``TreeNode`` objects, column
vectors, one numpy call per node.  ``parent = f(W [c_1; ..; c_C] + b)``;
back propagation through structure with ``delta = dE/dnet`` for internal
nodes:

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


def tree_forward(tree, leaves, W, b, activator):
    """Value ``(D, 1)`` of a nested-tuple tree whose leaves are row indices of `leaves`; W ``(D, C*D)``."""
    if not isinstance(tree, (tuple, list)):
        return np.asarray(leaves[tree], dtype=float).reshape(-1, 1)
    children_data = np.concatenate([tree_forward(child, leaves, W, b, activator) for child in tree])
    return activator.forward(np.dot(W, children_data) + np.reshape(b, (-1, 1)))


class RecursiveLayer:
    """The tutorial's ``RecursiveLayer`` (W ``(D, C*D)``, b ``(D, 1)``).

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
        children_data = np.concatenate([np.asarray(child.data, dtype=float) for child in children])
        parent = self.activator.forward(np.dot(self.W, children_data) + self.b)
        self.root = TreeNode(parent, children, children_data)

    def backward(self, parent_delta):
        self.calc_delta(parent_delta, self.root)
        self.W_grad, self.b_grad = self.calc_gradient(self.root)

    def calc_delta(self, delta, node):
        node.delta = delta
        if not node.children:
            return
        back = np.dot(self.W.T, delta)
        width = self.node_width
        for c, child in enumerate(node.children):
            part = back[c * width:(c + 1) * width]
            if child.children:
                part = part * self.activator.backward(child.data)
            self.calc_delta(part, child)

    def calc_gradient(self, node):
        W_grad = np.zeros((self.node_width, self.node_width * self.child_count))
        b_grad = np.zeros((self.node_width, 1))
        if not node.children:
            return W_grad, b_grad
        W_grad += np.dot(node.delta, node.children_data.T)
        b_grad += node.delta
        for child in node.children:
            w, b = self.calc_gradient(child)
            W_grad += w
            b_grad += b
        return W_grad, b_grad

    def update(self):
        self.W -= self.learning_rate * self.W_grad
        self.b -= self.learning_rate * self.b_grad
