"""An API server restarted as kube-apiserver restarts: objects and revisions kept (etcd), the
watch cache begun afresh at the current revision (``reset_watch_cache``), so that a watch
from before the restart gets 410 unless nothing happened since.

The real ``kubernetes`` client and a ClusterIndex against the fake API server on loopback
(tests/kube/apiserver.py); every wait is bounded and every ClusterIndex stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apiserver import FakeApiServer, served
from kube_world import cache, started_index, wait

from fastmatch.kube import ClusterIndex, SyncOptions

FAST = SyncOptions(dead_stream_seconds=5.0, backoff_initial=0.05, backoff_cap=0.2,
                   connect_timeout=1.0, list_timeout=2.0)






def lists(server: FakeApiServer) -> int:
    return sum(1 for r in server.requests if r.kind == "imagecaches" and r.is_list
               and not r.watch and "continue" not in r.query)


@pytest.fixture
def following() -> Iterator[tuple[FakeApiServer, ClusterIndex]]:
    """A server whose watch cache restarts empty, three caches on it, and a ready
    ClusterIndex (ImageCaches only) following it."""
    server = FakeApiServer(reset_watch_cache=True)
    for started in served(server):
        for ci in started_index(started, FAST):
            yield started, ci
        assert not started.errors, started.errors[:5]


def test_a_restart_with_nothing_missed_resumes_the_watch_without_a_list(
        following: tuple[FakeApiServer, ClusterIndex]) -> None:
    server, ci = following
    server.restart()
    assert server.wait_watchers(1, 5)
    server.create("imagecaches", cache("after"))
    assert wait(lambda: "after" in ci.index)
    assert lists(server) == 1
    assert ci.stats()["relists"] == 0


def test_changes_made_while_the_server_was_down_are_found_by_a_new_list(
        following: tuple[FakeApiServer, ClusterIndex]) -> None:
    server, ci = following
    server.stop()
    server.delete("imagecaches", "c0")  # while down: no watch can tell, the new cache is empty
    server.create("imagecaches", cache("new", "redis:7"))
    server.start()
    assert wait(lambda: "new" in ci.index and "c0" not in ci.index)
    assert {c.id for c in ci.index} == {"c1", "c2", "new"}
    assert lists(server) == 2  # the watch from before got 410: one list, and no more
    assert ci.stats()["relists"] == 1
    server.create("imagecaches", cache("later"))  # and it watches on from the new list
    assert wait(lambda: "later" in ci.index)
    assert lists(server) == 2
