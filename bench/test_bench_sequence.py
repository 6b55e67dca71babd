"""Sequence and tree chapters: fastnn beside the tutorial-style twins and PyTorch's nn.RNN / nn.LSTM.

Run: ``pytest bench/test_bench_sequence.py --benchmark-group-by=group``

The workloads are those of ``fastnn bench`` (see
`fastnn.benchmarks.sequence`): one training step of `fastnn.nn.RNN` /
`fastnn.nn.LSTM` (32 -> 64 units, 20 steps, batch 1 and 32, float32) against
``torch.nn.RNN`` / ``torch.nn.LSTM`` with 1 and with 2 threads and against
the reference twin; the `fastnn.tutorial` classes against their twins; a
batch of trees through `fastnn.nn.TreeRNN`.

On a 2-core machine, PyTorch's and Numba's OpenMP thread pools slow each
other down badly inside one process (a 2-thread PyTorch step after Numba's
parallel kernels, or the other way round, can take 20-200x longer).
``fastnn bench --only rnn-b1 rnn-b32 lstm-b1 lstm-b32`` runs each side in
a fresh process and is the one to quote; here, run the PyTorch rows in their
own pytest run: ``-k torch`` and ``-k "not torch"``.
"""

import pytest

from fastnn.benchmarks.workloads import WORKLOADS

NN = ["rnn-b1", "rnn-b32", "lstm-b1", "lstm-b32"]
TUTORIAL = [name for name in WORKLOADS if name.startswith("tutorial-")] + ["treernn-64"]


def _run(benchmark, name, impl):
    workload = WORKLOADS[name]
    benchmark.group = workload.title
    step, _ = workload.builders[impl](False)
    step()  # warm up: compiles the kernels, lets PyTorch allocate
    if impl == "python" and name in NN:
        benchmark.pedantic(step, rounds=3, iterations=1)
    else:
        benchmark(step)


@pytest.mark.parametrize("name", NN)
@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_nn_training_step(benchmark, impl, name):
    benchmark.extra_info["impl"] = impl
    _run(benchmark, name, impl)


@pytest.mark.parametrize("name", NN)
@pytest.mark.parametrize("threads", [1, 2])
def test_nn_training_step_torch(benchmark, torch_threads, threads, name):
    torch_threads(threads)
    benchmark.extra_info.update(impl="torch", threads=threads)
    _run(benchmark, name, "torch")


@pytest.mark.parametrize("name", TUTORIAL)
@pytest.mark.parametrize("impl", ["fastnn", "python"])
def test_tutorial_and_tree(benchmark, impl, name):
    benchmark.extra_info["impl"] = impl
    _run(benchmark, name, impl)
