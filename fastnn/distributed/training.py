"""Synchronous data-parallel training of a Sequential on a dask cluster: ``fastnn.distributed.fit``.

The model you pass is the master copy and stays in this process.  Each
worker holds a replica (a dask actor) with its shard of the samples.  Every
step the master sends its weights to the replicas; each computes the
gradient of its part of the global mini-batch with the compiled kernels,
scaled by ``1 / global batch size``; the master sums them (the average
weighted by the parts' sizes), checks them and applies its optimizer.  So
the trajectory is single-machine ``Sequential.fit``'s, up to the order in
which the parts' sums are added.

``sync_every=K > 1`` is local SGD: each replica takes K optimizer steps on
its own parts of K global batches, then the master averages the replicas'
weights (weighted by the samples each saw).  One exchange per K steps
instead of one per step, at the price of a different trajectory: replicas
drift apart between averages, each step sees only its part of the batch
(a noisier gradient), and each replica keeps its own optimizer state.
"""

import math
import time
import warnings

import numpy as np
from distributed import get_worker

from .._checks import check_int, check_real, make_rng
from ..nn.callbacks import Callback, ProgressBar
from ._common import (
    KERNEL_LOCK,
    WORKERLESS,
    align_targets,
    aligned,
    check_model,
    check_samples,
    check_timeout,
    flatten,
    get_client,
    gradients,
    is_dask,
    live_workers,
    parameters,
    replica,
    unflatten,
    wait_all,
)
from .inference import evaluate_data


class Replica:
    """A worker's copy of the model and its shard of the samples (runs as a dask actor)."""

    def __init__(self, model, x_parts, y_parts):
        with KERNEL_LOCK:
            x = aligned(np.concatenate(x_parts))
            y = aligned(np.concatenate(y_parts))
            self.x = model._prepare_x(x, "X")
            self.y = model._prepare_y(y, self.x.shape[0], "y")
            model._compile()
            self.model = model
            self.params = parameters(model)
            self.grads = gradients(model)
            self.rows = self.bounds = None
            self.address = get_worker().address

    def plan(self, rows, bounds):
        """This epoch: local rows in the order they are used; step s takes ``rows[bounds[s]:bounds[s + 1]]``."""
        self.rows, self.bounds = rows, bounds

    def _batch(self, step):
        rows = self.rows[self.bounds[step]:self.bounds[step + 1]]
        return np.take(self.x, rows, axis=0), np.take(self.y, rows, axis=0)

    def gradient(self, step, weights, scale):
        """(loss_sum, correct, gradient vector) of this shard's part of global step `step`.

        The loss gradient is scaled by `scale` (1 / the global batch size), so
        the parts' vectors add up to the gradient of the global batch's mean.
        """
        with KERNEL_LOCK:
            unflatten(weights, self.params)
            x, y = self._batch(step)
            model = self.model
            out = model._forward_batch(x)
            grad = np.empty_like(out)
            loss_sum, correct = model.loss._compute(out, y, scale, grad)
            for backward in model._backward_steps:
                grad = backward(grad)
            return float(loss_sum), int(correct), flatten(self.grads, model.dtype)

    def local_steps(self, first, count, weights, lr):
        """Local SGD: optimizer steps on this shard's parts of global steps first..first+count-1.

        Returns ([(loss_sum, correct, samples) per step], weights vector).
        """
        with KERNEL_LOCK:
            unflatten(weights, self.params)
            self.model.optimizer.lr = lr
            results = []
            for step in range(first, first + count):
                x, y = self._batch(step)
                if x.shape[0] == 0:
                    results.append((0.0, 0, 0))
                    continue
                loss_sum, correct = self.model._train_batch(x, y, f"on worker {self.address}, step {step + 1}")
                results.append((loss_sum, int(correct), x.shape[0]))
            return results, flatten(self.params, self.model.dtype)


class WorkerLost(Exception):
    """A replica could not be reached or did not answer in time (internal: fit recovers or stops)."""

    def __init__(self, message, address=None):
        super().__init__(message)
        self.address = address


class _Data:
    """Training samples as blocks of rows: slices of arrays held here, or the blocks of a dask array."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.n = x.shape[0]
        if is_dask(x):
            stops = np.cumsum(x.chunks[0])
            self.ranges = list(zip(np.concatenate(([0], stops[:-1])).tolist(), stops.tolist()))
            self.x_blocks = x.to_delayed().ravel().tolist()
            self.y_blocks = y.to_delayed().ravel().tolist()

    def place(self, client, addresses, timeout):
        """Put the blocks on the workers: [(address, [(start, stop), ...], x futures, y futures)] per replica."""
        if not is_dask(self.x):
            # Arrays held here: one contiguous slice per worker, sent straight to it.
            edges = np.linspace(0, self.n, min(len(addresses), self.n) + 1).round().astype(int)
            groups = []
            for address, start, stop in zip(addresses, edges[:-1], edges[1:]):
                xf, yf = client.scatter([self.x[start:stop], self.y[start:stop]], workers=[address], hash=False,
                                        timeout=timeout)
                groups.append((address, [(int(start), int(stop))], [xf], [yf]))
            return groups
        futures = client.compute(self.x_blocks + self.y_blocks)
        wait_all(futures, timeout, client, "computing the blocks of X and y")
        for future in futures:
            if future.status == "error":
                future.result()  # raises the error that computing the block met
        x_futures, y_futures = futures[:len(self.ranges)], futures[len(self.ranges):]
        holders = client.who_has(x_futures)
        # Each block to the worker that holds it, unless that worker already has more than its share.
        share = 1.25 * self.n / len(addresses)
        load = dict.fromkeys(addresses, 0)
        chosen = {address: [] for address in addresses}
        for i, ((start, stop), future) in enumerate(zip(self.ranges, x_futures)):
            held = [a for a in holders.get(future.key, ()) if a in load]
            address = held[0] if held and load[held[0]] + stop - start <= share else min(load, key=load.get)
            load[address] += stop - start
            chosen[address].append(i)
        return [(address, [self.ranges[i] for i in blocks], [x_futures[i] for i in blocks],
                 [y_futures[i] for i in blocks]) for address, blocks in chosen.items() if blocks]


class _Replicas:
    """The actors of one fit: built on the live workers, rebuilt after a loss."""

    def __init__(self, client, model, data, timeout):
        self.client, self.model, self.data, self.timeout = client, model, data, timeout
        self.actors = []

    def build(self, exclude=()):
        self.release()
        exclude = [a for a in exclude if a is not None]
        addresses = live_workers(self.client, exclude)
        if not addresses:
            raise RuntimeError(f"no worker to train on: the cluster has had no live worker for {WORKERLESS} s" +
                               (f" besides the unresponsive {exclude}" if exclude else ""))
        try:
            groups = self.data.place(self.client, addresses, self.timeout)
        except OSError as error:  # a worker vanished while its data was sent (TimeoutError included)
            raise WorkerLost(f"placing the data: {type(error).__name__}: {error}") from None
        self.actors = [
            self.client.submit(Replica, replica(self.model), xf, yf, workers=[address], allow_other_workers=True,
                               actor=True, pure=False)
            for address, _, xf, yf in groups
        ]
        try:
            wait_all(self.actors, self.timeout, self.client, "starting the replicas")
        except TimeoutError as error:
            raise WorkerLost(str(error)) from None
        self.handles = []
        for future in self.actors:
            if future.status == "error" and not isinstance(future.exception(), (ValueError, TypeError)):
                raise WorkerLost(f"a replica could not start: {future.exception()!r}")
            self.handles.append(future.result())  # re-raises a ValueError/TypeError about the data
        self.addresses = [address for address, *_ in groups]
        self.owner = np.empty(self.data.n, np.int32)  # replica holding each sample
        self.local = np.empty(self.data.n, np.int64)  # its row in that replica's shard
        for r, (_, ranges, _, _) in enumerate(groups):
            offset = 0
            for start, stop in ranges:
                self.owner[start:stop] = r
                self.local[start:stop] = np.arange(offset, offset + stop - start)
                offset += stop - start

    def plan(self, order, starts):
        """Send each replica its rows for an epoch that uses samples `order`, steps starting at `starts` (+ end)."""
        positions = self.owner[order]
        self.counts = np.empty((len(self.handles), len(starts) - 1), np.int64)
        plans = []
        for r in range(len(self.handles)):
            mine = np.flatnonzero(positions == r)
            bounds = np.searchsorted(mine, starts)
            self.counts[r] = np.diff(bounds)
            plans.append((self.local[order[mine]], bounds))
        self.call("plan", range(len(plans)), lambda r: plans[r][0], lambda r: plans[r][1])

    def call(self, method, replicas, *args):
        """Call `method` on the replicas numbered `replicas` with `args` (a callable of r gives per-replica args)."""
        calls = [getattr(self.handles[r], method)(*(a(r) if callable(a) else a for a in args)) for r in replicas]
        deadline = time.monotonic() + (self.timeout if self.timeout is not None else math.inf)
        results = []
        for r, call in zip(replicas, calls):
            try:
                results.append(call.result(timeout=max(deadline - time.monotonic(), 0.001)))
            except TimeoutError:
                raise WorkerLost(f"worker {self.addresses[r]} did not answer within timeout={self.timeout:g} s",
                                 self.addresses[r]) from None
            except OSError as error:  # connection refused or reset: the worker process is gone
                raise WorkerLost(f"worker {self.addresses[r]}: {type(error).__name__}: {error}",
                                 self.addresses[r]) from None
        return results

    def release(self):
        self.actors = []
        self.handles = []


def _prepare(model, x, y, validation_data, validation_split):
    """(training x, y, validation pair or None), each numpy (validated) or dask (checked from its metadata)."""
    if is_dask(x):
        check_samples(x)
        check_model(model, x.shape[1:])
        y = align_targets(y, x)
        if validation_split:
            n_val = _validation_count(x.shape[0], validation_split)
            return x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
    else:
        x = model._prepare_x(x, "X")
        y = model._prepare_y(np.asarray(y), x.shape[0], "y")
        if validation_split:
            n_val = _validation_count(x.shape[0], validation_split)
            return x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
    if validation_data is None:
        return x, y, None
    try:
        x_val, y_val = validation_data
    except (TypeError, ValueError):
        raise TypeError("validation_data must be a pair (x_val, y_val)") from None
    return x, y, (x_val, y_val)


def _validation_count(n, validation_split):
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split={validation_split} leaves {n_val} of {n} samples for validation; "
                         "both parts need at least one")
    return n_val


def fit(model, x, y, client=None, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
        seed=None, verbose=1, callbacks=None, *, sync_every=1, timeout=300.0, retries=3, checkpoint=None):
    """Train `model` on samples `x` (N, *input_shape) and targets `y` spread over the workers of `client`.

    `x` and `y` are dask arrays (blocks of whole samples: chunked along the
    first axis only) or numpy arrays (split among the workers).  The other
    arguments are ``Sequential.fit``'s, with the same meaning; `seed` and
    `shuffle` give the same order of samples, so with ``sync_every=1`` the
    weights follow single-machine ``fit`` within float rounding.
    ``model.history_`` and the callbacks work as in ``fit``.

    `sync_every`: K > 1 trains with local SGD (see the module's docstring).
    `timeout`: seconds to wait for one exchange with the workers.
    `retries`: how many times a lost or silent worker makes fit rebuild the
    replicas on the live workers and repeat the step (a RuntimeWarning says
    so); after that, or with 0, fit stops with a RuntimeError.  The model
    then holds the weights of the last completed step.  With ``sync_every >
    1`` the replicas' optimizers step and the model's own optimizer state
    (momentum, Adam's moments) is left as it was.
    `checkpoint`: a path where the model is saved (fastnn.nn.load reads
    it) after every epoch.  Returns the model.
    """
    client = get_client(client)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    sync_every = check_int(sync_every, "sync_every", minimum=1)
    retries = check_int(retries, "retries", minimum=0)
    timeout = check_timeout(timeout)
    validation_split = check_real(validation_split, "validation_split", minimum=0.0)
    if validation_split >= 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    verbose = check_int(verbose, "verbose", minimum=0)
    callbacks = list(callbacks or [])
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{i}] must be a fastnn.nn Callback, got {type(callback).__name__}")
    x, y, validation = _prepare(model, x, y, validation_data, validation_split)
    model._compile()
    data = _Data(x, y)
    n = data.n
    # The targets as the replicas will prepare them tell whether accuracy means something.
    has_accuracy = model.loss.has_accuracy(model._prepare_y(np.asarray(y[:1]), 1), model.n_outputs)
    if verbose:
        callbacks.append(ProgressBar(bar=verbose == 1))
    history = {"loss": [], **({"accuracy": []} if has_accuracy else {})}
    if validation is not None:
        history.update({"val_loss": [], **({"val_accuracy": []} if has_accuracy else {})})
    history["seconds"] = []
    model.history_ = history
    model.stop_training = False
    rng = make_rng(seed)
    starts = np.append(np.arange(0, n, batch_size), n)
    replicas = _Replicas(client, model, data, timeout)
    exchange = _local_round if sync_every > 1 else _sync_step
    lost = 0

    def recover(error, epoch, step, order):
        """Rebuild the replicas on the live workers after `error` (WorkerLost), or raise RuntimeError."""
        nonlocal lost
        before = list(replicas.addresses)
        while True:
            lost += 1
            if lost > retries:
                raise RuntimeError(
                    f"lost a worker at epoch {epoch}, step {step + 1} ({error}) and gave up after {retries} "
                    f"recover{'y' if retries == 1 else 'ies'}; the model keeps the weights of the last completed "
                    "step" + (f", and {checkpoint} those of the last completed epoch" if checkpoint else "")
                ) from None
            try:
                replicas.build(exclude=[error.address])
                replicas.plan(order, starts)
                break
            except WorkerLost as again:
                error = again
        warnings.warn(f"fastnn.distributed.fit: lost a worker at epoch {epoch}, step {step + 1} ({error}); "
                      f"replicas were on {before}, now on {replicas.addresses}; repeating the step", RuntimeWarning,
                      stacklevel=3)

    # Actor handles bind to the current client; the caller's need not be the process default.
    with client.as_current():
        for callback in callbacks:
            callback.on_train_begin(model)
        try:
            try:
                replicas.build()
            except WorkerLost as error:
                raise RuntimeError(f"could not start the replicas: {error}") from None
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                order = rng.permutation(n) if shuffle else np.arange(n)
                for callback in callbacks:
                    callback.on_epoch_begin(epoch, epochs, n)
                try:
                    replicas.plan(order, starts)
                except WorkerLost as error:
                    recover(error, epoch, 0, order)  # rebuilds and plans
                totals = [0.0, 0]
                step = 0
                while step < len(starts) - 1:
                    count = min(sync_every, len(starts) - 1 - step)
                    try:
                        outcome = exchange(model, replicas, starts, step, count, epoch)
                    except WorkerLost as error:
                        recover(error, epoch, step, order)
                        continue
                    for i, (loss_sum, correct) in enumerate(outcome):
                        size = int(starts[step + i + 1] - starts[step + i])
                        totals[0] += loss_sum
                        totals[1] += correct
                        for callback in callbacks:
                            callback.on_batch_end(step + i + 1, size, loss_sum / size)
                    step += count
                logs = {"loss": totals[0] / n}
                if has_accuracy:
                    logs["accuracy"] = totals[1] / n
                if validation is not None:
                    result = evaluate_data(model, *validation, client=client, timeout=timeout)
                    logs["val_loss"] = result["loss"]
                    if has_accuracy:
                        logs["val_accuracy"] = result["accuracy"]
                logs["seconds"] = time.perf_counter() - started
                for key, value in logs.items():
                    history[key].append(value)
                if checkpoint is not None:
                    model.save(checkpoint)
                for callback in callbacks:
                    callback.on_epoch_end(epoch, logs)
                if model.stop_training:
                    break
        finally:
            replicas.release()
            for callback in callbacks:
                callback.on_train_end()
    return model


def _sync_step(model, replicas, starts, step, count, epoch):
    """One synchronous step: gradients of the parts summed here, the master's optimizer applies them."""
    size = int(starts[step + 1] - starts[step])
    weights = flatten(parameters(model), model.dtype)
    active = [r for r in range(len(replicas.handles)) if replicas.counts[r, step]]
    results = replicas.call("gradient", active, step, weights, 1.0 / size)
    loss_sum = sum(r[0] for r in results)
    where = f"at epoch {epoch}, step {step + 1}"
    if not math.isfinite(loss_sum):
        raise RuntimeError(f"the loss became {loss_sum} {where}; training stopped and the model keeps the weights "
                           "of the last good step (try a lower learning rate)")
    total = np.array(results[0][2])  # a copy: arrays received from a worker may be read-only
    for result in results[1:]:
        total += result[2]
    unflatten(total, gradients(model))
    if not model.optimizer.step(model.layers):
        raise RuntimeError(f"a gradient became NaN or infinite {where}; training stopped and the model keeps the "
                           "weights of the last good step (try a lower learning rate)")
    return [(loss_sum, sum(r[1] for r in results))]


def _local_round(model, replicas, starts, step, count, epoch):
    """`count` local SGD steps on every replica, then the master takes the replicas' weighted mean weights."""
    weights = flatten(parameters(model), model.dtype)
    active = [r for r in range(len(replicas.handles)) if replicas.counts[r, step:step + count].any()]
    results = replicas.call("local_steps", active, step, count, weights, model.optimizer.lr)
    seen = np.array([sum(s[2] for s in steps) for steps, _ in results], np.float64)
    mean = sum(w.astype(np.float64) * (k / seen.sum()) for k, (_, w) in zip(seen, results))
    unflatten(mean.astype(model.dtype), parameters(model))
    return [(sum(steps[i][0] for steps, _ in results), sum(steps[i][1] for steps, _ in results)) for i in range(count)]
