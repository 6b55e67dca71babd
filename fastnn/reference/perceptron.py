"""Plain-Python twin of the perceptron and the linear unit (tutorial chapters 1 and 2)."""


class Perceptron:
    """Weights start at 0.0; ``train`` applies the perceptron rule sample by sample."""

    def __init__(self, input_num, activator):
        self.activator = activator
        self.weights = [0.0 for _ in range(input_num)]
        self.bias = 0.0

    def predict(self, input_vec):
        total = self.bias
        for x, w in zip(input_vec, self.weights):
            total += x * w
        return self.activator(total)

    def train(self, input_vecs, labels, iteration, rate):
        for _ in range(iteration):
            for input_vec, label in zip(input_vecs, labels):
                delta = label - self.predict(input_vec)
                self.weights = [w + rate * delta * x for w, x in zip(self.weights, input_vec)]
                self.bias += rate * delta


class LinearUnit(Perceptron):
    def __init__(self, input_num):
        super().__init__(input_num, lambda x: x)
