"""The sync's conversation with the API server, scripted as client-go's reflector tests are:
each fault, then the list and watch requests it led to and the resourceVersion each asked.

The real ``kubernetes`` client against the fake API server on loopback (tests/kube/
apiserver.py).  Lists ask no resourceVersion (a consistent, paginated read); watches ask the
last version seen.  Every wait is bounded; every ClusterIndex is stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from apiserver import FakeApiServer, Request, served
from kube_world import cache, started_index, wait

from fastmatch.kube import Backoff, ClusterIndex, KubeConfigError, SyncOptions

FAST = SyncOptions(dead_stream_seconds=5.0, backoff_initial=0.05, backoff_cap=0.2,
                   connect_timeout=1.0, list_timeout=2.0)




def asked(server: FakeApiServer) -> list[tuple[str, str | None]]:
    """The ImageCache requests so far: ("list", continue token or None) or ("watch", RV)."""
    out: list[tuple[str, str | None]] = []
    for r in server.requests:
        if r.kind != "imagecaches":
            continue
        if r.watch:
            out.append(("watch", r.resource_version))
        elif r.is_list:
            assert r.resource_version is None, r.query  # lists are consistent reads
            out.append(("list", r.query.get("continue")))
    return out


def watches(server: FakeApiServer) -> list[Request]:
    return [r for r in server.requests if r.kind == "imagecaches" and r.watch]




@pytest.fixture
def started(apiserver: FakeApiServer) -> Iterator[tuple[FakeApiServer, ClusterIndex]]:
    """Three caches on the server, and a started ClusterIndex (ImageCaches only) on it."""
    for ci in started_index(apiserver, FAST):
        yield apiserver, ci


def ids(ci: ClusterIndex) -> set[str]:
    return {c.id for c in ci.index}


def test_first_a_list_then_a_watch_from_its_version_with_bookmarks(started: Any) -> None:
    server, ci = started
    listed_at = str(server.resource_version)
    assert asked(server) == [("list", None), ("watch", listed_at)]
    watch = watches(server)[0]
    assert watch.query["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch.query["timeoutSeconds"]) <= 600
    lst = next(r for r in server.requests if r.is_list)
    assert lst.query["limit"] == "500"
    assert ids(ci) == {"c0", "c1", "c2"}


def test_a_list_is_read_in_pages(apiserver: FakeApiServer) -> None:
    for i in range(5):
        apiserver.create("imagecaches", cache(f"c{i}"))
    with ClusterIndex(apiserver.api_client(), profile=False,
                      options=SyncOptions(page_size=2, backoff_initial=0.05)) as ci:
        assert ci.wait_ready(5)
        assert apiserver.wait_watchers(1)
        kinds = [what for what, _ in asked(apiserver)]
        assert kinds == ["list", "list", "list", "watch"]
        tokens = [token for what, token in asked(apiserver) if what == "list"]
        assert tokens[0] is None and all(tokens[1:])
        assert ids(ci) == {f"c{i}" for i in range(5)}


def test_events_and_a_resumed_watch_ask_the_last_version_seen(apiserver: FakeApiServer) -> None:
    # timeoutSeconds of 1: the server ends each stream cleanly, as it does at 5 to 10 min.
    options = SyncOptions(watch_seconds=(1, 1), backoff_initial=0.05)
    with ClusterIndex(apiserver.api_client(), profile=False, options=options) as ci:
        assert ci.wait_ready(5)
        first = str(apiserver.resource_version)
        apiserver.create("imagecaches", cache("new", "redis:7"))
        apiserver.update("imagecaches", cache("new", "redis:7", phase="Failed"))
        after = str(apiserver.resource_version)
        assert apiserver.wait_for(lambda rs: len([r for r in rs if r.watch]) >= 2, 4)
        assert asked(apiserver)[:3] == [("list", None), ("watch", first), ("watch", after)]
        assert ci.index["new"].phase.value == "Failed"
        assert ci.stats()["relists"] == 0


def test_a_bookmark_advances_the_version_a_watch_resumes_from(started: Any) -> None:
    server, ci = started
    # Another kind's write moves the global revision: only a bookmark tells the sync.
    server.create("namespaces", {"metadata": {"name": "elsewhere"}})
    server.bookmark()
    bookmarked = str(server.resource_version)
    assert wait(lambda: ci.stats()["bookmarks"] >= 1)
    server.drop_watches()
    assert server.wait_for(lambda rs: len([r for r in rs if r.watch]) >= 2)
    assert asked(server)[-1] == ("watch", bookmarked)
    assert ci.stats()["relists"] == 0


@pytest.mark.parametrize("as_event", [True, False], ids=["error-event", "http-410"])
def test_410_after_a_gap_lists_again_and_removes_what_vanished(as_event: bool) -> None:
    server = FakeApiServer(watch_error_as_event=as_event)
    for _ in served(server):
        for i in range(3):
            server.create("imagecaches", cache(f"c{i}"))
        with ClusterIndex(server.api_client(), profile=False, options=FAST) as ci:
            assert ci.wait_ready(5) and server.wait_watchers(1)
            listed = str(server.resource_version)
            server.stop()  # the watch is down: what happens now reaches it only by a list
            server.delete("imagecaches", "c1")
            server.update("imagecaches", cache("c2", phase="Failed"))
            server.create("imagecaches", cache("c3"))
            server.compact()
            server.start()
            assert wait(lambda: ids(ci) == {"c0", "c2", "c3"})
            assert wait(lambda: ci.index["c2"].phase.value == "Failed")
            assert server.wait_watchers(1)
            now = str(server.resource_version)
            assert asked(server) == [("list", None), ("watch", listed), ("watch", listed),
                                     ("list", None), ("watch", now)]
            assert ci.stats()["relists"] == 1


def test_an_error_event_410_mid_watch_lists_again(apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", cache("c0"))
    apiserver.error_event_next_watch(410)
    with ClusterIndex(apiserver.api_client(), profile=False, options=FAST) as ci:
        assert ci.wait_ready(5)
        assert apiserver.wait_for(lambda rs: len([r for r in rs if r.watch]) >= 2)
        rv = str(apiserver.resource_version)
        assert asked(apiserver) == [("list", None), ("watch", rv), ("list", None), ("watch", rv)]
        assert ci.stats()["relists"] == 1


def test_an_expired_continue_token_starts_the_list_again(apiserver: FakeApiServer) -> None:
    for i in range(5):
        apiserver.create("imagecaches", cache(f"c{i}"))
    apiserver.fail_next(410, match=lambda r: "continue" in r.query)
    options = SyncOptions(page_size=2, backoff_initial=0.05)
    with ClusterIndex(apiserver.api_client(), profile=False, options=options) as ci:
        assert ci.wait_ready(5) and apiserver.wait_watchers(1)
        tokens = [token is not None for what, token in asked(apiserver) if what == "list"]
        # page 1, page 2 expired; then the whole list again: pages 1, 2, 3.
        assert tokens == [False, True, False, True, True]
        assert ids(ci) == {f"c{i}" for i in range(5)}


def test_429_waits_its_retry_after_and_watches_again_without_a_list(
        apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", cache("c0"))
    apiserver.fail_next(429, retry_after=1, match=lambda r: r.watch)
    with ClusterIndex(apiserver.api_client(), profile=False, options=FAST) as ci:
        assert ci.wait_ready(5)
        assert apiserver.wait_for(lambda rs: len([r for r in rs if r.watch]) >= 2, 5)
        rv = str(apiserver.resource_version)
        assert asked(apiserver) == [("list", None), ("watch", rv), ("watch", rv)]
        first, second = watches(apiserver)[:2]
        assert second.at - first.at >= 0.95  # Retry-After: 1, more than the backoff's 0.2
        assert ci.stats()["relists"] == 0


def test_server_errors_back_off_and_watch_again_from_the_same_version(
        apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", cache("c0"))
    apiserver.fail_next(500, times=3, match=lambda r: r.watch)
    with ClusterIndex(apiserver.api_client(), profile=False, options=FAST) as ci:
        assert ci.wait_ready(5) and apiserver.wait_watchers(1)
        rv = str(apiserver.resource_version)
        assert asked(apiserver) == [("list", None)] + [("watch", rv)] * 4
        assert ci.stats()["backoffs"] >= 3


def test_a_watch_that_closes_at_once_is_not_asked_again_in_a_tight_loop(
        started: Any) -> None:
    server, ci = started
    rv = asked(server)[-1][1]
    done = threading.Event()

    def dropper() -> None:
        while not done.is_set():
            server.drop_watches()
            time.sleep(0.005)

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    time.sleep(1.5)
    done.set()
    thread.join(5)
    seen = asked(server)
    # Backoff 0.05 s doubling to 0.2 s: about ten watches in 1.5 s, not hundreds.
    assert 3 <= len(seen) <= 40
    assert set(seen[1:]) == {("watch", rv)}
    assert ci.stats()["backoffs"] >= 3


def test_a_silent_stream_is_closed_and_resumed_from_its_version(apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", cache("c0"))
    options = SyncOptions(dead_stream_seconds=0.4, backoff_initial=0.05)
    with ClusterIndex(apiserver.api_client(), profile=False, options=options) as ci:
        assert ci.wait_ready(5) and apiserver.wait_watchers(1)
        rv = str(apiserver.resource_version)
        apiserver.silence_watches()
        apiserver.create("imagecaches", cache("c1"))  # held back by the silent stream
        assert wait(lambda: "c1" in ci.index, 5)
        assert ci.stats()["dead_streams"] >= 1
        assert asked(apiserver)[:3] == [("list", None), ("watch", rv), ("watch", rv)]
        assert ci.stats()["relists"] == 0


def test_a_restart_of_the_api_server_is_followed_from_the_last_version(started: Any) -> None:
    server, ci = started
    server.create("imagecaches", cache("before"))
    assert wait(lambda: "before" in ci.index)
    rv = str(server.resource_version)
    server.restart()
    server.create("imagecaches", cache("after"))
    assert wait(lambda: "after" in ci.index, 5)
    assert [what for what, _ in asked(server)].count("list") == 1
    assert asked(server)[-1] == ("watch", rv)
    assert ci.stats()["relists"] == 0


def test_refused_connections_are_retried_with_backoff_until_the_server_is_back(
        started: Any) -> None:
    server, ci = started
    server.stop()
    time.sleep(0.6)
    assert ci.stats()["backoffs"] >= 2
    server.create("imagecaches", cache("later"))
    server.start()
    assert wait(lambda: "later" in ci.index, 5)
    assert [what for what, _ in asked(server)].count("list") == 1


def test_stop_returns_within_a_second_and_no_request_follows(started: Any) -> None:
    server, ci = started
    began = time.monotonic()
    ci.stop()
    assert time.monotonic() - began < 1.0
    count = len(server.requests)
    # The fake server notices a closed stream when it next writes to it (the real one
    # at once): give it something to write.
    for i in range(3):
        server.create("imagecaches", cache(f"late{i}"))
        time.sleep(0.1)
    assert server.wait_watchers(0, 2)
    time.sleep(0.3)
    assert len(server.requests) == count
    assert "late0" not in ci.index


def test_stop_returns_within_a_second_while_the_server_is_down(apiserver: FakeApiServer) -> None:
    apiserver.stop()
    ci = ClusterIndex(apiserver.api_client(), profile=False,
                      options=SyncOptions(backoff_initial=5.0, backoff_cap=10.0))
    ci.start()
    time.sleep(0.3)
    began = time.monotonic()
    ci.stop()
    assert time.monotonic() - began < 1.0
    assert not ci.ready
    apiserver.start()
    time.sleep(0.3)
    assert apiserver.requests == []


def test_backoff_doubles_with_jitter_to_its_cap_and_resets_after_health() -> None:
    now = [0.0]
    backoff = Backoff(0.8, 30.0, clock=lambda: now[0], rng=lambda: 0.0)
    assert [backoff.next() for _ in range(8)] == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    now[0] += 121
    assert backoff.next() == 0.8
    jittered = Backoff(0.8, 30.0, clock=lambda: now[0], rng=lambda: 0.5)
    assert jittered.next() == pytest.approx(1.2)


@pytest.mark.parametrize("bad", [{"page_size": 0}, {"dead_stream_seconds": 0},
                                 {"watch_seconds": (10, 5)}, {"backoff_cap": -1}])
def test_options_that_cannot_work_are_refused(bad: dict) -> None:
    with pytest.raises(KubeConfigError, match=next(iter(bad))):
        SyncOptions(**bad)


# -- a chunk's lines, decoded at once ------------------------------------------------------


def test_a_chunks_lines_decode_as_each_line_alone() -> None:
    from fastmatch.kube.sync import decode_lines

    lines = [b'{"type": "ADDED", "object": {"a": 1}}', b"", b"  ",
             b'{"type": "DELETED", "object": {"b": [1, 2]}}']
    assert decode_lines(lines) == [{"type": "ADDED", "object": {"a": 1}},
                                   {"type": "DELETED", "object": {"b": [1, 2]}}]
    assert decode_lines([b'{"one": 1}']) == [{"one": 1}]
    assert decode_lines([]) == []


@pytest.mark.parametrize("bad", [
    [b'{"a": 1}', b'{"b": '],  # cut short
    [b'{"a": 1} {"b": 2}', b'{"c": 3}'],  # two values on one line
    [b'1, 2', b'{"c": 3}'],  # would join into a longer array
    [b'{"a": 1}', b'[1', b'2]'],  # one value over two lines
])
def test_a_line_that_is_not_one_event_is_refused(bad: list[bytes]) -> None:
    from fastmatch.kube.sync import decode_lines

    with pytest.raises(ValueError):
        decode_lines(bad)
