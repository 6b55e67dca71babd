"""A catalogue of bad inputs across the API, beyond the per-layer ones of the registry (tests/registry.py).

Each entry is a call that must raise a clear error naming the argument (or
the file) at fault: wrong shapes and dtypes, NaN and infinity, empty arrays,
labels and hyper-parameters out of range, mismatched and damaged
checkpoints, truncated data files, calls in the wrong order.  Entries
already tested in a chapter's own test file are not repeated here.
"""

import gzip
import json
import struct

import numpy as np
import pytest

from fastnn import nn
from fastnn._checks import SMALL_ARRAY, as_float_array
from fastnn.datasets import load_fashion_mnist, load_sample, loaders, read_idx
from fastnn.nn.io import ARCHITECTURE_KEY
from fastnn.tutorial import cnn, fc, lstm, recursive, rnn
from fastnn.tutorial.activators import TanhActivator
from fastnn.tutorial.linear_unit import LinearUnit


def model(dtype=np.float32, hidden=4):
    rng = np.random.default_rng(0)
    layers = [nn.Dense(3, hidden, dtype=dtype, rng=rng), nn.ReLU(), nn.Dense(hidden, 2, dtype=dtype, rng=rng)]
    return nn.Sequential(layers)


X = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
Y = np.array([0, 1, 1, 0, 1, 0])


def recorded(layer, steps=3):
    """A tutorial sequence layer after `steps` forward calls on ones."""
    for _ in range(steps):
        layer.forward(np.ones((layer.input_width, 1)))
    return layer


def two_leaves(layer):
    """A tutorial RecursiveLayer after one forward over two leaves of ones."""
    layer.forward(*(recursive.TreeNode(np.ones((layer.node_width, 1))) for _ in range(layer.child_count)))
    return layer


def with_nan(array):
    array = np.array(array, dtype=float)
    array.flat[0] = np.nan
    return array


def checkpoint(tmp_path, change=None, dtype=np.float32):
    """A saved model's path; `change(arrays)` edits the stored arrays (a damaged or foreign checkpoint)."""
    path = tmp_path / "model.npz"
    model(dtype).save(path)
    if change is not None:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        change(arrays)
        np.savez(path, **arrays)
    return path


def set_architecture(edit):
    def change(arrays):
        arrays[ARCHITECTURE_KEY] = np.array(edit(json.loads(str(arrays[ARCHITECTURE_KEY]))))
    return change


def truncated(tmp_path, keep):
    path = checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])
    return path


def idx_file(tmp_path, header, payload=b"", name="x.idx"):
    path = tmp_path / name
    path.write_bytes(bytes(header) + payload)
    return path


IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float64): 0x0E}


def idx_bytes(array):
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def fashion_folder(tmp_path, images, labels, test_images=None):
    """A folder of Fashion-MNIST's four files made from the given arrays (the test set repeats the training set)."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    test_images = images if test_images is None else test_images
    for stem, array in [(loaders.IDX_FILES["train_images"], images), (loaders.IDX_FILES["train_labels"], labels),
                        (loaders.IDX_FILES["test_images"], test_images), (loaders.IDX_FILES["test_labels"], labels)]:
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(np.asarray(array))))
    return folder


def damaged_sample(tmp_path, monkeypatch):
    path = tmp_path / "sample.npz"
    path.write_bytes(loaders.SAMPLE_PATH.read_bytes()[:5000])
    monkeypatch.setattr(loaders, "SAMPLE_PATH", path)
    return load_sample()


IMAGES = np.zeros((3, 28, 28), np.uint8)

# (id, call(tmp_path, monkeypatch), error, message)
CATALOGUE = [
    # Sequential.fit / evaluate / predict
    ("fit: x holds NaN", lambda t, m: model().fit(with_nan(X), Y, verbose=0), ValueError, "x contains NaN"),
    ("fit: x holds inf", lambda t, m: model().fit(X * np.inf, Y, verbose=0), ValueError, "x contains NaN or inf"),
    ("fit: negative labels", lambda t, m: model().fit(X, -Y, verbose=0), ValueError,
     r"y holds labels outside \[0, 2\).*min -1"),
    ("fit: float labels for cross-entropy", lambda t, m: model().fit(X, Y.astype(float), verbose=0), TypeError,
     "y must hold integer class labels"),
    ("fit: labels of shape (N, 1)", lambda t, m: model().fit(X, Y[:, None], verbose=0), ValueError,
     r"y must have shape \(6,\)"),
    ("fit: validation_data not a pair", lambda t, m: model().fit(X, Y, validation_data=X, verbose=0), TypeError,
     "validation_data must be a pair"),
    ("fit: validation samples of another shape", lambda t, m: model().fit(X, Y, validation_data=(X[:, :2], Y), verbose=0),
     ValueError, r"validation_data\[0\] must have shape \(N, 3\)"),
    ("fit: validation labels out of range", lambda t, m: model().fit(X, Y, validation_data=(X, Y + 5), verbose=0),
     ValueError, r"validation_data\[1\] holds labels outside \[0, 2\)"),
    ("fit: validation_split negative", lambda t, m: model().fit(X, Y, validation_split=-0.1, verbose=0), ValueError,
     "validation_split must be >= 0"),
    ("fit: validation_split leaves no validation sample", lambda t, m: model().fit(X, Y, validation_split=0.05, verbose=0),
     ValueError, "validation_split=0.05 leaves 0 of 6 samples"),
    ("fit: epochs not an integer", lambda t, m: model().fit(X, Y, epochs=2.5, verbose=0), TypeError,
     "epochs must be an integer"),
    ("fit: verbose negative", lambda t, m: model().fit(X, Y, verbose=-1), ValueError, "verbose must be >= 0"),
    ("fit: seed not a seed", lambda t, m: model().fit(X, Y, seed="abc", verbose=0), TypeError,
     "seed must be None, an integer seed"),
    ("fit: batch_size a float", lambda t, m: model().fit(X, Y, batch_size=8.0, verbose=0), TypeError,
     "batch_size must be an integer"),
    ("train_on_batch: mse targets hold NaN",
     lambda t, m: nn.Sequential([nn.Dense(3, 2)], loss="mse").train_on_batch(X, with_nan(np.ones((6, 2)))), ValueError,
     "y contains NaN"),
    ("train_on_batch: x a 0-d array", lambda t, m: model().train_on_batch(np.array(1.0, np.float32), np.array(1)),
     ValueError, r"x must be a batch of samples \(N, ...\), got shape \(\)"),
    ("train_on_batch: one sample without its batch axis",
     lambda t, m: model().train_on_batch(X[0], Y[:1]), ValueError, r"x must be a batch of samples \(N, ...\), got shape \(3,\)"),
    ("Sequential: input_shape a number", lambda t, m: nn.Sequential([nn.Dense(3, 2)], input_shape=3), TypeError,
     "input_shape must be a tuple of sizes"),
    ("fit: one callback outside a list", lambda t, m: model().fit(X, Y, callbacks=nn.EarlyStopping(), verbose=0),
     TypeError, "callbacks must be a list of Callback, got one EarlyStopping"),
    ("Sequential: loss set to an unknown name", lambda t, m: setattr(model(), "loss", "hinge"), ValueError,
     r"loss must be one of \['cross_entropy', 'mse'\]"),
    ("Sequential: optimizer set to a name", lambda t, m: setattr(model(), "optimizer", "adam"), TypeError,
     "optimizer must be a fastnn.nn optimizer"),
    ("predict: samples of no values", lambda t, m: nn.Sequential([nn.ReLU()]).predict(np.zeros((2, 0))), ValueError,
     r"x holds samples of no values \(shape \(2, 0\)\)"),
    ("fit: shuffle a string", lambda t, m: model().fit(X, Y, shuffle="no", verbose=0), TypeError,
     "shuffle must be True or False, got 'no'"),
    ("RecursiveLayer.dump: before forward", lambda t, m: recursive.RecursiveLayer(2, 2, TanhActivator(), 0.1).dump(),
     RuntimeError, r"RecursiveLayer.dump called before forward\(\)"),
    ("SGD: lr set to a string", lambda t, m: setattr(nn.SGD(), "lr", "0.1"), TypeError, "lr must be a real number"),
    ("SGD: lr set to NaN", lambda t, m: setattr(nn.SGD(), "lr", float("nan")), ValueError, "lr must be finite"),
    ("Adam: lr set to a negative number", lambda t, m: setattr(nn.Adam(), "lr", -1), ValueError, "lr must be > 0"),
    ("SGD: momentum set to NaN", lambda t, m: setattr(nn.SGD(momentum=0.9), "momentum", float("nan")), ValueError,
     "momentum must be finite"),
    ("evaluate: one label too few", lambda t, m: model().evaluate(X, Y[:-1]), ValueError,
     "one label per sample: expected 6, got 5"),
    ("predict: no samples", lambda t, m: model().predict(X[:0]), ValueError, r"x is empty"),
    ("predict: batch_size 0", lambda t, m: model().predict(X, batch_size=0), ValueError, "batch_size must be >= 1"),
    ("predict: ragged nested lists", lambda t, m: model().predict([[1, 2, 3], [1, 2]]), TypeError,
     "x must be a numeric array; could not convert"),
    ("Sequential: input_shape with a zero", lambda t, m: nn.Sequential([nn.Flatten(), nn.Dense(4, 2)], input_shape=(2, 0)),
     ValueError, "input_shape must be >= 1"),
    ("Sequential: input_shape the layers cannot take",
     lambda t, m: nn.Sequential([nn.Conv2D(1, 2, 3), nn.Flatten(), nn.Dense(8, 2)], input_shape=(1, 2, 2)),
     ValueError, r"samples of shape \(1, 2, 2\) do not fit this model: layer 0 \(Conv2D\)"),
    ("Sequential: last layer outputs images", lambda t, m: nn.Sequential([nn.Conv2D(1, 2, 3)], input_shape=(1, 5, 5)),
     ValueError, "the last layer must output vectors"),
    ("Dense: rng a string", lambda t, m: nn.Dense(3, 2, rng="seed"), TypeError, "rng must be None, an integer seed"),
    # losses
    ("CrossEntropy: outputs hold NaN", lambda t, m: nn.CrossEntropy()(with_nan(np.zeros((2, 3))), [0, 1]), ValueError,
     "outputs contains NaN"),
    ("CrossEntropy: outputs of one dimension", lambda t, m: nn.CrossEntropy()(np.zeros(3), [0]), ValueError,
     "outputs must have 2 dimension"),
    ("MeanSquaredError: targets hold inf", lambda t, m: nn.MeanSquaredError()(np.zeros((2, 2)), np.full((2, 2), np.inf)),
     ValueError, "y contains NaN or inf"),
    # optimizers and callbacks
    ("SGD: weight_decay negative", lambda t, m: nn.SGD(weight_decay=-1e-4), ValueError, "weight_decay must be >= 0"),
    ("SGD: nesterov not a bool", lambda t, m: nn.SGD(momentum=0.9, nesterov="yes"), TypeError,
     "nesterov must be True or False"),
    ("Adam: first beta negative", lambda t, m: nn.Adam(betas=(-0.1, 0.9)), ValueError, r"betas\[0\] must be >= 0"),
    ("Adam: weight_decay NaN", lambda t, m: nn.Adam(weight_decay=float("nan")), ValueError, "weight_decay must be finite"),
    ("Adam: one beta", lambda t, m: nn.Adam(betas=(0.9,)), TypeError, "betas must be a pair"),
    ("EarlyStopping: mode 'up'", lambda t, m: nn.EarlyStopping(mode="up"), ValueError, "mode must be 'min' or 'max'"),
    ("EarlyStopping: patience negative", lambda t, m: nn.EarlyStopping(patience=-1), ValueError, "patience must be >= 0"),
    ("EarlyStopping: patience a string", lambda t, m: nn.EarlyStopping(patience="2"), TypeError,
     "patience must be an integer"),
    # checkpoints
    ("load: an empty file", lambda t, m: nn.load(truncated(t, lambda n: 0)), ValueError,
     "model.npz is not a readable fastnn checkpoint"),
    ("load: the last byte cut off", lambda t, m: nn.load(truncated(t, lambda n: n - 1)), ValueError,
     "model.npz is not a readable fastnn checkpoint"),
    ("load: only the first 100 bytes", lambda t, m: nn.load(truncated(t, lambda n: 100)), ValueError,
     "model.npz is not a readable fastnn checkpoint"),
    ("load: weights of another dtype",
     lambda t, m: nn.load(checkpoint(t, lambda a: a.update({"layers/0/weight": a["layers/0/weight"].astype(np.float64)}))),
     ValueError, r"layers/0/weight has shape \(4, 3\) and dtype float64, the model needs \(4, 3\) and float32"),
    ("load: an array no layer owns",
     lambda t, m: nn.load(checkpoint(t, lambda a: a.update({"layers/1/gamma": np.ones(2)}))),
     ValueError, r"unexpected \['layers/1/gamma'\]"),
    ("load: weights stored as Python objects",
     lambda t, m: nn.load(checkpoint(t, lambda a: a.update({"layers/0/bias": np.array([None] * 4, dtype=object)}))),
     ValueError, "not a readable fastnn checkpoint"),
    ("load: architecture record not JSON",
     lambda t, m: nn.load(checkpoint(t, lambda a: a.update({ARCHITECTURE_KEY: np.array("{not json")}))),
     ValueError, "corrupt architecture record"),
    ("load: architecture record a list",
     lambda t, m: nn.load(checkpoint(t, set_architecture(lambda spec: json.dumps([1])))),
     ValueError, "not a fastnn Sequential checkpoint"),
    ("load: a layer argument that does not exist",
     lambda t, m: nn.load(checkpoint(t, set_architecture(
         lambda spec: json.dumps({**spec, "layers": [{**spec["layers"][0], "config": {"units": 4}},
                                                     *spec["layers"][1:]]})))),
     ValueError, "corrupt architecture record: TypeError"),
    ("load: an optimizer that does not exist",
     lambda t, m: nn.load(checkpoint(t, set_architecture(
         lambda spec: json.dumps({**spec, "optimizer": {"class": "RMSprop", "config": {}}})))),
     ValueError, "corrupt architecture record: KeyError"),
    ("load_weights: a float64 model's checkpoint into a float32 model",
     lambda t, m: model().load_weights(checkpoint(t, dtype=np.float64)), ValueError,
     "different architecture: layer 0 is Dense"),
    ("save: into a folder that does not exist", lambda t, m: model().save(t / "missing" / "m.npz"), FileNotFoundError,
     "cannot save to .*m.npz: the folder .*missing does not exist"),
    # data files
    ("read_idx: zero dimensions", lambda t, m: read_idx(idx_file(t, [0, 0, 8, 0])), ValueError,
     "x.idx: the IDX header announces 0 dimensions"),
    ("read_idx: data cut short", lambda t, m: read_idx(idx_file(t, [0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 3], b"\0" * 8)),
     ValueError, "x.idx holds 20 bytes but its header announces 21"),
    ("read_idx: gzip file cut short",
     lambda t, m: read_idx(idx_file(t, gzip.compress(idx_bytes(np.zeros((50, 50))))[:-30], name="x.gz")), ValueError,
     "x.gz is not a readable gzip file"),
    ("load_fashion_mnist: images of int16",
     lambda t, m: load_fashion_mnist(fashion_folder(t, np.zeros((3, 28, 28), np.int16), np.zeros(3, np.uint8))),
     ValueError, r"train-images-idx3-ubyte must hold uint8 images \(N, H, W\), got int16"),
    ("load_fashion_mnist: fewer labels than images",
     lambda t, m: load_fashion_mnist(fashion_folder(t, IMAGES, np.zeros(2, np.uint8))), ValueError,
     r"train-labels-idx1-ubyte must hold 3 labels, one per image, got shape \(2,\)"),
    ("load_sample: the bundled file damaged", damaged_sample, ValueError, "the bundled sample .* is missing or damaged"),
    # the tutorial's classes, beyond their registry entries
    ("RecurrentLayer.backward: a NaN error column", lambda t, m: recorded(rnn.RecurrentLayer(3, 2, TanhActivator(), 0.1))
     .backward(np.full((2, 1), np.nan), TanhActivator()), ValueError, "sensitivity_array contains NaN or infinity"),
    ("LstmLayer.backward: an infinite delta_h column", lambda t, m: recorded(lstm.LstmLayer(3, 2, 0.1))
     .backward(None, np.full((2, 1), np.inf)), ValueError, "delta_h contains NaN or infinity"),
    ("RecursiveLayer.backward: a NaN parent_delta", lambda t, m: two_leaves(recursive.RecursiveLayer(
        2, 2, TanhActivator(), 0.1)).backward(np.full((2, 1), np.nan)), ValueError, "parent_delta contains NaN"),
    ("RecurrentLayer: times set past the recorded steps",
     lambda t, m: setattr(recorded(rnn.RecurrentLayer(3, 2, TanhActivator(), 0.1), 1), "times", 100), ValueError,
     r"times counts the steps forward recorded \(1\); it can only be set to 0"),
    ("BiRecurrentLayer: times set to 5 after one step",
     lambda t, m: setattr(recorded(rnn.BiRecurrentLayer(3, 2, TanhActivator(), 0.1), 1), "times", 5), ValueError,
     r"times counts the steps forward recorded \(1\)"),
    ("LstmLayer: times set negative", lambda t, m: setattr(recorded(lstm.LstmLayer(3, 2, 0.1)), "times", -1),
     ValueError, "times must be >= 0"),
    ("RecurrentLayer: learning_rate set to a string",
     lambda t, m: setattr(rnn.RecurrentLayer(3, 2, TanhActivator(), 0.1), "learning_rate", "a"), TypeError,
     "learning_rate must be a real number"),
    ("LstmLayer: learning_rate set to NaN", lambda t, m: setattr(lstm.LstmLayer(3, 2, 0.1), "learning_rate", np.nan),
     ValueError, "learning_rate must be finite"),
    ("RecursiveLayer: learning_rate set to None",
     lambda t, m: setattr(recursive.RecursiveLayer(2, 2, TanhActivator(), 0.1), "learning_rate", None), TypeError,
     "learning_rate must be a real number"),
    ("ConvLayer: learning_rate set negative",
     lambda t, m: setattr(cnn.ConvLayer(4, 4, 1, 3, 3, 2, 0, 1, TanhActivator(), 0.1), "learning_rate", -1),
     ValueError, "learning_rate must be >= 0"),
    ("TreeNode: children that are no nodes", lambda t, m: recursive.TreeNode(np.ones((2, 1)), [1, 2]), TypeError,
     r"children\[0\] must be a TreeNode, got int"),
    ("RecursiveLayer.backward: a root's children replaced by numbers",
     lambda t, m: (lambda layer: (setattr(layer.root, "children", [1, 2]), layer.backward(np.ones((2, 1)))))(
         two_leaves(recursive.RecursiveLayer(2, 2, TanhActivator(), 0.1))), TypeError,
     "the tree under root holds a child of type int, not a TreeNode"),
    # parameter dicts: an assigned array is copied into the bound one (fastnn.nn.base.Parameters)
    ("RNN: a gradient array replaced by a smaller one",
     lambda t, m: nn.RNN(4, 8).grads.__setitem__("weight_hh", np.zeros((1, 1), np.float32)), ValueError,
     r"grads\['weight_hh'\] must have shape \(8, 8\), got \(1, 1\)"),
    ("LSTM: a weight removed", lambda t, m: nn.LSTM(4, 8).params.pop("weight_hh"), TypeError,
     "a layer's params cannot be removed"),
    ("BiRNN: a NaN bias assigned", lambda t, m: nn.BiRNN(4, 8).params.__setitem__("bias_reverse", np.full(8, np.nan)),
     ValueError, r"params\['bias_reverse'\] contains NaN or infinity"),
    ("TreeRNN: params assigned a dict with a weight of another shape",
     lambda t, m: setattr(nn.TreeRNN(3), "params", {"weight": np.zeros((1, 1))}), ValueError,
     r"params\['weight'\] must have shape \(6, 3\), got \(1, 1\)"),
    ("Dense: a weight of strings", lambda t, m: nn.Dense(3, 2).params.__setitem__("weight", [["a"] * 3] * 2),
     TypeError, r"params\['weight'\] must hold real numbers"),
    ("RNN: a negative seed", lambda t, m: nn.RNN(3, 2, rng=-1), ValueError, "rng must be a seed >= 0, got -1"),
    ("LSTM: dtype None", lambda t, m: nn.LSTM(3, 2, dtype=None), TypeError, "dtype must be float32 or float64, got None"),
    ("RNN.forward: float64 values beyond float32's range",
     lambda t, m: nn.RNN(3, 2).forward(np.full((1, 2, 3), 1e300)), ValueError,
     "x holds values beyond the range of float32"),
    ("BiRecurrentLayer: W_grad read before backward",
     lambda t, m: recorded(rnn.BiRecurrentLayer(3, 2, TanhActivator(), 0.1)).W_grad, AttributeError,
     r"W_grad is set by backward\(\)"),
    ("RecurrentLayer: delta_list read before backward",
     lambda t, m: recorded(rnn.RecurrentLayer(3, 2, TanhActivator(), 0.1)).delta_list, AttributeError,
     r"delta_list is set by backward\(\)"),
    ("TreeBatch: children written", lambda t, m: nn.TreeBatch([((0, 1), 2)], np.ones((3, 3))).children.__setitem__(
        (0, 0), 10**9), ValueError, "read-only"),
    ("TreeRNN.forward: float64 leaves beyond float32's range",
     lambda t, m: nn.TreeRNN(3).forward(nn.TreeBatch([(0, 1)], np.full((2, 3), 1e300))), ValueError,
     "leaves contains NaN or infinity, or values beyond the range of float32"),
    ("TreeRNN.forward: a leaf made NaN after the batch was built",
     lambda t, m: (lambda batch: (batch.leaves.__setitem__((1, 2), np.nan), nn.TreeRNN(3).forward(batch)))(
         nn.TreeBatch([(0, 1)], np.ones((2, 3)))), ValueError, "leaves contains NaN or infinity"),
    ("LinearUnit.train: labels as rows", lambda t, m: LinearUnit(2).train([[1, 2]], [[1]], 1, 0.1), ValueError,
     r"labels must have 1 dimension"),
    ("fc.Network: layer sizes a string", lambda t, m: fc.Network("8,3,8"), ValueError,
     "layers must be a list of at least two layer sizes"),
    ("fc.Network.train: rate a string", lambda t, m: fc.Network([2, 1]).train([[[1]]], [[[1], [0]]], "0.1", 1), TypeError,
     "rate must be a real number"),
]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # numpy's, before fastnn's error
@pytest.mark.parametrize("call, error, message", [entry[1:] for entry in CATALOGUE], ids=[e[0] for e in CATALOGUE])
def test_bad_input_gives_a_clear_error(call, error, message, tmp_path, monkeypatch):
    with pytest.raises(error, match=message):
        call(tmp_path, monkeypatch)


def test_the_catalogue_holds_at_least_40_distinct_bad_inputs():
    assert len({entry[0] for entry in CATALOGUE}) == len(CATALOGUE) >= 40


@pytest.mark.parametrize("size", [5, SMALL_ARRAY, SMALL_ARRAY + 1])  # the compiled check and numpy's
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_float_array_taken_as_it_is_still_has_its_values_checked(size, dtype):
    values = np.linspace(-1, 1, size).astype(dtype)
    assert as_float_array(values, "x", dtype) is values  # no copy of what the kernels take already
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, size // 2, size - 1):
            spoiled = values.copy()
            spoiled[where] = bad
            with pytest.raises(ValueError, match="x contains NaN or infinity"):
                as_float_array(spoiled, "x", dtype)
            with pytest.raises(ValueError, match="x contains NaN or infinity"):  # converted first
                as_float_array(spoiled.astype(spoiled.dtype.newbyteorder()), "x", dtype)
    swapped = values.astype(values.dtype.newbyteorder())
    taken = as_float_array(swapped, "x", dtype)
    assert taken.dtype == np.dtype(dtype) and np.array_equal(taken, values)
    strided = np.repeat(values, 2)[::2]
    assert as_float_array(strided, "x", dtype).flags.c_contiguous
    assert as_float_array(values, "x", dtype, copy=True) is not values
