"""One benchmark process: ``python -m fastnn.benchmarks.child REQUEST_JSON``; prints a JSON result line.

The request names a workload, the implementations to time, the PyTorch
thread counts (each timed in turn, the step rebuilt for each) and the timing
budget.  Running each in a fresh process keeps
one workload's caches, threads and allocations from disturbing another.
"""

import json
import sys
import time


def _time_first_calls(names, quick):
    """Seconds for the first call of each workload's fastnn step (compiling or loading kernels)."""
    from .workloads import WORKLOADS

    started = time.perf_counter()
    for name in names:
        step, _ = WORKLOADS[name].builders["fastnn"](quick)
        step()
    return time.perf_counter() - started


def main(request):
    if request.get("compile"):
        started = time.perf_counter()
        import fastnn.kernels  # noqa: F401  (numba's import is part of start-up)
        seconds = _time_first_calls(request["compile"], request["quick"])
        return {"seconds": time.perf_counter() - started, "first_calls": seconds}

    from .timing import throughputs
    from .workloads import WORKLOADS

    workload = WORKLOADS[request["workload"]]
    results = {}
    for impl in request["impls"]:
        if impl != "torch":
            step, items = workload.builders[impl](request["quick"])
            results[impl] = throughputs(step, items, request["repeats"], request["min_seconds"])
            continue
        import torch

        results["torch"] = {}
        for threads in request["torch_threads"]:
            torch.set_num_threads(threads)
            step, items = workload.builders["torch"](request["quick"])
            results["torch"][str(threads)] = throughputs(step, items, request["repeats"], request["min_seconds"])
    return results


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
