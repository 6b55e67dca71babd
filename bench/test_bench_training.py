"""Training steps and inference of the benchmark models: fastnn vs its reference twin vs PyTorch.

    PYTHONPATH=. python -m pytest bench/test_bench_training.py --benchmark-group-by=group

Three thread pools in one process (Numba's, OpenBLAS's, PyTorch's) spin and
steal the two cores from each other, so for numbers to quote run each side
in its own process and compare the saved runs group by group:

    B="python -m pytest bench/test_bench_training.py -q"
    PYTHONPATH=. $B -k "fastnn or reference" --benchmark-save=fastnn
    PYTHONPATH=. $B -k "torch and t1" --benchmark-save=torch1
    PYTHONPATH=. $B -k "torch and t2" --benchmark-save=torch2
    pytest-benchmark compare --group-by=group --columns=min,median

One training step (forward, loss, backward, plain SGD update) on one batch,
float32, for the tutorial's MLP 784-100-10 (sigmoid, squared error), the MLP
784-300-10 (ReLU, cross-entropy) and LeNet-5, at batch 64 and batch 1; and
inference at batch 256.  PyTorch runs the same architecture, loss and
optimizer with 1 and with 2 threads (compare fastnn with the faster of the
two).  The plain-Python reference twin runs the MLP steps at batch 1 only
(at batch 64 a step takes seconds).
"""

import numpy as np
import pytest

from fastnn.nn import SGD
from fastnn.nn.models import lenet5, mlp, tutorial_mlp
from fastnn.reference import batched as reference

MODELS = ["mlp100", "mlp300", "lenet"]
LR = 0.01


def fastnn_model(name):
    if name == "mlp100":
        return tutorial_mlp(optimizer=SGD(lr=LR), rng=0)
    if name == "mlp300":
        return mlp(optimizer=SGD(lr=LR), rng=0)
    return lenet5(optimizer=SGD(lr=LR), rng=0)


def data(name, batch):
    rng = np.random.default_rng(0)
    shape = (batch, 1, 28, 28) if name == "lenet" else (batch, 784)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, batch)


def torch_model(torch, name):
    nn = torch.nn
    torch.manual_seed(0)
    if name == "mlp100":
        net = nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10), nn.Sigmoid())

        def loss(out, labels):  # the tutorial's 1/2 sum of squares per sample, averaged, as fastnn's "mse"
            return 0.5 * ((out - nn.functional.one_hot(labels, 10).float()) ** 2).sum(1).mean()

        return net, loss
    if name == "mlp300":
        return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 10)), nn.functional.cross_entropy
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    return net, nn.functional.cross_entropy


@pytest.mark.parametrize("batch", [64, 1])
@pytest.mark.parametrize("name", MODELS)
def test_train_step_fastnn(benchmark, name, batch):
    benchmark.group = f"train {name} batch {batch}"
    model = fastnn_model(name)
    x, y = data(name, batch)
    model.train_on_batch(x, y)  # compile
    benchmark(model.train_on_batch, x, y)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("batch", [64, 1])
@pytest.mark.parametrize("name", MODELS)
def test_train_step_torch(benchmark, name, batch, threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    benchmark.group = f"train {name} batch {batch}"
    net, loss_fn = torch_model(torch, name)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = (torch.from_numpy(a) for a in data(name, batch))

    def step():
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    step()
    benchmark(step)


@pytest.mark.parametrize("name", ["mlp100", "mlp300"])
def test_train_step_reference(benchmark, name):
    benchmark.group = f"train {name} batch 1"
    model = fastnn_model(name)
    dense = [layer for layer in model.layers if layer.params]
    activations = ["sigmoid", "sigmoid"] if name == "mlp100" else ["relu", "identity"]
    x, y = data(name, 1)
    params = [(layer.params["weight"].astype(float), layer.params["bias"].astype(float)) for layer in dense]

    def step():
        outputs = [x]
        for (weight, bias), activation in zip(params, activations):
            outputs.append(reference.dense_forward(outputs[-1], weight, bias, activation))
        if name == "mlp100":
            _, _, grad = reference.squared_error(outputs[-1], np.eye(10)[y], 1.0)
        else:
            _, _, grad = reference.softmax_cross_entropy(outputs[-1], y, 1.0)
        for i in reversed(range(len(params))):
            weight, bias = params[i]
            grad, grad_weight, grad_bias = reference.dense_backward(outputs[i], weight, outputs[i + 1], grad,
                                                                     activations[i])
            params[i] = (reference.sgd_update(weight, grad_weight, weight, LR, 0.0, False, 0.0)[0],
                         reference.sgd_update(bias, grad_bias, bias, LR, 0.0, False, 0.0)[0])

    benchmark.pedantic(step, rounds=3, iterations=1)


@pytest.mark.parametrize("name", MODELS)
def test_inference_fastnn(benchmark, name):
    benchmark.group = f"inference {name} batch 256"
    model = fastnn_model(name)
    x, _ = data(name, 256)
    model.predict_logits(x)
    benchmark(model.predict_logits, x)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("name", MODELS)
def test_inference_torch(benchmark, name, threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    benchmark.group = f"inference {name} batch 256"
    net, _ = torch_model(torch, name)
    x = torch.from_numpy(data(name, 256)[0])

    def infer():
        with torch.no_grad():
            return net(x)

    infer()
    benchmark(infer)
