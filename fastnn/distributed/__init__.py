"""fastnn on a dask cluster: data-parallel training, sharded inference and hyper-parameter sweeps.

Needs the optional extra: ``pip install 'fastnn[distributed]'`` (dask and
distributed); nothing else in fastnn imports this package.  Every function
takes a ``distributed.Client`` (default: the one running in this process;
a RuntimeError says so when there is none)::

    from fastnn import distributed as fd
    client = fd.local_client(n_workers=2)        # or distributed.Client("tcp://scheduler:8786")
    fd.fit(model, X, y, client, epochs=5, batch_size=64)
    labels = fd.predict(model, X_big).compute()   # X_big: a dask array, possibly larger than memory
    table = fd.sweep(build, {"lr": [0.01, 0.1]}, ((x, y), (x_val, y_val)), client)

Data are dask arrays whose blocks hold whole samples (chunked along the
first axis only; anything else is refused with the ``rechunk`` to apply);
``fit`` and ``sweep`` also take numpy arrays.  The workers must be able to
import fastnn (install it there as here).

Faults: a worker lost during ``fit`` makes it rebuild its replicas on the
live workers and repeat the step (``retries`` times, then a RuntimeError);
``predict`` and ``evaluate`` tasks are recomputed by dask elsewhere; every
wait has a deadline or watches that the cluster still has a worker, so
nothing blocks forever.  Worker-side code takes one lock per process around
the compiled kernels, so workers with several threads stay safe (one
thread per worker process is what runs fastest: the kernels use the cores).
"""

try:
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
except ImportError as error:
    raise ImportError(
        f"fastnn.distributed needs dask and distributed ({error}): pip install 'fastnn[distributed]'"
    ) from error

from ._common import connect, get_client, local_client
from .inference import evaluate, predict
from .sweep import sweep
from .training import fit

__all__ = ["fit", "predict", "evaluate", "sweep", "local_client", "get_client", "connect"]
