"""The ``fastnn`` command: ``fastnn demo | train | bench | info``.

Each sub-command lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int`` and imports its heavy
dependencies (Numba kernels, torch, matplotlib) inside ``run`` only, so that
``fastnn --help`` stays instant.
"""

import argparse
import importlib
import sys

COMMANDS = {
    "demo": ("fastnn.demos", "run the tutorial chapters' worked examples on compiled kernels"),
    "train": ("fastnn.train_command", "train a ready-made model (MLP, LeNet-5) on an image data set"),
    "bench": ("fastnn.benchmarks", "compare the plain-Python twins, fastnn and PyTorch on fixed workloads"),
    "info": ("fastnn.info", "print versions, CPU and Numba settings"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastnn", description="Classic neural networks as compiled loops.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        _load(module_name).add_arguments(sub)
    return parser


def _load(module_name):
    return importlib.import_module(module_name)


def main(argv=None):
    args = build_parser().parse_args(argv)
    return _load(args.module_name).run(args)


if __name__ == "__main__":
    sys.exit(main())
