"""Demo section: the recursive (tree) network chapter, its gradient check, and a tree network learning logic."""

import time

import numpy as np

from ._sequence_common import largest_gradient_error

TITLE = "Chapter 8: recursive (tree) network"

# The boolean-expression task: a ternary tree node is (operator, left, right); leaves are bits.
TOKENS = ("0", "1", "and", "or", "xor")
OPERATORS = {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b}


def boolean_expression(rng, depth):
    """A random expression of at most `depth` operator levels, as nested tuples of tokens, and its value."""
    if depth == 0 or rng.random() < 0.25:
        bit = int(rng.integers(2))
        return TOKENS[bit], bit
    op = TOKENS[2 + int(rng.integers(3))]
    (left, a), (right, b) = boolean_expression(rng, depth - 1), boolean_expression(rng, depth - 1)
    return (op, left, right), OPERATORS[op](a, b)


def expressions(rng, count, depths, exclude=frozenset()):
    """`count` distinct expressions with a top level of exactly one of `depths` levels, none in `exclude`."""
    found = {}
    while len(found) < count:
        depth = int(rng.choice(depths))
        tree, value = boolean_expression(rng, depth)
        if isinstance(tree, tuple) and _depth(tree) == depth and tree not in exclude:
            found[tree] = value
    return list(found), np.array(list(found.values()))


def _depth(tree):
    return 1 + max(_depth(child) for child in tree[1:]) if isinstance(tree, tuple) else 0


def encode(trees):
    """The trees with their leaves numbered 0.. in order, and the token of each numbered leaf."""
    tokens = []

    def number(node):
        if isinstance(node, tuple):
            return tuple(number(child) for child in node)
        tokens.append(TOKENS.index(node))
        return len(tokens) - 1

    return [number(tree) for tree in trees], np.array(tokens)


class TreeClassifier:
    """Token embeddings -> TreeRNN (3 children per node) -> logistic output on the root, trained by SGD."""

    def __init__(self, width=16, seed=0):
        from fastnn.nn import TreeRNN

        rng = np.random.default_rng(seed)
        self.tree = TreeRNN(width, child_count=3, rng=rng)
        self.embedding = rng.normal(0, 0.5, (len(TOKENS), width)).astype(np.float32)
        self.w = np.zeros(width, np.float32)
        self.b = np.zeros(1, np.float32)
        params = [self.tree.params["weight"], self.tree.params["bias"], self.embedding, self.w, self.b]
        self.params, self.velocity = params, [np.zeros_like(p) for p in params]

    def forward(self, trees):
        from fastnn.nn import TreeBatch

        numbered, self.tokens = encode(trees)
        self.roots = self.tree.forward(TreeBatch(numbered, self.embedding[self.tokens], child_count=3))
        return 1 / (1 + np.exp(-(self.roots @ self.w + self.b)))

    def train_batch(self, trees, labels, rate=0.1, momentum=0.9):
        """One SGD step with momentum on the cross-entropy of a batch; returns the batch's mean loss."""
        p = self.forward(trees)
        grad_z = ((p - labels) / len(labels)).astype(np.float32)
        grad_leaves = self.tree.backward(np.outer(grad_z, self.w))
        grad_embedding = np.zeros_like(self.embedding)
        np.add.at(grad_embedding, self.tokens, grad_leaves)
        grads = [self.tree.grads["weight"], self.tree.grads["bias"], grad_embedding,
                 self.roots.T @ grad_z, grad_z.sum(keepdims=True)]
        for param, grad, velocity in zip(self.params, grads, self.velocity):
            velocity *= momentum
            velocity -= rate * grad
            param += velocity
        return float(-np.mean(labels * np.log(p + 1e-7) + (1 - labels) * np.log(1 - p + 1e-7)))

    def accuracy(self, trees, labels):
        return float(((self.forward(trees) > 0.5) == labels).mean())


def train_tree_task(epochs=6, train_count=4000, batch=50, seed=0):
    """Train on expressions of 1-4 levels; returns (model, held-out accuracy 1-4 levels, 5-6 levels, seconds)."""
    rng = np.random.default_rng(seed)
    train_x, train_y = expressions(rng, train_count, [1, 2, 3, 4])
    test_x, test_y = expressions(rng, 1000, [1, 2, 3, 4], exclude=frozenset(train_x))
    deep_x, deep_y = expressions(rng, 500, [5, 6])
    model = TreeClassifier(seed=seed)
    started = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(train_x))
        for first in range(0, len(order), batch):
            chosen = order[first:first + batch]
            model.train_batch([train_x[i] for i in chosen], train_y[chosen])
    seconds = time.perf_counter() - started
    return model, model.accuracy(test_x, test_y), model.accuracy(deep_x, deep_y), seconds


def gradient_check():
    """The tutorial's recursive check: two parents over three leaves, error = sum of the root."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.recursive import RecursiveLayer, TreeNode

    layer = RecursiveLayer(2, 2, IdentityActivator(), 1e-3, rng=0)
    leaves = [TreeNode(np.array([[1.0], [2.0]])), TreeNode(np.array([[3.0], [4.0]])),
              TreeNode(np.array([[5.0], [6.0]]))]

    def error():
        layer.forward(leaves[0], leaves[1])
        layer.forward(layer.root, leaves[2])
        return float(layer.root.data.sum())

    error()
    layer.backward(np.ones((2, 1)))
    return largest_gradient_error(error, [(layer.W, layer.W_grad.copy()), (layer.b, layer.b_grad.copy())])


def warm():
    """Compile (or load) every kernel `run` uses, on a small problem."""
    gradient_check()
    train_tree_task(epochs=1, train_count=100)


def run(say):
    say("The tutorial's gradient check (two parents over three leaves; largest relative error against central "
        "differences):")
    say(f"  RecursiveLayer, W and b: {gradient_check():.1e}")

    model, near, deep, seconds = train_tree_task()
    say("TreeRNN (16 units, nodes (operator, left, right)) learning the value of random and/or/xor expressions:")
    say(f"  trained on 4000 expressions of 1-4 levels in {seconds:.1f} s (Numba compile included on a first run)")
    say(f"  accuracy on 1000 unseen expressions of 1-4 levels: {near:.1%}; on 500 of 5-6 levels: {deep:.1%}")
