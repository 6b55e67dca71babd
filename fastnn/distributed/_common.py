"""What training, inference and sweeps share: the client, data checks, model copies, waiting with a deadline."""

import math
import os
import threading
import time

import dask.array as da
import numpy as np
from distributed import Client

from .._checks import check_int, check_real, describe_shape
from ..nn.model import Sequential

# Worker-side code holds this lock while it runs kernels: a process with
# several worker threads must not enter Numba's parallel regions from two
# threads at once (the default workqueue threading layer aborts).
KERNEL_LOCK = threading.Lock()

# How often a wait looks at the cluster for lost workers, and how long it
# accepts a cluster without any worker (seconds).
POLL = 0.5
WORKERLESS = 30


def get_client(client):
    """`client`, or the Client running in this process; a clear error when there is none."""
    if client is None:
        try:
            client = Client.current()
        except ValueError:
            raise RuntimeError(
                "no dask client: pass client=..., or start one first, e.g. "
                "fastnn.distributed.local_client(n_workers=2) or distributed.Client('tcp://scheduler:8786')"
            ) from None
    if not isinstance(client, Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    if client.status != "running":
        raise RuntimeError(f"the dask client is {client.status}, not running; connect a new one")
    return client


def local_client(n_workers=2, threads_per_worker=1, numba_threads=None, **cluster_options):
    """A Client on a new LocalCluster of `n_workers` processes listening on loopback only.

    Closing the client closes the cluster.  `numba_threads` (default: the
    machine's cores shared among the workers) is the workers'
    NUMBA_NUM_THREADS, so that their parallel kernels do not oversubscribe
    the cores; and unless OMP_WAIT_POLICY is set, the workers' idle kernel
    threads sleep instead of spinning (PASSIVE), since they share the cores
    with this process and the scheduler (spinning threads made a LeNet-5
    step 7x slower on a 2-core machine).  Both are read when a worker first
    loads Numba, which can be while it re-imports the script that started
    the cluster, so they are set in this process's environment, which the
    workers and their restarts inherit (a Numba already loaded here keeps
    its settings).  Other keywords go to ``distributed.LocalCluster``.
    """
    if numba_threads is None:
        numba_threads = max(1, (os.cpu_count() or 1) // n_workers)
    os.environ["NUMBA_NUM_THREADS"] = str(check_int(numba_threads, "numba_threads", minimum=1))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    options = {"host": "127.0.0.1", "dashboard_address": None, "processes": True, **cluster_options}
    return Client(n_workers=n_workers, threads_per_worker=threads_per_worker, **options)


def connect(scheduler=None, workers=None, timeout=10):
    """A Client for ``fastnn train``'s options: the scheduler at address `scheduler`, or `workers` local processes."""
    if (scheduler is None) == (workers is None):
        raise ValueError("give a scheduler address or a number of local workers, not both and not neither")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        return local_client(workers)
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as error:  # TimeoutError is an OSError
        raise OSError(f"could not connect to the dask scheduler at {scheduler!r} within {timeout} s: {error}") from None


def aligned(array):
    """`array` itself if it is C-contiguous and aligned, else an aligned copy.

    An array received from another process can sit at any byte offset of
    its message; numpy's slow path for unaligned data made np.take of a
    batch 300x slower (20 ms for 64 rows of 784 floats).
    """
    return np.require(array, requirements=["C", "A"])


def check_timeout(timeout):
    return None if timeout is None else check_real(timeout, "timeout", positive=True)


def is_dask(array):
    return isinstance(array, da.Array)


def check_samples(x, name="X"):
    """Validate a dask array of samples: known row chunks, every block holding whole samples."""
    if x.ndim < 2:
        raise ValueError(f"{name} must be a batch of samples (N, ...), got shape {x.shape}")
    if any(math.isnan(c) for c in x.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes along its sample axis; "
                         f"call {name}.compute_chunk_sizes() first")
    for axis in range(1, x.ndim):
        if len(x.chunks[axis]) > 1:
            raise ValueError(
                f"{name} is split along axis {axis} (chunks {x.chunks[axis]}), so its blocks hold parts of samples; "
                f"every block must hold whole samples: rechunk with {name}.rechunk({{{axis}: -1}}) "
                f"(or {name}.rechunk({{i: -1 for i in range(1, {name}.ndim)}}))"
            )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it holds no samples (shape {x.shape})")


def check_model(model, sample_shape, name="X"):
    """`model` a Sequential whose samples have `sample_shape`; fixes its input shape if still open."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastnn.nn.Sequential, got {type(model).__name__}")
    sample_shape = tuple(int(d) for d in sample_shape)
    if model.input_shape is None:
        model._set_input_shape(sample_shape)  # raises a ValueError naming the layer that does not fit
    elif sample_shape != model.input_shape:
        raise ValueError(
            f"{name} holds samples of shape {describe_shape(sample_shape)}, the model takes "
            f"{describe_shape(model.input_shape)}: {name} must have shape (N, {', '.join(map(str, model.input_shape))})"
        )


def align_targets(y, x):
    """Targets `y` (dask or numpy) as a dask array whose blocks hold the targets of the dask array `x`'s blocks."""
    if not is_dask(y):
        y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must hold one target per sample of X: expected {x.shape[0]}, got shape {y.shape}")
    chunks = (x.chunks[0],) + y.shape[1:]
    return y.rechunk(chunks) if is_dask(y) else da.from_array(y, chunks=chunks)


def replica(model):
    """A fresh copy of `model` (same layers, weights and hyper-parameters; no buffers, no optimizer state).

    Built from every layer's ``get_config`` rather than pickled as it is, so
    that what travels to a worker is the weights and a few small objects.
    """
    layers = [type(layer)(**layer.get_config()) for layer in model.layers]
    for copy, layer in zip(layers, model.layers):
        for name, array in layer.params.items():
            np.copyto(copy.params[name], array)
    loss = type(model.loss)(**model.loss.get_config())
    optimizer = type(model.optimizer)(**model.optimizer.get_config())
    return Sequential(layers, loss=loss, optimizer=optimizer, input_shape=model.input_shape)


def parameters(model):
    """Every parameter array of `model`, in layer order."""
    return [array for layer in model.layers for array in layer.params.values()]


def gradients(model):
    return [array for layer in model.layers for array in layer.grads.values()]


def flatten(arrays, dtype):
    """One contiguous vector holding `arrays` one after the other (what travels between processes)."""
    return np.concatenate([a.ravel() for a in arrays]) if arrays else np.empty(0, dtype)


def unflatten(vector, arrays):
    """Copy `vector` back into `arrays` in place (the optimizer keeps pointing at them)."""
    start = 0
    for array in arrays:
        np.copyto(array, vector[start:start + array.size].reshape(array.shape))
        start += array.size


def wait_all(futures, timeout, client, what):
    """Wait until dask `futures` are finished or failed: TimeoutError after `timeout` seconds (None: no limit).

    Also raises RuntimeError when the cluster has had no worker for
    WORKERLESS seconds, so that a wait never outlives the whole cluster.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    workerless_since = None
    for future in futures:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"{what} did not finish within {timeout:g} s")
            try:
                future.exception(timeout=POLL if deadline is None else min(POLL, deadline - now))
                break
            except TimeoutError:
                pass
            if workers(client):
                workerless_since = None
            elif now - (workerless_since := workerless_since or now) > WORKERLESS:
                raise RuntimeError(f"{what}: the cluster has had no worker for {WORKERLESS} s")


def workers(client):
    """Addresses of the workers the scheduler knows now, sorted."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def live_workers(client, exclude=()):
    """The workers not in `exclude`, sorted; when there is none, waits up to WORKERLESS seconds for one, as
    wait_all does (a nanny restarting its worker leaves the cluster without it for a few seconds)."""
    deadline = time.monotonic() + WORKERLESS
    while True:
        found = [address for address in workers(client) if address not in exclude]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(POLL)

