"""Chapters 1-3: perceptron, linear unit, bp graph network and fc matrix network, one sample at a time."""

import numpy as np
import pytest

from fastnn.reference import bp as reference_bp
from fastnn.reference import fc as reference_fc
from fastnn.reference import perceptron as reference_perceptron
from fastnn.tutorial import bp, fc
from fastnn.tutorial.linear_unit import LinearUnit
from fastnn.tutorial.perceptron import Perceptron, f

RNG = np.random.default_rng(0)


def _data(n_samples, n_in, n_out):
    return RNG.random((n_samples, n_in)), RNG.random((n_samples, n_out))


# -- perceptron and linear unit: 200 samples of 20 features, 5 iterations ------------
PERCEPTRON_X = RNG.normal(size=(200, 20))
PERCEPTRON_Y = (PERCEPTRON_X.sum(axis=1) > 0).astype(float)


@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_perceptron_training(benchmark, impl):
    benchmark.group = "perceptron: train 200x20, 5 iterations"
    benchmark.extra_info["impl"] = impl
    if impl == "fastnn":
        Perceptron(20, f).train(PERCEPTRON_X, PERCEPTRON_Y, 1, 0.1)  # compile outside the timing
        benchmark(lambda: Perceptron(20, f).train(PERCEPTRON_X, PERCEPTRON_Y, 5, 0.1))
    else:
        x, y = PERCEPTRON_X.tolist(), PERCEPTRON_Y.tolist()
        benchmark(lambda: reference_perceptron.Perceptron(20, f).train(x, y, 5, 0.1))


@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_linear_unit_training(benchmark, impl):
    benchmark.group = "linear unit: train 200x20, 5 iterations"
    benchmark.extra_info["impl"] = impl
    targets = PERCEPTRON_X @ np.arange(20.0)
    if impl == "fastnn":
        LinearUnit(20).train(PERCEPTRON_X, targets, 1, 1e-3)
        benchmark(lambda: LinearUnit(20).train(PERCEPTRON_X, targets, 5, 1e-3))
    else:
        x, y = PERCEPTRON_X.tolist(), targets.tolist()
        benchmark(lambda: reference_perceptron.LinearUnit(20).train(x, y, 5, 1e-3))


# -- bp: the graph of nodes and connections ---------------------------------------------
@pytest.mark.parametrize("hidden", [100, 300])
@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_bp_training(benchmark, impl, hidden):
    n = 20
    benchmark.group = f"bp [784, {hidden}, 10]: train {n} samples"
    benchmark.extra_info["impl"] = impl
    images, targets = _data(n, 784, 10)
    if impl == "fastnn":
        net = bp.Network([784, hidden, 10], rng=0)
        net.train(targets[:1], images[:1], 0.1, 1)
        benchmark(net.train, targets, images, 0.1, 1)
    else:
        net = reference_bp.Network([784, hidden, 10], rng=0)
        x, y = images.tolist(), targets.tolist()
        benchmark.pedantic(net.train, (y, x, 0.1, 1), rounds=3, iterations=1)


@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_bp_prediction(benchmark, impl):
    benchmark.group = "bp [784, 100, 10]: predict 1 sample"
    benchmark.extra_info["impl"] = impl
    sample = RNG.random(784).tolist()
    net = (bp if impl == "fastnn" else reference_bp).Network([784, 100, 10], rng=0)
    net.predict(sample)
    benchmark(net.predict, sample)


# -- fc: the matrix-form network --------------------------------------------------------
def _torch_per_sample_step(hidden, threads):
    """PyTorch trains the same sigmoid network on half squared error, one sample per SGD step."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.Sigmoid(),
                                torch.nn.Linear(hidden, 10), torch.nn.Sigmoid()).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def train(images, targets):
        for x, t in zip(images, targets):
            optimizer.zero_grad()
            loss = 0.5 * ((model(x) - t) ** 2).sum()
            loss.backward()
            optimizer.step()

    return train


@pytest.mark.parametrize("hidden", [100, 300])
@pytest.mark.parametrize("impl", ["fastnn", "python", "torch-1", "torch-2"])
def test_fc_training(benchmark, impl, hidden, request):
    n = 200
    benchmark.group = f"fc [784, {hidden}, 10] float64: train {n} samples"
    images, targets = _data(n, 784, 10)
    if impl == "fastnn":
        net = fc.Network([784, hidden, 10], rng=0)
        net.train(targets[:1], images[:1], 0.1, 1)
        benchmark.extra_info["impl"] = "fastnn"
        benchmark(net.train, targets, images, 0.1, 1)
    elif impl == "python":
        net = reference_fc.Network([784, hidden, 10], rng=0)
        x, y = list(images[:, :, None]), list(targets[:, :, None])
        benchmark.extra_info["impl"] = "python"
        benchmark(net.train, y, x, 0.1, 1)
    else:
        set_threads = request.getfixturevalue("torch_threads")
        import torch

        threads = int(impl.split("-")[1])
        set_threads(threads)
        train = _torch_per_sample_step(hidden, threads)
        x, t = torch.from_numpy(images), torch.from_numpy(targets)
        train(x[:2], t[:2])
        benchmark.extra_info.update(impl="torch", threads=threads)
        benchmark(train, x, t)
