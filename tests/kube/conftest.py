"""The fixture of the cluster tests: a fake API server on loopback (tests/kube/apiserver.py),
started for each test and always stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apiserver import FakeApiServer, served


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    """A started ``FakeApiServer`` with the default options (stopped after the test, which
    fails if the server itself broke while answering)."""
    server = FakeApiServer()
    yield from served(server)
    if server.errors:
        pytest.fail("the fake API server failed: " + "; ".join(server.errors[:5]))
