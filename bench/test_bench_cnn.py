"""Convolution chapter benchmarks: fastnn against the tutorial-style twin and against PyTorch.

Run: ``pytest bench/test_bench_cnn.py --benchmark-group-by=group``

* ``tutorial conv ...`` / ``tutorial max pool ...``: the tutorial's layer
  shapes, one sample at a time (28x28x1 input, six 5x5 filters, no padding,
  stride 1, ReLU; then 2x2 max pooling with stride 2), `fastnn.tutorial.cnn`
  against `fastnn.reference.cnn`.
* ``lenet conv1/conv2 ...``: LeNet-5's two convolutions at batch 64 in
  float32 (1->6 5x5 padding 2 on 28x28, 6->16 5x5 on 14x14), `fastnn.nn.Conv2D`
  against ``torch.nn.Conv2d``, each with 1 and with 2 threads: the target
  compares fastnn on 2 threads with the faster PyTorch, and the two 1-thread
  rows are the fair view when other work shares the cores.  Both compute
  the input gradient in the backward pass.
  ``extra_info["gflop"]`` holds each workload's floating-point operations.
"""

import numba
import numpy as np
import pytest

from fastnn.nn import Conv2D
from fastnn.reference import cnn as reference
from fastnn.tutorial import cnn as tutorial
from fastnn.tutorial.activators import IdentityActivator, ReluActivator

BATCH = 64
LENET = {
    # name: (in_channels, out_channels, size, padding)
    "conv1": (1, 6, 28, 2),
    "conv2": (6, 16, 14, 0),
}


def tutorial_layers(module):
    conv = module.ConvLayer(28, 28, 1, 5, 5, 6, 0, 1, ReluActivator(), 0.01)
    pool = module.MaxPoolingLayer(24, 24, 6, 2, 2, 2)
    return conv, pool


def tutorial_data():
    rng = np.random.default_rng(0)
    return rng.random((1, 28, 28)), rng.standard_normal((6, 24, 24)), rng.random((6, 24, 24)), \
        rng.standard_normal((6, 12, 12))


IMPLEMENTATIONS = [
    pytest.param(tutorial, id="fastnn"),
    pytest.param(reference, id="python"),
]


def run(benchmark, module, function):
    benchmark.extra_info["impl"] = "python" if module is reference else "fastnn"
    function()  # warm up: compiles the kernels on the first run
    if module is reference:
        benchmark.pedantic(function, rounds=5, iterations=1)
    else:
        benchmark(function)


@pytest.mark.parametrize("module", IMPLEMENTATIONS)
def test_tutorial_conv_forward(benchmark, module):
    benchmark.group = "tutorial conv forward (28x28x1, six 5x5 filters, one sample)"
    conv, _ = tutorial_layers(module)
    x, _, _, _ = tutorial_data()
    run(benchmark, module, lambda: conv.forward(x))


@pytest.mark.parametrize("module", IMPLEMENTATIONS)
def test_tutorial_conv_forward_backward(benchmark, module):
    benchmark.group = "tutorial conv forward+backward (28x28x1, six 5x5 filters, one sample)"
    conv, _ = tutorial_layers(module)
    x, sensitivity, _, _ = tutorial_data()

    def step():
        conv.forward(x)
        conv.backward(x, sensitivity, IdentityActivator())

    run(benchmark, module, step)


@pytest.mark.parametrize("module", IMPLEMENTATIONS)
def test_tutorial_max_pool_forward_backward(benchmark, module):
    benchmark.group = "tutorial max pool forward+backward (24x24x6, 2x2 stride 2, one sample)"
    _, pool = tutorial_layers(module)
    _, _, x, sensitivity = tutorial_data()

    def step():
        pool.forward(x)
        pool.backward(x, sensitivity)

    run(benchmark, module, step)


def lenet_flops(name):
    in_channels, out_channels, size, padding = LENET[name]
    out = size + 2 * padding - 4
    return 2 * BATCH * out_channels * out * out * in_channels * 25


def lenet_arrays(name):
    in_channels, out_channels, size, padding = LENET[name]
    rng = np.random.default_rng(1)
    out = size + 2 * padding - 4
    x = rng.standard_normal((BATCH, in_channels, size, size), dtype=np.float32)
    grad = rng.standard_normal((BATCH, out_channels, out, out), dtype=np.float32)
    return x, grad


@pytest.mark.parametrize("threads", [1, 2], ids=["fastnn-1-thread", "fastnn-2-threads"])
@pytest.mark.parametrize("name", LENET)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
def test_lenet_fastnn(benchmark, name, backward, threads):
    in_channels, out_channels, _, padding = LENET[name]
    benchmark.group = f"lenet {name} batch {BATCH} float32 {'forward+backward' if backward else 'forward'}"
    benchmark.extra_info["gflop"] = lenet_flops(name) * (3 if backward else 1) / 1e9
    # the summary compares "fastnn" (2 threads) with PyTorch; the 1-thread row is for reading beside it
    benchmark.extra_info["impl"] = "fastnn" if threads == 2 else "fastnn-1-thread"
    benchmark.extra_info["threads"] = threads
    layer = Conv2D(in_channels, out_channels, 5, padding=padding, rng=0)
    x, grad = lenet_arrays(name)

    def step():
        layer.forward(x)
        if backward:
            layer.backward(grad)

    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        step()
        benchmark(step)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2], ids=["torch-1-thread", "torch-2-threads"])
@pytest.mark.parametrize("name", LENET)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
def test_lenet_torch(benchmark, torch_threads, name, backward, threads):
    import torch

    in_channels, out_channels, _, padding = LENET[name]
    benchmark.group = f"lenet {name} batch {BATCH} float32 {'forward+backward' if backward else 'forward'}"
    benchmark.extra_info["gflop"] = lenet_flops(name) * (3 if backward else 1) / 1e9
    benchmark.extra_info["impl"] = "torch"
    benchmark.extra_info["threads"] = threads
    torch_threads(threads)
    layer = torch.nn.Conv2d(in_channels, out_channels, 5, padding=padding)
    x, grad = (torch.from_numpy(a) for a in lenet_arrays(name))
    x.requires_grad_(backward)

    def step():
        if backward:
            layer(x).backward(grad)
        else:
            with torch.no_grad():
                layer(x)

    step()
    benchmark(step)
