"""Plain-Python twin of the tutorial's network of nodes and connections (``bp``).

Objects and explicit loops, as the tutorial writes them.  Weights are drawn
with a numpy Generator in the tutorial's connection order, so a twin and a
`fastnn.tutorial.bp.Network` built from the same seed start equal.
"""

import math

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


class Node:
    def __init__(self, layer_index, node_index):
        self.layer_index = layer_index
        self.node_index = node_index
        self.downstream = []
        self.upstream = []
        self.output = 0.0
        self.delta = 0.0

    def calc_output(self):
        total = 0.0
        for conn in self.upstream:
            total += conn.upstream_node.output * conn.weight
        self.output = sigmoid(total)

    def calc_hidden_layer_delta(self):
        downstream_delta = 0.0
        for conn in self.downstream:
            downstream_delta += conn.downstream_node.delta * conn.weight
        self.delta = self.output * (1 - self.output) * downstream_delta

    def calc_output_layer_delta(self, label):
        self.delta = self.output * (1 - self.output) * (label - self.output)


class ConstNode(Node):
    def __init__(self, layer_index, node_index):
        super().__init__(layer_index, node_index)
        self.output = 1.0


class Connection:
    def __init__(self, upstream_node, downstream_node, weight):
        self.upstream_node = upstream_node
        self.downstream_node = downstream_node
        self.weight = weight
        self.gradient = 0.0

    def calc_gradient(self):
        self.gradient = self.downstream_node.delta * self.upstream_node.output

    def update_weight(self, rate):
        self.calc_gradient()
        self.weight += rate * self.gradient


class Network:
    """``Network(layers, connections=None, rng=None)``, the same arguments as fastnn's."""

    def __init__(self, layers, connections=None, rng=None):
        rng = np.random.default_rng(rng)
        self.layers = []
        for i, count in enumerate(layers):
            self.layers.append([Node(i, j) for j in range(count)] + [ConstNode(i, count)])
        if connections is None:
            connections = [(layer, up, layer + 1, down)
                           for layer in range(len(layers) - 1)
                           for up in range(layers[layer] + 1)
                           for down in range(layers[layer + 1])]
        weights = rng.uniform(-0.1, 0.1, len(connections))
        self.connections = []
        for (ul, un, dl, dn), weight in zip(connections, weights):
            conn = Connection(self.layers[ul][un], self.layers[dl][dn], float(weight))
            conn.upstream_node.downstream.append(conn)
            conn.downstream_node.upstream.append(conn)
            self.connections.append(conn)

    def predict(self, sample):
        for node, value in zip(self.layers[0], sample):
            node.output = value
        for layer in self.layers[1:]:
            for node in layer[:-1]:
                node.calc_output()
        return [node.output for node in self.layers[-1][:-1]]

    def calc_delta(self, label):
        for node, target in zip(self.layers[-1], label):
            node.calc_output_layer_delta(target)
        for layer in self.layers[-2::-1]:
            for node in layer:
                node.calc_hidden_layer_delta()

    def calc_gradient(self):
        for conn in self.connections:
            conn.calc_gradient()

    def update_weight(self, rate):
        for conn in self.connections:
            conn.update_weight(rate)

    def train_one_sample(self, label, sample, rate):
        self.predict(sample)
        self.calc_delta(label)
        self.update_weight(rate)

    def train(self, labels, data_set, rate, epoch):
        for _ in range(epoch):
            for label, sample in zip(labels, data_set):
                self.train_one_sample(label, sample, rate)
