"""Sequential: training on generated and bundled data, gradients of the fused plan, divergence, bad input."""

import numpy as np
import pytest

from fastnn._blas import one_blas_thread
from fastnn.datasets import load_sample
from fastnn.nn import (SGD, Adam, Callback, Dense, EarlyStopping, Identity, Layer, ReLU, Sequential, Sigmoid,
                       Tanh)
from fastnn.nn.models import mlp, tutorial_mlp

from helpers import assert_close, central_difference


def blobs(n=300, seed=0):
    """Three well separated Gaussian blobs in 2-D with labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    labels = rng.integers(0, 3, n)
    return (centres[labels] + rng.normal(size=(n, 2)) * 0.7).astype(np.float32), labels


class Scale(Layer):
    """A layer Sequential knows nothing about: y = 2x (exercises the generic path)."""

    def forward(self, x):
        self._shape = np.shape(x)
        return np.asarray(x) * 2

    def backward(self, grad_output):
        return np.asarray(grad_output) * 2


def small_model(dtype=np.float32, optimizer=None, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([Dense(2, 16, dtype=dtype, rng=rng), ReLU(), Dense(16, 3, dtype=dtype, rng=rng)],
                      optimizer=optimizer or SGD(lr=0.1, momentum=0.9))


def test_fit_learns_blobs_and_fills_the_history():
    x, y = blobs()
    model = small_model().fit(x, y, epochs=4, batch_size=16, validation_split=0.2, seed=1, verbose=0)
    assert set(model.history_) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(values) == 4 for values in model.history_.values())
    assert model.history_["loss"][-1] < model.history_["loss"][0]
    assert model.history_["val_accuracy"][-1] > 0.9
    result = model.evaluate(x, y)
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(x) == y))
    probabilities = model.predict_proba(x)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), model.predict(x))


def test_fit_is_reproducible_with_a_seed():
    x, y = blobs()
    first = small_model(seed=3).fit(x, y, epochs=2, batch_size=10, seed=7, verbose=0)
    second = small_model(seed=3).fit(x, y, epochs=2, batch_size=10, seed=7, verbose=0)
    other = small_model(seed=3).fit(x, y, epochs=2, batch_size=10, seed=8, verbose=0)
    weights = [layer.params["weight"] for layer in (first.layers[0], second.layers[0], other.layers[0])]
    assert np.array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


@pytest.mark.needs_jit
def test_mlps_learn_the_bundled_fashion_mnist_sample():
    (x_train, y_train), (x_test, y_test) = load_sample(flatten=True)
    model = mlp(optimizer=SGD(lr=0.05, momentum=0.9), rng=0)
    model.fit(x_train, y_train, epochs=3, batch_size=64, seed=0, verbose=0)
    assert model.evaluate(x_test, y_test)["accuracy"] > 0.65
    tutorial = tutorial_mlp(optimizer=SGD(lr=0.1, momentum=0.9), rng=0)
    tutorial.fit(x_train, y_train, epochs=4, batch_size=16, seed=0, verbose=0)
    assert tutorial.evaluate(x_test, y_test)["accuracy"] > 0.5  # sigmoid + squared error learns slower


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_gradients_of_the_fused_plan_match_central_differences(loss):
    rng = np.random.default_rng(4)
    layers = [Dense(4, 5, dtype=np.float64, rng=rng), Sigmoid(), Dense(5, 4, dtype=np.float64, rng=rng), Tanh(),
              Scale(), Dense(4, 3, dtype=np.float64, rng=rng), Identity()]
    model = Sequential(layers, loss=loss)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 3, 6)
    model._compile()
    assert not layers[0].use_blas  # a layer of unknown kind keeps BLAS out of the step
    out = model._forward_batch(x)
    grad = np.empty_like(out)
    prepared = model.loss.prepare_targets(y, 6, 3, np.float64)
    model.loss._compute(out, prepared, 1 / 6, grad)
    for step in model._backward_steps:
        grad = step(grad)

    def mean_loss():
        return model.evaluate(x, y)["loss"]

    for layer in (layers[0], layers[2], layers[5]):
        for name in ("weight", "bias"):
            analytic = layer.grads[name].copy()
            assert_close(analytic, central_difference(mean_loss, layer.params[name]), rtol=1e-5, atol=1e-8,
                         what=f"{name} of {layer!r}")


def test_the_fused_plan_computes_what_the_layers_compute_one_by_one():
    x, y = blobs(50)
    model = Sequential([Dense(2, 8, rng=0), Tanh(), Dense(8, 8, rng=1), ReLU(), Dense(8, 3, rng=2), Sigmoid()])
    manual = x
    for layer in model.layers:
        manual = layer.forward(manual)
    assert_close(model.predict_logits(x), manual, rtol=1e-6, atol=1e-7, what="outputs")


def test_float64_models_stay_float64():
    x, y = blobs(40)
    model = small_model(dtype=np.float64).fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.predict_proba(x).dtype == np.float64
    assert all(p.dtype == np.float64 for layer in model.layers for p in layer.params.values())


def test_adam_and_mse_with_real_targets():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = Sequential([Dense(3, 1, rng=0)], loss="mse", optimizer=Adam(lr=0.05))
    model.fit(x, y[:, 0], epochs=30, batch_size=20, seed=0, verbose=0)
    assert "accuracy" not in model.history_
    assert model.evaluate(x, y)["loss"] < 1e-3
    assert model.predict(x).shape == (200, 1)


def test_a_diverging_fit_stops_naming_epoch_and_step_and_keeps_the_last_good_weights():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 1)) * 10).astype(np.float32)
    model = Sequential([Dense(1, 1, rng=0)], loss="mse", optimizer=SGD(lr=10.0))

    class Snapshot(Callback):
        def on_batch_end(self, step, batch_size, loss):
            self.weights = {name: p.copy() for name, p in model.layers[0].params.items()}

    snapshot = Snapshot()
    with pytest.raises(RuntimeError, match=r"the loss became (inf|nan) at epoch \d+, step \d+"):
        model.fit(x, 3 * x, epochs=5, batch_size=4, shuffle=False, verbose=0, callbacks=[snapshot])
    for name, value in snapshot.weights.items():
        assert np.isfinite(value).all()
        assert np.array_equal(model.layers[0].params[name], value)


def test_callbacks_and_early_stopping():
    x, y = blobs(60)

    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            self.model.stop_training = epoch == 2

    model = small_model().fit(x, y, epochs=5, verbose=0, callbacks=[StopAtTwo()])
    assert len(model.history_["loss"]) == 2
    model = small_model(optimizer=SGD(lr=1e-9)).fit(x, y, epochs=6, verbose=0, validation_split=0.25,
                                                     callbacks=[EarlyStopping("val_accuracy", patience=1)])
    assert len(model.history_["loss"]) < 6
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        small_model().fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_verbose_prints_a_line_per_epoch(capsys):
    x, y = blobs(40)
    small_model().fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "accuracy" in lines[0]
    small_model().fit(x, y, epochs=1, verbose=1)
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err and "img/s" in captured.err


def test_summary_lists_layers_shapes_and_parameter_counts():
    lines = []
    small_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(16,)" in text and "(3,)" in text
    assert f"total parameters: {2 * 16 + 16 + 16 * 3 + 3}" in text
    assert len([line for line in lines if "Dense" in line]) == 2


def test_sequential_rejects_bad_input():
    x, y = blobs(20)
    model = small_model()
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\) for this model, got \(20, 3\)"):
        model.fit(np.ones((20, 3)), y, verbose=0)
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\)"):
        model.fit(x, y + 1, verbose=0)
    with pytest.raises(ValueError, match="one label per sample: expected 20, got 19"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="x is empty"):
        model.fit(np.ones((0, 2)), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        model.fit(x, y, epochs=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        model.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="validation_data or validation_split, not both"):
        model.fit(x, y, validation_data=(x, y), validation_split=0.5, verbose=0)
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be a fastnn.nn Callback"):
        model.fit(x, y, callbacks=[print], verbose=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        Sequential([Dense(2, 2)], optimizer=SGD(lr=-1))
    with pytest.raises(ValueError, match="layer 1 .Dense. receives"):
        Sequential([Dense(4, 3), Dense(5, 2)])
    with pytest.raises(ValueError, match="layers must hold at least one layer"):
        Sequential([])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a fastnn.nn Layer"):
        Sequential([lambda x: x])
    with pytest.raises(TypeError, match="optimizer must be a fastnn.nn optimizer"):
        Sequential([Dense(2, 2)], optimizer="sgd")
    with pytest.raises(ValueError, match="share one dtype"):
        Sequential([Dense(2, 2), Dense(2, 2, dtype=np.float64)])


def one_unfused_step(model, x, y):
    """What an SGD step computes without the small-batch fusion: stored gradients, then the optimizer."""
    model._compile()
    out = model._forward_batch(x)
    grad = np.empty_like(out)
    model.loss._compute(out, model.loss.prepare_targets(y, len(x), out.shape[1], out.dtype), 1 / len(x), grad)
    for step in model._backward_steps:
        grad = step(grad)
    assert model.optimizer._update()


@pytest.mark.parametrize("n", [1, 3])
def test_small_batches_fuse_the_sgd_update_without_changing_the_result(n):
    from fastnn.nn import Conv2D, Flatten

    def build():
        rng = np.random.default_rng(0)
        return Sequential([Conv2D(1, 2, 3, rng=rng), ReLU(), Flatten(), Dense(2 * 4 * 4, 6, rng=rng), Sigmoid(),
                           Dense(6, 3, rng=rng)], optimizer=SGD(lr=0.5), input_shape=(1, 6, 6))

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, n)
    fused, unfused = build(), build()
    fused.train_on_batch(x, y)
    one_unfused_step(unfused, x, y)
    for a, b in zip(fused.layers, unfused.layers):
        for name in a.params:
            assert_close(a.params[name], b.params[name], rtol=1e-5, atol=1e-6, what=f"{type(a).__name__} {name}")
    assert not np.array_equal(fused.layers[0].params["weight"], build().layers[0].params["weight"])


def test_the_fused_update_refuses_a_non_finite_error_term():
    from fastnn.kernels.batched_dense import dense_backward_sgd

    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(3, 4)).astype(np.float32), np.zeros(3, np.float32)
    before = weight.copy()
    grad = np.array([[0.5, np.nan, 1.0]], np.float32)
    ok = dense_backward_sgd(grad, np.ones((1, 3), np.float32), 0, np.ones((1, 4), np.float32), weight, bias, 0.1,
                            np.empty((1, 3), np.float32), np.empty((1, 4), np.float32), True)
    assert not ok and np.array_equal(weight, before) and not bias.any()


@pytest.mark.needs_jit
def test_lenet5_builds_trains_and_round_trips(tmp_path):
    from fastnn.nn import load
    from fastnn.nn.models import lenet5

    (x_train, y_train), (x_test, y_test) = load_sample()
    model = lenet5(optimizer=SGD(lr=0.05, momentum=0.9), rng=0)
    conv = 6 * 1 * 25 + 6 + 16 * 6 * 25 + 16
    assert model.num_params == conv + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert model.output_shapes[6] == (400,)
    model.fit(x_train, y_train, epochs=2, batch_size=32, seed=0, verbose=0)
    assert model.evaluate(x_test, y_test)["accuracy"] > 0.6
    model.save(tmp_path / "lenet.npz")
    assert np.array_equal(load(tmp_path / "lenet.npz").predict_proba(x_test), model.predict_proba(x_test))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 28, 28\) for this model, got \(3, 784\)"):
        model.predict(np.zeros((3, 784), np.float32))


def test_cosine_decay_lowers_the_learning_rate_to_the_floor_and_restores_it():
    from fastnn.nn.callbacks import CosineDecay

    x, y = blobs(64)
    seen = []

    class Record(Callback):
        def on_batch_end(self, step, batch_size, loss):
            seen.append(self.model.optimizer.lr)

    model = small_model(optimizer=SGD(lr=0.2)).fit(x, y, epochs=2, batch_size=16, verbose=0,
                                                    callbacks=[CosineDecay(final=0.1), Record()])
    assert seen == sorted(seen, reverse=True) and seen[-1] == pytest.approx(0.02) and seen[0] < 0.2
    assert model.optimizer.lr == 0.2


def test_standardize_layer_formula_gradient_and_round_trip(tmp_path):
    from fastnn.nn import Standardize, load

    rng = np.random.default_rng(0)
    x = rng.random((4, 2, 3, 3))
    layer = Standardize([0.5, 0.25], [2.0, 0.5])
    expected = (x - np.array([0.5, 0.25])[None, :, None, None]) / np.array([2.0, 0.5])[None, :, None, None]
    assert_close(layer.forward(x), expected, rtol=1e-12)
    grad = rng.normal(size=x.shape)
    assert_close(layer.backward(grad), central_difference(lambda: float(np.sum(layer.forward(x) * grad)), x),
                 rtol=1e-6, atol=1e-8)
    model = Sequential([Standardize(0.3, 0.2), Dense(3, 2, rng=0)])
    model.save(tmp_path / "s.npz")
    data = rng.random((5, 3)).astype(np.float32)
    assert np.array_equal(load(tmp_path / "s.npz").predict_proba(data), model.predict_proba(data))
    model._compile()
    assert len(model._backward_steps) == 1  # nothing flows back into the data
    with pytest.raises(ValueError, match="std must be > 0"):
        Standardize(0.0, 0.0)
    with pytest.raises(ValueError, match="2 channel statistics"):
        layer.forward(np.ones((1, 3, 2, 2)))


def test_training_gives_the_same_bits_for_any_thread_count():
    import numba

    from fastnn.nn import Conv2D, Flatten, MaxPool2D

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 1, 8, 8), dtype=np.float32), rng.integers(0, 3, 40)
    weights = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            layers = [Conv2D(1, 4, 3, padding=1, rng=1), ReLU(), MaxPool2D(2), Flatten(), Dense(64, 16, rng=2), Tanh(),
                      Dense(16, 3, rng=3)]
            model = Sequential(layers, optimizer=SGD(lr=0.1, momentum=0.9))
            model.fit(x, y, epochs=2, batch_size=8, seed=0, verbose=0)
            weights.append([p.copy() for layer in model.layers for p in layer.params.values()])
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def dense_chain(loss, dtype, seed=0):
    """A model made of Dense layers and their activations only (one kernel call per small-batch SGD step)."""
    rng = np.random.default_rng(seed)
    layers = [Dense(5, 8, dtype=dtype, rng=rng), ReLU(), Dense(8, 6, dtype=dtype, rng=rng), Tanh(),
              Dense(6, 3, dtype=dtype, rng=rng)]
    if loss != "cross_entropy":
        layers.append(Sigmoid())
    return Sequential(layers, loss=loss, optimizer=SGD(lr=0.3))


def layer_by_layer(model):
    """The same model stepping one layer kernel at a time: an unknown loss type keeps the chain kernel out."""
    from fastnn.nn.losses import CrossEntropy, MeanSquaredError

    base = CrossEntropy if model.loss.name == "cross_entropy" else MeanSquaredError
    model.loss = type("Other" + base.__name__, (base,), {})()
    return model


@pytest.mark.parametrize("loss, targets", [("cross_entropy", "labels"), ("mse", "labels"), ("mse", "rows")])
@pytest.mark.parametrize("n", [1, 3])
def test_the_dense_chain_step_computes_the_layer_by_layer_step(loss, targets, n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = rng.integers(0, 3, n) if targets == "labels" else rng.random((n, 3), dtype=np.float32)
    chain, other = dense_chain(loss, np.float32), layer_by_layer(dense_chain(loss, np.float32))
    for step in range(3):
        assert chain.train_on_batch(x, y) == pytest.approx(other.train_on_batch(x, y), rel=1e-5)
    assert chain._chain is not None
    for a, b in zip(chain.layers, other.layers):
        for name in a.params:
            assert_close(a.params[name], b.params[name], rtol=1e-5, atol=1e-6, what=f"{type(a).__name__} {name}")


@pytest.mark.parametrize("n", [1, 3, 8])
def test_a_dense_model_step_is_sgd_on_the_central_difference_gradient(n):
    # Batches under SMALL_BATCH take the chain kernel: ReLU units that are off give exactly zero error
    # terms, whose weight rows the update skips.  Batch 8 takes the layers' BLAS path on one BLAS thread.
    rng = np.random.default_rng(10 + n)
    model = dense_chain("cross_entropy", np.float64, seed=n)
    x, y = rng.normal(size=(n, 5)), rng.integers(0, 3, n)
    hidden = np.maximum(x @ model.layers[0].params["weight"].T + model.layers[0].params["bias"], 0)
    assert (hidden == 0).any() and (hidden > 0).any()
    before = [{name: p.copy() for name, p in layer.params.items()} for layer in model.layers]
    expected = [{name: central_difference(lambda: model.evaluate(x, y)["loss"], p) for name, p in layer.params.items()}
                for layer in model.layers]
    model.train_on_batch(x, y)
    assert model._blas_threads(n) is one_blas_thread
    for layer, old, grads in zip(model.layers, before, expected):
        for name in layer.params:
            step = (old[name] - layer.params[name]) / model.optimizer.lr
            assert_close(step, grads[name], rtol=1e-5, atol=1e-8, what=f"{type(layer).__name__} {name}")


def test_the_dense_chain_step_stops_on_a_non_finite_loss_or_gradient():
    model = Sequential([Dense(1, 1, rng=0)], loss="mse")
    weight = model.layers[0].params["weight"].copy()
    with pytest.raises(RuntimeError, match="the loss became inf in train_on_batch"), np.errstate(over="ignore"):
        model.train_on_batch(np.full((1, 1), 1e30, np.float32), np.zeros((1, 1), np.float32))
    assert np.array_equal(model.layers[0].params["weight"], weight)
    # ReLU units all off and huge weights above them: a finite loss, an infinite error term for the layer below.
    model = Sequential([Dense(2, 2, rng=0), ReLU(), Dense(2, 2, rng=0)], loss="mse")
    model.layers[0].params["weight"][:] = 0
    model.layers[0].params["bias"][:] = -1
    model.layers[2].params["weight"][:] = 3e38
    with pytest.raises(RuntimeError, match="a gradient became NaN or infinite in train_on_batch"), \
            np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point (NUMBA_DISABLE_JIT runs)
        model.train_on_batch(np.ones((1, 2), np.float32), np.full((1, 2), 10, np.float32))
    assert model._chain is not None


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("n", [1, 3])
def test_a_small_batch_the_chain_kernel_checks_is_refused_as_by_the_usual_checks(loss, n):
    # int64 labels and a float32 batch under SMALL_BATCH go to the chain's kernel as they are; its checks
    # must give the errors of _prepare_x and _prepare_y, with nothing changed.
    rng = np.random.default_rng(n)
    model = dense_chain(loss, np.float32)
    x, y = rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n)
    model._compile()
    assert model._chain_takes(x, y) is not None
    before = [p.copy() for layer in model.layers for p in layer.params.values()]
    bad_x = x.copy()
    bad_x[-1, 2] = np.nan
    bad_y = y.copy()
    bad_y[-1] = 3
    cases = [(bad_x, y, r"x contains NaN"), (x * np.inf, y, r"x contains NaN or inf"),
             (x, bad_y, r"y holds labels outside \[0, 3\)"), (x, -1 - y, r"y holds labels outside"),
             (bad_x, bad_y, r"x contains NaN")]  # x is checked first, as before any step
    for bad_x_, bad_y_, message in cases:
        with pytest.raises(ValueError, match=message):
            model.train_on_batch(bad_x_, bad_y_)
    assert all(np.array_equal(a, b) for a, b in zip(before, (p for layer in model.layers for p in layer.params.values())))
    model.train_on_batch(x, y)  # and a good batch still steps
    assert not np.array_equal(before[0], model.layers[0].params["weight"])


def test_a_model_whose_layers_were_replaced_runs_as_one_built_from_them():
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 4), dtype=np.float32), np.array([0, 1, 2, 0, 1])
    model = Sequential([Dense(4, 5, rng=0), ReLU(), Dense(5, 3, rng=1)])
    model.train_on_batch(x, y)
    model.layers[-1] = Dense(5, 4, rng=2)  # four classes now
    fresh = Sequential(list(model.layers))
    assert model.predict_proba(x).shape == (5, 4)
    assert np.array_equal(model.predict_logits(x), fresh.predict_logits(x))
    expected = fresh.evaluate(x[:2], np.array([3, 3]))["loss"]  # the layers are shared: before the step
    assert model.train_on_batch(x[:2], np.array([3, 3])) == pytest.approx(expected, rel=1e-6)
    model.layers[0] = Dense(6, 5, rng=3)  # and six features
    with pytest.raises(ValueError, match=r"x must have shape \(N, 6\) for this model, got \(2, 4\)"):
        model.train_on_batch(x[:2], y[:2])
    assert model.summary(print_fn=lambda line: None) is None and model.input_shape == (6,)
    model.layers[2] = Dense(5, 4, dtype=np.float64)
    with pytest.raises(ValueError, match="all layers with weights must share one dtype"):
        model.predict(x)


@pytest.mark.parametrize("make_optimizer", [lambda: SGD(lr=0.1), lambda: SGD(lr=0.1, momentum=0.9),
                                            lambda: Adam(lr=0.01)], ids=["sgd", "momentum", "adam"])
@pytest.mark.parametrize("n", [1, 3, 64])  # the chain kernel, the layers' small-batch path, BLAS batches
def test_weights_assigned_after_training_started_are_the_ones_trained(make_optimizer, n):
    """``layer.params[name] = array`` copies into the array the kernels, the plan and the optimizer hold:
    the same as writing into it."""
    rng = np.random.default_rng(2)
    x, y = rng.random((n, 4), dtype=np.float32), rng.integers(0, 3, n)
    assigned, written = (Sequential([Dense(4, 5, rng=0), ReLU(), Dense(5, 3, rng=1)], optimizer=make_optimizer())
                         for _ in range(2))
    for model in (assigned, written):
        model.train_on_batch(x, y)  # plans the steps and binds the optimizer to the arrays
    new = {name: rng.normal(size=array.shape) for name, array in assigned.layers[0].params.items()}
    assigned.layers[0].params["weight"] = new["weight"]  # float64 values into the float32 layer
    assigned.layers[0].params = {"bias": new["bias"]}
    for name, value in new.items():
        written.layers[0].params[name][...] = value
    assert np.array_equal(assigned.predict_logits(x), written.predict_logits(x))
    for model in (assigned, written):
        model.train_on_batch(x, y)
    for mine, theirs in zip(assigned.layers, written.layers):
        for name in mine.params:
            assert np.array_equal(mine.params[name], theirs.params[name]), name
    assert not np.allclose(assigned.layers[0].params["weight"], new["weight"].astype(np.float32))


def test_train_on_batch_with_adam_on_a_small_batch_takes_the_layers_path():
    rng = np.random.default_rng(1)
    x, y = rng.random((2, 4), dtype=np.float32), np.array([0, 2])
    stepped, fitted = (Sequential([Dense(4, 5, rng=0), ReLU(), Dense(5, 3, rng=1)], optimizer=Adam(lr=0.1))
                       for _ in range(2))
    stepped.train_on_batch(x, y)
    fitted.fit(x, y, batch_size=2, shuffle=False, verbose=0)
    for a, b in zip(stepped.layers, fitted.layers):
        for name in a.params:
            assert np.array_equal(a.params[name], b.params[name])
    assert not np.array_equal(stepped.layers[0].params["weight"], Dense(4, 5, rng=0).params["weight"])


def test_small_blas_products_run_on_one_blas_thread_and_large_ones_as_configured(monkeypatch):
    if not one_blas_thread.available:
        pytest.skip("numpy's BLAS is not an OpenBLAS whose threads can be set")
    seen = []
    model = dense_chain("cross_entropy", np.float32)
    forward = model.layers[0]._forward
    monkeypatch.setattr(model.layers[0], "_forward", lambda x, code: (seen.append(one_blas_thread.threads()),
                                                                      forward(x, code))[1])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)).astype(np.float32), rng.integers(0, 3, 8)
    configured = one_blas_thread.threads()
    model.train_on_batch(x, y)
    model.predict(x)
    monkeypatch.setattr("fastnn.nn.model.ONE_THREAD_WORK", 8 * 8 * 6 - 1)  # batch x the largest layer (8 x 6)
    model.train_on_batch(x, y)
    assert seen == [1, 1, configured] and one_blas_thread.threads() == configured
    with one_blas_thread:
        with one_blas_thread:
            assert one_blas_thread.threads() == 1
        assert one_blas_thread.threads() == 1
    assert one_blas_thread.threads() == configured


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_sgd_on_blas_batches_adds_the_gradient_into_the_weights(dtype, monkeypatch):
    from fastnn._blas import can_add_product

    if not can_add_product(dtype):
        pytest.skip("numpy's BLAS is not a scipy-openblas with cblas gemm")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(8, 5)).astype(dtype), rng.integers(0, 3, 8)
    added, small, stored, checked = (layer_by_layer(dense_chain("cross_entropy", dtype)) for _ in range(4))
    for model in (stored, checked):
        model._compile()
    stored._deferred = False  # the layers' gradients, checked and applied by the optimizer
    monkeypatch.setattr(checked, "_bound_limit", 0.0)  # no bound proves anything: stored and checked as well
    for step in range(3):
        with monkeypatch.context() as patch:
            patch.setattr("fastnn.nn.dense.ADD_PRODUCT_SIZE", 1)  # every layer takes the gemm
            losses = [added.train_on_batch(x, y)]
        losses += [model.train_on_batch(x, y) for model in (small, stored, checked)]
        assert losses[0] == pytest.approx(losses[2], rel=1e-6) and losses[1] == losses[2] == losses[3]
    assert added._deferred and not added.layers[0].grads["weight"].any()  # the gradient went straight in
    assert small.layers[0].grads["weight"].any() and checked.layers[0].grads["weight"].any()
    for a, b, c, d in zip(added.layers, small.layers, stored.layers, checked.layers):
        for name in a.params:
            assert_close(a.params[name], c.params[name], rtol=1e-6, atol=1e-7, what=f"{type(a).__name__} {name}")
            assert np.array_equal(b.params[name], c.params[name]) and np.array_equal(d.params[name], c.params[name])


def test_a_blas_batch_whose_gradient_overflows_keeps_every_weight():
    # ReLU units all off and huge weights above them: a finite loss, a NaN error term for the layer below,
    # found before any layer is updated (the bound of that layer is not finite).
    model = Sequential([Dense(2, 2, rng=0), ReLU(), Dense(2, 2, rng=0)], loss="mse")
    model.layers[0].params["weight"][:] = 0
    model.layers[0].params["bias"][:] = -1
    model.layers[2].params["weight"][:] = 3e38
    before = [p.copy() for layer in model.layers for p in layer.params.values()]
    with pytest.raises(RuntimeError, match="a gradient became NaN .* keeps the weights of the last good step"), \
            np.errstate(over="ignore", invalid="ignore"):
        model.train_on_batch(np.ones((8, 2), np.float32), np.full((8, 2), 10, np.float32))
    after = [p for layer in model.layers for p in layer.params.values()]
    assert all(np.array_equal(p, q) for p, q in zip(before, after))


def public_api_step(model, x, y):
    """An SGD step through the layers' public forward and backward, one layer at a time, nothing folded."""
    out = x
    for layer in model.layers:
        out = layer.forward(out)
    model.loss(out, y)
    grad = model.loss.backward()
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    assert model.optimizer.step(model.layers)


@pytest.mark.parametrize("activation, above", [(ReLU, ReLU), (Sigmoid, ReLU), (ReLU, None)])
@pytest.mark.parametrize("n", [1, 5])
def test_folded_convolution_activations_compute_the_layer_by_layer_step(activation, above, n):
    # conv, activation, max pool, conv: the activation runs in the first convolution's kernel and its derivative
    # in the second one's gradient kernel (when that one has an activation of its own: a step to fold into); the
    # Dense layers end the model (one kernel call at batch 1).
    from fastnn.nn import Conv2D, Flatten, MaxPool2D

    def build():
        rng = np.random.default_rng(3)
        return Sequential([Conv2D(1, 3, 3, padding=1, rng=rng), activation(), MaxPool2D(2), Conv2D(3, 4, 3, rng=rng),
                           *([above()] if above else []), MaxPool2D(2, stride=1), Flatten(), Dense(4 * 2 * 2, 6, rng=rng),
                           ReLU(), Dense(6, 3, rng=rng)], optimizer=SGD(lr=0.5), input_shape=(1, 10, 10))

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(n, 1, 10, 10)).astype(np.float32), rng.integers(0, 3, n)
    folded, reference = build(), build()
    for _ in range(2):
        folded.train_on_batch(x, y)
        public_api_step(reference, x, y)
    assert folded._chain is not None and folded._head_backward
    for a, b in zip(folded.layers, reference.layers):
        for name in a.params:
            assert_close(a.params[name], b.params[name], rtol=1e-5, atol=1e-6, what=f"{type(a).__name__} {name}")
    assert not np.array_equal(folded.layers[0].params["weight"], build().layers[0].params["weight"])
