"""Demo section: the recurrent, LSTM and recursive chapters, an LSTM reading images, a tree network learning logic."""

import time

import numpy as np

TITLE = "Chapters 6-8: recurrent network (BPTT), LSTM and recursive tree network"

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


def train_row_lstm(hidden=64, epochs=2, seed=0):
    """LSTM over the bundled Fashion-MNIST sample read row by row; returns (test accuracy, seconds).

    The short form of examples/lstm_fashion_mnist.py: each 28x28 image is a
    sequence of 28 rows of 28 pixels, the LSTM's last state feeds a Dense
    softmax layer, and both train with Adam on the cross-entropy.
    """
    from fastnn.datasets import load_sample
    from fastnn.nn import LSTM, Adam, Dense, Sequential

    (x_train, y_train), (x_test, y_test) = load_sample()
    rng = np.random.default_rng(seed)
    lstm = LSTM(28, hidden, return_sequences=False, rng=rng)
    lstm.params["bias"][hidden:2 * hidden] = 1.0  # forget gates open at the start
    model = Sequential([lstm, Dense(hidden, 10, rng=rng)], optimizer=Adam(lr=5e-3))
    started = time.perf_counter()
    model.fit(x_train[:, 0], y_train, epochs=epochs, batch_size=32, seed=seed, verbose=0)
    seconds = time.perf_counter() - started
    return model.evaluate(x_test[:, 0], y_test)["accuracy"], seconds


def _gradient_check_rnn():
    """The tutorial's rnn check: error = sum of the last state, identity activation, two steps."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.rnn import RecurrentLayer

    layer = RecurrentLayer(3, 2, IdentityActivator(), 1e-3, rng=0)
    xs = [np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [3.0], [4.0]])]

    def error():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.state_list[-1].sum())

    error()
    layer.backward(np.ones((2, 1)), IdentityActivator())
    return _largest_error(error, [(layer.W, layer.W_grad.copy()), (layer.U, layer.U_grad.copy())])


def _gradient_check_lstm():
    """The tutorial's lstm check (error = sum of the last h), over all twelve parameters."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.lstm import LstmLayer

    layer = LstmLayer(3, 2, 1e-3, rng=0)
    xs = [np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [3.0], [4.0]])]

    def error():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.h_list[-1].sum())

    error()
    layer.backward(xs[-1], np.ones((2, 1)), IdentityActivator())
    names = [f"W{g}{k}" for g in "fioc" for k in "hx"] + [f"b{g}" for g in "fioc"]
    return _largest_error(error, [(getattr(layer, n), getattr(layer, f"{n}_grad").copy()) for n in names])


def _gradient_check_recursive():
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
    return _largest_error(error, [(layer.W, layer.W_grad.copy()), (layer.b, layer.b_grad.copy())])


def _largest_error(error, pairs, epsilon=1e-4):
    """Largest relative difference between analytic gradients and central differences of `error`."""
    from fastnn.gradcheck import central_difference

    worst = 0.0
    for array, grad in pairs:
        expected = central_difference(error, array, epsilon)
        scale = np.maximum(np.maximum(np.abs(expected), np.abs(grad)), 1e-12)
        worst = max(worst, float(np.max(np.abs(expected - grad) / scale)))
    return worst


def _steps_per_second(step, minimum_seconds=0.1):
    step()  # compile (or load from the cache) outside the timing
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < minimum_seconds:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def run(say):
    from fastnn.benchmarks.sequence import _tutorial_builders

    say("The tutorial's gradient checks (its data set, two steps; largest relative error against "
        "central differences, every weight):")
    say(f"  RecurrentLayer, W and U:   {_gradient_check_rnn():.1e}  (the published code never trains U)")
    say(f"  LstmLayer, all twelve:     {_gradient_check_lstm():.1e}  "
        "(the published update mixes up gradient names and biases)")
    say(f"  RecursiveLayer, W and b:   {_gradient_check_recursive():.1e}")

    say("Speed of one training step (20 forward calls, backward, update), 32 inputs -> 64 states, float64:")
    for cls in ("RecurrentLayer", "LstmLayer"):
        builders = _tutorial_builders(cls, 32, 64)
        fast = _steps_per_second(builders["fastnn"](True)[0])
        twin = _steps_per_second(builders["python"](True)[0])
        say(f"  {cls:<15} fastnn {1e6 / fast:7,.0f} us vs the tutorial-style twin {1e6 / twin:7,.0f} us: "
            f"{fast / twin:.1f}x")

    accuracy, seconds = train_row_lstm()
    say("LSTM (64 units) + Dense reading the bundled 2,000 Fashion-MNIST images row by row (28 steps of 28 pixels):")
    say(f"  test accuracy {accuracy:.1%} on the 500 test images after 2 epochs in {seconds:.1f} s "
        "(compile included on a first run)")
    say("  on the full data set, `python examples/lstm_fashion_mnist.py` (128 units, 5 epochs) reached 87.6%")

    model, near, deep, seconds = train_tree_task()
    say("TreeRNN (16 units, nodes (operator, left, right)) learning the value of random and/or/xor expressions:")
    say(f"  trained on 4000 expressions of 1-4 levels in {seconds:.1f} s (Numba compile included on a first run)")
    say(f"  accuracy on 1000 unseen expressions of 1-4 levels: {near:.1%}; on 500 of 5-6 levels: {deep:.1%}")
