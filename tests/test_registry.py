"""The same battery over every registry entry (tests/registry.py): twin, gradients, dtypes, layouts, round trips,
bad inputs, thread counts, seeds."""

import importlib
import inspect
import pickle
import pkgutil

import numba
import numpy as np
import pytest

import fastnn.nn
import fastnn.tutorial
from fastnn.nn import Layer, Sequential, load

from helpers import assert_close, central_difference
from registry import CASES, NOT_LAYERS


def make(case, dtype=np.float64, seed=1):
    """A fresh object of `case` and its sample inputs (the same for the same seed)."""
    return case.build(dtype, seed), case.inputs(np.random.default_rng(seed), dtype)


def snapshot(params):
    return {name: np.array(value, copy=True) for name, value in params.items()}


def assert_same_bits(first, second, what):
    assert first.keys() == second.keys(), what
    for name in first:
        assert first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name]), f"{what}: {name}"


def outcome(case, obj, inputs):
    """Everything the object computes for `inputs`: output, analytic gradients, weights after a training step."""
    result = {"output": case.forward(obj, *inputs)}
    if case.gradients is not None:
        result.update({f"gradient of {n}": g for n, g in case.gradients(obj, *inputs).analytic.items()})
    if case.train_step is not None:
        case.train_step(obj, *inputs)
        result.update({f"trained {n}": p for n, p in snapshot(case.params(obj)).items()})
    return result


def strided(array):
    """The same values in a view that steps over every other element on every axis (not contiguous)."""
    big = np.zeros(tuple(2 * n for n in array.shape), array.dtype)
    view = big[tuple(slice(None, None, 2) for _ in array.shape)]
    view[...] = array
    return view


parametrize_cases = pytest.mark.parametrize("case", CASES, ids=repr)


@parametrize_cases
def test_forward_matches_the_twin(case):
    obj, inputs = make(case)
    expected = case.twin(obj, *inputs)
    assert_close(case.forward(obj, *inputs), expected, rtol=case.twin_rtol, atol=1e-12, what=f"{case} forward")


@parametrize_cases
def test_gradients_match_central_differences(case):
    if case.gradients is None:
        pytest.skip(case.no_gradient)
    obj, inputs = make(case)
    gradients = case.gradients(obj, *inputs)
    assert gradients.wrt.keys() == gradients.analytic.keys()
    for name, array in gradients.wrt.items():
        assert array.dtype == np.float64
        assert_close(gradients.analytic[name], central_difference(gradients.loss, array), rtol=1e-6, atol=1e-8,
                     what=f"{case} gradient of {name}")


@parametrize_cases
def test_float32_in_gives_float32_out(case):
    if case.float64_only:
        # The tutorial computes in float64 like the tutorial (TUTORIAL_API.md): float32 input is read exactly.
        obj, inputs = make(case, np.float64)
        from32 = case.forward(obj, *(x.astype(np.float32) for x in inputs))
        assert from32.dtype == np.float64
        assert np.array_equal(from32, case.forward(obj, *(x.astype(np.float32).astype(np.float64) for x in inputs)))
        return
    obj32, inputs32 = make(case, np.float32)
    out32 = case.forward(obj32, *inputs32)
    assert out32.dtype == np.float32
    gradients = case.gradients(obj32, *inputs32).analytic
    assert {name: g.dtype for name, g in gradients.items()} == {name: np.dtype(np.float32) for name in gradients}
    assert all(p.dtype == np.float32 for p in case.params(obj32).values())
    obj64, _ = make(case, np.float64)
    out64 = case.forward(obj64, *(x.astype(np.float64) for x in inputs32))
    assert out64.dtype == np.float64
    assert_close(out32, out64, rtol=1e-5, atol=1e-6, what=f"{case} float32 against float64")


@parametrize_cases
@pytest.mark.parametrize("layout", [strided, np.asfortranarray], ids=["strided", "fortran"])
def test_any_memory_layout_gives_the_result_of_the_contiguous_copy(case, layout):
    obj, inputs = make(case)
    expected = outcome(case, obj, inputs)
    for i in range(len(inputs)):
        changed = inputs[:i] + (layout(inputs[i]),) + inputs[i + 1:]
        obj, _ = make(case)
        assert_same_bits(outcome(case, obj, changed), expected, f"{case} with input {i} {layout.__name__}")


@parametrize_cases
def test_pickle_and_save_load_round_trips_give_identical_output(case, tmp_path):
    obj, inputs = make(case, np.float32)
    if case.train_step is not None:
        case.train_step(obj, *inputs)  # weights that no seed reproduces
    expected = case.forward(obj, *inputs)
    assert np.array_equal(case.forward(pickle.loads(pickle.dumps(obj)), *inputs), expected)
    if isinstance(obj, Layer):
        Sequential([obj]).save(tmp_path / "layer.npz")
        loaded = load(tmp_path / "layer.npz").layers[0]
        if hasattr(obj, "use_blas"):
            loaded.use_blas = obj.use_blas  # chosen by Sequential when it plans a model, not saved
        assert type(loaded) is type(obj) and loaded.get_config() == obj.get_config()
        assert np.array_equal(case.forward(loaded, *inputs), expected)


@pytest.mark.parametrize("case, bad", [(case, bad) for case in CASES for bad in case.bad],
                         ids=[f"{case}: {bad.label}" for case in CASES for bad in case.bad])
def test_bad_input_raises_a_clear_error(case, bad):
    obj, inputs = make(case, np.float32)
    with pytest.raises(bad.error, match=bad.match):
        bad.call(obj, *inputs)


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


@parametrize_cases
def test_one_and_two_threads_give_the_same_bits(case, two_threads):
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        obj, inputs = make(case, np.float64 if case.float64_only else np.float32)
        results.append(outcome(case, obj, inputs))
    assert_same_bits(*results, f"{case} with 1 and 2 threads")


@parametrize_cases
def test_the_same_seed_gives_the_same_weights_and_training_trajectory(case):
    first, inputs = make(case, seed=3)
    second, _ = make(case, seed=3)
    assert_same_bits(snapshot(case.params(first)), snapshot(case.params(second)), f"{case} initial weights")
    if case.seeded and case.params(first):
        other, _ = make(case, seed=4)
        assert any(not np.array_equal(a, b) for a, b in zip(case.params(first).values(), case.params(other).values()))
    if case.train_step is None:
        return
    start = snapshot(case.params(first))
    for step in range(3):
        case.train_step(first, *inputs)
        case.train_step(second, *inputs)
        assert_same_bits(snapshot(case.params(first)), snapshot(case.params(second)),
                         f"{case} weights after step {step + 1}")
    changed = any(not np.array_equal(start[n], p) for n, p in case.params(first).items())
    assert changed, f"{case}: training changed nothing"


def classes_of(package):
    """Every class defined in the modules of `package`, by qualified name."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = cls
    return found


def test_every_layer_and_tutorial_class_is_in_the_registry():
    registered = {case.cls for case in CASES}
    assert len(registered) == len(CASES), "a class is registered twice"
    layers = {name: cls for name, cls in classes_of(fastnn.nn).items() if issubclass(cls, Layer)}
    tutorial = classes_of(fastnn.tutorial)
    missing = [name for name, cls in {**layers, **tutorial}.items() if cls not in registered and name not in NOT_LAYERS]
    assert not missing, f"add these to tests/registry.py (or to NOT_LAYERS, saying why): {missing}"
    stale = [name for name in NOT_LAYERS if name not in layers and name not in tutorial]
    assert not stale, f"NOT_LAYERS names classes that no longer exist: {stale}"
