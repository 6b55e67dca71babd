"""The network of nodes and connections (bp) against its reference twin and central differences."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastnn.reference import bp as reference
from fastnn.tutorial import bp

from helpers import assert_close, central_difference


def random_data(rng, n_samples, n_in, n_out):
    """``(labels, data_set)`` in the order the tutorial's ``train`` takes them."""
    data_set = rng.random((n_samples, n_in)).tolist()
    return rng.random((n_samples, n_out)).tolist(), data_set


def node_values(network, attribute):
    return [[getattr(node, attribute) for node in layer.nodes] for layer in network.layers]


def twin_values(twin, attribute):
    return [[getattr(node, attribute) for node in layer] for layer in twin.layers]


@st.composite
def layer_sizes(draw):
    return draw(st.lists(st.integers(1, 7), min_size=2, max_size=4))


@given(sizes=layer_sizes(), seed=st.integers(0, 2**32 - 1), epochs=st.integers(1, 3))
def test_training_matches_the_twin(sizes, seed, epochs):
    rng = np.random.default_rng(seed)
    labels, data = random_data(rng, 5, sizes[0], sizes[-1])
    net, twin = bp.Network(sizes, rng=seed), reference.Network(sizes, rng=seed)
    assert_close([c.weight for c in net.connections.connections], [c.weight for c in twin.connections], rtol=0,
                 what="initial weights")
    net.train(labels, data, 0.5, epochs)
    twin.train(labels, data, 0.5, epochs)
    assert_close([c.weight for c in net.connections.connections], [c.weight for c in twin.connections],
                 what="trained weights")
    # After training the objects describe the last sample, as the tutorial's do.
    assert_close([c.gradient for c in net.connections.connections], [c.gradient for c in twin.connections],
                 what="last sample's gradients")
    for layer, twin_layer in zip(node_values(net, "delta"), twin_values(twin, "delta")):
        assert_close(layer, twin_layer, what="last sample's deltas")
    assert_close(net.predict(data[0]), twin.predict(data[0]), what="predictions")


def sparse_skip_connections(sizes, rng, keep=0.6):
    """A random pruned graph with skip-layer connections; every non-input node keeps one input."""
    connections = []
    for down_layer in range(1, len(sizes)):
        for down in range(sizes[down_layer]):
            candidates = [(ul, un) for ul in range(down_layer) for un in range(sizes[ul] + 1)]
            chosen = [c for c in candidates if rng.random() < keep] or [candidates[0]]
            connections += [(ul, un, down_layer, down) for ul, un in chosen]
    rng.shuffle(connections)
    return [tuple(int(v) for v in c) for c in connections]


@given(sizes=layer_sizes(), seed=st.integers(0, 2**32 - 1))
def test_sparse_and_skip_layer_graphs_match_the_twin(sizes, seed):
    rng = np.random.default_rng(seed)
    connections = sparse_skip_connections(sizes, rng)
    labels, data = random_data(rng, 4, sizes[0], sizes[-1])
    net = bp.Network(sizes, connections=connections, rng=seed)
    twin = reference.Network(sizes, connections=connections, rng=seed)
    net.train(labels, data, 0.3, 2)
    twin.train(labels, data, 0.3, 2)
    assert_close([c.weight for c in net.connections.connections], [c.weight for c in twin.connections],
                 what="trained weights")
    assert_close(net.predict(data[-1]), twin.predict(data[-1]), what="predictions")


# -- blocked training: the first layer's updates delayed over blocks of samples (kernels.graph.train) --------
def assert_matches_twin(net, twin, data, what):
    """Weights, the last sample's node values, deltas and gradients, and a prediction, against the twin."""
    assert_close([c.weight for c in net.connections.connections], [c.weight for c in twin.connections],
                 what=f"{what}: trained weights")
    assert_close([c.gradient for c in net.connections.connections], [c.gradient for c in twin.connections],
                 what=f"{what}: last sample's gradients")
    for attribute in ("output", "delta"):
        for layer, twin_layer in zip(node_values(net, attribute), twin_values(twin, attribute)):
            assert_close(layer, twin_layer, what=f"{what}: last sample's node {attribute}s")
    assert_close(net.predict(data[0]), twin.predict(data[0]), what=f"{what}: predictions")


def train_both(sizes, n_samples, epochs, rate, seed, connections=None):
    """A network and its twin with the same weights, trained on the same random data; also the data and rng."""
    rng = np.random.default_rng(seed)
    labels, data = random_data(rng, n_samples, sizes[0], sizes[-1])
    net = bp.Network(sizes, connections=connections, rng=seed)
    twin = reference.Network(sizes, connections=connections, rng=seed)
    net.train(labels, data, rate, epochs)
    twin.train(labels, data, rate, epochs)
    return net, twin, data, rng


# Steps per train call around the block size (8) and the blocking threshold
# (16): whole blocks, a partial last block, epochs wrapping inside a block,
# one sample many times, and several hundred samples over two epochs.
@pytest.mark.parametrize("n_samples, epochs", [(16, 1), (17, 1), (23, 1), (8, 3), (5, 4), (1, 20), (203, 2)])
def test_blocked_training_matches_the_twin(n_samples, epochs):
    assert n_samples * epochs >= bp._kernels.MIN_BLOCKED_STEPS
    net, twin, data, _ = train_both([21, 9, 4], n_samples, epochs, 0.5, seed=n_samples)
    assert len(net._block_rows) == 9
    assert_matches_twin(net, twin, data, f"{n_samples} samples x {epochs} epochs")


def test_blocked_training_of_the_benchmark_network_matches_the_twin():
    """[784, 100, 10]: rows of 785 inputs, several chunks of them, the last one short."""
    net, twin, data, _ = train_both([784, 100, 10], 9, 2, 0.1, seed=3)
    assert_matches_twin(net, twin, data, "784-100-10")


def test_blocked_training_of_a_mixed_graph_matches_the_twin():
    """A full first layer but for one pruned node, a second hidden layer and skip-layer connections."""
    sizes = [10, 5, 3, 2]
    pruned = [c for c in bp.full_connections(sizes) if not (c[:3] == (0, 2, 1) and c[3] == 4)]
    connections = pruned + [(0, 0, 2, 1), (0, 7, 3, 0), (1, 5, 3, 1)]  # skip layers, one from a constant node
    net, twin, data, _ = train_both(sizes, 37, 3, 0.4, seed=2, connections=connections)
    # Hidden nodes 0-3 of layer 1 are blocked, node 4 (a different run) and the rest are not.
    assert net._block_rows.tolist() == [11, 12, 13, 14]
    assert_matches_twin(net, twin, data, "mixed graph")


def test_get_gradient_after_blocked_training_reads_the_trained_weights():
    sizes = [12, 6, 3]
    net, twin, _, rng = train_both(sizes, 29, 2, 0.3, seed=8)
    sample, label = rng.random(sizes[0]).tolist(), rng.random(sizes[-1]).tolist()
    net.get_gradient(label, sample)
    twin.predict(sample)
    twin.calc_delta(label)
    twin.calc_gradient()
    assert_matches_twin(net, twin, [sample], "get_gradient after training")


@pytest.mark.parametrize("n_rows", [5, 6])
def test_block_pass_applies_updates_in_sample_order_and_dots_the_next_block(n_rows):
    """The delayed updates give the bits of one per-sample update each; the sums are the new weights' dots."""
    rng = np.random.default_rng(n_rows)
    run, stride = 300, 304  # two chunks of inputs, rows padded apart as the network pads them
    weights = rng.uniform(-0.1, 0.1, n_rows * stride)
    row_start = np.arange(n_rows, dtype=np.int64) * stride
    steps, old, new = rng.normal(size=(8, n_rows)), rng.random((8, run)), rng.random((8, run))
    expected = weights.copy()
    # graph.update as the plain loop calls it once per sample: "node" r has weights from row_start[r]
    # and reads outputs 0 .. run, here sample p's inputs; its delta is the step (rate 1).
    nodes = np.arange(n_rows, dtype=np.int64)
    for p in range(8):
        bp._kernels.update(expected, np.zeros(1, np.int64), row_start, row_start + run, np.zeros(n_rows, np.int64),
                           nodes, old[p], steps[p], 1.0)
    z = np.empty((8, n_rows))
    bp._kernels._block_pass(weights, row_start, steps, old, new, z)
    np.testing.assert_array_equal(weights, expected)
    rows = np.stack([weights[s:s + run] for s in row_start])
    assert_close(z, new @ rows.T, what="next block's sums")


def test_the_unbranched_sigmoid_gives_the_bits_of_the_activation_kernel():
    from fastnn.kernels.activation import sigmoid

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(scale=s, size=200) for s in (0.01, 1, 30, 400)] + [[0.0, -0.0, 1e-300, -1e-300]])
    np.testing.assert_array_equal([bp._kernels._sigmoid_unbranched(v) for v in z], [sigmoid(v) for v in z])


def network_error(net, sample, label):
    return bp.mean_square_error(net.predict(sample), label)


@pytest.mark.parametrize("sizes", [[2, 2, 2], [3, 4, 2], [4, 3, 3, 2]])
def test_gradients_match_central_differences(sizes):
    rng = np.random.default_rng(7)
    net = bp.Network(sizes, rng=3)
    sample, label = rng.random(sizes[0]).tolist(), rng.random(sizes[-1]).tolist()
    net.get_gradient(label, sample)
    analytic = np.array([c.gradient for c in net.connections.connections])
    weights = net._weights  # the array behind every Connection view
    numeric_all = central_difference(lambda: network_error(net, sample, label), weights)
    numeric = -numeric_all[net._slots]  # Connection.gradient is the negative gradient
    assert_close(analytic, numeric, rtol=1e-6, atol=1e-10, what="connection gradients")


def test_module_gradient_check_agrees():
    net = bp.Network([2, 2, 2], rng=0)
    pairs = bp.gradient_check(net, [0.9, 0.1], [0.9, 0.1])
    assert len(pairs) == len(net.connections.connections) == 3 * 2 + 3 * 2
    expected, actual = np.array(pairs).T
    assert_close(actual, expected, rtol=1e-5, atol=1e-9, what="gradient_check pairs")


def test_connection_views_read_and_write_the_network():
    net = bp.Network([2, 1], rng=0)
    conns = net.connections.connections
    for conn, weight in zip(conns, [0.5, -0.25, 0.1]):  # inputs 0, 1 and the constant node
        conn.weight = weight
    output = net.predict([1.0, 2.0])[0]
    assert output == pytest.approx(1 / (1 + np.exp(-(0.5 - 0.5 + 0.1))))
    node = net.layers[1].nodes[0]
    assert node.output == pytest.approx(output)
    assert [c.upstream_node.node_index for c in node.upstream] == [0, 1, 2]
    assert net.layers[0].nodes[2].output == 1.0
    assert conns[0].downstream_node is node or conns[0].downstream_node.node_index == 0


def test_update_weight_adds_rate_times_gradient():
    net = bp.Network([3, 2, 2], rng=1)
    before = np.array([c.weight for c in net.connections.connections])
    net.get_gradient([0.2, 0.8], [0.1, 0.5, 0.9])
    gradients = np.array([c.gradient for c in net.connections.connections])
    net.update_weight(0.7)
    after = np.array([c.weight for c in net.connections.connections])
    assert_close(after, before + 0.7 * gradients, what="updated weights")


def test_the_838_encoder_learns_its_eight_codes():
    normalizer = bp.Normalizer()
    codes = [normalizer.norm(1 << bit) for bit in range(8)]
    net = bp.Network([8, 3, 8], rng=0)
    net.train(codes, codes, 1.0, 3000)
    assert [normalizer.denorm(net.predict(code)) for code in codes] == [1 << bit for bit in range(8)]


def test_a_wide_enough_network_reproduces_every_byte():
    normalizer = bp.Normalizer()
    data = [normalizer.norm(i) for i in range(256)]
    net = bp.Network([8, 8, 8], rng=0)
    assert bp.correct_ratio(net) < 0.1
    net.train(data, data, 1.0, 300)
    assert bp.correct_ratio(net) == 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda: bp.Network([3]), ValueError, "at least two node counts"),
    (lambda: bp.Network("8,3,8"), ValueError, "at least two node counts"),
    (lambda: bp.Network([3, 0]), ValueError, r"layers\[1\] must be >= 1"),
    (lambda: bp.Network([3, 2.0]), TypeError, r"layers\[1\] must be an integer"),
    (lambda: bp.Network([2, 2], connections=[(0, 0, 0, 1)]), ValueError, "upstream_layer < downstream_layer"),
    (lambda: bp.Network([2, 2], connections=[(0, 3, 1, 0)]), ValueError, r"upstream_node must be in \[0, 2\]"),
    (lambda: bp.Network([2, 2], connections=[(0, 0, 1, 2)]), ValueError, "a constant node has no inputs"),
    (lambda: bp.Network([2, 2], connections=[(0, 0, 1, 0)] * 2), ValueError, "same connection twice"),
    (lambda: bp.Network([2, 2], connections=[(0, 0, 1)]), TypeError, r"connections\[0\]"),
    (lambda: bp.Network([2, 2]).predict([1.0]), ValueError, r"sample must have shape \(2,\), got \(1,\)"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, 0], [0, 1]], 0.1, 1), ValueError, "same length"),
    (lambda: bp.Network([2, 2]).train([[1, 0, 1]], [[1, 0]], 0.1, 1), ValueError, r"labels must have shape \(any, 2\)"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, None]], 0.1, 1), TypeError, "data_set must hold real numbers"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, np.nan]], 0.1, 1), ValueError, "data_set contains NaN"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, 0]], -0.1, 1), ValueError, "rate must be >= 0"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, 0]], np.inf, 1), ValueError, "rate must be finite"),
    (lambda: bp.Network([2, 2]).train([[1, 0]], [[1, 0]], 0.1, -2), ValueError, "epoch must be >= 0"),
    (lambda: bp.Network([2, 2]).get_gradient([1.0], [1.0, 0.0]), ValueError, r"label must have shape \(2,\)"),
])
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_setting_a_weight_to_nan_is_refused():
    net = bp.Network([2, 2], rng=0)
    with pytest.raises(ValueError, match="weight must be finite"):
        net.connections.connections[0].weight = float("nan")


def test_gradient_check_prints_only_when_asked(capsys):
    net = bp.Network([2, 1], rng=0)
    bp.gradient_check(net, [0.5, 0.5], [0.2])
    assert capsys.readouterr().out == ""
    bp.gradient_check(net, [0.5, 0.5], [0.2], verbose=True)
    assert capsys.readouterr().out.count("expected gradient") == 3
