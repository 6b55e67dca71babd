"""fastnn._blas: one BLAS thread while a model computes, the earlier count restored when the last block ends."""

import threading

import numpy as np
import pytest

from fastnn import _blas
from fastnn.nn import Dense, Sequential

bundled_openblas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"] == "scipy-openblas"
needs_setter = pytest.mark.skipif(not bundled_openblas, reason="numpy is not built on its bundled OpenBLAS")


@pytest.fixture(autouse=True)
def keep_blas_threads():
    """The tests set OpenBLAS's count to 2; the count of the test run comes back after each."""
    if _blas._setter is None:
        yield
        return
    before = _blas._setter(2)
    yield
    _blas._setter(before)


def blas_threads():
    """OpenBLAS's thread count (setting a count returns the previous one)."""
    current = _blas._setter(1)
    _blas._setter(current)
    return current


@needs_setter
def test_numpys_openblas_is_found():
    assert _blas._setter is not None


@needs_setter
def test_one_thread_inside_and_the_count_restored_after():
    with _blas.one_blas_thread():
        assert blas_threads() == 1
    assert blas_threads() == 2
    with pytest.raises(RuntimeError), _blas.one_blas_thread():
        raise RuntimeError("restored on errors too")
    assert blas_threads() == 2


@needs_setter
def test_overlapping_blocks_in_two_threads_restore_the_count_once_both_end():
    first_inside, second_left = threading.Event(), threading.Event()
    seen = {}

    def second():
        first_inside.wait()
        with _blas.one_blas_thread():
            seen["second"] = blas_threads()
        second_left.set()

    worker = threading.Thread(target=second)
    worker.start()
    with _blas.one_blas_thread():
        first_inside.set()
        second_left.wait()
        seen["first, after the second left"] = blas_threads()
    worker.join()
    assert seen == {"second": 1, "first, after the second left": 1}
    assert blas_threads() == 2


@needs_setter
def test_a_model_trains_and_predicts_with_one_blas_thread(monkeypatch):
    seen = []
    model = Sequential([Dense(6, 3, rng=0)], loss="mse")
    original = Dense._forward

    def spy(self, x, code):
        seen.append(blas_threads())
        return original(self, x, code)

    monkeypatch.setattr(Dense, "_forward", spy)
    x = np.random.default_rng(0).random((16, 6), dtype=np.float32)
    model.fit(x, x[:, :3], epochs=1, batch_size=8, verbose=0)
    model.predict(x)
    assert seen and set(seen) == {1}
    assert blas_threads() == 2
