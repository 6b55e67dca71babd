"""fastnn.distributed on a LocalCluster of two worker processes (loopback only): fit, predict, evaluate, sweep, faults.

One cluster serves the whole module; the tests that kill a worker run last
and wait for its nanny to bring it back.
"""

import argparse
import importlib
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import fastnn.distributed as fd  # noqa: E402
from fastnn import train_command  # noqa: E402
from fastnn.distributed import _common as common  # noqa: E402
from fastnn.distributed._common import parameters  # noqa: E402
from fastnn.nn import SGD, Adam, Callback, Dense, Flatten, ReLU, Sequential, Sigmoid, load  # noqa: E402

from helpers import assert_close  # noqa: E402

# Per worker: the out-of-core test streams a data set larger than this through predict.
MEMORY_LIMIT = 512 * 2**20


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=None, memory_limit=MEMORY_LIMIT,
                                       env={"NUMBA_NUM_THREADS": "1"})
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def build(seed=0, dtype=np.float64, optimizer=None, features=10, classes=3):
    rng = np.random.default_rng(seed)
    layers = [Dense(features, 16, dtype=dtype, rng=rng), ReLU(), Dense(16, classes, dtype=dtype, rng=rng)]
    return Sequential(layers, optimizer=optimizer or SGD(lr=0.1, momentum=0.9))


def blobs(n=240, features=10, classes=3, seed=1):
    """Separable classes: a mean per class plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(0, 2, (classes, features))
    return centres[y] + rng.normal(size=(n, features)), y


def assert_same_weights(expected, actual, rtol):
    for i, (e, a) in enumerate(zip(parameters(expected), parameters(actual))):
        assert_close(a, e, rtol=rtol, atol=rtol, what=f"parameter array {i}")


# ---------------------------------------------------------------- training

def test_a_fit_waits_for_a_worker_while_the_cluster_has_none(monkeypatch):
    # A nanny restarting its worker leaves the scheduler without it for a few seconds.
    class Restarting:
        calls = 0

        def scheduler_info(self, n_workers):
            self.calls += 1
            return {"workers": {"tcp://b": {}, "tcp://a": {}} if self.calls > 3 else {}}

    monkeypatch.setattr(common, "POLL", 0.01)
    restarting = Restarting()
    assert common.live_workers(restarting) == ["tcp://a", "tcp://b"] and restarting.calls == 4
    assert common.live_workers(restarting, exclude=["tcp://a"]) == ["tcp://b"]
    monkeypatch.setattr(common, "WORKERLESS", 0.05)
    assert common.live_workers(restarting, exclude=["tcp://a", "tcp://b"]) == []


def test_fit_follows_single_machine_fit_with_shuffling_and_momentum(client):
    x, y = blobs()
    reference = build().fit(x, y, epochs=2, batch_size=16, seed=5, verbose=0)
    X, Y = da.from_array(x, chunks=50), da.from_array(y, chunks=50)  # 5 blocks on 2 workers: uneven parts
    model = fd.fit(build(), X, Y, client, epochs=2, batch_size=16, seed=5, verbose=0)
    assert_same_weights(reference, model, 1e-12)
    assert model.history_.keys() == reference.history_.keys()
    for key in ("loss", "accuracy"):
        assert_close(model.history_[key], reference.history_[key], rtol=1e-12, what=key)


def test_fit_on_numpy_float32_with_adam_stays_float32_and_close(client):
    x, y = blobs()
    x = x.astype(np.float32)
    reference = build(dtype=np.float32, optimizer=Adam(lr=0.01)).fit(x, y, epochs=2, batch_size=32, shuffle=False,
                                                                     verbose=0)
    model = fd.fit(build(dtype=np.float32, optimizer=Adam(lr=0.01)), x, y, client, epochs=2, batch_size=32,
                   shuffle=False, verbose=0)
    assert all(p.dtype == np.float32 for p in parameters(model))
    assert_same_weights(reference, model, 2e-5)


def test_fit_prints_progress_and_fills_history_with_validation(client, capsys):
    x, y = blobs()
    X, Y = da.from_array(x, chunks=60), da.from_array(y, chunks=60)
    reference = build().fit(x, y, epochs=2, batch_size=16, validation_split=0.25, seed=2, verbose=0)
    model = fd.fit(build(), X, Y, client, epochs=2, batch_size=16, validation_split=0.25, seed=2, verbose=2)
    out = capsys.readouterr().out
    assert "epoch 1/2: loss" in out and "epoch 2/2: loss" in out and "val_accuracy" in out
    assert list(model.history_) == list(reference.history_)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert_close(model.history_[key], reference.history_[key], rtol=1e-10, what=key)


def test_local_sgd_on_one_shard_is_plain_fit_and_on_two_shards_still_learns(client):
    x, y = blobs()
    # One block, hence one replica: its local steps are exactly the single-machine steps.
    reference = build(optimizer=Adam(lr=0.01)).fit(x, y, epochs=2, batch_size=16, seed=3, verbose=0)
    one = fd.fit(build(optimizer=Adam(lr=0.01)), da.from_array(x, chunks=-1), y, client, epochs=2, batch_size=16,
                 seed=3, verbose=0, sync_every=4)
    assert_same_weights(reference, one, 1e-10)
    two = fd.fit(build(optimizer=SGD(lr=0.05)), x, y, client, epochs=3, batch_size=16, seed=3, verbose=0, sync_every=5)
    assert len(two.history_["loss"]) == 3 and two.history_["loss"][-1] < two.history_["loss"][0]
    assert two.evaluate(x, y)["accuracy"] > 0.8


def test_fit_saves_a_checkpoint_every_epoch(client, tmp_path):
    x, y = blobs()
    path = tmp_path / "model.npz"
    model = fd.fit(build(), x, y, client, epochs=1, batch_size=32, verbose=0, checkpoint=path)
    assert_same_weights(model, load(path), 0)


def test_divergence_stops_with_a_clear_error_and_keeps_finite_weights(client):
    x, y = blobs()
    model = build(optimizer=SGD(lr=1e30))
    with pytest.raises(RuntimeError, match="became (nan|inf|NaN|-inf)"):
        fd.fit(model, x * 1e10, y, client, epochs=3, batch_size=16, verbose=0)
    assert all(np.isfinite(p).all() for p in parameters(model))


# --------------------------------------------------------------- inference

def test_predict_is_lazy_block_by_block_and_matches_the_model(client):
    rng = np.random.default_rng(0)
    model = Sequential([Flatten(), Dense(16, 5, dtype=np.float64, rng=rng), Sigmoid()], loss="mse",
                       input_shape=(1, 4, 4))
    x = rng.normal(size=(90, 1, 4, 4))
    X = da.from_array(x, chunks=(25, 1, 4, 4))
    labels = fd.predict(model, X, client)
    assert isinstance(labels, da.Array) and labels.shape == (90,) and labels.chunks == (X.chunks[0],)
    np.testing.assert_array_equal(client.compute(labels).result(timeout=60), model.predict(x))
    for method in ("predict_proba", "predict_logits"):
        out = client.compute(fd.predict(model, X, client, method=method)).result(timeout=60)
        assert_close(out, getattr(model, method)(x), rtol=1e-12, what=method)
    result = fd.evaluate(model, X, rng.integers(0, 5, 90), client)
    assert result.keys() == {"loss", "accuracy"}


def _random_block(rows, features, block_id=None):
    """A block of the big data set, made on the worker: ten random columns repeated (cheaper than drawing them all)."""
    columns = np.random.default_rng(block_id[0]).normal(size=(rows, 10)).astype(np.float32)
    return np.tile(columns, (1, features // 10))


def test_predict_streams_a_data_set_larger_than_a_workers_memory(client):
    features, rows, blocks = 500, 10_000, 30  # 600 MB of float32, more than MEMORY_LIMIT
    assert rows * blocks * features * 4 > MEMORY_LIMIT
    model = build(dtype=np.float32, features=features, classes=4)
    X = da.map_blocks(_random_block, rows, features, dtype=np.float32, chunks=((rows,) * blocks, (features,)))
    counts = client.compute(da.bincount(fd.predict(model, X, client), minlength=4)).result(timeout=120)
    expected = sum(np.bincount(model.predict(_random_block(rows, features, (i, 0))), minlength=4)
                   for i in range(blocks))
    np.testing.assert_array_equal(counts, expected)


# ------------------------------------------------------------------ sweeps

def _sweep_model(lr, hidden=16):
    rng = np.random.default_rng(0)
    layers = [Dense(10, hidden, dtype=np.float64, rng=rng), ReLU(), Dense(hidden, 3, dtype=np.float64, rng=rng)]
    return Sequential(layers, optimizer=SGD(lr=lr))


def test_sweep_trains_every_configuration_and_sorts_best_first(client):
    x, y = blobs()
    data = ((x[:180], y[:180]), (x[180:], y[180:]))
    table = fd.sweep(_sweep_model, {"lr": [1e-4, 0.1, 1e40], "hidden": [8], "batch_size": [16]}, data, client, epochs=2)
    assert len(table) == 3
    assert [row["params"]["lr"] for row in table] == [0.1, 1e-4, 1e40]  # the diverging one last, with its error
    assert "error" in table[-1] and "RuntimeError" in table[-1]["error"]
    best = table[0]
    assert best["val_loss"] < table[1]["val_loss"] and best["epochs"] == 2 and best["seconds"] > 0
    reference = _sweep_model(0.1, 8).fit(x[:180], y[:180], epochs=2, batch_size=16, seed=0, verbose=0,
                                         validation_data=data[1])
    assert best["val_loss"] == pytest.approx(reference.history_["val_loss"][-1], rel=1e-12)
    by_accuracy = fd.sweep(_sweep_model, [{"lr": 1e-4}, {"lr": 0.1}], data, client, metric="val_accuracy")
    assert by_accuracy[0]["val_accuracy"] >= by_accuracy[1]["val_accuracy"]


def test_sweep_bad_input(client):
    x, y = blobs()
    with pytest.raises(TypeError, match="param_grid"):
        fd.sweep(_sweep_model, {"lr": 0.1}, (x, y), client)
    with pytest.raises(ValueError, match="no configuration"):
        fd.sweep(_sweep_model, [], (x, y), client)
    with pytest.raises(TypeError, match="data must be"):
        fd.sweep(_sweep_model, {"lr": [0.1]}, x, client)
    with pytest.raises(ValueError, match="every configuration of the sweep failed.*must have shape"):
        fd.sweep(_sweep_model, {"lr": [0.1]}, (x[:, :7], y), client)
    with pytest.raises(ValueError, match="metric 'val_loss' is not computed"):
        fd.sweep(_sweep_model, {"lr": [0.1]}, (x, y), client, metric="val_loss")


# --------------------------------------------------------------- bad input

def test_no_client_given_and_none_running():
    x, y = blobs()
    with pytest.raises(RuntimeError, match="no dask client"):
        fd.fit(build(), x, y)
    with pytest.raises(RuntimeError, match="no dask client"):
        fd.predict(build(), da.from_array(x))
    with pytest.raises(RuntimeError, match="no dask client"):
        fd.sweep(_sweep_model, {"lr": [0.1]}, (x, y))
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        fd.fit(build(), x, y, "tcp://127.0.0.1:8786")


def test_the_running_client_is_used_when_none_is_given(client):
    x, _ = blobs(n=20)
    with client.as_current():
        labels = fd.predict(build(), da.from_array(x, chunks=10)).compute()
    assert labels.shape == (20,)


def test_chunks_that_split_samples_across_features_are_refused(client):
    x, y = blobs()
    X = da.from_array(x, chunks=(60, 5))
    for call in (lambda: fd.fit(build(), X, y, client, verbose=0), lambda: fd.predict(build(), X, client),
                 lambda: fd.evaluate(build(), X, y, client)):
        with pytest.raises(ValueError, match=r"split along axis 1 .*rechunk\(\{1: -1\}\)"):
            call()
    X4 = da.zeros((8, 1, 4, 4), chunks=(4, 1, 2, 4))
    with pytest.raises(ValueError, match="split along axis 2"):
        fd.predict(Sequential([Flatten(), Dense(16, 2)], input_shape=(1, 4, 4)), X4, client)


def test_model_and_data_that_do_not_fit_each_other(client):
    x, y = blobs()
    with pytest.raises(ValueError, match=r"samples of shape \(7,\), the model takes \(10,\)"):
        fd.predict(build(), da.from_array(x[:, :7], chunks=60), client)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 10\)"):
        fd.fit(build(), x[:, :7], y, client, verbose=0)
    with pytest.raises(ValueError, match=r"samples of shape \(7,\)"):
        fd.fit(build(), da.from_array(x[:, :7], chunks=60), y, client, verbose=0)
    with pytest.raises(ValueError, match="one target per sample of X: expected 240"):
        fd.fit(build(), da.from_array(x, chunks=60), y[:200], client, verbose=0)
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\)"):  # found by a replica, on its worker
        fd.fit(build(), da.from_array(x, chunks=60), da.from_array(y + 5, chunks=60), client, verbose=0)
    with pytest.raises(TypeError, match="X must be a dask array"):
        fd.predict(build(), x, client)
    with pytest.raises(ValueError, match="method must be one of"):
        fd.predict(build(), da.from_array(x), client, method="proba")
    with pytest.raises(TypeError, match="model must be a fastnn.nn.Sequential"):
        fd.predict("model", da.from_array(x), client)
    with pytest.raises(ValueError, match="sync_every must be >= 1"):
        fd.fit(build(), x, y, client, sync_every=0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        fd.fit(build(), x, y, client, timeout=0)


# -------------------------------------------------------------- packaging

def test_only_fastnn_distributed_imports_dask():
    code = ("import sys, fastnn, fastnn.nn, fastnn.cli, fastnn.train_command, fastnn.datasets; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')], 'dask imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_a_missing_extra_is_named(monkeypatch):
    for name in [m for m in sys.modules if m == "fastnn.distributed" or m.startswith("fastnn.distributed.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[distributed\]'"):
        importlib.import_module("fastnn.distributed")


def run_train(*argv):
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    return train_command.run(parser.parse_args(list(argv)))


def test_train_command_on_a_scheduler_address(client, tmp_path, capsys):
    path = tmp_path / "model.npz"
    address = client.scheduler.address
    assert run_train("--model", "mlp300", "--epochs", "1", "--quiet", "--scheduler", address, "--save", str(path)) == 0
    out = capsys.readouterr().out
    assert f"data-parallel on 2 dask worker(s) at {address}" in out and "epoch 1/1:" in out and "test accuracy" in out
    assert load(path).num_params == 784 * 300 + 300 + 300 * 10 + 10
    assert run_train("--workers", "0") == 2
    assert "workers must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(OSError, match="could not connect to the dask scheduler"):
        fd.connect("tcp://127.0.0.1:9", timeout=1)


# ------------------------------------------------------ workers killed mid-training

class KillWorker(Callback):
    """SIGKILL the process of worker `address` after step `step` of epoch `epoch` (the next step meets the loss)."""

    def __init__(self, pid, epoch, step):
        self.pid, self.epoch, self.step, self.current = pid, epoch, step, None

    def on_epoch_begin(self, epoch, epochs, n_samples):
        self.current = epoch

    def on_batch_end(self, step, batch_size, loss):
        if (self.current, step) == (self.epoch, self.step):
            os.kill(self.pid, signal.SIGKILL)


def _victim(client):
    client.wait_for_workers(2, timeout=60)
    return sorted(client.run(os.getpid).values())[0]


def test_a_worker_killed_during_training_is_replaced_and_the_trajectory_kept(client):
    x, y = blobs()
    reference = build().fit(x, y, epochs=2, batch_size=16, seed=4, verbose=0)
    killer = KillWorker(_victim(client), epoch=1, step=5)
    X, Y = da.from_array(x, chunks=60), da.from_array(y, chunks=60)  # the lost blocks are computed again
    with pytest.warns(RuntimeWarning, match="lost a worker at epoch 1, step 6 .*repeating the step"):
        model = fd.fit(build(), X, Y, client, epochs=2, batch_size=16, seed=4, verbose=0, callbacks=[killer])
    assert_same_weights(reference, model, 1e-12)
    assert len(model.history_["loss"]) == 2


def test_a_worker_killed_without_retries_stops_with_an_error_and_a_usable_checkpoint(client, tmp_path):
    x, y = blobs()
    path = tmp_path / "model.npz"
    after_one_epoch = build().fit(x, y, epochs=1, batch_size=16, seed=4, verbose=0)
    killer = KillWorker(_victim(client), epoch=2, step=3)
    model = build()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "fastnn.distributed", RuntimeWarning)  # no recovery may happen
        with pytest.raises(RuntimeError, match="lost a worker at epoch 2, step 4 .*gave up after 0 recoveries.*"
                                               "last completed step.*last completed epoch"):
            fd.fit(model, x, y, client, epochs=2, batch_size=16, seed=4, verbose=0, callbacks=[killer], retries=0,
                   checkpoint=path, timeout=60)
    assert_same_weights(after_one_epoch, load(path), 1e-12)
    assert all(np.isfinite(p).all() for p in parameters(model))
    client.wait_for_workers(2, timeout=60)
