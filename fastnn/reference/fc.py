"""Plain-Python twin of the tutorial's fully connected network in matrix form (``fc``).

As the tutorial writes it: one numpy call per layer and step, column
vectors ``(n, 1)``, the tutorial's sign convention (``W_grad`` is the
negative gradient and ``update`` adds it).  Weights come from a numpy
Generator so that a twin and a `fastnn.tutorial.fc.Network` built from the
same seed start equal.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class FullConnectedLayer:
    def __init__(self, input_size, output_size, rng):
        self.W = rng.uniform(-0.1, 0.1, (output_size, input_size))
        self.b = np.zeros((output_size, 1))
        self.output = np.zeros((output_size, 1))

    def forward(self, input_array):
        self.input = input_array
        self.output = sigmoid(np.dot(self.W, input_array) + self.b)

    def backward(self, delta_array):
        self.delta = self.input * (1 - self.input) * np.dot(self.W.T, delta_array)
        self.W_grad = np.dot(delta_array, self.input.T)
        self.b_grad = delta_array

    def update(self, learning_rate):
        self.W += learning_rate * self.W_grad
        self.b += learning_rate * self.b_grad


class Network:
    def __init__(self, layers, rng=None):
        rng = np.random.default_rng(rng)
        self.layers = [FullConnectedLayer(layers[i], layers[i + 1], rng) for i in range(len(layers) - 1)]

    def predict(self, sample):
        output = sample
        for layer in self.layers:
            layer.forward(output)
            output = layer.output
        return output

    def calc_gradient(self, label):
        output = self.layers[-1].output
        delta = output * (1 - output) * (label - output)
        for layer in self.layers[::-1]:
            layer.backward(delta)
            delta = layer.delta
        return delta

    def update_weight(self, rate):
        for layer in self.layers:
            layer.update(rate)

    def train_one_sample(self, label, sample, rate):
        self.predict(sample)
        self.calc_gradient(label)
        self.update_weight(rate)

    def train(self, labels, data_set, rate, epoch):
        for _ in range(epoch):
            for label, sample in zip(labels, data_set):
                self.train_one_sample(label, sample, rate)
