"""Save and load Sequential models: one .npz file with the weights and a JSON architecture.

The file holds ``architecture`` (a JSON text: format name and version, input
shape, loss, optimizer, and per layer its class, module and constructor
configuration) and one array per parameter, ``layers/<i>/<name>``.  It is
written to a temporary file in the target's folder and renamed over the
target, so a crash never leaves a half-written checkpoint.  Loading uses
``allow_pickle=False`` and only builds ``fastnn.nn`` layer classes, so a
checkpoint cannot run code; it checks the format version, the architecture
and every array's shape and dtype.
"""

import importlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .base import Layer

FORMAT = "fastnn.nn.Sequential"
VERSION = 1
ARCHITECTURE_KEY = "architecture"


def _layer_entry(layer):
    cls = type(layer)
    return {
        "class": cls.__name__,
        "module": cls.__module__,
        "config": layer.get_config(),
        "params": {name: list(array.shape) for name, array in layer.params.items()},
    }


def architecture(model):
    """The JSON-ready description of `model` that a checkpoint stores."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "dtype": model.dtype.name,
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "loss": model.loss.name,
        "optimizer": {"class": type(model.optimizer).__name__, "config": model.optimizer.get_config()},
        "layers": [_layer_entry(layer) for layer in model.layers],
    }


def save(model, path):
    """Write `model` to `path` (the name is kept as given; ``.npz`` is the usual suffix)."""
    path = os.fspath(path)
    arrays = {ARCHITECTURE_KEY: np.array(json.dumps(architecture(model)))}
    for i, layer in enumerate(model.layers):
        for name, array in layer.params.items():
            arrays[f"layers/{i}/{name}"] = array
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _read(path):
    """(architecture dict, {key: array}) of a checkpoint, or ValueError saying what is wrong with it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable fastnn checkpoint (corrupt or truncated?): {error}") from None
    text = arrays.pop(ARCHITECTURE_KEY, None)
    if text is None or text.dtype.kind != "U" or text.ndim != 0:
        raise ValueError(f"{path} is not a fastnn checkpoint: it has no architecture record")
    try:
        spec = json.loads(str(text))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} has a corrupt architecture record: {error}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastnn Sequential checkpoint (format {spec.get('format') if isinstance(spec, dict) else None!r})")
    if spec.get("version") != VERSION:
        raise ValueError(f"{path} has checkpoint format version {spec.get('version')!r}; this fastnn reads version {VERSION}")
    return spec, arrays


def _layer_class(entry, index):
    module_name, class_name = entry.get("module", ""), entry.get("class", "")
    if not (module_name == "fastnn.nn" or module_name.startswith("fastnn.nn.")):
        raise ValueError(f"layer {index}: class {module_name}.{class_name} is not a fastnn.nn layer")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise ValueError(f"layer {index}: unknown layer class {module_name}.{class_name}") from None
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"layer {index}: {module_name}.{class_name} is not a Layer")
    return cls


def _copy_weights(model, arrays, path):
    expected = {f"layers/{i}/{name}": (layer, name) for i, layer in enumerate(model.layers) for name in layer.params}
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"{path} does not hold this model's weights: missing {missing}, unexpected {extra}")
    for key, (layer, name) in expected.items():
        target = layer.params[name]
        array = arrays[key]
        if array.shape != target.shape or array.dtype != target.dtype:
            raise ValueError(
                f"{path}: {key} has shape {array.shape} and dtype {array.dtype}, "
                f"the model needs {target.shape} and {target.dtype}"
            )
    for key, (layer, name) in expected.items():
        np.copyto(layer.params[name], arrays[key])  # in place: the optimizer keeps pointing at these arrays


def load(path):
    """Rebuild the Sequential model saved at `path`; its predictions equal the saved model's bit for bit."""
    from .losses import get_loss
    from .model import Sequential
    from .optim import OPTIMIZERS

    spec, arrays = _read(path)
    try:
        layers = [_layer_class(entry, i)(**entry["config"]) for i, entry in enumerate(spec["layers"])]
        optimizer_spec = spec["optimizer"]
        optimizer = OPTIMIZERS[optimizer_spec["class"].lower()](**optimizer_spec["config"])
        model = Sequential(layers, loss=get_loss(spec["loss"]), optimizer=optimizer, input_shape=spec["input_shape"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} has a corrupt architecture record: {type(error).__name__}: {error}") from None
    _copy_weights(model, arrays, path)
    return model


def load_weights(model, path):
    """Copy the weights saved at `path` into `model`, which must have the same architecture."""
    spec, arrays = _read(path)
    ours = architecture(model)["layers"]
    theirs = spec.get("layers")
    if not isinstance(theirs, list) or len(theirs) != len(ours):
        count = len(theirs) if isinstance(theirs, list) else "no"
        raise ValueError(f"{path} holds a different architecture: {count} layers, the model has {len(ours)}")
    for i, (mine, saved) in enumerate(zip(ours, theirs)):
        if mine != saved:
            described = f"{saved.get('class')}({saved.get('config')})" if isinstance(saved, dict) else repr(saved)
            raise ValueError(
                f"{path} holds a different architecture: layer {i} is {described} "
                f"in the file and {mine['class']}({mine['config']}) in the model"
            )
    _copy_weights(model, arrays, path)
