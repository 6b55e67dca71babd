"""Training steps and inference of the benchmark models: fastnn vs its reference twin vs PyTorch.

    PYTHONPATH=. python -m pytest bench/test_bench_training.py --benchmark-group-by=group

One training step (forward, loss, backward, plain SGD update) on one batch,
float32, for the tutorial's MLP 784-100-10 (sigmoid, squared error), the MLP
784-300-10 (ReLU, cross-entropy) and LeNet-5, at batch 64 and batch 1; and
inference at batch 256 (the workloads are fastnn.benchmarks.training, which
``fastnn bench`` also runs, one implementation per process).

Three thread pools in one process (Numba's, OpenBLAS's, PyTorch's) spin and
steal the two cores from each other, so for numbers to quote run each side
in its own process and compare the saved runs group by group:

    B="python -m pytest bench/test_bench_training.py -q"
    PYTHONPATH=. $B -k "fastnn or reference" --benchmark-save=fastnn
    PYTHONPATH=. $B -k "torch and t1" --benchmark-save=torch1
    PYTHONPATH=. $B -k "torch and t2" --benchmark-save=torch2
    pytest-benchmark compare --group-by=group --columns=min,median
"""

import pytest

from fastnn.benchmarks.training import (MODELS, fastnn_inference, fastnn_train_step, reference_train_step,
                                        torch_inference, torch_train_step)


@pytest.mark.parametrize("batch", [64, 1])
@pytest.mark.parametrize("name", MODELS)
def test_train_step_fastnn(benchmark, name, batch):
    benchmark.group = f"train {name} batch {batch}"
    step = fastnn_train_step(name, batch)
    step()  # compile
    benchmark(step)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("batch", [64, 1])
@pytest.mark.parametrize("name", MODELS)
def test_train_step_torch(benchmark, name, batch, threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    benchmark.group = f"train {name} batch {batch}"
    step = torch_train_step(name, batch)
    step()
    benchmark(step)


@pytest.mark.parametrize("name", ["mlp100", "mlp300"])
def test_train_step_reference(benchmark, name):
    benchmark.group = f"train {name} batch 1"
    benchmark.pedantic(reference_train_step(name), rounds=3, iterations=1)


@pytest.mark.parametrize("name", MODELS)
def test_inference_fastnn(benchmark, name):
    benchmark.group = f"inference {name} batch 256"
    infer = fastnn_inference(name, 256)
    infer()
    benchmark(infer)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("name", MODELS)
def test_inference_torch(benchmark, name, threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    benchmark.group = f"inference {name} batch 256"
    infer = torch_inference(name, 256)
    infer()
    benchmark(infer)
