"""``fastnn demo``: the tutorial chapters' worked examples, run on compiled kernels.

Each section is a module of this package with a ``TITLE`` and a
``run(say)`` function that prints through ``say``; ``SECTIONS`` fixes their
order.  The demo runs on any machine: it needs no data set and no network.

The first time a run has to compile a kernel (an empty or stale Numba
cache), a second process starts compiling the later sections
(``prewarm.py``), so that a first run uses two cores.
"""

import contextlib
import importlib
import time

SECTIONS = ["perceptron", "bp", "cnn", "rnn", "lstm", "recursive", "training"]


def add_arguments(parser):
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, metavar="SECTION",
        help=f"run only these sections (of: {', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--one-process", action="store_true",
        help="compile everything in this process, even on a first run",
    )


def run(args):
    from numba.core import event

    from .prewarm import Prewarmer

    names = args.only or SECTIONS
    running = 0
    prewarmer = None

    class StartPrewarmer(event.Listener):
        """Starts the prewarmer at the first kernel this run compiles, not when everything loads from the cache."""

        def on_start(self, _):
            nonlocal prewarmer
            if prewarmer is None and running < len(names) - 1:
                prewarmer = Prewarmer(names, running)

        def on_end(self, _):
            pass

    started = time.perf_counter()
    listener = (contextlib.nullcontext() if args.one_process
                else event.install_listener("numba:compile", StartPrewarmer()))
    try:
        with listener:
            for running, name in enumerate(names):
                if prewarmer is not None:
                    prewarmer.claim(running)
                section = importlib.import_module(f"{__name__}.{name}")
                print(f"\n== {section.TITLE} ==")
                section.run(print)
    finally:
        if prewarmer is not None:
            prewarmer.close()
    print(f"\nfastnn demo finished in {time.perf_counter() - started:.1f} s (Numba compile included on a first run)")
    return 0
