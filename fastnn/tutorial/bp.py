"""The tutorial's network of nodes and connections (chapter 3, ``bp``), on compiled kernels.

The network keeps the tutorial's objects as *views* over arrays: a
``Connection`` reads and writes one slot of the network's weight array, a
``Node`` one slot of its output and delta arrays.  The computation runs in
compiled loops over those arrays, connection by connection
(`fastnn.kernels.graph`), so a sparse, pruned or skip-layer connection list
trains the same way as the full one.

Sign conventions are the tutorial's: a connection's ``gradient`` is
``downstream delta * upstream output``, the NEGATIVE gradient of the half
squared error, and the update adds it: ``w += rate * gradient``.
"""

import numpy as np

from .. import _checks
from .._memory import CACHE_LINE, aligned_zeros
from ..kernels import graph as _kernels

_ALIGN = CACHE_LINE // 8  # float64 weights per cache line


def sigmoid(x):
    """The tutorial's ``sigmoid`` helper (scalars and arrays)."""
    from .activators import SigmoidActivator

    return SigmoidActivator().forward(x)


class Node:
    """A view of one node: ``output``, ``delta``, ``upstream`` and ``downstream`` connections."""

    def __init__(self, network, layer_index, node_index):
        self._network = network
        self._index = network._node_offsets[layer_index] + node_index
        self.layer_index = layer_index
        self.node_index = node_index

    @property
    def output(self):
        return float(self._network._outputs[self._index])

    @output.setter
    def output(self, value):
        self._network._outputs[self._index] = _checks.check_real(value, "output")

    def set_output(self, output):
        self.output = output

    @property
    def delta(self):
        return float(self._network._deltas[self._index])

    @property
    def upstream(self):
        return [c for c in self._network.connections.connections if c._downstream == self._index]

    @property
    def downstream(self):
        return [c for c in self._network.connections.connections if c._upstream == self._index]

    def __str__(self):
        node_str = "%u-%u: output: %f delta: %f" % (self.layer_index, self.node_index, self.output, self.delta)
        downstream_str = "".join("\n\t" + str(conn) for conn in self.downstream)
        upstream_str = "".join("\n\t" + str(conn) for conn in self.upstream)
        return node_str + "\n\tdownstream:" + downstream_str + "\n\tupstream:" + upstream_str


class ConstNode(Node):
    """The constant node closing every layer: output 1, its connections act as the bias."""

    @property
    def output(self):
        return 1.0

    @output.setter
    def output(self, value):
        raise AttributeError("a ConstNode's output is always 1")

    def __str__(self):
        downstream_str = "".join("\n\t" + str(conn) for conn in self.downstream)
        return "%u-%u: output: 1" % (self.layer_index, self.node_index) + "\n\tdownstream:" + downstream_str


class Layer:
    """A view of one layer: ``nodes`` (the last one is the ConstNode)."""

    def __init__(self, network, layer_index, node_count):
        self.layer_index = layer_index
        self.nodes = [Node(network, layer_index, i) for i in range(node_count)]
        self.nodes.append(ConstNode(network, layer_index, node_count))

    def set_output(self, data):
        for node, value in zip(self.nodes, data):
            node.set_output(value)

    def dump(self):
        for node in self.nodes:
            print(node)


class Connection:
    """A view of one connection: ``weight`` (read and write), ``gradient``, its two nodes."""

    def __init__(self, network, index, upstream_node, downstream_node):
        self._network = network
        self._slot = index
        self.upstream_node = upstream_node
        self.downstream_node = downstream_node
        self._upstream = upstream_node._index
        self._downstream = downstream_node._index

    @property
    def weight(self):
        return float(self._network._weights[self._slot])

    @weight.setter
    def weight(self, value):
        self._network._weights[self._slot] = _checks.check_real(value, "weight")

    @property
    def gradient(self):
        return float(self._network._gradients[self._slot])

    def get_gradient(self):
        return self.gradient

    def __str__(self):
        return "(%u-%u) -> (%u-%u) = %f" % (
            self.upstream_node.layer_index, self.upstream_node.node_index,
            self.downstream_node.layer_index, self.downstream_node.node_index, self.weight)


class Connections:
    """The list of every connection, in the tutorial's order (``.connections``)."""

    def __init__(self, connections):
        self.connections = connections

    def dump(self):
        for conn in self.connections:
            print(conn)


def full_connections(layers):
    """The tutorial's connection list for layer sizes `layers`, as ``(layer, upstream, layer + 1, downstream)``.

    Every node of a layer, its constant node included, feeds every
    non-constant node of the next layer; upstream node by upstream node.
    """
    return [(layer, up, layer + 1, down)
            for layer in range(len(layers) - 1)
            for up in range(layers[layer] + 1)
            for down in range(layers[layer + 1])]


class Network:
    """``Network(layers, connections=None, rng=None)``: sigmoid nodes, weights uniform in [-0.1, 0.1].

    `layers` is a list of node counts, e.g. ``[8, 3, 8]``; every layer gets
    one extra constant node whose connections act as the bias.
    `connections` (optional) is a list of ``(upstream_layer, upstream_node,
    downstream_layer, downstream_node)`` tuples with ``upstream_layer <
    downstream_layer``; the upstream node may be the constant node (index
    ``layers[upstream_layer]``).  Without it the network is fully connected
    layer to layer, in the tutorial's order.  `rng` is a seed or a numpy
    Generator for the initial weights.
    """

    def __init__(self, layers, connections=None, rng=None):
        if not isinstance(layers, (list, tuple)) or len(layers) < 2:
            raise ValueError(f"layers must be a list of at least two node counts, got {layers!r}")
        self._sizes = [_checks.check_int(n, f"layers[{i}]", minimum=1) for i, n in enumerate(layers)]
        self._node_offsets = np.concatenate([[0], np.cumsum([n + 1 for n in self._sizes])]).astype(np.int64)
        specs = full_connections(self._sizes) if connections is None else self._check_connections(connections)
        self._build_arrays(specs, _checks.make_rng(rng))
        self.layers = [Layer(self, i, n) for i, n in enumerate(self._sizes)]
        self.connections = Connections([
            Connection(self, slot, self.layers[ul].nodes[un], self.layers[dl].nodes[dn])
            for slot, (ul, un, dl, dn) in zip(self._slots, specs)])

    def _check_connections(self, connections):
        specs = []
        for k, conn in enumerate(connections):
            if len(conn) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in conn):
                raise TypeError(f"connections[{k}] must be (upstream_layer, upstream_node, downstream_layer, "
                                f"downstream_node) integers, got {conn!r}")
            ul, un, dl, dn = (int(v) for v in conn)
            if not (0 <= ul < dl < len(self._sizes)):
                raise ValueError(f"connections[{k}] = {conn!r}: need 0 <= upstream_layer < downstream_layer "
                                 f"< {len(self._sizes)}")
            if not 0 <= un <= self._sizes[ul]:
                raise ValueError(f"connections[{k}] = {conn!r}: upstream_node must be in [0, {self._sizes[ul]}] "
                                 f"(the last is the constant node)")
            if not 0 <= dn < self._sizes[dl]:
                raise ValueError(f"connections[{k}] = {conn!r}: downstream_node must be in [0, {self._sizes[dl] - 1}] "
                                 f"(a constant node has no inputs)")
            specs.append((ul, un, dl, dn))
        if len(set(specs)) != len(specs):
            raise ValueError("connections lists the same connection twice")
        return specs

    def _build_arrays(self, specs, rng):
        offsets = self._node_offsets
        n_nodes = int(offsets[-1])
        up = np.array([offsets[ul] + un for ul, un, _, _ in specs], dtype=np.int64).reshape(-1)
        down = np.array([offsets[dl] + dn for _, _, dl, dn in specs], dtype=np.int64).reshape(-1)
        # Kernel order: by downstream node, then upstream node, each node's
        # connections starting on a 64-byte boundary (aligned vector loads
        # are about 15% faster here).  _slots maps the tutorial's order
        # (specs) to positions in the kernel's arrays.
        order = np.lexsort((up, down))
        counts = np.bincount(down, minlength=n_nodes)
        padded = -(-counts // _ALIGN) * _ALIGN
        self._in_start = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
        self._in_end = self._in_start + counts
        rank = np.arange(len(specs)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[down[order]]
        self._slots = np.empty(len(specs), dtype=np.int64)
        self._slots[order] = self._in_start[down[order]] + rank
        size = int(padded.sum())
        self._upstream = np.zeros(size, dtype=np.int64)
        self._upstream[self._slots] = up
        self._weights = aligned_zeros(size)
        self._weights[self._slots] = rng.uniform(-0.1, 0.1, len(specs))
        self._gradients = np.zeros(size)
        self._contiguous_from = np.full(n_nodes, -1, dtype=np.int64)
        self._hidden_from = self._in_start.copy()
        first_hidden = int(offsets[1])
        for j in range(n_nodes):
            sources = self._upstream[self._in_start[j]:self._in_end[j]]
            if sources.size and np.array_equal(sources, np.arange(sources[0], sources[0] + sources.size)):
                self._contiguous_from[j] = sources[0]
            self._hidden_from[j] += int(np.count_nonzero(sources < first_hidden))
        constants = offsets[1:] - 1
        self._compute_nodes = np.setdiff1d(np.arange(first_hidden, n_nodes), constants).astype(np.int64)
        # The nodes whose updates `train` delays over blocks of samples: fed
        # only by one contiguous run of input nodes, the most common run (a
        # fully connected first layer: all of it).
        runs = {}
        for j in self._compute_nodes:
            if self._hidden_from[j] == self._in_end[j] and self._contiguous_from[j] >= 0:
                key = (int(self._contiguous_from[j]), int(self._in_end[j] - self._in_start[j]))
                runs.setdefault(key, []).append(j)
        rows = max(runs.values(), key=len) if runs else []
        self._block_rows = np.array(rows, dtype=np.int64)
        self._block_from = int(self._contiguous_from[rows[0]]) if rows else 0
        self._other_nodes = np.setdiff1d(self._compute_nodes, self._block_rows).astype(np.int64)
        self._output_start = int(offsets[-2])
        self._outputs = np.zeros(n_nodes)
        self._outputs[constants] = 1.0
        self._deltas = np.zeros(n_nodes)

    # -- validation --------------------------------------------------------------
    def _sample(self, sample, name="sample"):
        return _checks.as_float_array(sample, name, shape=(self._sizes[0],))

    def _label(self, label, name="label"):
        return _checks.as_float_array(label, name, shape=(self._sizes[-1],))

    # -- the tutorial's methods ----------------------------------------------------
    def predict(self, sample):
        """Forward pass for one sample; returns the output layer's values as a list."""
        self._outputs[:self._sizes[0]] = self._sample(sample)
        self._forward()
        return self._outputs[self._output_start:self._output_start + self._sizes[-1]].tolist()

    def _forward(self):
        _kernels.forward(self._weights, self._upstream, self._in_start, self._in_end, self._contiguous_from,
                         self._compute_nodes, self._outputs)

    def calc_delta(self, label):
        """Deltas of every node (input layer included) from the last forward pass and `label`."""
        _kernels.deltas(self._weights, self._upstream, self._in_start, self._in_end, self._contiguous_from, self._hidden_from,
                        self._compute_nodes, self._outputs, self._label(label), self._output_start, True,
                        np.empty_like(self._deltas), self._deltas)

    def calc_gradient(self):
        """Every connection's gradient ``downstream delta * upstream output``."""
        _kernels.gradients(self._upstream, self._in_start, self._in_end, self._compute_nodes, self._outputs, self._deltas,
                           self._gradients)

    def update_weight(self, rate):
        """``gradient = delta * output`` then ``w += rate * gradient`` for every connection."""
        rate = _checks.check_rate(rate)
        self.calc_gradient()
        self._weights += rate * self._gradients

    def get_gradient(self, label, sample):
        """Forward pass, deltas and gradients for one sample (nothing is updated)."""
        label = self._label(label)
        self.predict(sample)
        self.calc_delta(label)
        self.calc_gradient()

    def train_one_sample(self, label, sample, rate):
        self.train([label], [sample], rate, 1)

    def train(self, labels, data_set, rate, epoch):
        """`epoch` passes of per-sample SGD over `data_set` (N, inputs) with targets `labels` (N, outputs)."""
        samples = _checks.as_float_array(data_set, "data_set", shape=(None, self._sizes[0]))
        targets = _checks.as_float_array(labels, "labels", shape=(None, self._sizes[-1]))
        _checks.check_same_length(targets, "labels", samples, "data_set")
        rate = _checks.check_rate(rate)
        epoch = _checks.check_int(epoch, "epoch", minimum=0)
        if epoch == 0 or len(samples) == 0:
            return
        if len(samples) * epoch >= _kernels.MIN_BLOCKED_STEPS:
            block_rows, other_nodes = self._block_rows, self._other_nodes
        else:
            block_rows, other_nodes = self._block_rows[:0], self._compute_nodes
        _kernels.train(self._weights, self._upstream, self._in_start, self._in_end, self._contiguous_from, self._hidden_from,
                       self._compute_nodes, self._output_start, block_rows, self._block_from, other_nodes, samples,
                       targets, rate, epoch, self._outputs, self._deltas, self._gradients)

    def dump(self):
        for layer in self.layers:
            layer.dump()


class Normalizer:
    """The tutorial's 8-bit code: ``norm(n)`` gives 0.9 for a set bit, 0.1 otherwise; ``denorm`` inverts it."""

    def __init__(self):
        self.mask = [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80]

    def norm(self, number):
        return [0.9 if number & m else 0.1 for m in self.mask]

    def denorm(self, vec):
        return sum(m for value, m in zip(vec, self.mask) if value > 0.5)


def mean_square_error(vec1, vec2):
    """The tutorial's network error: ``0.5 * sum((a - b)^2)``."""
    return 0.5 * sum((a - b) * (a - b) for a, b in zip(vec1, vec2))


def gradient_check(network, sample_feature, sample_label, epsilon=1e-4, verbose=False):
    """Compare every connection's gradient with central differences of the network error.

    Returns ``[(expected, actual), ...]`` in connection order, where expected
    is ``(E(w - eps) - E(w + eps)) / (2 eps)``: the negative gradient, the
    tutorial's sign convention for ``Connection.gradient``.  With `verbose`
    it also prints each pair as the tutorial does.  (The tutorial's own
    version passes sample and label to ``get_gradient`` swapped, which only
    works when they are equal; this one does not.)
    """
    network.get_gradient(sample_label, sample_feature)
    pairs = []
    for conn in network.connections.connections:
        actual = conn.get_gradient()
        weight = conn.weight
        conn.weight = weight + epsilon
        error1 = mean_square_error(network.predict(sample_feature), sample_label)
        conn.weight = weight - epsilon
        error2 = mean_square_error(network.predict(sample_feature), sample_label)
        conn.weight = weight
        pairs.append(((error2 - error1) / (2 * epsilon), actual))
        if verbose:
            print("expected gradient: \t%f\nactual gradient: \t%f" % pairs[-1])
    return pairs


def train_data_set(rng=None):
    """The tutorial's training set: 32 random bytes, each its own label, as 8-bit codes."""
    rng = _checks.make_rng(rng)
    normalizer = Normalizer()
    data_set = [normalizer.norm(int(n)) for n in rng.integers(0, 256, size=32)]
    return [list(v) for v in data_set], data_set


def correct_ratio(network):
    """Share of the 256 bytes the network reproduces exactly (0.0 to 1.0)."""
    normalizer = Normalizer()
    return sum(normalizer.denorm(network.predict(normalizer.norm(i))) == i for i in range(256)) / 256
