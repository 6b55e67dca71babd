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
from fastnn.reference import lstm as ref_lstm
from fastnn.reference import perceptron as ref_perceptron
from fastnn.reference import recursive as ref_recursive
from fastnn.reference import rnn as ref_rnn
from fastnn.tutorial import bp, cnn, fc, lstm, recursive, rnn
from fastnn.tutorial.activators import IdentityActivator, SigmoidActivator, TanhActivator
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


def forward_of(layer, x):
    return layer.forward(x)


def nn_gradients(call):
    """Gradients of ``sum(call(layer, x) * g)`` for x and every parameter of a batch-first layer."""
    def gradients(layer, x):
        out = call(layer, x)
        g = loss_weights(out.shape, out.dtype)
        analytic = {"x": layer.backward(g).copy()}
        analytic.update({name: grad.copy() for name, grad in layer.grads.items()})
        return Gradients(lambda: float(np.sum(call(layer, x) * g)), {"x": x, **layer.params}, analytic)
    return gradients


def nn_train_step(call):
    """One plain SGD step on ``sum(call(layer, x) * g)``."""
    def train_step(layer, x):
        out = call(layer, x)
        layer.backward(loss_weights(out.shape, out.dtype))
        assert nn.SGD(lr=0.05).step([layer])
    return train_step


def with_value(x, value):
    """A copy of `x` with its first element set to `value`."""
    x = np.array(x)
    x.reshape(-1)[0] = value
    return x


def nn_bad_inputs(call, name, sample_rank, wrong_sample, skip):
    """The bad inputs every batch-first layer refuses (but those labelled in `skip`); see nn_case."""
    def grad_of_another_shape(layer, x):
        out_shape = np.shape(call(layer, x))
        return layer.backward(np.ones(out_shape[:-1] + (out_shape[-1] + 1,)))

    bad = [
        Bad("x holds NaN", lambda layer, x: call(layer, with_value(x, np.nan)), ValueError, f"{name} contains NaN"),
        Bad("x holds inf", lambda layer, x: call(layer, with_value(x, -np.inf)), ValueError,
            f"{name} contains NaN or inf"),
        Bad("x holds no sample", lambda layer, x: call(layer, x[:0]), ValueError,
            rf"{name} .*(at least one sample|N >= 1)"),
        Bad("x of strings", lambda layer, x: call(layer, x.astype(str)), TypeError, f"{name} must hold real numbers"),
        Bad("x of complex numbers", lambda layer, x: call(layer, x + 1j), TypeError, f"{name} must hold real numbers"),
        Bad("x of booleans", lambda layer, x: call(layer, x > 0), TypeError, f"{name} must hold real numbers"),
        Bad("backward before forward", lambda layer, x: layer.backward(np.ones_like(x)), RuntimeError,
            "backward called before forward"),
        Bad("grad_output of another shape", grad_of_another_shape, ValueError, "grad_output must have shape"),
        Bad("grad_output holds NaN", lambda layer, x: layer.backward(with_value(call(layer, x), np.nan)),
            ValueError, "grad_output contains NaN"),
    ]
    if sample_rank is not None:
        bad.append(Bad("x without the batch axis", lambda layer, x: call(layer, x[0]), ValueError, f"{name} must"))
    if wrong_sample is not None:
        bad.append(Bad("x with samples of the wrong shape", lambda layer, x: call(layer, wrong_sample(x)),
                       ValueError, f"{name} must have shape"))
    return [b for b in bad if b.label not in skip]


def nn_case(name, make, sample_shape, twin, batch=5, inputs=None, call=forward_of, x_name="x", sample_rank=None,
            wrong_sample=None, skip=(), bad=()):
    """A registry entry for a batch-first fastnn.nn layer.

    `make(dtype, seed)` builds it, `twin(layer, x)` computes its output in
    float64 from its parameters; inputs are ``(batch, *sample_shape)``
    standard normal values unless `inputs(rng, shape)` draws them.
    `call(layer, x)` runs the forward pass (``layer.forward(x)`` unless the
    layer takes something built from x), and `x_name` is what its errors
    call x.  `sample_rank` (for layers that need a fixed rank) adds the "x
    without the batch axis" bad input, `wrong_sample(x)` a batch of samples
    of a shape the layer refuses; `skip` drops common bad inputs that do not
    apply, `bad` adds the layer's own.
    """
    draw = inputs or (lambda rng, shape: rng.standard_normal(shape))
    example = make(np.float64, 0)
    return Case(
        name=name,
        cls=type(example),
        build=make,
        inputs=lambda rng, dtype: (draw(rng, (batch, *sample_shape)).astype(dtype),),
        forward=lambda layer, x: np.array(call(layer, x), copy=True),
        twin=twin,
        gradients=nn_gradients(call),
        params=lambda layer: layer.params,
        train_step=nn_train_step(call) if example.params else None,
        bad=nn_bad_inputs(call, x_name, sample_rank, wrong_sample, skip) + list(bad),
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


def rows(columns):
    """A list of ``(n, 1)`` columns as the rows of a ``(T, n)`` array."""
    return np.array([np.ravel(c) for c in columns])


def rnn_twin(layer, x):
    """Each sequence through the twin; BiRNN's second half reads the sequence backwards."""
    halves = [""] + (["_reverse"] if isinstance(layer, nn.BiRNN) else [])
    activator = ref_batched_activators[layer.activation]
    outputs = []
    for sequence in np.asarray(x, np.float64):
        states = [rows(ref_rnn.sequence_forward(list(sequence), *(np.asarray(layer.params[f"{p}{half}"], np.float64).T
                                                                     for p in ("weight_ih", "weight_hh")),
                                                layer.params[f"bias{half}"], activator, reverse=half == "_reverse"))
                  for half in halves]
        outputs.append(np.concatenate(states, axis=1))
    return np.stack(outputs)


def lstm_twin_params(weight_ih, weight_hh, bias):
    """The tutorial's twelve LSTM arrays from nn.LSTM's packed input-major ones (gate blocks i, f, c, o)."""
    hidden = weight_hh.shape[0]
    params = {}
    for k, gate in enumerate("ifco"):
        cols = slice(k * hidden, (k + 1) * hidden)
        params[f"W{gate}x"] = np.asarray(weight_ih[:, cols], np.float64).T
        params[f"W{gate}h"] = np.asarray(weight_hh[:, cols], np.float64).T
        params[f"b{gate}"] = np.asarray(bias[cols], np.float64).reshape(-1, 1)
    return params


def lstm_twin(layer, x):
    params = lstm_twin_params(layer.params["weight_ih"], layer.params["weight_hh"], layer.params["bias"])
    return np.stack([rows(step["h"] for step in ref_lstm.sequence_forward(params, list(sequence)))
                     for sequence in np.asarray(x, np.float64)])


TREES = [((0, 1), 2), (3, (4, 5))]  # leaves are rows of the leaf array


def tree_call(layer, leaves):
    return layer.forward(nn.TreeBatch(TREES, leaves))


def tree_twin(layer, leaves):
    weight = np.asarray(layer.params["weight"], np.float64).T
    return np.stack([ref_recursive.tree_forward(tree, np.asarray(leaves, np.float64), weight, layer.params["bias"],
                                                TanhActivator())[:, 0] for tree in TREES])


ref_batched_activators = {"tanh": TanhActivator(), "sigmoid": SigmoidActivator(), "identity": IdentityActivator()}

SEQUENCE_BAD = [
    Bad("no time step", lambda layer, x: layer.forward(x[:, :0]), ValueError, "x must hold at least one time step"),
    Bad("return_sequences not a bool", lambda layer, x: nn.RNN(3, 4, return_sequences="yes"), TypeError,
        "return_sequences must be True or False"),
]

NN_CASES += [
    nn_case("nn.RNN", lambda dtype, seed: nn.RNN(3, 4, activation="sigmoid", dtype=dtype, rng=seed), (4, 3), rnn_twin,
            batch=3, sample_rank=2, wrong_sample=lambda x: x[:, :, :2],
            bad=SEQUENCE_BAD + [Bad("activation unknown", lambda layer, x: nn.RNN(3, 4, activation="softmax"),
                                    ValueError, "activation must be one of")]),
    nn_case("nn.BiRNN", lambda dtype, seed: nn.BiRNN(3, 2, dtype=dtype, rng=seed), (4, 3), rnn_twin,
            batch=3, sample_rank=2, wrong_sample=lambda x: x[:, :, :2], bad=SEQUENCE_BAD),
    nn_case("nn.LSTM", lambda dtype, seed: nn.LSTM(3, 2, dtype=dtype, rng=seed), (4, 3), lstm_twin,
            batch=3, sample_rank=2, wrong_sample=lambda x: x[:, :, :2],
            bad=SEQUENCE_BAD + [Bad("hidden_size 0", lambda layer, x: nn.LSTM(3, 0), ValueError,
                                    "hidden_size must be >= 1")]),
    nn_case("nn.TreeRNN", lambda dtype, seed: nn.TreeRNN(3, dtype=dtype, rng=seed), (3,), tree_twin, batch=6,
            call=tree_call, x_name="leaves", sample_rank=1, wrong_sample=lambda x: x[:, :2], skip={"x holds no sample"},
            bad=[Bad("a leaf row missing", lambda layer, x: tree_call(layer, x[:-1]), ValueError,
                     "leaf row 5 is out of range for leaves with 5 rows"),
                 Bad("a leaf row used by no tree", lambda layer, x: tree_call(layer, np.vstack([x, x[:1]])),
                     ValueError, r"leaves rows \[6\] are used by no tree"),
                 Bad("an array instead of a TreeBatch", lambda layer, x: layer.forward(x), TypeError,
                     "TreeRNN.forward takes a TreeBatch"),
                 Bad("trees of three children", lambda layer, x: layer.forward(nn.TreeBatch([(0, 1, 2), (3, 4, 5)], x,
                                                                                             child_count=3)),
                     ValueError, "the batch's trees have 3 children per node, this layer combines 2")]),
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


def output_of(layer, x, attribute):
    """Run ``layer.forward(x)``, the tutorial's way, and return a copy of the attribute it sets."""
    layer.forward(x)
    return getattr(layer, attribute).copy()


def fc_layer_backward(layer, x):
    """Forward, then backward for E = sum(output * g): backward takes dE/dz = g * y(1-y); returns g."""
    layer.forward(x)
    g = loss_weights(layer.output.shape, np.float64)
    layer.backward(g * layer.output * (1 - layer.output))
    return g


def fc_layer_gradients(layer, x):
    """The layer's delta is dE/dx times the sigmoid derivative at x (the tutorial's formula for the layer below)."""
    g = fc_layer_backward(layer, x)
    analytic = {"input": layer.delta / (x * (1 - x)), "W": layer.W_grad.copy(), "b": layer.b_grad.copy()}
    return Gradients(lambda: float(np.sum(output_of(layer, x, "output") * g)),
                     {"input": x, "W": layer.W, "b": layer.b}, analytic)


def fc_layer_train_step(layer, x):
    fc_layer_backward(layer, x)
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


# input_width, input_height, channel_number, filter_width, filter_height, filter_number, zero_padding, stride
CONV_ARGS = (5, 4, 2, 3, 2, 2, 1, 2)


def conv_backward(layer, x):
    """Forward, then backward for E = sum(output_array * g) with the sensitivity g * y(1-y); returns g."""
    layer.forward(x)
    g = loss_weights(layer.output_array.shape, np.float64)
    layer.backward(x, g * layer.output_array * (1 - layer.output_array), IdentityActivator())
    return g


def conv_gradients(layer, x):
    """With the identity as the activator below, delta_array is dE/dx."""
    g = conv_backward(layer, x)
    analytic = {"input_array": layer.delta_array.copy(),
                "weights": np.stack([flt.weights_grad for flt in layer.filters]),
                "bias": np.array([flt.bias_grad for flt in layer.filters])}
    return Gradients(lambda: float(np.sum(output_of(layer, x, "output_array") * g)),
                     {"input_array": x, "weights": layer._weights, "bias": layer._bias}, analytic)


def conv_train_step(layer, x):
    conv_backward(layer, x)
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
    return Gradients(lambda: float(np.sum(output_of(layer, x, "output_array") * g)), {"input_array": x},
                     {"input_array": layer.delta_array.copy()})


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
        forward=lambda layer, x: output_of(layer, x, "output"),
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
        forward=lambda layer, x: output_of(layer, x, "output_array"),
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
        forward=lambda layer, x: output_of(layer, x, "output_array"),
        twin=pool_twin, gradients=pool_gradients, params=lambda layer: {}, float64_only=True, seeded=False,
        bad=sample_bad(lambda layer, x: layer.forward(x), "input_array", (2, 4, 5)) + [
            Bad("sensitivity_array holds inf", lambda layer, x: layer.backward(x, np.full((2, 3, 4), np.inf)),
                ValueError, "sensitivity_array contains NaN or inf"),
        ]),
]

def run_sequence(layer, xs):
    """From a fresh state, one forward step per row of `xs` (T, F); the outputs of the steps as rows."""
    layer.reset_state()
    for x in xs:
        layer.forward(x)
    return rows(layer.h_list[1:] if isinstance(layer, (lstm.LstmLayer, ref_lstm.LstmLayer)) else layer.state_list[1:])


RECURRENT_WEIGHTS = {rnn.RecurrentLayer: ("U", "W"), rnn.BiRecurrentLayer: ("U", "W", "U_back", "W_back"),
                     lstm.LstmLayer: ref_lstm.NAMES}


def sequence_errors(layer, out, g):
    """The per-step errors backward takes for E = sum(out * g): on the weighted inputs, or on h for the LSTM."""
    if isinstance(layer, lstm.LstmLayer):
        return [column.reshape(-1, 1) for column in g]
    return [(gt * layer.activator.backward(ot)).reshape(-1, 1) for gt, ot in zip(g, out)]


def sequence_backward(layer, xs):
    out = run_sequence(layer, xs)
    g = loss_weights(out.shape, np.float64)
    errors = sequence_errors(layer, out, g)
    if isinstance(layer, lstm.LstmLayer):
        layer.backward(None, errors)
    else:
        layer.backward(errors)
    return g


def sequence_gradients(layer, xs):
    g = sequence_backward(layer, xs)
    names = RECURRENT_WEIGHTS[type(layer)]
    return Gradients(lambda: float(np.sum(run_sequence(layer, xs) * g)), {n: getattr(layer, n) for n in names},
                     {n: np.array(getattr(layer, f"{n}_grad"), copy=True) for n in names})


def sequence_train_step(layer, xs):
    sequence_backward(layer, xs)
    layer.update()


def sequence_twin(make_twin):
    def twin(layer, xs):
        other = make_twin(layer)
        for name in RECURRENT_WEIGHTS[type(layer)]:
            setattr(other, name, np.array(getattr(layer, name), copy=True))
        return run_sequence(other, np.asarray(xs, np.float64))
    return twin


def sequence_bad(name, width):
    """The bad inputs of a tutorial sequence layer whose step input is called `name`."""
    return [
        Bad(f"{name} of the wrong shape", lambda layer, xs: layer.forward(xs[0][:2]), ValueError,
            rf"{name} must have shape \(3, 1\)"),
        Bad(f"{name} holds NaN", lambda layer, xs: run_sequence(layer, with_value(xs, np.nan)), ValueError,
            f"{name} (of step 1 )?contains NaN"),
        Bad(f"{name} of strings", lambda layer, xs: layer.forward(xs[0].astype(str)), TypeError,
            f"{name} must hold real numbers"),
        Bad("backward before forward", lambda layer, xs: sequence_backward(type(layer)(3, 2, 0.1), xs[:0])
            if isinstance(layer, lstm.LstmLayer) else layer.backward(np.zeros((width, 1))), RuntimeError,
            "backward called before forward"),
        Bad("one error for each of too few steps", lambda layer, xs: (run_sequence(layer, xs), layer.backward(
            *([None] if isinstance(layer, lstm.LstmLayer) else []), [np.zeros((width, 1))] * 2)), ValueError,
            rf"must be one \({width}, 1\) array or a list of 4 \(one per step\), got a list of 2"),
        Bad("update before backward", lambda layer, xs: (run_sequence(layer, xs), layer.update()), RuntimeError,
            "update called before backward"),
    ]


def recursive_tree(layer, module, leaves):
    """The tree ((0, 1), (2, 3)) over the rows of `leaves`, built bottom-up by forward; returns the leaf nodes."""
    nodes = [module.TreeNode(np.asarray(row, np.float64).reshape(-1, 1)) for row in leaves]
    layer.forward(nodes[0], nodes[1])
    left = layer.root
    layer.forward(nodes[2], nodes[3])
    layer.forward(left, layer.root)
    return nodes


def recursive_forward(layer, leaves):
    recursive_tree(layer, recursive, leaves)
    return layer.root.data[:, 0].copy()


def recursive_backward(layer, leaves):
    nodes = recursive_tree(layer, recursive, leaves)
    g = loss_weights((layer.node_width,), np.float64)
    layer.backward((g * layer.activator.backward(layer.root.data[:, 0])).reshape(-1, 1))
    return g, nodes


def recursive_gradients(layer, leaves):
    """E = sum(root * g); backward takes dE/dnet of the root, and each leaf's delta is dE/d(its data)."""
    g, nodes = recursive_backward(layer, leaves)
    analytic = {"leaves": rows(node.delta for node in nodes), "W": layer.W_grad.copy(), "b": layer.b_grad.copy()}
    return Gradients(lambda: float(np.sum(recursive_forward(layer, leaves) * g)),
                     {"leaves": leaves, "W": layer.W, "b": layer.b}, analytic)


def recursive_train_step(layer, leaves):
    recursive_backward(layer, leaves)
    layer.update()


def recursive_twin(layer, leaves):
    other = ref_recursive.RecursiveLayer(layer.node_width, layer.child_count, TanhActivator(), 0.1)
    other.W, other.b = np.array(layer.W, copy=True), np.array(layer.b, copy=True)
    recursive_tree(other, ref_recursive, np.asarray(leaves, np.float64))
    return other.root.data[:, 0]


def tree_of_leaves(leaves):
    return [recursive.TreeNode(np.asarray(row, np.float64).reshape(-1, 1)) for row in leaves]


TUTORIAL_CASES += [
    Case(name="tutorial.rnn.RecurrentLayer", cls=rnn.RecurrentLayer,
         build=lambda dtype, seed: rnn.RecurrentLayer(3, 4, TanhActivator(), 0.1, rng=seed),
         inputs=lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype),),
         forward=run_sequence, twin=sequence_twin(lambda layer: ref_rnn.RecurrentLayer(3, 4, TanhActivator(), 0.1)),
         gradients=sequence_gradients, params=lambda layer: {n: getattr(layer, n) for n in ("U", "W")},
         train_step=sequence_train_step, float64_only=True,
         bad=sequence_bad("input_array", 4) + [
             Bad("learning_rate negative", lambda layer, xs: rnn.RecurrentLayer(3, 4, TanhActivator(), -1), ValueError,
                 "learning_rate must be >= 0")]),
    Case(name="tutorial.rnn.BiRecurrentLayer", cls=rnn.BiRecurrentLayer,
         build=lambda dtype, seed: rnn.BiRecurrentLayer(3, 2, TanhActivator(), 0.1, rng=seed),
         inputs=lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype),),
         forward=run_sequence, twin=sequence_twin(lambda layer: ref_rnn.BiRecurrentLayer(3, 2, TanhActivator(), 0.1)),
         gradients=sequence_gradients,
         params=lambda layer: {n: getattr(layer, n) for n in ("U", "W", "U_back", "W_back")},
         train_step=sequence_train_step, float64_only=True,
         bad=sequence_bad("input_array", 4) + [
             Bad("activator not a tutorial activator", lambda layer, xs: rnn.BiRecurrentLayer(3, 2, np.tanh, 0.1),
                 TypeError, "activator must be one of")]),
    Case(name="tutorial.lstm.LstmLayer", cls=lstm.LstmLayer,
         build=lambda dtype, seed: lstm.LstmLayer(3, 2, 0.1, rng=seed),
         inputs=lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype),),
         forward=run_sequence, twin=sequence_twin(lambda layer: ref_lstm.LstmLayer(3, 2, 0.1)),
         gradients=sequence_gradients, params=lambda layer: {n: getattr(layer, n) for n in ref_lstm.NAMES},
         train_step=sequence_train_step, float64_only=True,
         bad=sequence_bad("x", 2) + [
             Bad("state_width 0", lambda layer, xs: lstm.LstmLayer(3, 0, 0.1), ValueError,
                 "state_width must be >= 1")]),
    Case(name="tutorial.recursive.RecursiveLayer", cls=recursive.RecursiveLayer,
         build=lambda dtype, seed: recursive.RecursiveLayer(3, 2, TanhActivator(), 0.1, rng=seed),
         inputs=lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype),),
         forward=recursive_forward, twin=recursive_twin, gradients=recursive_gradients,
         params=lambda layer: {"W": layer.W, "b": layer.b}, train_step=recursive_train_step, float64_only=True,
         bad=[
             Bad("one child", lambda layer, x: layer.forward(*tree_of_leaves(x[:1])), ValueError,
                 "forward takes 2 children, got 1"),
             Bad("a child not a TreeNode", lambda layer, x: layer.forward(x[0], x[1]), TypeError,
                 r"children\[0\] must be a TreeNode"),
             Bad("child data of the wrong shape", lambda layer, x: layer.forward(*tree_of_leaves(x[:2, :2])),
                 ValueError, r"children\[0\].data must have shape \(3, 1\)"),
             Bad("child data holds NaN", lambda layer, x: (layer.forward(*tree_of_leaves(with_value(x[:2], np.nan))),
                                                          layer.root.data),  # parents are computed when read
                 ValueError, r"children\[0\].data contains NaN"),
             Bad("backward before forward", lambda layer, x: layer.backward(np.zeros((3, 1))), RuntimeError,
                 "backward called before forward"),
             Bad("parent_delta of the wrong shape", lambda layer, x: (recursive_forward(layer, x),
                                                                     layer.backward(np.zeros((2, 1)))),
                 ValueError, r"parent_delta must have shape \(3, 1\)"),
             Bad("update before backward", lambda layer, x: (recursive_forward(layer, x), layer.update()),
                 RuntimeError, "update called before backward"),
         ]),
]


CASES = NN_CASES + TUTORIAL_CASES

ACTIVATION_FUNCTION = "an activation function, checked through the layers and in test_activators"

# Classes of fastnn.nn and fastnn.tutorial that are not registry entries, and why.
NOT_LAYERS = {
    "fastnn.nn.base.Layer": "the abstract base class",
    "fastnn.nn.activations.Activation": "the base of ReLU, Sigmoid, Tanh, Identity",
    "fastnn.nn.pooling._Pool2D": "the base of MaxPool2D and AvgPool2D",
    "fastnn.nn.recurrent._Sequence": "the base of RNN, BiRNN and LSTM",
    "fastnn.tutorial.rnn._Recurrent": "the base of RecurrentLayer and BiRecurrentLayer",
    "fastnn.tutorial.rnn.StepBuffers": "storage of the recorded steps of the tutorial's rnn and lstm layers",
    "fastnn.tutorial.rnn.StepRecorder": "the base of the tutorial's rnn and lstm layers (recorded steps)",
    "fastnn.tutorial.recursive.TreeNode": "a node of the tree RecursiveLayer builds, checked through it",
    "fastnn.tutorial.recursive._Parent": "a TreeNode made by RecursiveLayer.forward, checked through it",
    "fastnn.tutorial.recursive._Forest": "RecursiveLayer's node tables, checked through it",
    "fastnn.tutorial.cnn.Filter": "the parameters of one ConvLayer filter, checked through ConvLayer",
    "fastnn.tutorial.bp.Node": "a view of one node of bp.Network",
    "fastnn.tutorial.bp.ConstNode": "a view of a bias node of bp.Network",
    "fastnn.tutorial.bp.Layer": "a view of one layer of bp.Network",
    "fastnn.tutorial.bp.Connection": "a view of one connection of bp.Network",
    "fastnn.tutorial.bp.Connections": "the list of bp.Network's connection views",
    "fastnn.tutorial.bp.Normalizer": "the tutorial's 8-bit encoding of the bp example's data",
    "fastnn.tutorial.activators._Activator": "the base of the activators",
    "fastnn.tutorial.activators.ReluActivator": ACTIVATION_FUNCTION,
    "fastnn.tutorial.activators.IdentityActivator": ACTIVATION_FUNCTION,
    "fastnn.tutorial.activators.SigmoidActivator": ACTIVATION_FUNCTION,
    "fastnn.tutorial.activators.TanhActivator": ACTIVATION_FUNCTION,
}
