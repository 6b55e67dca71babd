"""The recursive chapter: tree kernels vs the reference twin, gradient checks through structure, bad trees."""

import numpy as np
import pytest
from helpers import assert_close, assert_same_for_thread_counts, central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.nn import TreeBatch, TreeRNN
from fastnn.reference import recursive as ref
from fastnn.tutorial import recursive as tutorial
from fastnn.tutorial.activators import IdentityActivator, SigmoidActivator, TanhActivator

# Tolerances for analytic gradients against central differences.
FD = dict(rtol=1e-6, atol=1e-8)


def random_tree(rng, depth, child_count, next_leaf):
    """A nested-tuple tree of exactly `depth` levels of internal nodes; leaves numbered from next_leaf[0]."""
    if depth == 0:
        next_leaf[0] += 1
        return next_leaf[0] - 1
    deep = rng.integers(child_count)
    return tuple(random_tree(rng, depth - 1 if c == deep else int(rng.integers(depth)), child_count, next_leaf)
                 for c in range(child_count))


@settings(max_examples=15, deadline=None)
@given(depths=st.lists(st.integers(0, 4), min_size=1, max_size=4), child_count=st.integers(1, 3),
       width=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_batched_trees_match_reference_and_gradients(depths, child_count, width, seed):
    rng = np.random.default_rng(seed)
    counter = [0]
    trees = [random_tree(rng, d, child_count, counter) for d in depths]
    leaves = rng.normal(size=(counter[0], width))
    layer = TreeRNN(width, child_count, dtype=np.float64, rng=seed)
    layer.params["bias"][:] = rng.normal(size=width)
    batch = TreeBatch(trees, leaves, child_count)
    roots = layer.forward(batch)
    W, b = layer.params["weight"].T, layer.params["bias"]
    for k, tree in enumerate(trees):
        assert_close(roots[k], ref.tree_forward(tree, leaves, W, b, TanhActivator())[:, 0], what=f"root of tree {k}")
    weights = rng.normal(size=roots.shape)
    grad_leaves = layer.backward(weights)
    grads = {name: g.copy() for name, g in layer.grads.items()}

    def loss():
        return float((layer.forward(batch.with_leaves(leaves)) * weights).sum())

    for name, value in layer.params.items():
        assert_close(grads[name], central_difference(loss, value), **FD, what=name)
    assert_close(grad_leaves, central_difference(loss, leaves), **FD, what="leaves")


def _build(layer, module, leaf_data, shape):
    """Build the tree `shape` (nested tuples of leaf indices) bottom-up with forward(); return the leaves."""
    leaves = [module.TreeNode(d) for d in leaf_data]

    def make(node):
        if isinstance(node, int):
            return leaves[node]
        children = [make(child) for child in node]
        layer.forward(*children)
        return layer.root

    make(shape)
    return leaves


SHAPES = {1: (0, 1), 2: ((0, 1), 2), 3: (((0, 1), 2), (3, 4)), 4: ((((0, 1), 2), 3), ((4, 5), 6))}


def _tutorial_pair(seed, activator):
    """fastnn's tutorial layer and its twin, with the same random W and b; seven leaf vectors."""
    rng = np.random.default_rng(seed)
    mine = tutorial.RecursiveLayer(3, 2, activator, 0.1, rng=0)
    theirs = ref.RecursiveLayer(3, 2, activator, 0.1)
    mine.W = theirs.W = rng.normal(size=(3, 6))
    mine.b = theirs.b = rng.normal(size=(3, 1))
    return mine, theirs, [rng.normal(size=(3, 1)) for _ in range(7)], rng


def _backward_both(mine, theirs, delta):
    mine.backward(delta)
    theirs.backward(delta)
    assert_close(mine.W_grad, theirs.W_grad, what="W_grad")
    assert_close(mine.b_grad, theirs.b_grad, what="b_grad")


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activator", [TanhActivator(), SigmoidActivator()])
def test_tutorial_layer_matches_reference_and_gradient_check(depth, activator):
    mine, theirs, data, rng = _tutorial_pair(depth, activator)
    my_leaves = _build(mine, tutorial, data, SHAPES[depth])
    their_leaves = _build(theirs, ref, data, SHAPES[depth])
    assert_close(mine.root.data, theirs.root.data, what="root")
    delta = rng.normal(size=(3, 1))
    _backward_both(mine, theirs, delta)
    for a, b in zip(my_leaves, their_leaves):
        assert hasattr(a, "delta") == hasattr(b, "delta")  # leaves outside the tree get none
        if hasattr(b, "delta"):
            assert_close(a.delta, b.delta, what="leaf delta")
    assert_close(mine.root.delta, delta, what="root delta")

    # E = c . root, so the root's error on its weighted input is c * f'(root).
    weights = rng.normal(size=(3, 1))

    def loss():
        mine.reset_state()
        _build(mine, tutorial, data, SHAPES[depth])
        return float((weights * mine.root.data).sum())

    loss()
    mine.backward(weights * activator.backward(mine.root.data))
    W_grad, b_grad = mine.W_grad.copy(), mine.b_grad.copy()
    assert_close(W_grad, central_difference(loss, mine.W), **FD, what=f"W, depth {depth}")
    assert_close(b_grad, central_difference(loss, mine.b), **FD, what=f"b, depth {depth}")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # in the twin's products
def test_tutorial_leaves_whose_sum_overflows_are_finite_all_the_same():
    # The NaN check of the children must not fold into (sum data) * 0, which 1e308 + 1e308 makes NaN.
    mine, theirs, data, rng = _tutorial_pair(3, TanhActivator())
    mine.W = theirs.W = theirs.W * 1e-3  # W's products stay finite, in any order of the sums
    data[0] = np.array([[1e308], [1e308], [0.0]])
    _build(mine, tutorial, data, SHAPES[2])
    _build(theirs, ref, data, SHAPES[2])
    assert_close(mine.root.data, theirs.root.data, what="root")
    _backward_both(mine, theirs, rng.normal(size=(3, 1)))


def test_tutorial_leaf_delta_is_the_gradient_of_its_data():
    layer = tutorial.RecursiveLayer(2, 2, TanhActivator(), 0.1, rng=0)
    layer.W = np.random.default_rng(0).normal(size=(2, 4))
    data = [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]]), np.array([[5.0], [6.0]])]
    leaves = [tutorial.TreeNode(d) for d in data]

    def loss():
        layer.forward(leaves[0], leaves[1])
        layer.forward(layer.root, leaves[2])
        return float(layer.root.data.sum())

    loss()
    layer.backward(1 - layer.root.data ** 2)
    for leaf in leaves:
        assert_close(leaf.delta, central_difference(loss, leaf.data), **FD, what="leaf delta")


def test_float32_thread_count_and_serial_kernels():
    rng = np.random.default_rng(1)
    counter = [0]
    trees = [random_tree(rng, d, 2, counter) for d in (1, 4, 3, 2, 4, 0, 3)]
    batch = TreeBatch(trees, rng.normal(size=(counter[0], 5)).astype(np.float32))
    layer = TreeRNN(5, rng=0)
    grad = rng.normal(size=(len(trees), 5)).astype(np.float32)
    results = assert_same_for_thread_counts(lambda: [layer.forward(batch), layer.backward(grad),
                                                     *layer.grads.values()])
    assert all(a.dtype == np.float32 for a in results)
    from fastnn.kernels import recursive as kernels

    nodes, children_data = layer.node_states.copy(), np.empty((batch.n_internal, 10), np.float32)
    kernels.tree_forward_serial(nodes, batch.children, batch.tree_offsets, batch.leaves.shape[0],
                                layer.params["weight"], layer.params["bias"], 2, children_data)
    assert np.array_equal(nodes, layer.node_states)


def test_tree_network_learns_boolean_expressions():
    from fastnn.demos.recursive import train_tree_task

    _, near, deep, _ = train_tree_task(epochs=6)
    assert near >= 0.95 and deep >= 0.9, (near, deep)


def test_bad_trees():
    leaves = np.zeros((4, 3))
    with pytest.raises(ValueError, match="must have 2 children, found one with 3"):
        TreeBatch([(0, 1, 2)], leaves[:3])
    with pytest.raises(ValueError, match="leaf row 1 is already used"):
        TreeBatch([(0, 1), (1, 2)], leaves[:3])
    with pytest.raises(ValueError, match="used by no tree"):
        TreeBatch([(0, 1)], leaves)
    with pytest.raises(ValueError, match="out of range"):
        TreeBatch([(0, 7)], leaves[:1])
    cyclic = [0, None]
    cyclic[1] = cyclic
    with pytest.raises(ValueError, match="reached twice"):
        TreeBatch([cyclic], leaves[:1])
    with pytest.raises(TypeError, match="tuple of children or an integer"):
        TreeBatch([(0, "a")], leaves[:1])
    layer = TreeRNN(3)
    with pytest.raises(ValueError, match=r"leaves must have shape \(any, 3\) \(node_size 3\), got \(2, 4\)"):
        layer.forward(TreeBatch([(0, 1)], np.zeros((2, 4))))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="3 children per node"):
        layer.forward(TreeBatch([(0, 1, 2)], np.zeros((3, 3)), child_count=3))
    layer.forward(TreeBatch([(0, 1)], np.zeros((2, 3))))
    with pytest.raises(ValueError, match="one per tree"):
        layer.backward(np.zeros((2, 3)))


def test_tutorial_bad_trees():
    layer = tutorial.RecursiveLayer(2, 2, IdentityActivator(), 0.1)
    a, b, c = (tutorial.TreeNode(np.ones((2, 1))) for _ in range(3))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 1)))
    with pytest.raises(ValueError, match="takes 2 children, got 3"):
        layer.forward(a, b, c)
    with pytest.raises(ValueError, match=r"children\[1\].data must have shape \(2, 1\), got \(3, 1\)"):
        layer.forward(a, tutorial.TreeNode(np.ones((3, 1))))
    with pytest.raises(ValueError, match="passed twice"):
        layer.forward(a, a)
    layer.forward(a, b)
    first = layer.root
    layer.forward(first, c)
    layer.forward(layer.root, first)  # `first` is now under the root twice
    with pytest.raises(ValueError, match="reached twice"):
        layer.backward(np.ones((2, 1)))
    layer.forward(a, b)
    a.children = [layer.root, c]  # a cycle: the root is its own grandchild
    with pytest.raises(ValueError, match="reached twice"):
        layer.backward(np.ones((2, 1)))
    a.children = [c]
    with pytest.raises(ValueError, match="must have 2 children, found one with 1"):
        layer.backward(np.ones((2, 1)))


def test_tutorial_parents_are_computed_when_read_as_the_eager_twin_computes_them():
    mine, theirs, data, rng = _tutorial_pair(3, TanhActivator())
    # two trees in a row without backward, the first one's leaves given as flat vectors and lists
    first = _build(mine, tutorial, [d.ravel() if i % 2 else d.ravel().tolist() for i, d in enumerate(data[:4])],
                   ((0, 1), (2, 3)))
    first_root = mine.root
    their_first = _build(theirs, ref, data[:4], ((0, 1), (2, 3)))
    their_first_root = theirs.root
    assert_close(first_root.data, their_first_root.data, what="first root, read before backward")
    assert_close(first_root.children_data, their_first_root.children_data, what="children_data")
    my_leaves = _build(mine, tutorial, data, SHAPES[4])
    their_leaves = _build(theirs, ref, data, SHAPES[4])
    for leaf in my_leaves:
        leaf.data = leaf.data.copy()  # (the twin's leaves share the arrays in `data`)
        leaf.data[...] = np.nan  # forward copied the data: later changes must not reach the parents
    assert_close(mine.root.data, theirs.root.data, what="second root")
    delta = rng.normal(size=(3, 1))
    _backward_both(mine, theirs, delta)
    for a, b in zip(my_leaves, their_leaves):
        assert_close(a.delta, b.delta, what="leaf delta")
    assert not any(hasattr(leaf, "delta") for leaf in first), "the first tree is not under the root"
    # a parent made before that backward, used as a child again: the general path walks the objects
    extra = rng.normal(size=(3, 1))
    mine.forward(first_root, tutorial.TreeNode(extra))
    theirs.forward(their_first_root, ref.TreeNode(extra))
    _backward_both(mine, theirs, delta)  # through a parent of an earlier tree
    for a, b in zip(first + my_leaves, their_first + their_leaves, strict=True):
        assert_close(a.delta, b.delta, what="leaf deltas, each from the last backward that reached it")


def test_tutorial_bad_leaves_are_reported():
    layer = tutorial.RecursiveLayer(2, 2, IdentityActivator(), 0.1)
    good = tutorial.TreeNode(np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"children\[0\].data must have shape \(2, 1\), got \(1, 2\)"):
        layer.forward(tutorial.TreeNode(np.ones((1, 2))), good)
    with pytest.raises(TypeError, match=r"children\[1\] must be a TreeNode, got list"):
        layer.forward(good, [1.0, 2.0])
    with pytest.raises(TypeError, match=r"children\[0\].data must hold real numbers"):
        layer.forward(tutorial.TreeNode(np.array([["a"], ["b"]])), good)
    assert layer.root is None, "a refused call makes no parent"
    layer.forward(good, tutorial.TreeNode(np.array([[1.0], [np.nan]])))
    with pytest.raises(ValueError, match=r"children\[1\].data contains NaN or infinity \(in forward call 1"):
        layer.root.data
    with pytest.raises(ValueError, match=r"children\[1\].data contains NaN"):
        layer.backward(np.ones((2, 1)))
    layer = tutorial.RecursiveLayer(2, 2, IdentityActivator(), 0.1)
    layer.forward(good, tutorial.TreeNode(np.ones((2, 1))))
    layer.backward(np.ones((2, 1)))
    assert good.delta.shape == (2, 1)


def test_tutorial_reset_state_after_a_nan_child_starts_afresh():
    layer = tutorial.RecursiveLayer(2, 2, IdentityActivator(), 0.1)
    layer.forward(tutorial.TreeNode(np.ones((2, 1))), tutorial.TreeNode(np.full((2, 1), np.inf)))
    bad = layer.root
    layer.reset_state()
    with pytest.raises(ValueError, match=r"children\[1\].data contains NaN or infinity"):
        bad.data
    layer.forward(tutorial.TreeNode(np.ones((2, 1))), tutorial.TreeNode(np.ones((2, 1))))
    assert_close(layer.root.data, layer.W @ np.ones((4, 1)) + layer.b, what="a parent after reset_state")
    with pytest.raises(ValueError, match=r"children\[1\].data contains NaN"):
        bad.children_data


def test_tutorial_forward_goes_on_while_a_kernel_keeps_its_arguments(monkeypatch):
    # A kernel's first call in a process, the one that compiles it, keeps references to its arguments; the
    # tables it was given must not pin the storage that forward extends.
    kept = []
    compiled = tutorial._kernels.forest_forward

    def keeping(*args):
        kept.append(args)
        return compiled(*args)

    monkeypatch.setattr(tutorial._kernels, "forest_forward", keeping)
    layer = tutorial.RecursiveLayer(2, 2, IdentityActivator(), 0.1, rng=0)
    layer.forward(tutorial.TreeNode(np.ones((2, 1))), tutorial.TreeNode(np.ones((2, 1))))
    first = layer.root.data.copy()
    layer.forward(layer.root, tutorial.TreeNode(np.ones((2, 1))))
    assert kept and np.array_equal(layer.root.children_data[:2], first)
