"""The LSTM chapter: kernels vs the reference twin, BPTT gradient checks, the tutorial and nn fronts."""

import numpy as np
import pytest
from helpers import assert_close, assert_layer_gradients, assert_same_for_thread_counts, central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn._blas import SERIAL_GEMM_WORK, dgemm_address
from fastnn.kernels import lstm as kernels
from fastnn.nn import LSTM
from fastnn.reference import lstm as ref
from fastnn.tutorial import lstm as tutorial_lstm
from fastnn.tutorial.activators import IdentityActivator
from fastnn.tutorial.lstm import LstmLayer

# Tolerances for analytic gradients against central differences.
FD = dict(rtol=1e-6, atol=1e-8)

def rows(columns):
    """Stack ``(n, 1)`` columns into the rows of an ``(T, n)`` array."""
    return np.array([np.ravel(c) for c in columns])


# The kernels' packed gate blocks, in order, by the tutorial's letter.
ORDER = ("i", "f", "c", "o")


def _packed(params):
    """The reference's twelve arrays as the kernels' (weight_ih, weight_hh, bias)."""
    return (np.concatenate([params[f"W{g}x"].T for g in ORDER], axis=1),
            np.concatenate([params[f"W{g}h"].T for g in ORDER], axis=1),
            np.concatenate([params[f"b{g}"][:, 0] for g in ORDER]))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), steps=st.sampled_from([1, 2, 7]), features=st.integers(1, 4), hidden=st.integers(1, 5),
       seed=st.integers(0, 2**31))
def test_kernels_match_reference(n, steps, features, hidden, seed):
    rng = np.random.default_rng(seed)
    params = {name: rng.normal(size=(hidden, hidden if name.endswith("h") else 1 if name[0] == "b" else features))
              for name in ref.NAMES}
    w_ih, w_hh, bias = _packed(params)
    x = rng.normal(size=(n, steps, features))
    gates = np.empty((n, steps, 4 * hidden))
    c, tanh_c, h = (np.empty((n, steps, hidden)) for _ in range(3))
    zero = np.empty((0, 1, hidden))
    # The serial kernels: the parallel ones share their code and are checked against them below.
    kernels.lstm_forward_serial(x, w_ih, w_hh, bias, zero, zero, gates, c, tanh_c, h)
    grad_h = rng.normal(size=h.shape)
    dnet, dh, grad_x = np.empty_like(gates), np.empty((n, steps + 1, hidden)), np.empty_like(x)
    g_ih, g_hh, g_b = np.empty_like(w_ih), np.empty_like(w_hh), np.empty_like(bias)
    kernels.lstm_backward_serial(x, h, c, gates, tanh_c, w_ih, w_hh, grad_h, dnet, dh, grad_x, g_ih, g_hh, g_b)
    totals = {}
    for i in range(n):
        steps_ref = ref.sequence_forward(params, list(x[i]))
        assert_close(h[i], rows(s["h"] for s in steps_ref), what="h")
        assert_close(c[i], rows(s["c"] for s in steps_ref), what="c")
        assert_close(gates[i], rows(np.vstack([s["i"], s["f"], s["ct"], s["o"]]) for s in steps_ref), what="gates")
        grads, gx, delta_h, deltas = ref.sequence_backward(params, list(x[i]), steps_ref, list(grad_h[i]))
        assert_close(grad_x[i], rows(gx), what="grad_x")
        assert_close(dh[i], rows(delta_h), what="dE/dh")
        assert_close(dnet[i], rows(np.vstack([d["i"], d["f"], d["ct"], d["o"]]) for d in deltas), what="gate deltas")
        for name, value in grads.items():
            totals[name] = totals.get(name, 0) + value
    expected = _packed({name: totals[f"{name}_grad"] for name in ref.NAMES})
    for mine, theirs, name in zip((g_ih, g_hh, g_b), expected, ("weight_ih", "weight_hh", "bias")):
        assert_close(mine, theirs, what=name)


def test_forward_continues_from_an_initial_state():
    rng = np.random.default_rng(0)
    x, w_ih = rng.normal(size=(3, 7, 2)), rng.normal(size=(2, 16))
    w_hh, b = rng.normal(size=(4, 16)), rng.normal(size=16)

    def run(x, h0, c0):
        n, steps = x.shape[:2]
        gates, c, tanh_c, h = np.empty((n, steps, 16)), *(np.empty((n, steps, 4)) for _ in range(3))
        kernels.lstm_forward_serial(np.ascontiguousarray(x), w_ih, w_hh, b, h0, c0, gates, c, tanh_c, h)
        return h, c

    h, c = run(x, np.empty((0, 1, 4)), np.empty((0, 1, 4)))
    h1, c1 = run(x[:, :3], np.zeros((3, 1, 4)), np.zeros((3, 1, 4)))
    h2, c2 = run(x[:, 3:], h1[:, 2:].copy(), c1[:, 2:].copy())
    assert_close(np.concatenate([h1, h2], axis=1), h, what="h in two parts")
    assert_close(np.concatenate([c1, c2], axis=1), c, what="c in two parts")


@pytest.fixture(params=["kernels", "blas"])
def products(request, monkeypatch):
    """The tutorial layer's two ways to do its matrix products: in its kernels, or numpy's BLAS (forced here;
    it takes that path from 20 steps of 12 -> 12 on)."""
    if request.param == "blas":
        monkeypatch.setattr(tutorial_lstm, "PRODUCT_WORK", 0)
    return request.param


def _pair(seed, features=3, hidden=4):
    rng = np.random.default_rng(seed)
    mine, theirs = LstmLayer(features, hidden, 0.1, rng=seed), ref.LstmLayer(features, hidden, 0.1)
    for name in ref.NAMES:
        value = rng.normal(size=getattr(mine, name).shape) * 0.7
        setattr(mine, name, value)
        setattr(theirs, name, value.copy())
    return mine, theirs, rng


def test_tutorial_layer_sets_one_blas_thread_only_for_products_openblas_would_spread(monkeypatch):
    """Products under SERIAL_GEMM_WORK multiply-adds stay on the calling thread in OpenBLAS by themselves;
    from there the layer calls its kernels inside one_blas_thread (none of it without numpy's BLAS)."""
    entered = []

    class Recording:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(tutorial_lstm, "one_blas_thread", Recording())
    rng = np.random.default_rng(0)

    def entries(steps):
        entered.clear()
        layer = LstmLayer(32, 64, 0.1, rng=0)
        for _ in range(steps):
            layer.forward(rng.normal(size=(32, 1)))
        layer.backward(None, np.ones((64, 1)))
        return len(entered)

    largest = 4 * 64 * 64  # multiply-adds a step of the W*h gradient product
    assert 20 * largest < SERIAL_GEMM_WORK <= 40 * largest
    assert entries(20) == 0
    assert entries(40) == (1 if dgemm_address() else 0)


def test_tutorial_layer_matches_reference(products):
    mine, theirs, rng = _pair(0)
    xs = [rng.normal(size=(3, 1)) for _ in range(7)]
    for x in xs:
        mine.forward(x)
        theirs.forward(x)
    for name in ("h", "c", "f", "i", "o", "ct"):
        for a, b in zip(getattr(mine, f"{name}_list"), getattr(theirs, f"{name}_list"), strict=True):
            assert_close(a, b, what=f"{name}_list")
    delta_h = rng.normal(size=(4, 1))
    mine.backward(xs[-1], delta_h, IdentityActivator())
    theirs.backward(xs[-1], delta_h)
    for name in ("h", "f", "i", "o", "ct"):
        for a, b in zip(getattr(mine, f"delta_{name}_list"), getattr(theirs, f"delta_{name}_list"), strict=True):
            assert_close(a, b, what=f"delta_{name}_list")
    for name in ref.NAMES:
        assert_close(getattr(mine, f"{name}_grad"), getattr(theirs, f"{name}_grad"), what=f"{name}_grad")
    mine.update()
    theirs.update()
    for name in ref.NAMES:
        assert_close(getattr(mine, name), getattr(theirs, name), what=f"{name} after update")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # in the twin's products
@pytest.mark.parametrize("steps", [1, 4])
def test_tutorial_inputs_whose_sum_overflows_are_finite_all_the_same(steps, products):
    # The NaN check of the inputs must not fold into (sum x) * 0, which 1e308 + 1e308 makes NaN.
    mine, theirs, rng = _pair(5)
    xs = [np.array([[1e308], [1e308], [0.0]])] + [rng.normal(size=(3, 1)) for _ in range(steps - 1)]
    for x in xs:
        mine.forward(x)
        theirs.forward(x)
    delta_h = rng.normal(size=(4, 1))
    mine.backward(xs[-1], delta_h, IdentityActivator())
    theirs.backward(xs[-1], delta_h)
    for a, b in zip(mine.h_list, theirs.h_list, strict=True):
        assert_close(a, b, what="h_list")
    for name in ref.NAMES:
        if name.startswith("W"):
            assert_close(getattr(mine, f"{name}_grad"), getattr(theirs, f"{name}_grad"), what=f"{name}_grad")


def test_tutorial_forward_uses_the_weights_of_its_time(products):
    mine, theirs, rng = _pair(3)
    xs = [rng.normal(size=(3, 1)) for _ in range(3)]
    for layer in (mine, theirs):
        layer.forward(xs[0])
        layer.Wfh[0, 0] += 0.5
        layer.forward(xs[1])
        layer.bo = layer.bo + 1
        layer.forward(xs[2])
    for name in ("h", "c", "o"):
        for a, b in zip(getattr(mine, f"{name}_list"), getattr(theirs, f"{name}_list"), strict=True):
            assert_close(a, b, what=f"{name}_list")


@pytest.mark.parametrize("steps", [1, 2, 7])
def test_tutorial_gradient_check(steps, products):
    layer, _, rng = _pair(steps)
    xs = [rng.normal(size=(3, 1)) for _ in range(steps)]
    weights = [rng.normal(size=(4, 1)) for _ in range(steps)]

    def loss():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return sum(float((w * h).sum()) for w, h in zip(weights, layer.h_list[1:]))

    loss()
    layer.backward(xs[-1], weights, IdentityActivator())
    grads = {name: getattr(layer, f"{name}_grad").copy() for name in ref.NAMES}
    for name in ref.NAMES:
        assert_close(grads[name], central_difference(loss, getattr(layer, name)), **FD, what=f"{name}, {steps} steps")


@pytest.mark.parametrize("steps,return_sequences", [(1, True), (2, False), (7, True), (7, False)])
def test_nn_gradient_check(steps, return_sequences):
    rng = np.random.default_rng(steps)
    layer = LSTM(3, 4, return_sequences=return_sequences, dtype=np.float64, rng=1)
    for value in layer.params.values():
        value[...] = rng.normal(size=value.shape) * 0.5
    assert_layer_gradients(layer, rng.normal(size=(2, steps, 3)), seed=steps)


def test_stacked_layers_feed_gradients_through():
    rng = np.random.default_rng(0)
    first, second = LSTM(2, 3, dtype=np.float64, rng=0), LSTM(3, 2, return_sequences=False, dtype=np.float64, rng=1)
    x = rng.normal(size=(2, 4, 2))
    weights = rng.normal(size=(2, 2))
    second.forward(first.forward(x))
    grad_x = first.backward(second.backward(weights))

    def loss():
        return float((second.forward(first.forward(x)) * weights).sum())

    assert_close(grad_x, central_difference(loss, x), **FD, what="input through two layers")


def test_float32_stays_float32_and_thread_count_does_not_matter():
    rng = np.random.default_rng(0)
    layer = LSTM(5, 6, rng=0)
    x = rng.normal(size=(9, 4, 5))
    grad = rng.normal(size=(9, 4, 6)).astype(np.float32)
    results = assert_same_for_thread_counts(lambda: [layer.forward(x), layer.backward(grad), *layer.grads.values()])
    assert all(a.dtype == np.float32 for a in results)
    reference = LSTM(5, 6, dtype=np.float64)
    for name, value in layer.params.items():
        reference.params[name][...] = value
    assert np.allclose(results[0], reference.forward(x), atol=1e-5)


def test_serial_kernels_match_parallel_ones():
    rng = np.random.default_rng(2)
    f32 = np.float32  # the type the other tests compile the parallel kernels for
    x = rng.normal(size=(9, 5, 3)).astype(f32)
    w_ih, w_hh = rng.normal(size=(3, 16)).astype(f32), (rng.normal(size=(4, 16)) * 0.5).astype(f32)
    b, zero = rng.normal(size=16).astype(f32), np.empty((0, 1, 4), f32)
    results = []
    for forward, backward in ((kernels.lstm_forward, kernels.lstm_backward),
                              (kernels.lstm_forward_serial, kernels.lstm_backward_serial)):
        gates, c, tanh_c, h = np.empty((9, 5, 16), f32), *(np.empty((9, 5, 4), f32) for _ in range(3))
        forward(x, w_ih, w_hh, b, zero, zero, gates, c, tanh_c, h)
        outs = [np.empty((9, 5, 16), f32), np.empty((9, 6, 4), f32), np.empty_like(x), np.empty_like(w_ih),
                np.empty_like(w_hh), np.empty(16, f32)]
        backward(x, h, c, gates, tanh_c, w_ih, w_hh, np.ones_like(h), *outs)
        results.append([h, c] + outs)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_bad_inputs():
    layer = LSTM(3, 4, return_sequences=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \(any, any, 3\), got \(2, 5, 2\)"):
        layer.forward(np.ones((2, 5, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        layer.forward(np.ones((2, 0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        layer.forward(np.full((1, 2, 3), np.nan))
    layer.forward(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(any, 4\), got \(2, 5, 4\)"):
        layer.backward(np.ones((2, 5, 4)))
    tutorial = LstmLayer(3, 2, 0.1)
    with pytest.raises(RuntimeError, match="before forward"):
        tutorial.backward(np.ones((3, 1)), np.ones((2, 1)), IdentityActivator())
    with pytest.raises(ValueError, match=r"x must have shape \(3, 1\), got \(2, 1\)"):
        tutorial.forward(np.ones((2, 1)))
    tutorial.forward(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"delta_h must have shape \(2, 1\)"):
        tutorial.backward(np.ones((3, 1)), np.ones((3, 1)), IdentityActivator())
    with pytest.raises(ValueError, match=r"Wfh must have shape \(2, 2\)"):
        tutorial.Wfh = np.ones((2, 3))


def test_lstm_in_a_sequential_model_trains_saves_and_loads(tmp_path):
    from fastnn.nn import Adam, Dense, Sequential, load

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)  # the sign of a sum over the steps
    model = Sequential([LSTM(3, 8, return_sequences=False, rng=0), Dense(8, 2, rng=1)], optimizer=Adam(lr=0.05))
    model.fit(x, y, epochs=30, batch_size=16, seed=0, verbose=0)
    assert model.output_shapes == [(8,), (2,)]
    assert model.history_["accuracy"][-1] > 0.9
    path = tmp_path / "lstm.npz"
    model.save(path)
    assert np.array_equal(load(path).predict(x), model.predict(x))


def test_tutorial_recorded_steps_read_mid_sequence_match_the_eager_twin(products):
    # 20 steps outgrow the first buffers (16 rows); lists read after 2 steps must stay right afterwards.
    mine, theirs, rng = _pair(6)
    xs = [rng.normal(size=(3, 1)) for _ in range(20)]
    reused = np.empty((3, 1))
    early = None
    for t, x in enumerate(xs):
        reused[...] = x
        mine.forward(reused if t % 2 else x.ravel().tolist())
        theirs.forward(x)
        if t == 1:
            early = list(mine.c_list)  # the list itself grows, as the tutorial's does
    reused[...] = np.nan
    for name in ("h", "c", "f", "i", "o", "ct"):
        for a, b in zip(getattr(mine, f"{name}_list"), getattr(theirs, f"{name}_list"), strict=True):
            assert_close(a, b, what=f"{name}_list")
    for a, b in zip(early, theirs.c_list[:3], strict=True):
        assert_close(a, b, what="c_list read after two steps")
    delta_h = [rng.normal(size=(4, 1)) for _ in range(20)]
    mine.backward(None, delta_h)
    theirs.backward(None, delta_h)
    for name in ref.NAMES:
        assert_close(getattr(mine, f"{name}_grad"), getattr(theirs, f"{name}_grad"), what=f"{name}_grad")


def test_tutorial_results_read_before_the_next_backward_stay_valid(products):
    # backward reuses its output arrays only when no view of them was handed out
    mine, theirs, rng = _pair(7)
    kept = []
    for k in range(4):
        xs, delta_h = [rng.normal(size=(3, 1)) for _ in range(5)], rng.normal(size=(4, 1))
        for layer in (mine, theirs):
            for x in xs:
                layer.forward(x)
            layer.backward(None, delta_h)
        if k % 2:  # the other passes hand nothing out: their arrays may be reused
            kept.append((mine.Wfh_grad, mine.delta_h_list, mine.Wfh_grad.copy(), rows(mine.delta_h_list)))
        for name in ref.NAMES:
            assert_close(getattr(mine, f"{name}_grad"), getattr(theirs, f"{name}_grad"), what=f"{name}_grad")
        for layer in (mine, theirs):
            layer.update()
            layer.reset_state()
    for grad, deltas, grad_then, deltas_then in kept:
        assert np.array_equal(grad, grad_then) and np.array_equal(rows(deltas), deltas_then)


@pytest.mark.filterwarnings("error")  # a NaN input is caught before numpy's BLAS sees it: no RuntimeWarning
def test_tutorial_bad_step_inputs_on_the_short_path(products):
    layer = LstmLayer(3, 2, 0.1)
    with pytest.raises(ValueError, match=r"x must have shape \(3, 1\), got \(1, 3\)"):
        layer.forward(np.ones((1, 3)))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        layer.forward(np.array([["a"], ["b"], ["c"]]))
    layer.forward(np.ones((3, 1)))
    layer.forward(np.full((3, 1), np.nan))
    with pytest.raises(ValueError, match="x of step 2 contains NaN or infinity"):
        layer.backward(None, np.ones((2, 1)))
    with pytest.raises(ValueError, match="x of step 2"):
        layer.h_list
    with pytest.raises(AttributeError, match="set by backward"):
        layer.Wfh_grad


def test_demo_lstm_learns_to_read_images_row_by_row():
    from fastnn.demos.training import train_row_lstm

    accuracy, _ = train_row_lstm(hidden=32, epochs=1)
    assert accuracy >= 0.5, accuracy  # ten classes: chance is 0.1
