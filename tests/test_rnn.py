"""The recurrent chapter: kernels vs the reference twin, BPTT gradient checks, tutorial and nn fronts."""

import numpy as np
import pytest
from helpers import assert_close, assert_layer_gradients, assert_same_for_thread_counts, central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.kernels import activation as codes
from fastnn.kernels import recurrent as kernels
from fastnn.nn import RNN, BiRNN
from fastnn.reference import rnn as ref
from fastnn.tutorial.activators import IdentityActivator, ReluActivator, SigmoidActivator, TanhActivator
from fastnn.tutorial.rnn import BiRecurrentLayer, RecurrentLayer

# Tolerances for analytic gradients against central differences.
FD = dict(rtol=1e-6, atol=1e-8)

def rows(columns):
    """Stack ``(n, 1)`` columns into the rows of an ``(T, n)`` array."""
    return np.array([np.ravel(c) for c in columns])


ACTIVATORS = {codes.TANH: TanhActivator(), codes.SIGMOID: SigmoidActivator(),
              codes.RELU: ReluActivator(), codes.IDENTITY: IdentityActivator()}


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), steps=st.sampled_from([1, 2, 7]), features=st.integers(1, 5), hidden=st.integers(1, 6),
       code=st.sampled_from(sorted(ACTIVATORS)), reverse=st.booleans(), grad_is_net=st.booleans(),
       seed=st.integers(0, 2**31))
def test_kernels_match_reference(n, steps, features, hidden, code, reverse, grad_is_net, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps, features))
    U, W, b = rng.normal(size=(hidden, features)), rng.normal(size=(hidden, hidden)) * 0.5, rng.normal(size=hidden)
    states = np.empty((n, steps, hidden))
    # The serial kernels: the parallel ones share their code and are checked against them below.
    kernels.rnn_forward_serial(x, U.T.copy(), W.T.copy(), b, code, reverse, np.empty((0, 1, hidden)), states)
    grad = rng.normal(size=states.shape)
    deltas, grad_x = np.empty_like(states), np.empty_like(x)
    g_ih, g_hh, g_b = np.empty((features, hidden)), np.empty((hidden, hidden)), np.empty(hidden)
    kernels.rnn_backward_serial(x, states, U.T.copy(), W.T.copy(), code, reverse, grad, grad_is_net,
                                deltas, grad_x, g_ih, g_hh, g_b)
    activator = ACTIVATORS[code]
    sums = [np.zeros((hidden, features)), np.zeros((hidden, hidden)), np.zeros(hidden)]
    for i in range(n):
        expected = ref.sequence_forward(list(x[i]), U, W, b, activator, reverse)
        assert_close(states[i], rows(expected), what="states")
        d, gx, gu, gw, gb = ref.sequence_backward(list(x[i]), expected, U, W, activator, list(grad[i]),
                                                  grad_is_net, reverse)
        assert_close(deltas[i], rows(d), what="deltas")
        assert_close(grad_x[i], rows(gx), what="grad_x")
        for total, part in zip(sums, (gu, gw, gb[:, 0])):
            total += part
    assert_close(g_ih.T, sums[0], what="dU")
    assert_close(g_hh.T, sums[1], what="dW")
    assert_close(g_b, sums[2], what="db")


def test_forward_continues_from_an_initial_state():
    rng = np.random.default_rng(0)
    x, w_ih, w_hh, b = rng.normal(size=(3, 7, 2)), rng.normal(size=(2, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    whole, first, rest = np.empty((3, 7, 4)), np.empty((3, 3, 4)), np.empty((3, 4, 4))
    kernels.rnn_forward_serial(x, w_ih, w_hh, b, codes.TANH, False, np.empty((0, 1, 4)), whole)
    kernels.rnn_forward_serial(x[:, :3].copy(), w_ih, w_hh, b, codes.TANH, False, np.zeros((3, 1, 4)), first)
    kernels.rnn_forward_serial(x[:, 3:].copy(), w_ih, w_hh, b, codes.TANH, False, first[:, 2:].copy(), rest)
    assert_close(np.concatenate([first, rest], axis=1), whole, what="states in two parts")


def _tutorial_pair(cls, ref_cls, activator, seed, features=3, hidden=4):
    rng = np.random.default_rng(seed)
    mine, theirs = cls(features, hidden, activator, 0.05, rng=seed), ref_cls(features, hidden, activator, 0.05)
    names = ("U", "W") if cls is RecurrentLayer else ("U", "W", "U_back", "W_back")
    for name in names:
        value = rng.normal(size=getattr(mine, name).shape) * 0.6
        setattr(mine, name, value)
        setattr(theirs, name, value.copy())
    return mine, theirs, [rng.normal(size=(features, 1)) for _ in range(7)], rng


@pytest.mark.parametrize("activator", [TanhActivator(), ReluActivator()])
def test_tutorial_layer_matches_reference_and_trains_u(activator):
    mine, theirs, xs, rng = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, activator, 1)
    for x in xs:
        mine.forward(x)
        theirs.forward(x)
    assert mine.times == 7 and len(mine.state_list) == 8
    for a, b in zip(mine.state_list, theirs.state_list):
        assert_close(a, b, what="state_list")
    sensitivity = rng.normal(size=(4, 1))
    mine.backward(sensitivity, activator)
    theirs.backward(sensitivity)
    for a, b in zip(mine.delta_list, theirs.delta_list):
        assert_close(a, b, what="delta_list")
    assert_close(mine.W_grad, theirs.W_grad, what="W_grad")
    assert_close(mine.gradient, theirs.W_grad, what="gradient")
    assert_close(sum(mine.gradient_list), mine.gradient, what="sum of gradient_list")
    assert_close(mine.U_grad, theirs.U_grad, what="U_grad")
    before = mine.U.copy()
    mine.update()
    theirs.update()
    assert not np.allclose(mine.U, before), "update() must train U"
    assert_close(mine.U, theirs.U, what="U after update")
    assert_close(mine.W, theirs.W, what="W after update")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # in the twin's products
@pytest.mark.parametrize("steps", [1, 7])
def test_tutorial_inputs_whose_sum_overflows_are_finite_all_the_same(steps):
    # The NaN check of the inputs must not fold into (sum x) * 0, which 1e308 + 1e308 makes NaN.
    mine, theirs, xs, rng = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, TanhActivator(), 2)
    xs[0] = np.array([[1e308], [1e308], [0.0]])
    for x in xs[:steps]:
        mine.forward(x)
        theirs.forward(x)
    sensitivity = rng.normal(size=(4, 1))
    mine.backward(sensitivity, TanhActivator())
    theirs.backward(sensitivity)
    for a, b in zip(mine.state_list, theirs.state_list, strict=True):
        assert_close(a, b, what="state_list")
    assert_close(mine.U_grad, theirs.U_grad, what="U_grad")
    assert_close(mine.W_grad, theirs.W_grad, what="W_grad")


def test_tutorial_times_set_to_zero_starts_a_new_sequence():
    mine, theirs, xs, _ = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, TanhActivator(), 3)
    mine.forward(xs[0])
    mine.times = 0  # what the tutorial's reset_state writes
    for x in xs[1:4]:
        mine.forward(x)
        theirs.forward(x)
    assert mine.times == 3
    for a, b in zip(mine.state_list, theirs.state_list, strict=True):
        assert_close(a, b, what="state_list")


def test_tutorial_forward_uses_the_weights_of_its_time():
    # forward only records; reaching the weights computes the recorded steps first, as an eager forward would.
    mine, theirs, xs, _ = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, TanhActivator(), 4)
    for layer in (mine, theirs):
        layer.forward(xs[0])
        layer.W[0, 0] += 0.5
        layer.forward(xs[1])
        layer.U = layer.U * 2
        layer.forward(xs[2])
    for a, b in zip(mine.state_list, theirs.state_list, strict=True):
        assert_close(a, b, what="state_list")


def _tutorial_loss(layer, xs, weights):
    """E = sum_t weights_t . output_t, and the tutorial's per-step sensitivities (errors on each net input)."""
    layer.reset_state()
    for x in xs:
        layer.forward(x)
    outputs = layer.state_list[1:]
    derivative = layer.activator.backward
    loss = sum(float((w * o).sum()) for w, o in zip(weights, outputs))
    return loss, [w * derivative(o) for w, o in zip(weights, outputs)]


@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("cls", [RecurrentLayer, BiRecurrentLayer])
def test_tutorial_gradient_check(cls, steps):
    ref_cls = ref.RecurrentLayer if cls is RecurrentLayer else ref.BiRecurrentLayer
    layer, _, xs, rng = _tutorial_pair(cls, ref_cls, TanhActivator(), steps)
    xs = xs[:steps]
    width = len(layer.state_list[0]) if cls is RecurrentLayer else 2 * layer.state_width
    weights = [rng.normal(size=(width, 1)) for _ in xs]
    _, sensitivities = _tutorial_loss(layer, xs, weights)
    layer.backward(sensitivities, TanhActivator())
    names = ("U", "W") if cls is RecurrentLayer else ("U", "W", "U_back", "W_back")
    for name in names:
        numeric = central_difference(lambda: _tutorial_loss(layer, xs, weights)[0], getattr(layer, name))
        assert_close(getattr(layer, name + "_grad"), numeric, **FD, what=f"{cls.__name__}.{name}, {steps} steps")


def test_tutorial_last_step_sensitivity_is_the_tutorial_example():
    # The tutorial's own check: error = sum of the last state, identity activation, sensitivity of ones.
    layer = RecurrentLayer(3, 2, IdentityActivator(), 1e-3, rng=0)
    xs = [np.array([[1], [2], [3]]), np.array([[2], [3], [4]])]

    def loss():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.state_list[-1].sum())

    loss()
    layer.backward(np.ones((2, 1)), IdentityActivator())
    assert_close(layer.W_grad, central_difference(loss, layer.W), **FD, what="W")
    assert_close(layer.U_grad, central_difference(loss, layer.U), **FD, what="U")


@pytest.mark.parametrize("cls", [RNN, BiRNN])
@pytest.mark.parametrize("steps,return_sequences", [(1, True), (2, False), (7, True), (7, False)])
def test_nn_gradient_check(cls, steps, return_sequences):
    rng = np.random.default_rng(steps)
    layer = cls(3, 4, activation="tanh", return_sequences=return_sequences, dtype=np.float64, rng=5)
    for value in layer.params.values():
        value[...] = rng.normal(size=value.shape) * 0.5
    assert_layer_gradients(layer, rng.normal(size=(2, steps, 3)), seed=steps)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "identity"])
def test_nn_activations_match_reference(activation):
    rng = np.random.default_rng(3)
    layer = RNN(2, 3, activation=activation, dtype=np.float64, rng=0)
    layer.params["bias"][:] = rng.normal(size=3)
    x = rng.normal(size=(2, 4, 2))
    activator = {"sigmoid": SigmoidActivator(), "relu": ReluActivator(), "identity": IdentityActivator()}[activation]
    p = layer.params
    out = layer.forward(x)
    for i in range(2):
        expected = ref.sequence_forward(list(x[i]), p["weight_ih"].T, p["weight_hh"].T, p["bias"], activator)
        assert_close(out[i], rows(expected), what=activation)


def test_birnn_concatenates_both_directions():
    layer = BiRNN(2, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 2))
    out = layer.forward(x)
    ahead = RNN(2, 3, dtype=np.float64)
    behind = RNN(2, 3, dtype=np.float64)
    for name in ("weight_ih", "weight_hh", "bias"):
        ahead.params[name][...] = layer.params[name]
        behind.params[name][...] = layer.params[name + "_reverse"]
    assert_close(out[:, :, :3], ahead.forward(x), what="forward half")
    assert_close(out[:, :, 3:], behind.forward(x[:, ::-1])[:, ::-1], what="backward half")
    last = BiRNN(2, 3, return_sequences=False, dtype=np.float64)
    for name, value in layer.params.items():
        last.params[name][...] = value
    assert_close(last.forward(x), np.concatenate([out[:, -1, :3], out[:, 0, 3:]], axis=1), what="last step")


def test_float32_stays_float32():
    for layer in (RNN(3, 4, rng=0), BiRNN(3, 4, rng=0)):
        x = np.random.default_rng(0).normal(size=(2, 5, 3))
        y = layer.forward(x)
        grad_x = layer.backward(np.ones_like(y))
        assert y.dtype == grad_x.dtype == np.float32
        assert all(g.dtype == np.float32 for g in layer.grads.values())
        reference = type(layer)(3, 4, dtype=np.float64)
        for name, value in layer.params.items():
            reference.params[name][...] = value
        assert np.allclose(y, reference.forward(x), atol=1e-5)


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(0)
    layer = BiRNN(5, 7, rng=0)
    x = rng.normal(size=(11, 6, 5)).astype(np.float32)
    grad = rng.normal(size=(11, 6, 14)).astype(np.float32)
    assert_same_for_thread_counts(lambda: [layer.forward(x), layer.backward(grad), *layer.grads.values()])


def test_serial_kernels_match_parallel_ones():
    rng = np.random.default_rng(2)
    f32 = np.float32  # the type the other tests compile the parallel kernels for
    x = rng.normal(size=(9, 5, 3)).astype(f32)
    w_ih, w_hh, b = rng.normal(size=(3, 4)).astype(f32), (rng.normal(size=(4, 4)) * 0.5).astype(f32), \
        rng.normal(size=4).astype(f32)
    zero = np.empty((0, 1, 4), f32)
    results = []
    for forward, backward in ((kernels.rnn_forward, kernels.rnn_backward),
                              (kernels.rnn_forward_serial, kernels.rnn_backward_serial)):
        states = np.empty((9, 5, 4), f32)
        forward(x, w_ih, w_hh, b, codes.TANH, True, zero, states)
        outs = [np.empty((9, 5, 4), f32), np.empty_like(x), np.empty_like(w_ih), np.empty_like(w_hh), np.empty(4, f32)]
        backward(x, states, w_ih, w_hh, codes.TANH, True, np.ones_like(states), False, *outs)
        results.append([states] + outs)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_bad_inputs():
    layer = RNN(3, 4)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 2, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \(any, any, 3\), got \(2, 5, 4\)"):
        layer.forward(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="at least one time step"):
        layer.forward(np.ones((2, 0, 3)))
    with pytest.raises(ValueError, match="at least one sample"):
        layer.forward(np.ones((0, 5, 3)))
    layer.forward(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(any, 5, 4\)"):
        layer.backward(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="must hold 2 samples"):
        layer.backward(np.ones((3, 5, 4)))
    with pytest.raises(ValueError, match="activation must be one of"):
        RNN(3, 4, activation="step")
    with pytest.raises(TypeError, match="dtype"):
        RNN(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="hidden_size must be >= 1"):
        BiRNN(3, 0)


def test_tutorial_bad_inputs():
    layer = RecurrentLayer(3, 2, TanhActivator(), 0.1)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 1)), TanhActivator())
    with pytest.raises(ValueError, match=r"input_array must have shape \(3, 1\), got \(4, 1\)"):
        layer.forward(np.ones((4, 1)))
    with pytest.raises(TypeError, match="activator must be one of"):
        RecurrentLayer(3, 2, "tanh", 0.1)
    layer.forward(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"sensitivity_array must have shape \(2, 1\)"):
        layer.backward(np.ones((3, 1)), TanhActivator())
    with pytest.raises(ValueError, match="list of 1"):
        layer.backward([np.ones((2, 1))] * 2, TanhActivator())
    with pytest.raises(ValueError, match=r"W must have shape \(2, 2\)"):
        layer.W = np.ones((3, 3))
    layer.reset_state()
    layer.forward(np.ones((3, 1)))
    layer.forward(np.array([[1.0], [np.nan], [0.0]]))
    with pytest.raises(ValueError, match="input_array of step 2 contains NaN"):
        layer.state_list
    bi = BiRecurrentLayer(3, 2, TanhActivator(), 0.1)
    with pytest.raises(RuntimeError, match="before forward"):
        bi.backward(np.ones((4, 1)))


def _input_forms(xs):
    """The same step inputs written the ways a script may pass them (the first takes forward's short path)."""
    forms = [lambda x: x, lambda x: x[:, 0], lambda x: x.tolist(), lambda x: np.asfortranarray(np.hstack([x, x]))[:, :1],
             lambda x: x.astype(np.float32)]
    return [forms[t % len(forms)](x) for t, x in enumerate(xs)]


def test_tutorial_recorded_steps_read_mid_sequence_match_the_eager_twin():
    # 20 steps outgrow the first buffers (16 rows); state_list read after 2 steps must stay right afterwards.
    mine, theirs, _, rng = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, TanhActivator(), 5)
    xs = [rng.normal(size=(3, 1)) for _ in range(20)]
    reused = np.empty((3, 1))  # a script refilling one array: forward must copy it
    early = None
    for t, (x, form) in enumerate(zip(xs, _input_forms(xs))):
        reused[...] = x
        given = reused if t % 5 == 0 else form
        mine.forward(given)
        theirs.forward(np.array(given, dtype=float).reshape(3, 1))  # a copy: the twin keeps its inputs
        if t == 1:
            early = list(mine.state_list)  # the list itself grows, as the tutorial's does
            assert len(early) == 3
    reused[...] = np.nan
    assert len(mine.state_list) == 21
    for a, b in zip(mine.state_list, theirs.state_list, strict=True):
        assert_close(a, b, what="state_list")
    for a, b in zip(early, theirs.state_list[:3], strict=True):
        assert_close(a, b, what="state_list read after two steps")
    errors = [rng.normal(size=(4, 1)) for _ in range(20)]
    mine.backward(errors)
    theirs.backward(errors)
    for a, b in zip(mine.delta_list, theirs.delta_list, strict=True):
        assert_close(a, b, what="delta_list")
    assert_close(mine.U_grad, theirs.U_grad, what="U_grad")


def test_tutorial_results_read_before_the_next_backward_stay_valid():
    # backward reuses its output arrays only when no view of them was handed out
    mine, theirs, _, rng = _tutorial_pair(RecurrentLayer, ref.RecurrentLayer, TanhActivator(), 8)
    kept = []
    for k in range(4):
        xs, sensitivity = [rng.normal(size=(3, 1)) for _ in range(5)], rng.normal(size=(4, 1))
        for layer in (mine, theirs):
            for x in xs:
                layer.forward(x)
            layer.backward(sensitivity)
        if k % 2:  # the other passes hand nothing out: their arrays may be reused
            kept.append((mine.U_grad, mine.delta_list, mine.U_grad.copy(), rows(mine.delta_list)))
        assert_close(mine.U_grad, theirs.U_grad, what="U_grad")
        assert_close(mine.W_grad, theirs.W_grad, what="W_grad")
        for layer in (mine, theirs):
            layer.update()
            layer.reset_state()
    for grad, deltas, grad_then, deltas_then in kept:
        assert np.array_equal(grad, grad_then) and np.array_equal(rows(deltas), deltas_then)


def test_tutorial_bad_step_inputs_on_the_short_path():
    layer = RecurrentLayer(3, 2, TanhActivator(), 0.1)
    with pytest.raises(ValueError, match=r"input_array must have shape \(3, 1\), got \(3, 2\)"):
        layer.forward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="input_array must hold real numbers"):
        layer.forward(np.ones((3, 1), complex))
    with pytest.raises(ValueError, match=r"input_array must have shape \(3, 1\)"):
        layer.forward([1.0, 2.0])
    assert layer.times == 0, "a refused input must not count as a step"
    layer.forward(np.ones((3, 1)))
    layer.forward(np.array([[1.0], [np.inf], [0.0]]))
    with pytest.raises(ValueError, match="input_array of step 2 contains NaN or infinity"):
        layer.backward(np.ones((2, 1)))
    with pytest.raises(ValueError, match="input_array of step 2"):
        layer.W  # reaching a weight computes the recorded steps first
    layer.reset_state()
    layer.forward(np.ones((3, 1)))
    layer.backward(np.ones((2, 1)))
    assert np.isfinite(layer.W_grad).all()
    with pytest.raises(AttributeError, match="set by backward"):
        RecurrentLayer(3, 2, TanhActivator(), 0.1).U_grad


@pytest.mark.parametrize("kind", ["RecurrentLayer", "LstmLayer"])
def test_tutorial_lists_read_before_reset_state_keep_their_sequence(kind):
    # The tutorial makes new lists for every sequence; rows reused by the next sequence must not change them.
    from fastnn.tutorial import lstm, rnn

    layer = (rnn.RecurrentLayer(3, 2, IdentityActivator(), 0.1, rng=0) if kind == "RecurrentLayer"
             else lstm.LstmLayer(3, 2, 0.1, rng=0))
    name = "state_list" if kind == "RecurrentLayer" else "h_list"
    rng = np.random.default_rng(0)
    for x in rng.normal(size=(3, 3, 1)):
        layer.forward(x)
    first = getattr(layer, name)
    kept = [row.copy() for row in first]
    for _ in range(2):
        layer.reset_state()
        for x in rng.normal(size=(4, 3, 1)) * 5:
            layer.forward(x)
        assert not np.array_equal(getattr(layer, name)[3], kept[3])
    assert all(np.array_equal(row, copy) for row, copy in zip(first, kept))
