from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fastmatch.kube.server import WebhookServer

from webhook_world import FakeImageCacheApi, Pki, Running


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def serve(pki: Pki) -> Iterator[Callable[..., Running]]:
    """Start a WebhookServer over ``decider`` on a free port (stopped after the test)."""
    running: list[Running] = []

    def start(decider: Any, **kwargs: Any) -> Running:
        kwargs.setdefault("reload_interval", 0.05)
        server = WebhookServer(decider, pki.tls(), host="127.0.0.1", port=0, **kwargs)
        running.append(Running(server))
        return running[-1]

    yield start
    for r in running:
        r.stop()


@pytest.fixture
def fake_api() -> Iterator[FakeImageCacheApi]:
    api = FakeImageCacheApi()
    yield api
    api.stop()
