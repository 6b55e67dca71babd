"""The convolution chapter's worked example: a 5x5x3 input, two 3x3 filters, zero padding 1, stride 2."""

import time

import numpy as np

TITLE = "cnn: the tutorial's convolution layer (5x5x3 input, two 3x3 filters, padding 1, stride 2)"


def tutorial_example(module):
    """The tutorial's ``init_test``: input `a`, sensitivity map `b` and the layer, from `module`'s ConvLayer."""
    from ..tutorial.activators import IdentityActivator

    a = np.array(
        [[[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
         [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
         [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]]])
    b = np.array([[[0, 1, 1], [2, 2, 2], [1, 0, 0]], [[1, 0, 2], [0, 0, 0], [1, 2, 1]]])
    layer = module.ConvLayer(5, 5, 3, 3, 3, 2, 1, 2, IdentityActivator(), 0.001)
    layer.filters[0].weights = np.array(
        [[[-1, 1, 0], [0, 1, 0], [0, 1, 1]], [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
         [[0, 0, -1], [0, 1, 0], [1, -1, -1]]], dtype=np.float64)
    layer.filters[0].bias = 1
    layer.filters[1].weights = np.array(
        [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]], [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
         [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]], dtype=np.float64)
    return a, b, layer


def largest_gradient_error(module, epsilon=1e-4):
    """The tutorial's ``gradient_check``: error function ``sum(output)``, every weight of every filter.

    Returns the largest ``|numeric - analytic| / max(|numeric|, 1)``.
    """
    from ..tutorial.activators import IdentityActivator

    a, _, layer = tutorial_example(module)
    layer.forward(a)
    layer.backward(a, np.ones(layer.output_array.shape), IdentityActivator())
    worst = 0.0
    for f in layer.filters:
        for index in np.ndindex(f.weights.shape):
            f.weights[index] += epsilon
            layer.forward(a)
            up = layer.output_array.sum()
            f.weights[index] -= 2 * epsilon
            layer.forward(a)
            down = layer.output_array.sum()
            f.weights[index] += epsilon
            numeric = (up - down) / (2 * epsilon)
            worst = max(worst, abs(numeric - f.weights_grad[index]) / max(abs(numeric), 1.0))
    return worst


def _seconds_per_call(function, repeats):
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def run(say):
    from ..reference import cnn as reference
    from ..tutorial import cnn
    from ..tutorial.activators import IdentityActivator, ReluActivator

    a, b, layer = tutorial_example(cnn)
    layer.forward(a)
    say("output_array (test):")
    say(str(layer.output_array))
    layer.backward(a, b, IdentityActivator())
    layer.update()
    say("after backward and update (test_bp), filter 0:")
    say(repr(layer.filters[0]))
    say(f"gradient check: largest relative error {largest_gradient_error(cnn):.1e}")

    # the tutorial-shaped layer: 28x28x1 input, six 5x5 filters, ReLU
    rng = np.random.default_rng(0)
    x, sensitivity = rng.random((1, 28, 28)), rng.standard_normal((6, 24, 24))
    timings = []
    for module, repeats in ((cnn, 200), (reference, 2)):
        conv = module.ConvLayer(28, 28, 1, 5, 5, 6, 0, 1, ReluActivator(), 0.01)

        def step():
            conv.forward(x)
            conv.backward(x, sensitivity, IdentityActivator())

        timings.append(_seconds_per_call(step, repeats))
    say(f"ConvLayer forward+backward, 28x28x1 input, six 5x5 filters: fastnn {timings[0] * 1e6:.0f} us, "
        f"reference twin {timings[1] * 1e3:.1f} ms ({timings[1] / timings[0]:.0f}x)")
