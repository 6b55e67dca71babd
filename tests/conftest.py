"""Shared test settings: hypothesis profiles sized for a 2-core CI machine, and the needs_jit marker."""

import os

import numba
import pytest
from hypothesis import HealthCheck, settings

# Numba compiles a kernel on its first call, so no per-example deadline; the
# example counts keep the whole suite within CI's budget.
settings.register_profile("default", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# With NUMBA_DISABLE_JIT=1 (CI's coverage run) kernels run as plain Python.
settings.register_profile("nojit", max_examples=3, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FASTNN_HYPOTHESIS_PROFILE", "nojit" if numba.config.DISABLE_JIT else "default"))


def pytest_collection_modifyitems(config, items):
    if not numba.config.DISABLE_JIT:
        return
    skip = pytest.mark.skip(reason="needs compiled kernels, and NUMBA_DISABLE_JIT=1 runs them as plain Python")
    for item in items:
        if "needs_jit" in item.keywords:
            item.add_marker(skip)
