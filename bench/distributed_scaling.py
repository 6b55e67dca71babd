"""Examples/s of fastnn.distributed.fit with 1 and 2 local workers beside single-process fit.

    PYTHONPATH=. python bench/distributed_scaling.py [--samples-mlp 25600] [--samples-lenet 6400]

Trains the tutorial MLP (784-100-10) and LeNet-5 at batch 64 on
Fashion-MNIST (the bundled sample when the data set is not installed): one
epoch to compile and start the replicas, then the faster of two timed
epochs per setting (the machine this was written on is shared and noisy).
The single process runs with 1 and 2 Numba threads (the faster is shown);
one worker gets 2 Numba threads, two workers 1 each.  The communication
cost per step is measured at batch 2, where computing is negligible: a
distributed step minus a single-process step (sending the weights,
returning the gradient, the actor round trip, the master's update).  Not a
pytest module: it starts its own clusters, on loopback.
"""

import argparse

import numba
import numpy as np

from fastnn import distributed as fd
from fastnn.datasets import load_fashion_mnist, load_sample
from fastnn.nn import SGD
from fastnn.nn.models import lenet5, tutorial_mlp

BATCH = 64
TINY_BATCH, TINY_SAMPLES = 2, 512


def data(flatten, samples):
    try:
        (x, y), _ = load_fashion_mnist(flatten=flatten)
        source = "Fashion-MNIST"
    except FileNotFoundError:
        (x, y), _ = load_sample(flatten=flatten)
        source = "the bundled sample"
    reps = -(-samples // x.shape[0])
    return np.concatenate([x] * reps)[:samples], np.concatenate([y] * reps)[:samples], source


def build(name):
    if name == "mlp":
        return tutorial_mlp(optimizer=SGD(lr=0.1, momentum=0.9), rng=0)
    return lenet5(optimizer=SGD(lr=0.05, momentum=0.9), rng=0)


def step_ms(fit, x, y, batch_size, **options):
    """Milliseconds per step in the faster of epochs 2 and 3 (the first compiles kernels and starts replicas)."""
    model = fit(x, y, epochs=3, batch_size=batch_size, seed=0, verbose=0, **options)
    return min(model.history_["seconds"][1:]) / -(-x.shape[0] // batch_size) * 1e3


def single(name, x, y, batch_size):
    """Best milliseconds per step of single-process fit with 1 and 2 Numba threads."""
    times = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        times.append(step_ms(lambda *a, **k: build(name).fit(*a, **k), x, y, batch_size))
    numba.set_num_threads(2)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples-mlp", type=int, default=25_600)
    parser.add_argument("--samples-lenet", type=int, default=6_400)
    args = parser.parse_args()
    rows, notes = [], []
    for name, samples in (("mlp", args.samples_mlp), ("lenet", args.samples_lenet)):
        x, y, source = data(flatten=name == "mlp", samples=samples)
        ms = {"1 process": single(name, x, y, BATCH)}
        tiny = {"1 process": single(name, x[:TINY_SAMPLES], y[:TINY_SAMPLES], TINY_BATCH)}
        for workers in (1, 2):
            client = fd.local_client(workers, numba_threads=2 // workers)
            try:
                def fit(*a, **k):
                    return fd.fit(build(name), *a, client=client, **k)
                label = f"{workers} worker{'s' if workers > 1 else ''}"
                ms[label] = step_ms(fit, x, y, BATCH)
                tiny[label] = step_ms(fit, x[:TINY_SAMPLES], y[:TINY_SAMPLES], TINY_BATCH)
                if workers == 2:
                    ms[label + ", sync_every=8"] = step_ms(fit, x, y, BATCH, sync_every=8)
            finally:
                client.close()
        rows += [(name, label, BATCH / value * 1e3, value) for label, value in ms.items()]
        kib = build(name).num_params * 4 / 1024
        notes.append(f"{name}: {samples:,} samples of {source}, batch {BATCH}; {kib:,.0f} KiB of weights out and of "
                     f"gradient back per worker and step; communication cost per step (batch {TINY_BATCH}, minus one "
                     f"process): {tiny['1 worker'] - tiny['1 process']:.2f} ms with 1 worker, "
                     f"{tiny['2 workers'] - tiny['1 process']:.2f} ms with 2")
    print("\n".join(notes))
    print(f"\n{'model':<6} {'setting':<26} {'examples/s':>11} {'ms/step':>8}")
    for name, label, rate, value in rows:
        print(f"{name:<6} {label:<26} {rate:>11,.0f} {value:>8.2f}")


if __name__ == "__main__":
    main()
