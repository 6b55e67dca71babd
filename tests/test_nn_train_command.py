"""``fastnn train`` (fastnn.train_command) on the bundled sample: output, --save, --plot, errors."""

import argparse

import numpy as np
import pytest

from fastnn import train_command
from fastnn.datasets import load_sample, loaders
from fastnn.nn import load


def run(*argv):
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    return train_command.run(parser.parse_args(list(argv)))


@pytest.mark.needs_jit
def test_train_on_the_sample_prints_epochs_accuracy_and_confusion_and_saves(tmp_path, capsys):
    path = tmp_path / "mlp.npz"
    assert run("--model", "mlp300", "--dataset", "sample", "--epochs", "2", "--quiet", "--save", str(path)) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2:" in out and "epoch 2/2:" in out and "val_accuracy" in out
    assert "test accuracy" in out and "true \\ predicted" in out and "Sneaker" in out
    assert "peak memory" in out and "images/s" in out
    (_, _), (x_test, y_test) = load_sample(flatten=True)
    accuracy = float(out.split("test accuracy ")[1].split("%")[0]) / 100
    assert accuracy == pytest.approx(np.mean(load(path).predict(x_test) == y_test), abs=1e-4)


@pytest.mark.needs_jit
def test_plot_draws_or_says_matplotlib_is_missing(tmp_path, capsys):
    path = tmp_path / "curves.png"
    assert run("--model", "mlp", "--dataset", "sample", "--epochs", "1", "--quiet", "--plot", str(path)) == 0
    captured = capsys.readouterr()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in captured.err and not path.exists()
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(loaders, "SYSTEM_DIR", tmp_path / "none")
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    assert run("--dataset", "fashion-mnist") == 1
    assert "fashion-mnist not found; looked in" in capsys.readouterr().err
    assert run("--dataset", "sample", "--model", "mlp", "--batch-size", "0") == 1
    assert "batch_size must be >= 1" in capsys.readouterr().err
    assert run("--dataset", "sample", "--model", "mlp", "--lr", "-1") == 1
    assert "lr must be > 0" in capsys.readouterr().err
    assert run("--threads", "0") == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
