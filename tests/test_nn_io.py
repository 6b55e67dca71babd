"""Save and load: bit-identical round trips, atomic writes, and refusal of bad checkpoints."""

import json
import os

import numpy as np
import pytest

from fastnn.nn import SGD, Adam, Dense, ReLU, Sequential, Sigmoid, load
from fastnn.nn.io import ARCHITECTURE_KEY, architecture


def trained_model(hidden=8, optimizer=None):
    rng = np.random.default_rng(0)
    model = Sequential([Dense(5, hidden, rng=rng), ReLU(), Dense(hidden, 3, rng=rng), Sigmoid()], loss="mse",
                       optimizer=optimizer or Adam(lr=0.01))
    x = rng.normal(size=(40, 5)).astype(np.float32)
    return model.fit(x, rng.integers(0, 3, 40), epochs=2, batch_size=8, verbose=0), x


def test_round_trip_gives_bit_identical_predictions(tmp_path):
    model, x = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load(path)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.loss.name == "mse" and isinstance(loaded.optimizer, Adam) and loaded.optimizer.lr == 0.01
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind


def test_load_weights_into_the_same_architecture(tmp_path):
    model, x = trained_model()
    model.save(tmp_path / "m.npz")
    fresh, _ = trained_model(optimizer=SGD())
    optimizer_arrays = [slot[0] for slot in fresh.optimizer._slots]
    fresh.load_weights(tmp_path / "m.npz")
    assert np.array_equal(fresh.predict_proba(x), model.predict_proba(x))
    assert all(a is b for a, b in zip(optimizer_arrays, (slot[0] for slot in fresh.optimizer._slots)))


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    model, _ = trained_model(hidden=8)
    model.save(tmp_path / "m.npz")
    other, _ = trained_model(hidden=9)
    with pytest.raises(ValueError, match="different architecture: layer 0 is Dense"):
        other.load_weights(tmp_path / "m.npz")
    shorter = Sequential([Dense(5, 3)])
    with pytest.raises(ValueError, match="different architecture: 4 layers, the model has 1"):
        shorter.load_weights(tmp_path / "m.npz")


def test_truncated_and_corrupt_checkpoints_are_refused(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable fastnn checkpoint"):
        load(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="not a readable fastnn checkpoint"):
        load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load(tmp_path / "missing.npz")


def rewrite(path, target, change):
    """Copy checkpoint `path` to `target` with its arrays passed through `change(dict)`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    change(arrays)
    np.savez(target, **arrays)


def test_checkpoints_with_wrong_records_are_refused(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)

    def set_spec(**changes):
        def change(arrays):
            spec = architecture(model)
            spec.update(changes)
            arrays[ARCHITECTURE_KEY] = np.array(json.dumps(spec))
        return change

    rewrite(path, tmp_path / "v.npz", set_spec(version=99))
    with pytest.raises(ValueError, match="format version 99"):
        load(tmp_path / "v.npz")
    evil = architecture(model)["layers"]
    evil[0] = {**evil[0], "module": "os", "class": "system"}
    rewrite(path, tmp_path / "e.npz", set_spec(layers=evil))
    with pytest.raises(ValueError, match="os.system is not a fastnn.nn layer"):
        load(tmp_path / "e.npz")
    rewrite(path, tmp_path / "s.npz", lambda arrays: arrays.update({"layers/0/weight": np.zeros((2, 2), np.float32)}))
    with pytest.raises(ValueError, match=r"layers/0/weight has shape \(2, 2\).*needs \(8, 5\)"):
        load(tmp_path / "s.npz")
    rewrite(path, tmp_path / "m2.npz", lambda arrays: arrays.pop("layers/2/bias"))
    with pytest.raises(ValueError, match=r"missing \['layers/2/bias'\]"):
        load(tmp_path / "m2.npz")
    rewrite(path, tmp_path / "n.npz", lambda arrays: arrays.pop(ARCHITECTURE_KEY))
    with pytest.raises(ValueError, match="no architecture record"):
        load(tmp_path / "n.npz")
    np.save(tmp_path / "object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable fastnn checkpoint"):
        load(tmp_path / "object.npy")
