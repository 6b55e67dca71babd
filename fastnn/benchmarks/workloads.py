"""The workloads of ``fastnn bench``, each with its plain-Python, fastnn and PyTorch implementations.

A builder ``build(quick)`` returns ``(step, items)``: ``step()`` processes
``items`` samples (or sequences, or updates) and is what gets timed.  The
PyTorch builders are called after the process has set its thread count.
Heavy imports happen inside builders, in the process that runs them.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Target:
    """fastnn must be at least `speedup` times faster than `against` (an issue's goal)."""

    against: str
    speedup: float
    source: str

    def describe(self):
        return f">= {self.speedup:g}x {self.against} ({self.source})"


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    unit: str
    builders: dict
    targets: tuple = ()
    needs_dataset: bool = False
    notes: str = ""


WORKLOADS = {}


def register(name, title, unit, targets=(), needs_dataset=False, notes=""):
    """Decorator: ``builders()`` returns ``{"python": build, "fastnn": build, "torch": build}``."""
    def decorate(builders):
        WORKLOADS[name] = Workload(name, title, unit, builders(), tuple(targets), needs_dataset, notes)
        return builders
    return decorate


def _rng():
    return np.random.default_rng(0)


# -- chapters 1-2: the perceptron -------------------------------------------------------------
@register("perceptron", "perceptron training, 1000 samples x 20 features", "samples",
          notes="the perceptron rule, one sample at a time")
def _perceptron():
    def data():
        x = _rng().normal(size=(1000, 20))
        return x, (x.sum(axis=1) > 0).astype(float)

    def python(quick):
        from fastnn.reference.perceptron import Perceptron
        from fastnn.tutorial.perceptron import f

        x, y = data()
        x, y = x.tolist(), y.tolist()
        return (lambda: Perceptron(20, f).train(x, y, 1, 0.1)), len(x)

    def fastnn(quick):
        from fastnn.tutorial.perceptron import Perceptron, f

        x, y = data()
        return (lambda: Perceptron(20, f).train(x, y, 1, 0.1)), len(x)

    return {"python": python, "fastnn": fastnn}


# -- chapter 3: back propagation ----------------------------------------------------------------
def _images(n, classes=10):
    rng = _rng()
    return rng.random((n, 784)), rng.random((n, classes))


@register("bp-784-100-10", "bp graph network 784-100-10, per sample", "samples",
          targets=[Target("python", 1000, "issue 2")])
def _bp():
    def python(quick):
        from fastnn.reference.bp import Network

        x, y = _images(2)
        net = Network([784, 100, 10], rng=0)
        x, y = x.tolist(), y.tolist()
        return (lambda: net.train(y, x, 0.1, 1)), 2

    def fastnn(quick):
        from fastnn.tutorial.bp import Network

        x, y = _images(500)
        net = Network([784, 100, 10], rng=0)
        return (lambda: net.train(y, x, 0.1, 1)), 500

    return {"python": python, "fastnn": fastnn}


@register("fc-784-100-10-f64", "fc network 784-100-10, per sample, float64", "samples",
          targets=[Target("python", 5, "issue 2"), Target("torch", 10, "issue 2")])
def _fc():
    def python(quick):
        from fastnn.reference.fc import Network

        x, y = _images(100)
        net = Network([784, 100, 10], rng=0)
        xs, ys = list(x[:, :, None]), list(y[:, :, None])
        return (lambda: net.train(ys, xs, 0.1, 1)), 100

    def fastnn(quick):
        from fastnn.tutorial.fc import Network

        x, y = _images(1000)
        net = Network([784, 100, 10], rng=0)
        return (lambda: net.train(y, x, 0.1, 1)), 1000

    def torch(quick):
        import torch

        x, y = _images(100)
        model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.Sigmoid(),
                                    torch.nn.Linear(100, 10), torch.nn.Sigmoid()).double()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            for sample, target in zip(xs, ys):
                optimizer.zero_grad()
                loss = 0.5 * ((model(sample) - target) ** 2).sum()
                loss.backward()
                optimizer.step()

        return step, 100

    return {"python": python, "fastnn": fastnn, "torch": torch}


# -- chapter 4: convolution and pooling -----------------------------------------------------------
# Per-sample layers cycle through a few samples: inside a network a layer's input and error
# were just computed, so they are in cache.
CYCLE = 8


def _tutorial_conv_step(module, samples):
    """The tutorial-shaped ConvLayer (28x28x1, six 5x5 filters, ReLU): forward then backward per sample."""
    from fastnn.tutorial.activators import IdentityActivator, ReluActivator

    rng = _rng()
    x, sensitivity = rng.random((CYCLE, 1, 28, 28)), rng.standard_normal((CYCLE, 6, 24, 24))
    layer = module.ConvLayer(28, 28, 1, 5, 5, 6, 0, 1, ReluActivator(), 0.01)
    below = IdentityActivator()

    def step():
        for i in range(samples):
            layer.forward(x[i % CYCLE])
            layer.backward(x[i % CYCLE], sensitivity[i % CYCLE], below)

    return step, samples


@register("cnn-conv-layer", "ConvLayer 28x28x1, six 5x5 filters, forward+backward per sample", "samples",
          targets=[Target("python", 500, "issue 3")])
def _cnn_conv():
    def python(quick):
        from fastnn.reference import cnn

        return _tutorial_conv_step(cnn, 2)

    def fastnn(quick):
        from fastnn.tutorial import cnn

        return _tutorial_conv_step(cnn, 200)

    return {"python": python, "fastnn": fastnn}


def _tutorial_pool_step(module, samples):
    """The tutorial-shaped MaxPoolingLayer (24x24x6, 2x2 windows, stride 2): forward then backward per sample."""
    rng = _rng()
    x, sensitivity = rng.random((CYCLE, 6, 24, 24)), rng.standard_normal((CYCLE, 6, 12, 12))
    layer = module.MaxPoolingLayer(24, 24, 6, 2, 2, 2)

    def step():
        for i in range(samples):
            layer.forward(x[i % CYCLE])
            layer.backward(x[i % CYCLE], sensitivity[i % CYCLE])

    return step, samples


@register("cnn-max-pool", "MaxPoolingLayer 24x24x6, 2x2 stride 2, forward+backward per sample", "samples",
          targets=[Target("python", 500, "issue 3")])
def _cnn_pool():
    def python(quick):
        from fastnn.reference import cnn

        return _tutorial_pool_step(cnn, 5)

    def fastnn(quick):
        from fastnn.tutorial import cnn

        return _tutorial_pool_step(cnn, 1000)

    return {"python": python, "fastnn": fastnn}


def _lenet_convolution(label, in_channels, out_channels, size, padding):
    """A LeNet-5 convolution at batch 64, float32, forward and backward (input gradient included)."""
    def arrays():
        rng = _rng()
        out = size + 2 * padding - 4
        return (rng.standard_normal((64, in_channels, size, size), dtype=np.float32),
                rng.standard_normal((64, out_channels, out, out), dtype=np.float32))

    def fastnn(quick):
        from fastnn.nn import Conv2D

        layer = Conv2D(in_channels, out_channels, 5, padding=padding, rng=0)
        x, grad = arrays()

        def step():
            layer.forward(x)
            layer.backward(grad)

        return step, 64

    def torch(quick):
        import torch

        layer = torch.nn.Conv2d(in_channels, out_channels, 5, padding=padding)
        x, grad = (torch.from_numpy(a) for a in arrays())
        x.requires_grad_(True)
        return (lambda: layer(x).backward(grad)), 64

    register(f"lenet-{label}-b64", f"LeNet-5 {label} ({in_channels}->{out_channels}, 5x5, {size}x{size}, "
             f"padding {padding}) forward+backward, batch 64, float32", "samples",
             targets=[Target("torch", 1.0, "issue 3")])(lambda: {"fastnn": fastnn, "torch": torch})


_lenet_convolution("conv1", 1, 6, 28, 2)
_lenet_convolution("conv2", 6, 16, 14, 0)


# Issue 5: training and inference of the MLPs and LeNet-5 (registers on import).
from . import training  # noqa: E402,F401
# Issue 4: recurrent, LSTM and recursive networks (registers on import).
from . import sequence  # noqa: E402,F401
