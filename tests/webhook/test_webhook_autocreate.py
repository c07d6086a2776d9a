"""The background creator: once per image set, 409 is done, a failure is tried again, never
blocking the admission that asks."""

from __future__ import annotations

import threading
from typing import Any

from fastmatch.kube.autocreate import AutoCreator, create_with_client


def cache(name: str) -> dict[str, Any]:
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
            "metadata": {"name": name}, "spec": {"images": ["docker.io/library/redis:7"]}}


def test_one_call_per_name_however_many_replicas_ask():
    calls: list[str] = []
    creator = AutoCreator(lambda obj: calls.append(obj["metadata"]["name"]) or True)
    creator.start()
    try:
        queued = [creator.submit(cache("auto-create-for-redis-1")) for _ in range(10)]
        assert queued == [True] + [False] * 9
        assert creator.drain(5)
    finally:
        creator.stop()
    assert calls == ["auto-create-for-redis-1"]
    assert (creator.created, creator.existed, creator.failed) == (1, 0, 0)


def test_a_failed_creation_is_tried_again_by_the_next_pod():
    outcomes = iter([RuntimeError("API server unreachable"), True])

    def create(obj: dict[str, Any]) -> bool:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    creator = AutoCreator(create)
    creator.start()
    try:
        assert creator.submit(cache("c"))
        assert creator.drain(5)
        assert creator.failed == 1
        assert creator.submit(cache("c"))  # forgotten after the failure: asked again
        assert creator.drain(5)
    finally:
        creator.stop()
    assert (creator.created, creator.failed) == (1, 1)


def test_a_full_queue_drops_without_blocking():
    gate = threading.Event()
    creator = AutoCreator(lambda obj: gate.wait(5), max_queue=1)
    creator.start()
    try:
        assert creator.submit(cache("a"))  # taken by the thread, which then waits
        results = [creator.submit(cache(n)) for n in ("b", "c", "d")]
        assert results.count(True) <= 2 and results[-1] is False
    finally:
        gate.set()
        creator.stop()


def test_409_from_the_api_server_means_done(fake_api):
    create = create_with_client(fake_api.api_client())
    assert create(cache("auto-create-for-x")) is True
    assert create(cache("auto-create-for-x")) is False
    assert list(fake_api.objects) == ["auto-create-for-x"]
