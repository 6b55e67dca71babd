"""Sharded inference and evaluation: the model goes to every worker once, the samples block by block."""

import dask
import numpy as np

from .._checks import check_int
from ._common import (
    KERNEL_LOCK,
    align_targets,
    aligned,
    check_model,
    check_samples,
    check_timeout,
    get_client,
    is_dask,
    replica,
    wait_all,
)

METHODS = ("predict", "predict_proba", "predict_logits")

# Seconds allowed for sending the model to every worker.
SEND_TIMEOUT = 120


def _ship(model, x, client, name="X"):
    """Check `x` against `model` and put a copy of the model on every worker; returns its future."""
    if not is_dask(x):
        raise TypeError(f"{name} must be a dask array, got {type(x).__name__}: wrap an array held in memory with "
                        f"dask.array.from_array({name}, chunks=...), or call the model's own method")
    check_samples(x, name)
    check_model(model, x.shape[1:], name)
    return client.scatter(replica(model), broadcast=True, hash=False, timeout=SEND_TIMEOUT)


def _predict_block(block, model, method, batch_size):
    with KERNEL_LOCK:
        return getattr(model, method)(aligned(block), batch_size)


def predict(model, x, client=None, batch_size=256, method="predict"):
    """Predictions for the samples of the dask array `x` (N, *input_shape), as a lazy dask array.

    The model is copied to every worker once (``client.scatter(...,
    broadcast=True)``); each block of `x` is then predicted where it is
    computed, `batch_size` samples at a time, so a data set larger than the
    memory of any worker streams through block by block when the result is
    computed or stored (``da.to_zarr``, a reduction, ...).  `method` is the
    model's method to apply: "predict" (class labels (N,) int64 for a
    classifier, else outputs (N, K)), "predict_proba" or "predict_logits"
    (N, K).  Nothing is computed here apart from sending the model.
    """
    client = get_client(client)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    shipped = _ship(model, x, client)
    if method == "predict" and model.is_classifier:
        return x.map_blocks(_predict_block, shipped, method, batch_size, drop_axis=list(range(1, x.ndim)),
                            dtype=np.int64, meta=np.empty((0,), np.int64))
    return x.map_blocks(_predict_block, shipped, method, batch_size, drop_axis=list(range(2, x.ndim)),
                        chunks=(x.chunks[0], (model.n_outputs,)), dtype=model.dtype, meta=np.empty((0, 0), model.dtype))


def _evaluate_block(model, x, y, batch_size):
    """(loss sum, correct count or NaN, samples) of one block."""
    with KERNEL_LOCK:
        result = model.evaluate(aligned(x), aligned(y), batch_size)
    n = x.shape[0]
    return result["loss"] * n, result.get("accuracy", np.nan) * n, n


def evaluate(model, x, y, client=None, batch_size=256, timeout=None):
    """``{"loss": mean loss, "accuracy": fraction right}`` over dask arrays `x` and `y`, block by block.

    `y` (a dask or numpy array) is rechunked to `x`'s blocks.  Waits at most
    `timeout` seconds (None: as long as the cluster has workers).
    """
    client = get_client(client)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    timeout = check_timeout(timeout)
    shipped = _ship(model, x, client)
    y = align_targets(y, x)
    parts = [dask.delayed(_evaluate_block)(shipped, xb, yb, batch_size)
             for xb, yb in zip(x.to_delayed().ravel(), y.to_delayed().ravel())]
    futures = client.compute(parts)
    wait_all(futures, timeout, client, "evaluating the model")
    loss, correct, n = np.sum(client.gather(futures), axis=0)
    result = {"loss": float(loss / n)}
    if not np.isnan(correct):
        result["accuracy"] = float(correct / n)
    return result


def evaluate_data(model, x, y, client, timeout):
    """evaluate for dask arrays, the model's own evaluate for arrays held here."""
    if is_dask(x):
        return evaluate(model, x, y, client, timeout=timeout)
    return model.evaluate(x, y)
