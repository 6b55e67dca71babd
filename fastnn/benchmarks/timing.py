"""Timing one implementation of one workload, inside the process that runs it."""

import time


def throughputs(step, items_per_step, repeats, min_seconds):
    """Items per second of `step` over `repeats` timed repeats of at least `min_seconds` each.

    `step()` processes `items_per_step` items (samples, sequences, updates).
    One untimed call comes first: it compiles, loads caches and warms memory.
    """
    step()
    results = []
    for _ in range(repeats):
        calls = 0
        started = time.perf_counter()
        while True:
            step()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        results.append(calls * items_per_step / elapsed)
    return results
