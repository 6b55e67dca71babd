"""``fastnn info``: the versions, CPU and Numba settings a benchmark or bug report needs."""

import importlib.metadata
import os
import platform


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), or the platform's description."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


INSTRUCTION_SETS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                    "avx512_bf16", "amx_tile", "asimd", "sve")


def instruction_sets():
    """The vector instruction sets this CPU reports (Linux), from a fixed list of interesting ones."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    return [name for name in INSTRUCTION_SETS if name in flags]
    except OSError:
        pass
    return []


def blas():
    """numpy's BLAS library and version, as numpy reports its build configuration."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        library = config["Build Dependencies"]["blas"]
        return f"{library.get('name')} {library.get('version', '')}".strip()
    except Exception:  # older numpy has no dict mode; the field is informative only
        return None


def collect():
    """A dict of machine, versions and Numba settings (imports numba, compiles nothing)."""
    import numba

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "instruction_sets": instruction_sets(),
        "python": platform.python_version(),
        "fastnn": _version("fastnn"),
        "numpy": _version("numpy"),
        "numba": numba.__version__,
        "llvmlite": _version("llvmlite"),
        "torch": _version("torch"),
        "blas": blas(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "numba_cache_dir": numba.config.CACHE_DIR or "(next to the package, or the user cache if read-only)",
        "numba_disable_jit": bool(numba.config.DISABLE_JIT),
    }


def add_arguments(parser):
    pass


def run(args):
    for key, value in collect().items():
        print(f"{key:>22}: {value if value is not None else 'not installed'}")
    return 0
