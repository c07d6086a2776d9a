"""Shared fixtures of the fastmatch benchmarks.

Run the timing suite with ``PYTHONPATH=src pytest bench -p no:randomly``
(see ``bench/README.md``); CI runs every benchmark once as a plain test with
``pytest bench --benchmark-disable``, on scaled-down workloads.
"""

from __future__ import annotations

import os

# NumPy's OpenBLAS threads spin on the cores between calls; on a 2-core machine
# they would steal the second core from match_many and the churn thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest


@pytest.fixture(scope="session")
def disabled(request: pytest.FixtureRequest) -> bool:
    """Whether benchmarks only run as tests (``--benchmark-disable``): use small workloads."""
    return bool(request.config.getoption("benchmark_disable", False))
