"""Workloads of the sequence and tree chapters (issue 4) for ``fastnn bench`` and bench/test_bench_sequence.py.

* ``rnn-b1``, ``rnn-b32``, ``lstm-b1``, ``lstm-b32``: one training step
  (forward, backward with the input gradient on both sides, SGD update) on
  a batch of 1 or 32 sequences of 20 steps, 32 inputs -> 64 units,
  `fastnn.nn` in float32 against ``torch.nn.RNN`` / ``torch.nn.LSTM`` and
  against the reference twin's formulas (one numpy call per gate and step,
  float64, one sequence after another).
* ``tutorial-*``: the drop-in classes of `fastnn.tutorial` against their
  twins in `fastnn.reference`: 20 ``forward`` calls, ``backward``,
  ``update`` on one sequence, at the tutorial's own size (3 inputs, 2
  states) and at 32 -> 64; the recursive layer builds a 16-leaf tree node by
  node, back-propagates and updates.
* ``treernn-64``: `fastnn.nn.TreeRNN` on 64 random binary trees (width 16,
  1 to 6 levels), forward and backward, against the twin tree by tree.
"""

import numpy as np

from .workloads import Target, register

INPUT, HIDDEN, STEPS, RATE = 32, 64, 20, 0.01


def _sequences(batch):
    return np.random.default_rng(0).normal(size=(batch, STEPS, INPUT)).astype(np.float32)


def _nn_builders(kind, batch):
    def fastnn(quick):
        from fastnn import nn

        layer = getattr(nn, kind)(INPUT, HIDDEN, rng=0)
        x = _sequences(batch)
        grad = np.ones((batch, STEPS, HIDDEN), np.float32)

        def step():
            layer.forward(x)
            layer.backward(grad)
            for name, value in layer.params.items():
                value -= RATE * layer.grads[name]

        return step, batch

    def python(quick):
        from fastnn.tutorial.activators import TanhActivator

        sequences = [list(s[:, :, None].astype(float)) for s in _sequences(batch)[:2 if quick else batch]]
        ones = [np.ones((HIDDEN, 1))] * STEPS
        rng = np.random.default_rng(0)
        if kind == "RNN":
            from fastnn.reference import rnn

            U, W, b = rng.normal(size=(HIDDEN, INPUT)) * 0.1, rng.normal(size=(HIDDEN, HIDDEN)) * 0.1, np.zeros(HIDDEN)
            activator = TanhActivator()

            def train(xs):
                states = rnn.sequence_forward(xs, U, W, b, activator)
                _, _, dU, dW, _ = rnn.sequence_backward(xs, states, U, W, activator, ones)
                U.__isub__(RATE * dU)
                W.__isub__(RATE * dW)
        else:
            from fastnn.reference import lstm

            params = lstm.LstmLayer(INPUT, HIDDEN, RATE, rng=0).params

            def train(xs):
                grads, *_ = lstm.sequence_backward(params, xs, lstm.sequence_forward(params, xs), ones)
                for name, value in params.items():
                    value -= RATE * grads[f"{name}_grad"]

        def step():
            for xs in sequences:
                train(xs)

        return step, len(sequences)

    def torch(quick):
        import torch

        torch.manual_seed(0)
        module = getattr(torch.nn, kind)(INPUT, HIDDEN, batch_first=True)
        optimizer = torch.optim.SGD(module.parameters(), lr=RATE)
        x = torch.from_numpy(_sequences(batch)).requires_grad_(True)  # the input gradient, as fastnn computes

        def step():
            optimizer.zero_grad()
            output, _ = module(x)
            output.sum().backward()
            optimizer.step()

        return step, batch

    return {"python": python, "fastnn": fastnn, "torch": torch}


for _kind in ("RNN", "LSTM"):
    for _batch, _goal in ((1, 5), (32, 1)):
        register(f"{_kind.lower()}-b{_batch}", f"{_kind} 32->64, 20 steps, batch {_batch}: train step", "sequences",
                 targets=[Target("torch", _goal, "issue 4")])(lambda k=_kind, b=_batch: _nn_builders(k, b))


def _tutorial_builders(cls, inputs, states):
    def build(module):
        from fastnn.tutorial.activators import TanhActivator

        rng = np.random.default_rng(0)
        xs = [rng.normal(size=(inputs, 1)) for _ in range(STEPS)]
        if cls == "LstmLayer":
            layer = module.LstmLayer(inputs, states, RATE, rng=0)
            error = np.ones((states, 1))

            def backward():
                layer.backward(xs[-1], error, TanhActivator())
        else:
            layer = getattr(module, cls)(inputs, states, TanhActivator(), RATE, rng=0)
            error = np.ones(((2 if cls == "BiRecurrentLayer" else 1) * states, 1))

            def backward():
                layer.backward(error, TanhActivator())

        def step():
            layer.reset_state()
            for x in xs:
                layer.forward(x)
            backward()
            layer.update()

        return step, 1

    chapter = "lstm" if cls == "LstmLayer" else "rnn"

    def python(quick):
        import importlib

        return build(importlib.import_module(f"fastnn.reference.{chapter}"))

    def fastnn(quick):
        import importlib

        return build(importlib.import_module(f"fastnn.tutorial.{chapter}"))

    return {"python": python, "fastnn": fastnn}


for _cls, _short, _sizes in (("RecurrentLayer", "rnn", ((3, 2), (INPUT, HIDDEN))),
                              ("BiRecurrentLayer", "birnn", ((INPUT, HIDDEN),)),
                              ("LstmLayer", "lstm", ((3, 2), (INPUT, HIDDEN)))):
    for _inputs, _states in _sizes:
        register(f"tutorial-{_short}-{_inputs}-{_states}",
                 f"tutorial {_cls} {_inputs}->{_states}: 20 forwards, backward, update", "sequences",
                 targets=[Target("python", 20, "issue 4")])(
            lambda c=_cls, i=_inputs, s=_states: _tutorial_builders(c, i, s))


@register("tutorial-recursive", "tutorial RecursiveLayer width 8: 16-leaf tree, backward, update", "trees",
          targets=[Target("python", 20, "issue 4")])
def _tutorial_recursive():
    width = 8

    def build(module):
        from fastnn.tutorial.activators import TanhActivator

        layer = module.RecursiveLayer(width, 2, TanhActivator(), RATE, rng=0)
        data = [np.random.default_rng(i).normal(size=(width, 1)) for i in range(16)]
        delta = np.ones((width, 1))

        def step():
            nodes = [module.TreeNode(d) for d in data]
            while len(nodes) > 1:
                parents = []
                for left, right in zip(nodes[::2], nodes[1::2]):
                    layer.forward(left, right)
                    parents.append(layer.root)
                nodes = parents
            layer.backward(delta)
            layer.update()

        return step, 1

    def python(quick):
        from fastnn.reference import recursive

        return build(recursive)

    def fastnn(quick):
        from fastnn.tutorial import recursive

        return build(recursive)

    return {"python": python, "fastnn": fastnn}


def random_tree(rng, depth, counter):
    """A nested-tuple binary tree of at most `depth` levels; leaves numbered from ``counter[0]`` on."""
    if depth == 0 or rng.random() < 0.2:
        counter[0] += 1
        return counter[0] - 1
    return (random_tree(rng, depth - 1, counter), random_tree(rng, depth - 1, counter))


@register("treernn-64", "TreeRNN: 64 random binary trees, width 16, forward+backward", "trees")
def _tree_batch():
    width, count = 16, 64

    def data():
        rng = np.random.default_rng(0)
        counter = [0]
        trees = [random_tree(rng, int(rng.integers(1, 7)), counter) for _ in range(count)]
        return trees, rng.normal(size=(counter[0], width))

    def fastnn(quick):
        from fastnn import nn

        trees, leaves = data()
        layer = nn.TreeRNN(width, dtype=np.float64, rng=0)
        batch = nn.TreeBatch(trees, leaves)
        grad = np.ones((count, width))

        def step():
            layer.forward(batch)
            layer.backward(grad)

        return step, count

    def python(quick):
        from fastnn.reference import recursive
        from fastnn.tutorial.activators import TanhActivator

        trees, leaves = data()
        layer = recursive.RecursiveLayer(width, 2, TanhActivator(), RATE, rng=0)
        delta = np.ones((width, 1))

        def build(tree):
            if not isinstance(tree, tuple):
                return recursive.TreeNode(leaves[tree][:, None])
            children = [build(child) for child in tree]
            layer.forward(*children)
            return layer.root

        def step():
            for tree in trees:
                if isinstance(tree, tuple):
                    build(tree)
                    layer.backward(delta)

        return step, count

    return {"python": python, "fastnn": fastnn}
