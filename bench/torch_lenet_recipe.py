"""PyTorch's side of the LeNet-5 accuracy comparison: the same recipe, for the same data, in PyTorch.

    PYTHONPATH=. python bench/torch_lenet_recipe.py [--epochs 3] [--threads 2]

Trains LeNet-5 (ReLU, max pooling, as fastnn.nn.models.lenet5) on the full
Fashion-MNIST with SGD momentum 0.9, lr 0.01, batch 64, shuffled, and prints
the test accuracy and the seconds per epoch.  fastnn's run of the same recipe:

    fastnn train --model lenet --dataset fashion-mnist --epochs 3 --lr 0.01 --momentum 0.9 \
        --no-nesterov --schedule constant --no-standardize --validation-split 0
"""

import argparse
import time

import numpy as np
import torch

from fastnn.datasets import load_fashion_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(x_train.shape[0], generator=generator)
        for start in range(0, x_train.shape[0], 64):
            index = order[start:start + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: {time.perf_counter() - started:.1f} s", flush=True)
    with torch.no_grad():
        predictions = net(torch.from_numpy(x_test)).argmax(1).numpy()
    print(f"test accuracy {np.mean(predictions == y_test) * 100:.2f}%")


if __name__ == "__main__":
    main()
