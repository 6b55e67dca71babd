"""Hyper-parameter sweeps: one model per configuration, trained on whichever worker is free."""

import itertools
import math
import time

import numpy as np
from distributed import get_worker

from .._checks import check_int
from ..nn.model import Sequential
from ._common import KERNEL_LOCK, aligned, check_timeout, get_client, is_dask, wait_all
from .inference import SEND_TIMEOUT

# Grid keys that go to Sequential.fit instead of build_fn.
FIT_KEYS = ("epochs", "batch_size")


def configurations(param_grid):
    """A list of parameter dicts: the product of a dict of value lists, or a list of dicts as it is."""
    if isinstance(param_grid, dict):
        for key, values in param_grid.items():
            if not isinstance(key, str):
                raise TypeError(f"param_grid keys must be parameter names (str), got {key!r}")
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise TypeError(f"param_grid[{key!r}] must be a list of values, got {values!r}")
        keys = list(param_grid)
        grid = [dict(zip(keys, values)) for values in itertools.product(*(list(param_grid[k]) for k in keys))]
    elif isinstance(param_grid, (list, tuple)):
        grid = list(param_grid)
        for i, params in enumerate(grid):
            if not isinstance(params, dict):
                raise TypeError(f"param_grid[{i}] must be a dict of parameters, got {type(params).__name__}")
    else:
        raise TypeError(f"param_grid must be a dict of value lists or a list of dicts, got {type(param_grid).__name__}")
    if not grid:
        raise ValueError("param_grid holds no configuration")
    return grid


def _train_one(build_fn, params, data, fit_options):
    """Build, train and measure one configuration on this worker: its row of the table."""
    (x, y), validation = data
    x, y = aligned(x), aligned(y)
    if validation is not None:
        validation = tuple(aligned(a) for a in validation)
    built = {k: v for k, v in params.items() if k not in FIT_KEYS}
    options = {**fit_options, **{k: v for k, v in params.items() if k in FIT_KEYS}}
    with KERNEL_LOCK:
        model = build_fn(**built)
        if not isinstance(model, Sequential):
            raise TypeError(f"build_fn must return a fastnn.nn.Sequential, got {type(model).__name__}")
        started = time.perf_counter()
        model.fit(x, y, validation_data=validation, verbose=0, **options)
        seconds = time.perf_counter() - started
    row = {"params": dict(params)}
    row.update({key: values[-1] for key, values in model.history_.items() if key != "seconds"})
    row["epochs"] = len(model.history_["loss"])
    row["seconds"] = seconds
    row["worker"] = get_worker().address
    return row


def sweep(build_fn, param_grid, data, client=None, epochs=1, batch_size=32, seed=0, metric=None, timeout=None):
    """Train one model per configuration of `param_grid` across the cluster; the table of results, best first.

    `build_fn(**params)` returns a compiled-ready ``Sequential`` (it runs on
    the workers, so it must be importable or picklable there).
    `param_grid` is a dict of lists (every combination) or a list of dicts;
    the keys "epochs" and "batch_size" go to ``fit`` instead, overriding the
    arguments of those names.  `data` is ``(x, y)`` or ``((x, y), (x_val,
    y_val))``; it is sent to every worker once, and each model trains on one
    worker with ``Sequential.fit`` (shuffled with `seed`).

    Returns a list of dicts, one per configuration: "params", the last
    epoch's "loss", "accuracy", "val_loss", "val_accuracy" (as computed),
    "epochs", "seconds" (training time), "worker".  Rows are sorted by
    `metric` (default "val_loss" with validation data, else "loss"; lowest
    first, highest first for accuracies).  A configuration whose training
    failed (divergence, a bad parameter, a worker lost three times) gets an
    "error" entry and comes last; if every configuration fails, the first
    error is raised.  Waits at most `timeout` seconds in all (None: as long
    as the cluster has workers).
    """
    client = get_client(client)
    if not callable(build_fn):
        raise TypeError(f"build_fn must be a callable returning a Sequential, got {type(build_fn).__name__}")
    grid = configurations(param_grid)
    fit_options = {"epochs": check_int(epochs, "epochs", minimum=1),
                   "batch_size": check_int(batch_size, "batch_size", minimum=1), "seed": seed}
    timeout = check_timeout(timeout)
    (x, y), validation = _split(data)
    if metric is None:
        metric = "val_loss" if validation is not None else "loss"
    shipped = client.scatter(((x, y), validation), broadcast=True, hash=False, timeout=SEND_TIMEOUT)
    futures = [client.submit(_train_one, build_fn, params, shipped, fit_options, pure=False) for params in grid]
    try:
        wait_all(futures, timeout, client, "the sweep")
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
    rows, errors = [], []
    for params, future in zip(grid, futures):
        if future.status == "finished":
            rows.append(future.result())
        else:
            error = future.exception()
            errors.append(error)
            rows.append({"params": dict(params), "error": f"{type(error).__name__}: {error}"})
    if len(errors) == len(rows):
        first = errors[0]
        kind = type(first) if isinstance(first, (ValueError, TypeError)) else RuntimeError
        raise kind(f"every configuration of the sweep failed; the first, {grid[0]}: "
                   f"{type(first).__name__}: {first}") from first
    if not any(metric in row for row in rows):
        known = sorted({k for row in rows for k in row if k not in ("params", "worker", "error")})
        raise ValueError(f"metric {metric!r} is not computed by this sweep; it has {known}")
    sign = -1.0 if "accuracy" in metric else 1.0
    rows.sort(key=lambda row: (metric not in row or not math.isfinite(row[metric]), sign * row.get(metric, 0.0)))
    return rows


def _split(data):
    """((x, y), validation pair or None) from ``(x, y)`` or ``((x, y), (x_val, y_val))``, as arrays held here."""
    try:
        first, second = data
    except (TypeError, ValueError):
        raise TypeError("data must be (x, y) or ((x, y), (x_val, y_val))") from None
    if isinstance(first, (tuple, list)):
        try:
            (x, y), (x_val, y_val) = first, second
        except (TypeError, ValueError):
            raise TypeError("data must be (x, y) or ((x, y), (x_val, y_val))") from None
        return (_held(x), _held(y)), (_held(x_val), _held(y_val))
    return (_held(first), _held(second)), None


def _held(array):
    """A dask array computed to numpy (every model of a sweep trains on one worker); others as they are."""
    return array.compute() if is_dask(array) else np.asarray(array)
