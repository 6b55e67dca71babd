"""``fastnn demo``: the tutorial chapters' worked examples, run on compiled kernels.

Each section is a module of this package with a ``TITLE`` and a
``run(say)`` function that prints through ``say``; ``SECTIONS`` fixes their
order.  The demo runs on any machine: it needs no data set and no network.
"""

import importlib
import time

SECTIONS = ["perceptron", "bp", "cnn", "sequence", "training"]


def add_arguments(parser):
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, metavar="SECTION",
        help=f"run only these sections (of: {', '.join(SECTIONS)})",
    )


def run(args):
    started = time.perf_counter()
    for name in args.only or SECTIONS:
        section = importlib.import_module(f"{__name__}.{name}")
        print(f"\n== {section.TITLE} ==")
        section.run(print)
    print(f"\nfastnn demo finished in {time.perf_counter() - started:.1f} s (Numba compile included on a first run)")
    return 0
