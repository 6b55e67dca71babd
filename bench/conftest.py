"""Benchmark suites: fastnn beside its plain-Python twin and PyTorch, one group per workload.

Run ``pytest bench --benchmark-group-by=group``.  Each benchmark sets
``benchmark.group`` to its workload and ``benchmark.extra_info["impl"]`` to
``"python"``, ``"fastnn"`` or ``"torch"`` (PyTorch entries also record
``"threads"``).  At the end a table prints, per workload, fastnn's speed-up
over the twin and over the faster PyTorch thread setting, all measured in
this one run.
"""

import pytest


def _speedups(benchmarks):
    groups = {}
    for bench in benchmarks:
        if bench.stats is None or bench.group is None:
            continue
        impl = bench.extra_info.get("impl", "fastnn")
        best = groups.setdefault(bench.group, {})
        median = bench.stats.median
        best[impl] = min(best.get(impl, float("inf")), median)
    return groups


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    rows = []
    for group, medians in sorted(_speedups(session.benchmarks).items()):
        if "fastnn" not in medians:
            continue
        fast = medians["fastnn"]
        vs_python = f"{medians['python'] / fast:10,.1f}x" if "python" in medians else " " * 11
        vs_torch = f"{medians['torch'] / fast:10,.2f}x" if "torch" in medians else " " * 11
        rows.append(f"{group:<44} {vs_python} {vs_torch}")
    if rows:
        terminalreporter.write_sep("-", "fastnn speed-up in this run (median times)")
        terminalreporter.write_line(f"{'workload':<44} {'vs python':>11} {'vs torch':>11}")
        for row in rows:
            terminalreporter.write_line(row)


@pytest.fixture
def torch_threads():
    """Yield a function that sets PyTorch's thread count for one benchmark and restores it after."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)
