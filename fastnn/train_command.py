"""``fastnn train``: train a ready-made model on an image data set and report its test accuracy.

    fastnn train --model lenet --dataset fashion-mnist
    fastnn train --model mlp --dataset sample --epochs 5 --plot curves.png

Each model has a default recipe (optimizer, learning rate, epochs, batch
size) that the options override.  The command prints a progress bar per
epoch, a line per epoch with training and validation accuracy, then the test
accuracy, the confusion matrix, throughput and peak memory.  Heavy imports
(numpy, Numba kernels, matplotlib) happen inside ``run``.
"""

import argparse
import os
import sys
import time

MODELS = ("mlp", "mlp300", "lenet")
DATASETS = ("sample", "fashion-mnist", "mnist", "cifar10")

# Defaults per model; every key can be overridden by the option of that name.
_SGD = {"optimizer": "sgd", "momentum": 0.9, "nesterov": False, "batch_size": 64, "schedule": "cosine", "warmup": 0.0,
        "standardize": False}
RECIPES = {
    "mlp": {**_SGD, "lr": 0.1, "epochs": 10},
    "mlp300": {**_SGD, "lr": 0.05, "epochs": 10},
    # Measured on Fashion-MNIST: 90.0-90.6% test accuracy after 5 epochs (see the README's training section).
    "lenet": {**_SGD, "lr": 0.05, "nesterov": True, "warmup": 0.1, "standardize": True, "epochs": 5},
}

CLASS_NAMES = {
    "fashion-mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
    "cifar10": ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
CLASS_NAMES["sample"] = CLASS_NAMES["fashion-mnist"]


def add_arguments(parser):
    parser.add_argument("--model", choices=MODELS, default="lenet",
                        help="mlp: the tutorial's 784-100-10 sigmoid/MSE; mlp300: 784-300-10 ReLU; lenet: LeNet-5 (default)")
    parser.add_argument("--dataset", choices=DATASETS, default="sample",
                        help="sample (bundled, default), fashion-mnist, mnist or cifar10 (local files, see --data-dir)")
    parser.add_argument("--data-dir", help="folder with the data set's files (default: searched, see fastnn.datasets)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the model's recipe)")
    parser.add_argument("--batch-size", type=int, help="samples per step (default: the model's recipe)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the model's recipe)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), help="default: the model's recipe")
    parser.add_argument("--momentum", type=float, help="SGD momentum (default: the model's recipe)")
    parser.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum (default: the recipe)")
    parser.add_argument("--schedule", choices=("constant", "cosine"),
                        help="learning rate: constant, or cosine decay to zero over the run (default: the recipe)")
    parser.add_argument("--warmup", type=float,
                        help="with --schedule cosine: fraction of the run spent raising the rate from 0 (default: the recipe)")
    parser.add_argument("--standardize", action=argparse.BooleanOptionalAction,
                        help="LeNet only: first layer standardizes with the training set's mean and std (default: on)")
    parser.add_argument("--validation-split", type=float, default=0.1,
                        help="fraction of the training set held out to validate each epoch (default 0.1; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling (default 0)")
    parser.add_argument("--threads", type=int, help="threads for the compiled kernels and BLAS (default: all cores)")
    parser.add_argument("--save", metavar="PATH", help="save the trained model to PATH (.npz)")
    parser.add_argument("--plot", metavar="PATH", help="draw the training curves to PATH (.png; needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the lines")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="train data-parallel on the dask cluster at ADDRESS (needs fastnn[distributed])")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="train data-parallel on a local dask cluster of N processes (needs fastnn[distributed])")


def recipe(args):
    """The model's default recipe with the options given on the command line applied."""
    chosen = dict(RECIPES[args.model])
    for key in chosen:
        value = getattr(args, key, None)
        if value is not None:
            chosen[key] = value
    return chosen


def describe(settings):
    """``sgd lr 0.05 momentum 0.9 nesterov (cosine, warm-up 0.1), batch 64, 5 epochs``."""
    text = f"{settings['optimizer']} lr {settings['lr']}"
    if settings["optimizer"] == "sgd":
        text += f" momentum {settings['momentum']}" + (" nesterov" if settings["nesterov"] else "")
    schedule = settings["schedule"]
    if schedule == "cosine" and settings["warmup"]:
        schedule += f", warm-up {settings['warmup']}"
    epochs = settings["epochs"]
    return text + f" ({schedule}), batch {settings['batch_size']}, {epochs} epoch{'s' if epochs != 1 else ''}"


def load_data(dataset, data_dir, flatten):
    from . import datasets

    if dataset == "sample":
        return datasets.load_sample(flatten=flatten)
    loader = {"fashion-mnist": datasets.load_fashion_mnist, "mnist": datasets.load_mnist, "cifar10": datasets.load_cifar10}[dataset]
    return loader(data_dir, flatten=flatten)


def build_model(name, input_shape, settings, seed, statistics=None):
    from .nn import SGD, Adam
    from .nn.models import MODELS as BUILDERS

    if settings["optimizer"] == "adam":
        optimizer = Adam(lr=settings["lr"])
    else:
        optimizer = SGD(lr=settings["lr"], momentum=settings["momentum"], nesterov=settings["nesterov"])
    if name == "lenet":
        return BUILDERS[name](input_shape=input_shape, optimizer=optimizer, rng=seed, standardize=statistics)
    return BUILDERS[name](in_features=input_shape[0], optimizer=optimizer, rng=seed)


def confusion_matrix(labels, predictions, classes):
    """counts[i, j]: samples of class i predicted as class j."""
    import numpy as np

    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def format_confusion(counts, names):
    width = max(6, max(len(str(counts.max())), max(len(n) for n in names)) + 1)
    lines = ["true \\ predicted".ljust(10) + "".join(n[:width - 1].rjust(width) for n in names)]
    for name, row in zip(names, counts):
        lines.append(name[:10].ljust(10) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def plot_history(history, path):
    """Loss and accuracy per epoch to a PNG; returns an error message instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return "matplotlib is not installed, so no plot was drawn: pip install matplotlib (or fastnn[plot])"
    epochs = range(1, len(history["loss"]) + 1)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in history:
                axis.plot(epochs, history[key], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None


def peak_memory_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run(args):
    if args.threads is not None:
        if args.threads < 1:
            print(f"fastnn train: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        # BLAS reads its thread count when numpy loads, so set it before that import.
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.threads)
    import numba

    from .nn.callbacks import CosineDecay

    if args.threads is not None:
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    settings = recipe(args)
    client = None  # the model's own fit unless a dask cluster is asked for
    if args.scheduler is not None or args.workers is not None:
        try:
            from . import distributed

            client = distributed.connect(args.scheduler, args.workers)
        except (ImportError, ValueError, OSError) as error:
            print(f"fastnn train: {error}", file=sys.stderr)
            return 2
        print(f"fastnn train: data-parallel on {len(client.scheduler_info()['workers'])} dask worker(s) at "
              f"{client.scheduler.address}")
    try:
        (x_train, y_train), (x_test, y_test) = load_data(args.dataset, args.data_dir, flatten=args.model != "lenet")
        statistics = None
        if args.model == "lenet" and settings["standardize"]:  # per channel, from the training images
            statistics = (x_train.mean(axis=(0, 2, 3)).tolist(), x_train.std(axis=(0, 2, 3)).tolist())
        model = build_model(args.model, x_train.shape[1:], settings, args.seed, statistics)
        print(f"fastnn train: {args.model} on {args.dataset} ({x_train.shape[0]:,} training, "
              f"{x_test.shape[0]:,} test images), {describe(settings)}"
              + (", standardized input" if statistics else "") + f", {numba.get_num_threads()} threads")
        started = time.perf_counter()
        options = dict(epochs=settings["epochs"], batch_size=settings["batch_size"],
                       validation_split=args.validation_split, seed=args.seed, verbose=2 if args.quiet else 1,
                       callbacks=[CosineDecay(warmup=settings["warmup"])] if settings["schedule"] == "cosine" else [])
        if client is None:
            model.fit(x_train, y_train, **options)
        else:
            distributed.fit(model, x_train, y_train, client, **options)
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as error:
        print(f"fastnn train: {error}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - started
    trained = len(model.history_["loss"]) * x_train.shape[0] * (1 - args.validation_split)
    result = model.evaluate(x_test, y_test)
    predictions = model.predict(x_test)
    print(f"test accuracy {result['accuracy'] * 100:.2f}% (loss {result['loss']:.4f})")
    names = CLASS_NAMES.get(args.dataset, [str(c) for c in range(10)])
    print(format_confusion(confusion_matrix(y_test, predictions, len(names)), names))
    print(f"training took {seconds:.1f} s ({trained / sum(model.history_['seconds']):,.0f} images/s), "
          f"peak memory {peak_memory_mb():,.0f} MB")
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot:
        problem = plot_history(model.history_, args.plot)
        print(problem or f"drew the training curves to {args.plot}", file=sys.stderr if problem else sys.stdout)
    return 0
