"""Ready-made models: the tutorial's MLP, a wider ReLU MLP and LeNet-5.

Each function returns an untrained ``Sequential``; `rng` (a seed or a numpy
Generator) fixes the initial weights, `optimizer` defaults to plain SGD.
MLPs take flattened images ``(N, 784)``; LeNet-5 takes ``(N, C, H, W)``.
"""

import numpy as np

from .._checks import check_int, make_rng
from .activations import ReLU, Sigmoid
from .dense import Dense
from .model import Sequential
from .preprocess import Standardize


def tutorial_mlp(in_features=784, hidden=100, classes=10, optimizer=None, dtype=np.float32, rng=None):
    """The tutorial's MNIST network: in-hidden-classes, sigmoid after both layers, squared error loss."""
    rng = make_rng(rng)
    layers = [
        Dense(in_features, hidden, dtype=dtype, rng=rng), Sigmoid(),
        Dense(hidden, classes, dtype=dtype, rng=rng), Sigmoid(),
    ]
    return Sequential(layers, loss="mse", optimizer=optimizer)


def mlp(in_features=784, hidden=300, classes=10, optimizer=None, dtype=np.float32, rng=None):
    """in-hidden-classes with ReLU and softmax cross-entropy (the classic 784-300-10 MNIST MLP)."""
    rng = make_rng(rng)
    layers = [Dense(in_features, hidden, dtype=dtype, rng=rng), ReLU(), Dense(hidden, classes, dtype=dtype, rng=rng)]
    return Sequential(layers, loss="cross_entropy", optimizer=optimizer)


def lenet5(input_shape=(1, 28, 28), classes=10, optimizer=None, dtype=np.float32, rng=None, standardize=None):
    """LeNet-5 as PyTorch tutorials write it, with ReLU and max pooling, softmax cross-entropy.

    conv 6@5x5 padding 2, max pool 2, conv 16@5x5, max pool 2, dense 120,
    dense 84, dense `classes`.  For 28x28 images (Fashion-MNIST) the first
    dense layer takes 16*5*5 = 400 inputs; other sizes follow from the input.
    ``standardize=(mean, std)`` (numbers or one per channel) puts a
    ``Standardize`` layer in front.
    """
    from .conv import Conv2D
    from .pooling import MaxPool2D
    from .shape import Flatten

    channels, height, width = (check_int(d, "input_shape", minimum=1) for d in input_shape)
    rng = make_rng(rng)
    features = [] if standardize is None else [Standardize(*standardize)]
    features += [
        Conv2D(channels, 6, 5, padding=2, dtype=dtype, rng=rng), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5, dtype=dtype, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
    ]
    shape = (channels, height, width)
    for layer in features:
        shape = layer.output_shape(shape)
    layers = features + [
        Dense(shape[0], 120, dtype=dtype, rng=rng), ReLU(),
        Dense(120, 84, dtype=dtype, rng=rng), ReLU(),
        Dense(84, classes, dtype=dtype, rng=rng),
    ]
    return Sequential(layers, loss="cross_entropy", optimizer=optimizer, input_shape=(channels, height, width))


MODELS = {"mlp": tutorial_mlp, "mlp300": mlp, "lenet": lenet5}
