"""The test registry: every fastnn.nn layer and every fastnn.tutorial class, once, with what the checks need.

In the manner of PyTorch's module tests: an entry (a :class:`Case`) says how
to build the object from a dtype and a seed, gives sample inputs, runs its
forward pass, computes the same thing with its reference twin
(fastnn/reference, or a plain formula where the layer is one), gives the
scalar loss and analytic gradients for the central-difference check, takes
one training step, and lists the object's bad inputs with the error each
must raise.  tests/test_registry.py runs the same battery over all entries,
and refuses a layer or tutorial class that has no entry.

Adding a layer is one entry: ``nn_case(...)`` for a batch-first fastnn.nn
layer (the checks and the common bad inputs follow from its forward /
backward / params interface), a :class:`Case` written out for a tutorial
class (each has its own call convention).
"""

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fastnn import nn
from fastnn.reference import batched as ref_batched
from fastnn.reference import bp as ref_bp
from fastnn.reference import cnn as ref_cnn
from fastnn.reference import fc as ref_fc
from fastnn.reference import perceptron as ref_perceptron
from fastnn.tutorial import bp, cnn, fc
from fastnn.tutorial.activators import IdentityActivator, SigmoidActivator
from fastnn.tutorial.linear_unit import LinearUnit
from fastnn.tutorial.perceptron import Perceptron, f


@dataclass
class Bad:
    """A bad input: ``call(obj, *inputs)`` on a freshly built object must raise `error` matching `match`."""

    label: str
    call: Callable
    error: type
    match: str


@dataclass
class Gradients:
    """What the central-difference check compares.

    ``loss()`` is a scalar function of the live arrays in ``wrt`` (name ->
    array, modified in place by the check); ``analytic`` maps the same names
    to the gradients the object computed for that loss.
    """

    loss: Callable
    wrt: dict
    analytic: dict


@dataclass
class Case:
    """One registry entry; see the module docstring.

    `build(dtype, seed)`, `inputs(rng, dtype)` -> tuple of arrays,
    `forward(obj, *inputs)` -> a fresh output array, `twin(obj, *inputs)` ->
    the reference twin's output for the object's current weights,
    `gradients(obj, *inputs)` -> :class:`Gradients` (None where the object
    has no gradient, with the reason in `no_gradient`), `train_step(obj,
    *inputs)` -> one update of the weights (None for objects without
    weights), `params(obj)` -> name -> live weight arrays.  `float64_only`
    marks the tutorial classes, which compute in float64 whatever they are
    given (TUTORIAL_API.md); `seeded` is False for classes whose weights do
    not come from a seed (the perceptron starts at zero).
    """

    name: str
    cls: type
    build: Callable
    inputs: Callable
    forward: Callable
    twin: Callable
    gradients: Callable
    params: Callable
    train_step: Callable = None
    bad: list = field(default_factory=list)
    float64_only: bool = False
    seeded: bool = True
    no_gradient: str = ""
    twin_rtol: float = 1e-10

    def __repr__(self):
        return self.name


# ----------------------------------------------------------------- fastnn.nn


def loss_weights(shape, dtype):
    """Fixed weights g of the loss ``sum(out * g)``, so that dE/dout = g."""
    return np.random.default_rng(12345).standard_normal(shape).astype(dtype)


def nn_gradients(layer, x):
    """Gradients of ``sum(layer(x) * g)`` for x and every parameter of a batch-first layer."""
    out = layer.forward(x)
    g = loss_weights(out.shape, out.dtype)
    analytic = {"x": layer.backward(g).copy()}
    analytic.update({name: grad.copy() for name, grad in layer.grads.items()})
    return Gradients(lambda: float(np.sum(layer.forward(x) * g)), {"x": x, **layer.params}, analytic)


def nn_train_step(layer, x):
    """One plain SGD step on ``sum(layer(x) * g)``."""
    out = layer.forward(x)
    layer.backward(loss_weights(out.shape, out.dtype))
    assert nn.SGD(lr=0.05).step([layer])


def with_value(x, value):
    """A copy of `x` with its first element set to `value`."""
    x = np.array(x)
    x.reshape(-1)[0] = value
    return x


def nn_bad_inputs(sample_rank, wrong_sample=None):
    """The bad inputs every batch-first layer refuses; `wrong_sample(x)` makes samples of a shape the layer refuses."""
    bad = [
        Bad("x holds NaN", lambda layer, x: layer.forward(with_value(x, np.nan)), ValueError, "x contains NaN"),
        Bad("x holds inf", lambda layer, x: layer.forward(with_value(x, -np.inf)), ValueError, "x contains NaN or inf"),
        Bad("x holds no sample", lambda layer, x: layer.forward(x[:0]), ValueError, r"x .*(at least one sample|N >= 1)"),
        Bad("x of strings", lambda layer, x: layer.forward(x.astype(str)), TypeError, "x must hold real numbers"),
        Bad("x of complex numbers", lambda layer, x: layer.forward(x + 1j), TypeError, "x must hold real numbers"),
        Bad("x of booleans", lambda layer, x: layer.forward(x > 0), TypeError, "x must hold real numbers"),
        Bad("backward before forward", lambda layer, x: layer.backward(np.ones_like(x)), RuntimeError,
            "backward called before forward"),
        Bad("grad_output of another shape",
            lambda layer, x: layer.backward(np.ones(np.shape(layer.forward(x))[:-1] + (np.shape(layer.forward(x))[-1] + 1,))),
            ValueError, "grad_output must have shape"),
        Bad("grad_output holds NaN", lambda layer, x: layer.backward(with_value(layer.forward(x), np.nan)),
            ValueError, "grad_output contains NaN"),
    ]
    if sample_rank is not None:
        bad.append(Bad("x without the batch axis", lambda layer, x: layer.forward(x[0]), ValueError, "x must"))
    if wrong_sample is not None:
        bad.append(Bad("x with samples of the wrong shape", lambda layer, x: layer.forward(wrong_sample(x)),
                       ValueError, "x must have shape"))
    return bad


def nn_case(name, make, sample_shape, twin, batch=5, inputs=None, sample_rank=None, wrong_sample=None, bad=()):
    """A registry entry for a batch-first fastnn.nn layer.

    `make(dtype, seed)` builds it, `twin(layer, x)` computes its output in
    float64 from its parameters; inputs are ``(batch, *sample_shape)``
    standard normal values unless `inputs(rng, shape)` draws them.
    `sample_rank` (for layers that need a fixed rank) adds the "x without
    the batch axis" bad input, `wrong_sample(x)` a batch of samples of a
    shape the layer refuses; `bad` adds the layer's own.
    """
    draw = inputs or (lambda rng, shape: rng.standard_normal(shape))
    example = make(np.float64, 0)
    return Case(
        name=name,
        cls=type(example),
        build=make,
        inputs=lambda rng, dtype: (draw(rng, (batch, *sample_shape)).astype(dtype),),
        forward=lambda layer, x: layer.forward(x).copy(),
        twin=twin,
        gradients=nn_gradients,
        params=lambda layer: layer.params,
        train_step=nn_train_step if example.params else None,
        bad=nn_bad_inputs(sample_rank, wrong_sample) + list(bad),
    )


def distinct(rng, shape):
    """Well separated values in random order: no ties for max pooling, even under central differences."""
    return rng.permutation(math.prod(shape)).reshape(shape) * 0.01 - 1.0


def per_sample(function, x, *args):
    return np.stack([function(np.asarray(sample, np.float64), *args) for sample in x])


def activation_twin(name):
    return lambda layer, x: np.vectorize(lambda v: ref_batched.activate(v, name))(np.asarray(x, np.float64))


def parallel_loops(layer):
    """Dense on its compiled loops parallel over the batch (Sequential picks BLAS or these; both are checked)."""
    layer.use_blas = False
    return layer


def params64(layer, *names):
    return [np.asarray(layer.params[n], np.float64) for n in names]


NN_CASES = [
    nn_case("nn.Dense", lambda dtype, seed: parallel_loops(nn.Dense(4, 3, dtype=dtype, rng=seed)), (4,),
            lambda layer, x: ref_batched.dense_forward(x, *params64(layer, "weight", "bias"), "identity"),
            sample_rank=1, wrong_sample=lambda x: x[:, :3],
            bad=[Bad("in_features 0", lambda layer, x: nn.Dense(0, 3), ValueError, "in_features must be >= 1"),
                 Bad("dtype int32", lambda layer, x: nn.Dense(4, 3, dtype=np.int32), TypeError, "dtype must be")]),
    nn_case("nn.Conv2D", lambda dtype, seed: nn.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1, dtype=dtype, rng=seed),
            (2, 5, 4),
            lambda layer, x: per_sample(ref_cnn.conv_forward, x, *params64(layer, "weight", "bias"), layer.stride,
                                        layer.padding),
            sample_rank=3, wrong_sample=lambda x: x[:, :1],
            bad=[Bad("kernel larger than the padded input", lambda layer, x: nn.Conv2D(2, 3, 5).forward(x),
                     ValueError, r"kernel_size \(5, 5\) is larger than the padded input: x has shape"),
                 Bad("stride 0", lambda layer, x: nn.Conv2D(2, 3, 3, stride=0), ValueError, "stride must be >= 1")]),
    nn_case("nn.MaxPool2D", lambda dtype, seed: nn.MaxPool2D((2, 3), stride=(1, 2)), (2, 5, 7),
            lambda layer, x: per_sample(ref_cnn.pool_forward, x, *layer.kernel_size, layer.stride, np.max),
            inputs=distinct, sample_rank=3,
            bad=[Bad("window larger than the input", lambda layer, x: layer.forward(x[:, :, :1]), ValueError,
                     "kernel_size .* is larger than the input: x has shape")]),
    nn_case("nn.AvgPool2D", lambda dtype, seed: nn.AvgPool2D(2, stride=1), (2, 4, 5),
            lambda layer, x: per_sample(ref_cnn.pool_forward, x, *layer.kernel_size, layer.stride, np.mean),
            sample_rank=3,
            bad=[Bad("kernel_size 0", lambda layer, x: nn.AvgPool2D(0), ValueError, "kernel_size must be >= 1")]),
    nn_case("nn.Flatten", lambda dtype, seed: nn.Flatten(), (2, 3, 2),
            lambda layer, x: np.stack([np.ravel(sample) for sample in x]).astype(np.float64)),
    nn_case("nn.ReLU", lambda dtype, seed: nn.ReLU(), (3, 2), activation_twin("relu")),
    nn_case("nn.Sigmoid", lambda dtype, seed: nn.Sigmoid(), (3, 2), activation_twin("sigmoid")),
    nn_case("nn.Tanh", lambda dtype, seed: nn.Tanh(), (3, 2), activation_twin("tanh")),
    nn_case("nn.Identity", lambda dtype, seed: nn.Identity(), (3, 2), activation_twin("identity")),
    nn_case("nn.Standardize", lambda dtype, seed: nn.Standardize([0.5, -1.0], [2.0, 0.25]), (2, 3),
            lambda layer, x: (np.asarray(x, np.float64) - layer.mean[:, None]) / layer.std[:, None],
            wrong_sample=lambda x: np.concatenate([x, x], axis=1),
            bad=[Bad("std 0", lambda layer, x: nn.Standardize(0.0, 0.0), ValueError, "std must be > 0")]),
]


# ------------------------------------------------------------ fastnn.tutorial


def column(rng, size):
    """A column vector (size, 1) in (0, 1), like the output of a sigmoid layer below."""
    return 0.05 + 0.9 * rng.random((size, 1))


def perceptron_labels(inputs):
    return (np.asarray(inputs).sum(axis=1) > 0).astype(np.float64)


def perceptron_build(cls, *args):
    def build(dtype, seed):
        unit = cls(*args)
        rng = np.random.default_rng(seed)
        unit.weights = rng.uniform(-1, 1, unit.input_num).tolist()
        unit.bias = float(rng.uniform(-1, 1))
        return unit
    return build


def perceptron_twin(activator):
    def twin(unit, inputs):
        other = ref_perceptron.Perceptron(unit.input_num, activator)
        other.weights, other.bias = list(unit.weights), unit.bias
        return np.array([other.predict(row) for row in np.asarray(inputs, np.float64)], np.float64)
    return twin


def perceptron_params(unit):
    return {"weights": np.array(unit.weights), "bias": np.array([unit.bias])}


def linear_unit_gradients(unit, inputs):
    """One sample, one step of the tutorial's SGD: the step divided by -rate is dE/dw of E = (t - y)^2 / 2."""
    x, target = inputs[0], perceptron_labels(inputs)[0]
    w = np.array(unit.weights + [unit.bias])

    def loss():
        unit.weights, unit.bias = w[:-1].tolist(), float(w[-1])
        return 0.5 * (target - unit.predict(x)) ** 2

    loss()
    rate = 1e-3
    trained = LinearUnit(unit.input_num)
    trained.weights, trained.bias = list(unit.weights), unit.bias
    trained.train([x], [target], 1, rate)
    analytic = (w - np.array(trained.weights + [trained.bias])) / rate
    return Gradients(loss, {"weights and bias": w}, {"weights and bias": analytic})


def perceptron_case(name, cls, args, activator, gradients, no_gradient=""):
    return Case(
        name=name, cls=cls, build=perceptron_build(cls, *args),
        inputs=lambda rng, dtype: (rng.standard_normal((6, 4)).astype(dtype),),
        forward=lambda unit, inputs: np.array([unit.predict(row) for row in inputs], np.float64),
        twin=perceptron_twin(activator), gradients=gradients, no_gradient=no_gradient, params=perceptron_params,
        train_step=lambda unit, inputs: unit.train(inputs, perceptron_labels(inputs), 1, 0.1),
        float64_only=True, seeded=False,
        bad=[
            Bad("input_vec of the wrong length", lambda unit, inputs: unit.predict(inputs[0][:3]), ValueError,
                r"input_vec must have shape \(4,\), got \(3,\)"),
            Bad("input_vec holds NaN", lambda unit, inputs: unit.predict(with_value(inputs[0], np.nan)), ValueError,
                "input_vec contains NaN"),
            Bad("input_vecs holds inf", lambda unit, inputs: unit.train(with_value(inputs, np.inf), [1] * 6, 1, 0.1),
                ValueError, "input_vecs contains NaN or inf"),
            Bad("no labels for the samples", lambda unit, inputs: unit.train(inputs, [], 1, 0.1), ValueError,
                "input_vecs and labels must have the same length"),
            Bad("rate NaN", lambda unit, inputs: unit.train(inputs, [1] * 6, 1, float("nan")), ValueError,
                "rate must be finite"),
        ])


def bp_live_sample(net, inputs):
    """Sample 0 and its fixed label in (0, 1)."""
    return inputs[0], np.random.default_rng(7).random(net._sizes[-1])


def bp_gradients(net, inputs):
    """E = mean_square_error(predict(x), t); Connection.gradient and the input deltas are -dE/dw and -dE/dx * x(1-x)."""
    x, label = bp_live_sample(net, inputs)
    net.get_gradient(label, x)
    analytic_w = -net._gradients.copy()
    input_deltas = np.array([node.delta for node in net.layers[0].nodes[:-1]])
    return Gradients(lambda: bp.mean_square_error(net.predict(x), label), {"weights": net._weights, "sample": x},
                     {"weights": analytic_w, "sample": -input_deltas / (x * (1 - x))})


def bp_twin(net, inputs):
    twin = ref_bp.Network(net._sizes, rng=0)
    for theirs, ours in zip(twin.connections, net.connections.connections):
        theirs.weight = ours.weight
    return np.array([twin.predict(row) for row in np.asarray(inputs, np.float64)])


def fc_layer_gradients(layer, x):
    """E = sum(output * g): backward takes dE/dz = g * y(1-y); its delta is dE/dx times the sigmoid derivative at x."""
    layer.forward(x)
    g = loss_weights(layer.output.shape, np.float64)
    layer.backward(g * layer.output * (1 - layer.output))
    analytic = {"input": layer.delta / (x * (1 - x)), "W": layer.W_grad.copy(), "b": layer.b_grad.copy()}

    def loss():
        layer.forward(x)
        return float(np.sum(layer.output * g))

    return Gradients(loss, {"input": x, "W": layer.W, "b": layer.b}, analytic)


def fc_layer_train_step(layer, x):
    layer.forward(x)
    layer.backward(loss_weights(layer.output.shape, np.float64) * layer.output * (1 - layer.output))
    layer.update(0.1)


def fc_layer_twin(layer, x):
    twin = ref_fc.FullConnectedLayer(layer.input_size, layer.output_size, np.random.default_rng(0))
    twin.W, twin.b = layer.W.copy(), layer.b.copy()
    twin.forward(np.asarray(x, np.float64))
    return twin.output


def fc_network_target(net):
    return np.random.default_rng(8).random((net.layers[-1].output_size, 1))


def fc_network_gradients(net, x):
    """E = net.loss; W_grad, b_grad are -dE/dW, -dE/db; the first layer's delta is -dE/dx * x(1-x)."""
    target = fc_network_target(net)
    net.predict(x)
    delta = net.calc_gradient(target)
    wrt, analytic = {"input": x}, {"input": -delta / (x * (1 - x))}
    for i, layer in enumerate(net.layers):
        wrt[f"layers[{i}].W"], wrt[f"layers[{i}].b"] = layer.W, layer.b
        analytic[f"layers[{i}].W"], analytic[f"layers[{i}].b"] = -layer.W_grad, -layer.b_grad
    return Gradients(lambda: net.loss(net.predict(x), target), wrt, analytic)


def fc_network_twin(net, x):
    twin = ref_fc.Network([net.layers[0].input_size] + [layer.output_size for layer in net.layers], rng=0)
    for theirs, ours in zip(twin.layers, net.layers):
        theirs.W, theirs.b = ours.W.copy(), ours.b.copy()
    return twin.predict(np.asarray(x, np.float64))


CONV_ARGS = (5, 4, 2, 3, 2, 2, 1, 2)  # input_width, input_height, channels, filter_width, filter_height, filters, padding, stride


def conv_gradients(layer, x):
    """E = sum(output_array * g): the sensitivity is g * y(1-y); with the identity below, delta_array is dE/dx."""
    layer.forward(x)
    g = loss_weights(layer.output_array.shape, np.float64)
    layer.backward(x, g * layer.output_array * (1 - layer.output_array), IdentityActivator())
    analytic = {"input_array": layer.delta_array.copy(),
                "weights": np.stack([flt.weights_grad for flt in layer.filters]),
                "bias": np.array([flt.bias_grad for flt in layer.filters])}

    def loss():
        layer.forward(x)
        return float(np.sum(layer.output_array * g))

    return Gradients(loss, {"input_array": x, "weights": layer._weights, "bias": layer._bias}, analytic)


def conv_train_step(layer, x):
    layer.forward(x)
    g = loss_weights(layer.output_array.shape, np.float64)
    layer.backward(x, g * layer.output_array * (1 - layer.output_array), IdentityActivator())
    layer.update()


def conv_twin(layer, x):
    twin = ref_cnn.ConvLayer(*CONV_ARGS, SigmoidActivator(), 0.1, rng=0)
    for theirs, ours in zip(twin.filters, layer.filters):
        theirs.weights, theirs.bias = ours.weights.copy(), ours.bias
    twin.forward(np.asarray(x, np.float64))
    return twin.output_array


POOL_ARGS = (5, 4, 2, 2, 2, 1)  # input_width, input_height, channels, filter_width, filter_height, stride


def pool_gradients(layer, x):
    layer.forward(x)
    g = loss_weights(layer.output_array.shape, np.float64)
    layer.backward(x, g)

    def loss():
        layer.forward(x)
        return float(np.sum(layer.output_array * g))

    return Gradients(loss, {"input_array": x}, {"input_array": layer.delta_array.copy()})


def pool_twin(layer, x):
    twin = ref_cnn.MaxPoolingLayer(*POOL_ARGS)
    twin.forward(np.asarray(x, np.float64))
    return twin.output_array


def sample_bad(forward, name, shape):
    """The bad inputs of a tutorial method taking one array `name` of `shape`."""
    return [
        Bad(f"{name} of the wrong shape", lambda obj, x: forward(obj, x[..., :-1]), ValueError, f"{name} must "),
        Bad(f"{name} holds NaN", lambda obj, x: forward(obj, with_value(x, np.nan)), ValueError,
            f"{name} contains NaN"),
        Bad(f"{name} of strings", lambda obj, x: forward(obj, x.astype(str)), TypeError,
            f"{name} must hold real numbers"),
    ]


TUTORIAL_CASES = [
    perceptron_case("tutorial.Perceptron", Perceptron, (4, f), f, None,
                    no_gradient="the step activation has no gradient (the perceptron rule is not gradient descent)"),
    perceptron_case("tutorial.LinearUnit", LinearUnit, (4,), lambda z: z, linear_unit_gradients),
    Case(
        name="tutorial.bp.Network", cls=bp.Network,
        build=lambda dtype, seed: bp.Network([3, 4, 2], rng=seed),
        inputs=lambda rng, dtype: ((0.05 + 0.9 * rng.random((5, 3))).astype(dtype),),
        forward=lambda net, inputs: np.array([net.predict(row) for row in inputs]),
        twin=bp_twin, gradients=bp_gradients, params=lambda net: {"weights": net._weights},
        train_step=lambda net, inputs: net.train(np.random.default_rng(7).random((len(inputs), 2)), inputs, 0.5, 1),
        float64_only=True,
        bad=sample_bad(lambda net, x: net.predict(x[0]), "sample", (3,)) + [
            Bad("labels holds inf", lambda net, x: net.train(np.full((5, 2), np.inf), x, 0.5, 1), ValueError,
                "labels contains NaN or inf"),
            Bad("epoch negative", lambda net, x: net.train(np.zeros((5, 2)), x, 0.5, -1), ValueError,
                "epoch must be >= 0"),
        ]),
    Case(
        name="tutorial.fc.FullConnectedLayer", cls=fc.FullConnectedLayer,
        build=lambda dtype, seed: fc.FullConnectedLayer(4, 3, SigmoidActivator(), rng=seed),
        inputs=lambda rng, dtype: (column(rng, 4).astype(dtype),),
        forward=lambda layer, x: (layer.forward(x), layer.output.copy())[1],
        twin=fc_layer_twin, gradients=fc_layer_gradients, params=lambda layer: {"W": layer.W, "b": layer.b},
        train_step=fc_layer_train_step, float64_only=True,
        bad=sample_bad(lambda layer, x: layer.forward(x), "input_array", (4, 1)) + [
            Bad("backward before forward", lambda layer, x: layer.backward(np.ones((3, 1))), RuntimeError,
                "backward called before forward"),
            Bad("delta_array of the wrong shape", lambda layer, x: (layer.forward(x), layer.backward(np.ones((2, 1)))),
                ValueError, r"delta_array must have shape \(3, 1\)"),
            Bad("learning_rate NaN", lambda layer, x: layer.update(float("nan")), ValueError,
                "learning_rate must be finite"),
        ]),
    Case(
        name="tutorial.fc.Network", cls=fc.Network,
        build=lambda dtype, seed: fc.Network([4, 5, 3], rng=seed),
        inputs=lambda rng, dtype: (column(rng, 4).astype(dtype),),
        forward=lambda net, x: net.predict(x).copy(),
        twin=fc_network_twin, gradients=fc_network_gradients,
        params=lambda net: {f"layers[{i}].{n}": getattr(layer, n) for i, layer in enumerate(net.layers) for n in "Wb"},
        train_step=lambda net, x: net.train([fc_network_target(net)], [x], 0.5, 1), float64_only=True,
        bad=sample_bad(lambda net, x: net.predict(x), "input_array", (4, 1)) + [
            Bad("label of the wrong shape", lambda net, x: (net.predict(x), net.calc_gradient(np.ones((2, 1)))),
                ValueError, r"label must have shape \(3, 1\)"),
            Bad("data_set holds NaN", lambda net, x: net.train([np.ones((3, 1))], [with_value(x, np.nan)], 0.1, 1),
                ValueError, "data_set contains NaN"),
        ]),
    Case(
        name="tutorial.cnn.ConvLayer", cls=cnn.ConvLayer,
        build=lambda dtype, seed: cnn.ConvLayer(*CONV_ARGS, SigmoidActivator(), 0.1, rng=seed),
        inputs=lambda rng, dtype: (rng.standard_normal((2, 4, 5)).astype(dtype),),
        forward=lambda layer, x: (layer.forward(x), layer.output_array.copy())[1],
        twin=conv_twin, gradients=conv_gradients, params=lambda layer: {"weights": layer._weights, "bias": layer._bias},
        train_step=conv_train_step, float64_only=True,
        bad=sample_bad(lambda layer, x: layer.forward(x), "input_array", (2, 4, 5)) + [
            Bad("sensitivity_array of the wrong shape",
                lambda layer, x: layer.backward(x, np.ones((2, 1, 1)), IdentityActivator()), ValueError,
                r"sensitivity_array must have shape \(2, 3, 3\)"),
            Bad("sensitivity_array holds NaN",
                lambda layer, x: layer.backward(x, np.full((2, 3, 3), np.nan), IdentityActivator()), ValueError,
                "sensitivity_array contains NaN"),
            Bad("activator not a tutorial activator", lambda layer, x: layer.backward(x, np.ones((2, 3, 3)), np.tanh),
                TypeError, "activator must be one of"),
            Bad("learning_rate negative", lambda layer, x: cnn.ConvLayer(*CONV_ARGS, SigmoidActivator(), -0.1),
                ValueError, "learning_rate must be >= 0"),
        ]),
    Case(
        name="tutorial.cnn.MaxPoolingLayer", cls=cnn.MaxPoolingLayer,
        build=lambda dtype, seed: cnn.MaxPoolingLayer(*POOL_ARGS),
        inputs=lambda rng, dtype: (distinct(rng, (2, 4, 5)).astype(dtype),),
        forward=lambda layer, x: (layer.forward(x), layer.output_array.copy())[1],
        twin=pool_twin, gradients=pool_gradients, params=lambda layer: {}, float64_only=True, seeded=False,
        bad=sample_bad(lambda layer, x: layer.forward(x), "input_array", (2, 4, 5)) + [
            Bad("sensitivity_array holds inf", lambda layer, x: layer.backward(x, np.full((2, 3, 4), np.inf)),
                ValueError, "sensitivity_array contains NaN or inf"),
        ]),
]

CASES = NN_CASES + TUTORIAL_CASES

# Classes of fastnn.nn and fastnn.tutorial that are not registry entries, and why.
NOT_LAYERS = {
    "fastnn.nn.base.Layer": "the abstract base class",
    "fastnn.nn.activations.Activation": "the base of ReLU, Sigmoid, Tanh, Identity",
    "fastnn.nn.pooling._Pool2D": "the base of MaxPool2D and AvgPool2D",
    "fastnn.tutorial.cnn.Filter": "the parameters of one ConvLayer filter, checked through ConvLayer",
    "fastnn.tutorial.bp.Node": "a view of one node of bp.Network",
    "fastnn.tutorial.bp.ConstNode": "a view of a bias node of bp.Network",
    "fastnn.tutorial.bp.Layer": "a view of one layer of bp.Network",
    "fastnn.tutorial.bp.Connection": "a view of one connection of bp.Network",
    "fastnn.tutorial.bp.Connections": "the list of bp.Network's connection views",
    "fastnn.tutorial.bp.Normalizer": "the tutorial's 8-bit encoding of the bp example's data",
    "fastnn.tutorial.activators._Activator": "the base of the activators",
    "fastnn.tutorial.activators.ReluActivator": "an activation function, checked through the layers and test_activators",
    "fastnn.tutorial.activators.IdentityActivator": "an activation function, checked through the layers and test_activators",
    "fastnn.tutorial.activators.SigmoidActivator": "an activation function, checked through the layers and test_activators",
    "fastnn.tutorial.activators.TanhActivator": "an activation function, checked through the layers and test_activators",
}
