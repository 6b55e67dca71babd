"""Training and inference workloads of ``fastnn bench`` (issue 5): the MLPs and LeNet-5, fastnn vs PyTorch.

One training step is forward, loss, backward and a plain SGD update of one
batch, float32, with the same architecture and loss on both sides: the
tutorial's MLP 784-100-10 (sigmoid, squared error), the MLP 784-300-10
(ReLU, cross-entropy) and LeNet-5 (ReLU, max pooling, cross-entropy).  The
plain-Python twin runs the MLP steps at batch 1 (at batch 64 a step takes
seconds).  ``lenet-epoch`` trains one epoch of Fashion-MNIST when it is
installed.  bench/test_bench_training.py times the same steps with
pytest-benchmark.
"""

import numpy as np

from .workloads import Target, register

LR = 0.01
MODELS = ("mlp100", "mlp300", "lenet")


def batch(name, size):
    """Random images in [0, 1) shaped for model `name`, and random labels."""
    rng = np.random.default_rng(0)
    shape = (size, 1, 28, 28) if name == "lenet" else (size, 784)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, size)


def fastnn_model(name, optimizer=None):
    from fastnn.nn import SGD
    from fastnn.nn.models import lenet5, mlp, tutorial_mlp

    build = {"mlp100": tutorial_mlp, "mlp300": mlp, "lenet": lenet5}[name]
    return build(optimizer=optimizer or SGD(lr=LR), rng=0)


def torch_model(name):
    """(module, loss function) in PyTorch, the same architecture and loss as fastnn_model(name)."""
    import torch

    nn = torch.nn
    torch.manual_seed(0)
    if name == "mlp100":
        def half_squared_error(out, labels):  # fastnn's "mse": 1/2 sum over outputs, mean over samples
            return 0.5 * ((out - nn.functional.one_hot(labels, 10).float()) ** 2).sum(1).mean()

        return nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10), nn.Sigmoid()), half_squared_error
    if name == "mlp300":
        return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 10)), nn.functional.cross_entropy
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ), nn.functional.cross_entropy


def fastnn_train_step(name, size):
    model = fastnn_model(name)
    x, y = batch(name, size)
    return lambda: model.train_on_batch(x, y)


def torch_train_step(name, size):
    import torch

    net, loss_fn = torch_model(name)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = (torch.from_numpy(a) for a in batch(name, size))

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step


def reference_train_step(name):
    """One SGD step of the MLP `name` on one sample with the plain-Python twins (fastnn.reference.batched)."""
    from fastnn.reference import batched as reference

    layers = [layer for layer in fastnn_model(name).layers if layer.params]
    params = [(layer.params["weight"].astype(float), layer.params["bias"].astype(float)) for layer in layers]
    activations = ["sigmoid", "sigmoid"] if name == "mlp100" else ["relu", "identity"]
    x, y = batch(name, 1)

    def step():
        outputs = [x]
        for (weight, bias), activation in zip(params, activations):
            outputs.append(reference.dense_forward(outputs[-1], weight, bias, activation))
        if name == "mlp100":
            grad = reference.squared_error(outputs[-1], np.eye(10)[y], 1.0)[2]
        else:
            grad = reference.softmax_cross_entropy(outputs[-1], y, 1.0)[2]
        for i in reversed(range(len(params))):
            weight, bias = params[i]
            grad, grad_weight, grad_bias = reference.dense_backward(outputs[i], weight, outputs[i + 1], grad,
                                                                     activations[i])
            params[i] = (reference.sgd_update(weight, grad_weight, weight, LR, 0.0, False, 0.0)[0],
                         reference.sgd_update(bias, grad_bias, bias, LR, 0.0, False, 0.0)[0])

    return step


def fastnn_inference(name, size):
    model = fastnn_model(name)
    x, _ = batch(name, size)
    return lambda: model.predict_logits(x, batch_size=size)


def torch_inference(name, size):
    import torch

    net, _ = torch_model(name)
    x = torch.from_numpy(batch(name, size)[0])

    def infer():
        with torch.no_grad():
            return net(x)

    return infer


TITLES = {"mlp100": "MLP 784-100-10 sigmoid/MSE", "mlp300": "MLP 784-300-10 ReLU", "lenet": "LeNet-5"}


def _register_steps(name):
    for size, speedup in ((64, 1.0), (1, 10.0)):
        def builders(size=size):
            found = {
                "fastnn": lambda quick: (fastnn_train_step(name, size), size),
                "torch": lambda quick: (torch_train_step(name, size), size),
            }
            if size == 1 and name != "lenet":
                found["python"] = lambda quick: (reference_train_step(name), 1)
            return found

        register(f"train-{name}-b{size}", f"train {TITLES[name]}, batch {size}, SGD", "samples",
                 targets=[Target("torch", speedup, "issue 5")])(builders)

    register(f"infer-{name}-b256", f"inference {TITLES[name]}, batch 256", "samples")(lambda: {
        "fastnn": lambda quick: (fastnn_inference(name, 256), 256),
        "torch": lambda quick: (torch_inference(name, 256), 256),
    })


for _name in MODELS:
    _register_steps(_name)


@register("lenet-epoch", "LeNet-5 on Fashion-MNIST, one epoch, batch 64, SGD momentum 0.9", "samples",
          needs_dataset=True, notes="the issue's PyTorch: about 3.5 s per epoch")
def _lenet_epoch():
    def images(quick):
        from fastnn.datasets import load_fashion_mnist

        (x, y), _ = load_fashion_mnist()
        return (x[:4096], y[:4096]) if quick else (x, y)

    def fastnn(quick):
        from fastnn.nn import SGD

        x, y = images(quick)
        model = fastnn_model("lenet", SGD(lr=LR, momentum=0.9))
        return (lambda: model.fit(x, y, epochs=1, batch_size=64, seed=0, verbose=0)), len(x)

    def torch(quick):
        import torch

        x, y = (torch.from_numpy(a) for a in images(quick))
        net, loss_fn = torch_model("lenet")
        optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)

        def epoch():
            order = torch.randperm(len(x))
            for start in range(0, len(x), 64):
                index = order[start:start + 64]
                optimizer.zero_grad()
                loss_fn(net(x[index]), y[index]).backward()
                optimizer.step()

        return epoch, len(x)

    return {"fastnn": fastnn, "torch": torch}
