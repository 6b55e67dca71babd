"""Failure behaviour: killed while saving, NaN during training, a read-only install, two threads on one model."""

import ctypes
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import nn

def checkpoint_version(path):
    """The version a checkpoint written by the saver below holds; every array must hold the same one."""
    model = nn.load(path)
    values = {float(v) for layer in model.layers for p in layer.params.values() for v in np.unique(p)}
    assert len(values) == 1, f"{path} mixes arrays of versions {sorted(values)}"
    return values.pop()


def start_saver(model, path, run, saves):
    """Fork a child that saves versions ``run * 10000 + i`` (exact in float32) of `model` to `path`, then exits."""
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(saves):
                for layer in model.layers:
                    for param in layer.params.values():
                        param.fill(run * 10000 + i)
                model.save(path)
        finally:
            os._exit(0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_killed_while_saving_never_leaves_a_partial_checkpoint(tmp_path):
    """50 times: a child saves new versions of a model to one path until SIGKILL lands at a random moment.

    Afterwards the path holds nothing (no save finished yet) or one complete
    checkpoint, never older than the one seen after the previous kill.
    """
    path = tmp_path / "model.npz"
    model = nn.Sequential([nn.Dense(64, 256, rng=0), nn.Dense(256, 64, rng=1)])  # 130 kB of weights
    # Kills land within the time a child takes to start and make three saves, however slow this machine is.
    started = time.perf_counter()
    os.waitpid(start_saver(model, tmp_path / "timing.npz", 0, 3), 0)
    longest_wait = time.perf_counter() - started
    (tmp_path / "timing.npz").unlink()
    rng = np.random.default_rng(0)
    seen, interrupted = -1.0, 0
    for run in range(50):
        pid = start_saver(model, path, run, 10000)
        time.sleep(rng.uniform(0.0, longest_wait))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        leftovers = [p for p in tmp_path.iterdir() if p.name != path.name]
        interrupted += bool(leftovers)
        for leftover in leftovers:  # the temporary file of a save cut short, never under the final name
            assert leftover.name.startswith(".model.npz.") and leftover.name.endswith(".tmp")
            leftover.unlink()
        if path.exists():
            version = checkpoint_version(path)
            assert version >= seen
            seen = version
        else:
            assert seen < 0, "a complete checkpoint disappeared"
    assert seen >= 0, "no save ever completed: the kills came too early to test anything"
    print(f"{interrupted} of 50 kills interrupted a save in progress")


class Poison(nn.Layer):
    """Passes data through, but puts NaN into its output (forward) or its gradient (backward) at one call."""

    def __init__(self, where, at_call):
        super().__init__()
        self.where, self.at_call, self.calls = where, at_call, 0

    def forward(self, x):
        self.calls += self.where == "forward"
        return x * np.nan if self.where == "forward" and self.calls == self.at_call else x

    def backward(self, grad_output):
        self.calls += self.where == "backward"
        return grad_output * np.nan if self.where == "backward" and self.calls == self.at_call else grad_output


class Snapshot(nn.Callback):
    """The weights after every completed step."""

    def on_batch_end(self, step, batch_size, loss):
        self.weights = [p.copy() for layer in self.model.layers for p in layer.params.values()]


def poisoned_model(where, optimizer):
    rng = np.random.default_rng(0)
    layers = [nn.Conv2D(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Dense(2 * 4 * 4, 8, rng=rng), nn.Tanh(),
              Poison(where, at_call=3), nn.Dense(8, 3, rng=rng)]
    return nn.Sequential(layers, optimizer=optimizer, input_shape=(1, 6, 6))


@pytest.mark.parametrize("where, optimizer, batch_size, message", [
    ("forward", nn.SGD(lr=0.1), 2, r"the loss became nan at epoch 1, step 3; .*keeps the weights of the last good"),
    ("forward", nn.Adam(), 8, r"the loss became nan at epoch 1, step 3; .*keeps the weights of the last good"),
    ("backward", nn.SGD(lr=0.1, momentum=0.9), 2,
     r"a gradient became NaN or infinite at epoch 1, step 3; .*keeps the weights of the last good step"),
    ("backward", nn.SGD(lr=0.1), 8,
     r"a gradient became NaN or infinite at epoch 1, step 3; .*keeps the weights of the last good step"),
], ids=["loss, fused SGD", "loss, Adam", "gradient, momentum", "gradient, SGD"])
def test_a_nan_during_training_stops_fit_and_keeps_the_last_good_weights(where, optimizer, batch_size, message):
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 1, 6, 6), dtype=np.float32), rng.integers(0, 3, 40)
    model, snapshot = poisoned_model(where, optimizer), Snapshot()
    with pytest.raises(RuntimeError, match=message):
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0, callbacks=[snapshot])
    now = [p for layer in model.layers for p in layer.params.values()]
    assert all(np.isfinite(p).all() and np.array_equal(p, q) for p, q in zip(now, snapshot.weights))


def test_a_nan_gradient_in_fused_sgd_stops_fit_and_says_what_was_updated():
    """Plain SGD on batches under 4 samples updates Dense layers during back propagation: the error says so."""
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 1, 6, 6), dtype=np.float32), rng.integers(0, 3, 40)
    model = poisoned_model("backward", nn.SGD(lr=0.1))
    with pytest.raises(RuntimeError, match=r"step 3; .*the Dense layers above the failing layer may already hold"):
        model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert all(np.isfinite(p).all() for layer in model.layers for p in layer.params.values())


def without_file_permission_override():
    """For a child run as root: drop the capabilities that let root write into read-only folders."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, dac_override, dac_read_search, fowner = 24, 1, 2, 3

    def drop():
        for capability in (dac_override, dac_read_search, fowner):
            if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
    return drop


def read_only_install(tmp_path):
    """A copy of the fastnn package in a folder nobody may write to; returns (site folder, files in it)."""
    site = tmp_path / "site"
    shutil.copytree(Path(fastnn.__file__).parent, site / "fastnn", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, files in os.walk(site):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    return site, sorted(p for p in site.rglob("*"))


PERCEPTRON = textwrap.dedent("""
    from fastnn.tutorial.perceptron import Perceptron, f
    p = Perceptron(2, f)
    p.train([[1, 1], [0, 0], [1, 0], [0, 1]], [1, 0, 0, 0], 10, 0.1)
    print(p.weights, round(p.bias, 12))
""")


def run_from(site, home, cache_dir=None):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NUMBA_CACHE_DIR", "XDG_"))}
    env.update(PYTHONPATH=str(site), HOME=str(home))
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, "-c", PERCEPTRON], env=env, capture_output=True, text=True, timeout=300,
                          cwd=home, preexec_fn=without_file_permission_override())


@pytest.mark.needs_jit  # Numba's cache is what is tested
def test_a_read_only_install_caches_kernels_in_the_user_cache_or_numba_cache_dir(tmp_path):
    site, files = read_only_install(tmp_path)
    try:
        home = tmp_path / "home"
        home.mkdir()
        result = run_from(site, home)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == ["[0.1,", "0.2]", "-0.2"]
        assert any((home / ".cache" / "numba").rglob("*.nbi")), "Numba did not fall back to the user cache"
        cache = tmp_path / "cache"
        result = run_from(site, home, cache_dir=cache)
        assert result.returncode == 0, result.stderr[-3000:]
        assert any(cache.rglob("*.nbi")), "NUMBA_CACHE_DIR was not used"
        homeless = tmp_path / "read-only home"  # and no writable home either: kernels compile in every process
        homeless.mkdir(mode=0o555)
        result = run_from(site, homeless)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == ["[0.1,", "0.2]", "-0.2"]
        assert "set NUMBA_CACHE_DIR to a writable folder" in result.stderr
        assert sorted(p for p in site.rglob("*")) == files, "something was written into the install folder"
    finally:
        for folder, _, _ in os.walk(tmp_path):
            os.chmod(folder, 0o755)  # let pytest remove it


def small_model():
    rng = np.random.default_rng(0)
    layers = [nn.Conv2D(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
              nn.Dense(4 * 6 * 6, 16, rng=rng), nn.Tanh(), nn.Dense(16, 3, rng=rng)]
    return nn.Sequential(layers, input_shape=(1, 12, 12))


def predict_from_two_threads(model, rounds=40):
    """Two threads predict on one model at once; returns how many results differed from a serial run."""
    rng = np.random.default_rng(0)
    inputs = [rng.random((16, 1, 12, 12), dtype=np.float32) for _ in range(6)]
    expected = [model.predict_logits(x) for x in inputs]
    wrong = []

    def work(first):
        for r in range(rounds):
            i = (first + r) % len(inputs)
            wrong.append(not np.array_equal(model.predict_logits(inputs[i]), expected[i]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wrong) == 2 * rounds
    return sum(wrong)


def test_two_threads_predicting_on_one_model_both_get_correct_results():
    assert predict_from_two_threads(small_model()) == 0


@pytest.mark.needs_jit  # the workqueue layer runs compiled parallel kernels only
def test_two_threads_on_one_model_under_numbas_workqueue_layer():
    """Without the model's lock the workqueue threading layer aborts the process on concurrent kernel launches."""
    script = ("import sys; sys.path.insert(0, 'tests'); from test_faults import predict_from_two_threads, small_model; "
              "print(predict_from_two_threads(small_model(), rounds=20))")
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", PYTHONPATH=str(Path(fastnn.__file__).parents[1]))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "0"


def test_a_trained_model_pickles_and_predicts_the_same():
    model = small_model()
    rng = np.random.default_rng(2)
    x = rng.random((8, 1, 12, 12), dtype=np.float32)
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.predict_logits(x), model.predict_logits(x))
    copy.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)


@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") != "1", reason="for CI's bounds-checked run")
def test_this_run_compiles_bounds_checked_kernels():
    """Numba's cache ignores NUMBA_BOUNDSCHECK: a stale cache would run unchecked kernels and this would fail."""
    from fastnn.kernels.loss import softmax_cross_entropy

    with pytest.raises(IndexError):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 70000]), 1.0, np.empty((2, 3)))
