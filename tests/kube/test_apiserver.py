"""The fake API server checked against what the official ``kubernetes`` client expects of the
real one: pages and their tokens, watches from a revision, bookmarks, 410s, drops, silence, a
restart, Status bodies. Every stream is bounded (``timeoutSeconds`` and a read timeout)."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
import urllib3
from apiserver import (
    ApiError,
    FakeApiServer,
    RemoteApiServer,
    Request,
    configmap,
    imagecache,
    namespace,
)
from kubernetes.client import ApiException, CoreV1Api, CustomObjectsApi
from kubernetes.watch import Watch

IC = ("eci.alibabacloud.com", "v1", "imagecaches")
BOUND = (2, 3)  # connect and read timeouts of every request: no test waits longer


def customs(server: FakeApiServer | RemoteApiServer) -> CustomObjectsApi:
    return CustomObjectsApi(server.api_client())


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def watch_events(server: FakeApiServer | RemoteApiServer, count: int,
                 **kwargs: Any) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch of ImageCaches (fewer if it ends first)."""
    w = Watch()
    events = []
    kwargs.setdefault("timeout_seconds", 3)
    for event in w.stream(customs(server).list_cluster_custom_object, *IC,
                          _request_timeout=BOUND, **kwargs):
        events.append(event)
        if len(events) == count:
            w.stop()
    return events


@pytest.fixture
def caches(apiserver: FakeApiServer) -> FakeApiServer:
    """The server holding ImageCaches c0..c6, at revisions 1..7."""
    for i in range(7):
        apiserver.create("imagecaches", imagecache(f"c{i}"))
    return apiserver


def test_objects_carry_what_the_api_server_sets(apiserver: FakeApiServer) -> None:
    stored = apiserver.create("imagecaches", imagecache("web", cache_id="imc-1"))
    got = customs(apiserver).get_cluster_custom_object(*IC, "web")
    assert got == stored
    assert got["apiVersion"] == "eci.alibabacloud.com/v1" and got["kind"] == "ImageCache"
    meta = got["metadata"]
    assert meta["resourceVersion"] == "1" and meta["uid"] and meta["creationTimestamp"]
    assert got["status"] == {"phase": "Ready", "imageCacheId": "imc-1"}
    apiserver.delete("imagecaches", "web")
    again = apiserver.create("imagecaches", imagecache("web"))
    assert again["metadata"]["uid"] != meta["uid"]
    assert again["metadata"]["resourceVersion"] == "3"
    assert apiserver.resource_version == 3


def test_pages_are_one_consistent_snapshot(caches: FakeApiServer) -> None:
    api = customs(caches)
    first = api.list_cluster_custom_object(*IC, limit=3)
    assert first["kind"] == "ImageCacheList"
    assert names(first["items"]) == ["c0", "c1", "c2"]
    assert first["metadata"]["resourceVersion"] == "7"
    assert first["metadata"]["remainingItemCount"] == 4
    # Writes between pages do not show: the rest is read at the first page's revision.
    caches.delete("imagecaches", "c4")
    caches.create("imagecaches", imagecache("c3a"))
    second = api.list_cluster_custom_object(*IC, limit=3, _continue=first["metadata"]["continue"])
    assert names(second["items"]) == ["c3", "c4", "c5"]
    third = api.list_cluster_custom_object(*IC, limit=3, _continue=second["metadata"]["continue"])
    assert names(third["items"]) == ["c6"]
    assert "continue" not in third["metadata"] and third["metadata"]["resourceVersion"] == "7"
    assert names(api.list_cluster_custom_object(*IC)["items"]) == \
        ["c0", "c1", "c2", "c3", "c3a", "c5", "c6"]


def test_a_compacted_continue_token_gets_410_expired(caches: FakeApiServer) -> None:
    api = customs(caches)
    first = api.list_cluster_custom_object(*IC, limit=3)
    caches.create("imagecaches", imagecache("c7"))
    caches.compact()
    with pytest.raises(ApiException) as caught:
        api.list_cluster_custom_object(*IC, limit=3, _continue=first["metadata"]["continue"])
    assert caught.value.status == 410
    body = status_of(caught.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Expired", 410)
    # The token of the answer continues, inconsistently, from the latest revision (even
    # after another compaction: it names no revision).
    caches.delete("imagecaches", "c5")
    caches.compact()
    rest = api.list_cluster_custom_object(*IC, _continue=body["metadata"]["continue"])
    assert names(rest["items"]) == ["c3", "c4", "c6", "c7"]
    assert rest["metadata"]["resourceVersion"] == "9"


def test_a_continue_token_older_than_its_ttl_gets_410() -> None:
    with FakeApiServer(page_token_ttl=0.0) as server:
        server.create("imagecaches", imagecache("a"))
        server.create("imagecaches", imagecache("b"))
        api = customs(server)
        first = api.list_cluster_custom_object(*IC, limit=1)
        with pytest.raises(ApiException) as caught:
            api.list_cluster_custom_object(*IC, limit=1, _continue=first["metadata"]["continue"])
        assert caught.value.status == 410 and status_of(caught.value)["reason"] == "Expired"


def test_list_resource_version_semantics(caches: FakeApiServer) -> None:
    api = customs(caches)
    caches.delete("imagecaches", "c0")
    anything = api.list_cluster_custom_object(*IC, resource_version="0", limit=2)
    assert anything["metadata"] == {"resourceVersion": "8"}  # the watch cache has no pages
    assert len(anything["items"]) == 6
    exact = api.list_cluster_custom_object(*IC, resource_version="3",
                                           resource_version_match="Exact")
    assert names(exact["items"]) == ["c0", "c1", "c2"]
    assert exact["metadata"]["resourceVersion"] == "3"
    newer = api.list_cluster_custom_object(*IC, resource_version="3",
                                           resource_version_match="NotOlderThan")
    assert newer["metadata"]["resourceVersion"] == "8" and len(newer["items"]) == 6
    with pytest.raises(ApiException) as too_large:
        api.list_cluster_custom_object(*IC, resource_version="99")
    assert too_large.value.status == 504
    assert status_of(too_large.value)["details"]["causes"][0]["reason"] == \
        "ResourceVersionTooLarge"
    caches.compact()
    with pytest.raises(ApiException) as too_old:
        api.list_cluster_custom_object(*IC, resource_version="3",
                                       resource_version_match="Exact")
    assert too_old.value.status == 410
    with pytest.raises(ApiException) as forbidden:
        api.list_cluster_custom_object(*IC, resource_version_match="Exact")
    assert forbidden.value.status == 422


def test_selectors_on_lists(apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", imagecache("a", labels={"team": "web", "tier": "1"}))
    apiserver.create("imagecaches", imagecache("b", labels={"team": "db"}))
    apiserver.create("imagecaches", imagecache("c"))
    api = customs(apiserver)

    def selected(**kwargs: str) -> list[str]:
        return names(api.list_cluster_custom_object(*IC, **kwargs)["items"])

    assert selected(label_selector="team=web") == ["a"]
    assert selected(label_selector="team!=web") == ["b", "c"]
    assert selected(label_selector="team in (web,db),!tier") == ["b"]
    assert selected(label_selector="team") == ["a", "b"]
    assert selected(field_selector="metadata.name=c") == ["c"]
    assert selected(field_selector="metadata.name!=c") == ["a", "b"]
    with pytest.raises(ApiException) as caught:
        selected(field_selector="spec.images=x")
    assert caught.value.status == 400


def test_core_kinds_through_core_v1_api(apiserver: FakeApiServer) -> None:
    apiserver.create("namespaces", namespace("shop", {"env": "prod"}))
    apiserver.create("namespaces", namespace("kube-system"))
    apiserver.create("configmaps", configmap("eci-profile", "kube-system", {"selectors": "[]"}))
    apiserver.create("configmaps", configmap("other", "kube-system"))
    apiserver.create("configmaps", configmap("eci-profile", "shop"))
    core = CoreV1Api(apiserver.api_client())
    spaces = core.list_namespace()
    assert [n.metadata.name for n in spaces.items] == ["kube-system", "shop"]
    assert spaces.items[1].metadata.labels == {"env": "prod",
                                               "kubernetes.io/metadata.name": "shop"}
    profile = core.list_namespaced_config_map("kube-system",
                                              field_selector="metadata.name=eci-profile")
    assert [(c.metadata.namespace, c.metadata.name) for c in profile.items] == \
        [("kube-system", "eci-profile")]
    assert profile.items[0].data == {"selectors": "[]"}
    everywhere = core.list_config_map_for_all_namespaces(field_selector="metadata.name="
                                                                        "eci-profile")
    assert [c.metadata.namespace for c in everywhere.items] == ["kube-system", "shop"]
    assert core.read_namespaced_config_map("other", "kube-system").metadata.name == "other"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("missing", "kube-system")
    assert caught.value.status == 404 and status_of(caught.value)["reason"] == "NotFound"
    w = Watch()
    seen = []
    for event in w.stream(core.list_namespace, resource_version="0", timeout_seconds=3,
                          _request_timeout=BOUND):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "kube-system"), ("ADDED", "shop")]


def test_watch_from_a_version_gets_exactly_the_later_events_in_order(
        caches: FakeApiServer) -> None:
    caches.update("imagecaches", imagecache("c1", phase="Failed"))  # rv 8
    caches.delete("imagecaches", "c2")  # rv 9
    caches.create("configmaps", configmap("noise"))  # rv 10, another kind
    caches.create("imagecaches", imagecache("c2"))  # rv 11
    events = watch_events(caches, 5, resource_version="6", timeout_seconds=1)

    def brief(event: dict[str, Any]) -> tuple[str, str, str]:
        meta = event["raw_object"]["metadata"]
        return event["type"], meta["name"], meta["resourceVersion"]

    assert [brief(e) for e in events] == [("ADDED", "c6", "7"), ("MODIFIED", "c1", "8"),
                                          ("DELETED", "c2", "9"), ("ADDED", "c2", "11")]
    assert events[1]["raw_object"]["status"]["phase"] == "Failed"


def test_watch_delivers_live_events_and_ends_cleanly_at_its_timeout(
        apiserver: FakeApiServer) -> None:
    writer = threading.Timer(0.2, lambda: apiserver.create("imagecaches", imagecache("late")))
    writer.start()
    events = watch_events(apiserver, 10, resource_version="0", timeout_seconds=1)
    writer.join()
    # The stream ended by itself (no error) after the one event.
    assert [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events] == \
        [("ADDED", "late")]
    assert apiserver.wait_watchers(0, timeout=2)


def test_watch_without_a_version_starts_with_the_current_objects(
        caches: FakeApiServer) -> None:
    events = watch_events(caches, 7)
    assert [e["type"] for e in events] == ["ADDED"] * 7
    assert names([e["raw_object"] for e in events]) == [f"c{i}" for i in range(7)]


def test_a_watch_with_a_selector_sees_objects_enter_and_leave_it(
        apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", imagecache("a", labels={"team": "web"}))  # rv 1
    apiserver.update("imagecaches", imagecache("a", labels={"team": "db"}))  # rv 2
    apiserver.update("imagecaches", imagecache("a", labels={"team": "web"}))  # rv 3
    events = watch_events(apiserver, 1, resource_version="0", label_selector="team=web")
    assert [e["type"] for e in events] == ["ADDED"]
    events = watch_events(apiserver, 2, resource_version="1", label_selector="team=web")
    assert [(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in events] == \
        [("DELETED", "2"), ("ADDED", "3")]


def test_bookmarks_on_demand_only_to_watches_that_allow_them(caches: FakeApiServer) -> None:
    results: dict[str, list[dict[str, Any]]] = {}

    def follow(label: str, allow: bool) -> None:
        results[label] = watch_events(caches, 1, resource_version="7", timeout_seconds=1,
                                      allow_watch_bookmarks=allow)

    threads = [threading.Thread(target=follow, args=(label, allow))
               for label, allow in (("with", True), ("without", False))]
    for t in threads:
        t.start()
    assert caches.wait_watchers(2)
    caches.bookmark()
    for t in threads:
        t.join(timeout=5)
    assert [(e["type"], e["raw_object"]["metadata"]["resourceVersion"])
            for e in results["with"]] == [("BOOKMARK", "7")]
    assert results["with"][0]["raw_object"]["kind"] == "ImageCache"
    assert results["without"] == []


def test_periodic_bookmarks_advance_the_clients_resource_version() -> None:
    with FakeApiServer(bookmark_interval=0.05) as server:
        server.create("imagecaches", imagecache("a"))
        server.create("configmaps", configmap("b"))  # the revision moves on elsewhere
        w = Watch()
        got = []
        for event in w.stream(customs(server).list_cluster_custom_object, *IC,
                              resource_version="1", allow_watch_bookmarks=True,
                              timeout_seconds=2, _request_timeout=BOUND):
            got.append(event["type"])
            if len(got) == 2:
                w.stop()
        assert got == ["BOOKMARK", "BOOKMARK"]
        assert w.resource_version == "2"


@pytest.mark.parametrize("as_event", [True, False], ids=["error-event", "http-410"])
def test_a_watch_from_a_compacted_version_gets_410(as_event: bool) -> None:
    with FakeApiServer(history=3, watch_error_as_event=as_event) as server:
        for i in range(5):
            server.create("imagecaches", imagecache(f"c{i}"))
        # History 3 keeps revisions 3..5: a watch from 2 misses nothing, from 1 it would.
        assert [e["raw_object"]["metadata"]["name"] for e in
                watch_events(server, 3, resource_version="2")] == ["c2", "c3", "c4"]
        with pytest.raises(ApiException) as caught:
            watch_events(server, 1, resource_version="1")
        assert caught.value.status == 410
        if not as_event:
            assert status_of(caught.value)["reason"] == "Expired"
        server.compact(keep=1)
        with pytest.raises(ApiException):
            watch_events(server, 1, resource_version="3")
        assert len(watch_events(server, 1, resource_version="4")) == 1


def test_an_error_event_on_the_next_watch_only(caches: FakeApiServer) -> None:
    caches.error_event_next_watch(410)
    with pytest.raises(ApiException) as caught:
        watch_events(caches, 1, resource_version="7")
    assert caught.value.status == 410
    caches.error_event_next_watch(500)
    w = Watch()
    stream = w.stream(customs(caches).list_cluster_custom_object, *IC, resource_version="6",
                      _request_timeout=BOUND)
    with pytest.raises(ApiException) as internal:
        next(stream)
    assert internal.value.status == 500
    assert [e["type"] for e in watch_events(caches, 1, resource_version="6")] == ["ADDED"]


def test_dropped_watches_end_without_their_final_chunk(caches: FakeApiServer) -> None:
    def drop() -> None:
        assert caches.wait_watchers(1)
        caches.drop_watches()

    threading.Thread(target=drop).start()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        watch_events(caches, 100, resource_version="7")
    assert caches.wait_watchers(0)
    # The server goes on: the next watch resumes from where the client was.
    caches.create("imagecaches", imagecache("c7"))
    assert [e["raw_object"]["metadata"]["name"] for e in
            watch_events(caches, 1, resource_version="7")] == ["c7"]


def test_silenced_watches_send_nothing_but_stay_open(caches: FakeApiServer) -> None:
    def silence_then_write() -> None:
        assert caches.wait_watchers(1)
        caches.silence_watches()
        caches.create("imagecaches", imagecache("unseen"))
        caches.bookmark()

    threading.Thread(target=silence_then_write).start()
    w = Watch()
    got = []
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        # A bookmark a second would come, and the timeout passes: silence wins over both.
        for event in w.stream(customs(caches).list_cluster_custom_object, *IC,
                              resource_version="7", allow_watch_bookmarks=True,
                              timeout_seconds=1, _request_timeout=(2, 1.5)):
            got.append(event)
    assert got == []
    assert caches.watchers == 1  # the server still holds the stream open
    caches.drop_watches()
    assert caches.watchers == 0
    assert [e["raw_object"]["metadata"]["name"] for e in
            watch_events(caches, 1, resource_version="7")] == ["unseen"]


def test_restart_keeps_the_port_the_objects_and_the_revisions(caches: FakeApiServer) -> None:
    url = caches.url
    done: list[BaseException] = []

    def follow() -> None:
        try:
            watch_events(caches, 100, resource_version="7")
        except BaseException as error:  # what the client saw as the server went
            done.append(error)

    follower = threading.Thread(target=follow)
    follower.start()
    assert caches.wait_watchers(1)
    caches.stop()
    follower.join(timeout=5)
    assert [type(e) for e in done] == [urllib3.exceptions.ProtocolError]
    with pytest.raises(urllib3.exceptions.NewConnectionError):  # refused
        CustomObjectsApi(caches.api_client(retries=False)).list_cluster_custom_object(*IC)
    caches.delete("imagecaches", "c0")  # etcd changes while the API server is down
    caches.start()
    assert caches.url == url
    listed = customs(caches).list_cluster_custom_object(*IC)
    assert listed["metadata"]["resourceVersion"] == "8"
    assert names(listed["items"]) == [f"c{i}" for i in range(1, 7)]
    events = watch_events(caches, 1, resource_version="7")
    assert [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events] == \
        [("DELETED", "c0")]
    caches.restart()
    assert caches.url == url and caches.resource_version == 8


def test_a_restarted_watch_cache_begins_at_the_current_revision() -> None:
    with FakeApiServer(reset_watch_cache=True) as server:
        for i in range(3):
            server.create("imagecaches", imagecache(f"c{i}"))
        first = customs(server).list_cluster_custom_object(*IC, limit=2)
        server.stop()
        server.delete("imagecaches", "c0")  # revision 4, while the API server is down
        server.start()
        # The new watch cache starts at revision 4: what came before is a list's to tell.
        with pytest.raises(ApiException) as caught:
            watch_events(server, 1, resource_version="3")
        assert caught.value.status == 410
        server.create("imagecaches", imagecache("c3"))
        assert [e["raw_object"]["metadata"]["name"] for e in
                watch_events(server, 1, resource_version="4")] == ["c3"]
        # A continue token is etcd's: it outlives the restart.
        rest = customs(server).list_cluster_custom_object(*IC, limit=2,
                                                           _continue=first["metadata"]["continue"])
        assert names(rest["items"]) == ["c2"]


def test_fail_next_answers_with_a_status_body_and_retry_after(caches: FakeApiServer) -> None:
    api = CustomObjectsApi(caches.api_client(retries=False))
    caches.fail_next(429, retry_after=1)
    with pytest.raises(ApiException) as caught:
        api.list_cluster_custom_object(*IC)
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "1"
    body = status_of(caught.value)
    assert (body["reason"], body["code"], body["details"]["retryAfterSeconds"]) == \
        ("TooManyRequests", 429, 1)
    assert len(api.list_cluster_custom_object(*IC)["items"]) == 7
    # Only what matches fails, as many times as asked.
    caches.fail_next(500, times=2, match=lambda r: r.watch)
    assert len(api.list_cluster_custom_object(*IC)["items"]) == 7
    for _ in range(2):
        with pytest.raises(ApiException) as internal:
            watch_events(caches, 1, resource_version="7", timeout_seconds=1)
        assert internal.value.status == 500
        assert status_of(internal.value)["reason"] == "InternalError"
    assert watch_events(caches, 1, resource_version="7", timeout_seconds=1) == []


def test_the_default_client_retries_a_429_after_its_retry_after(
        caches: FakeApiServer) -> None:
    caches.fail_next(429, retry_after=1)
    assert len(customs(caches).list_cluster_custom_object(*IC)["items"]) == 7
    assert [r.query for r in caches.requests] == [{}, {}]


def test_create_update_patch_delete_over_http(apiserver: FakeApiServer) -> None:
    api = customs(apiserver)
    body = imagecache("auto-create-for-web", ["nginx:1.25"], labels={"app": "x"})
    created = api.create_cluster_custom_object(*IC, body)
    assert "status" not in created  # the status subresource owns it
    assert created["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as duplicate:
        api.create_cluster_custom_object(*IC, body)
    assert duplicate.value.status == 409
    assert status_of(duplicate.value)["reason"] == "AlreadyExists"
    assert apiserver.resource_version == 1  # the refused create wrote nothing

    patched = api.patch_cluster_custom_object(*IC, "auto-create-for-web",
                                              {"spec": {"images": ["nginx:1.26"]}})
    assert patched["spec"]["images"] == ["nginx:1.26"]
    assert patched["metadata"]["generation"] == 2
    status = api.patch_cluster_custom_object_status(*IC, "auto-create-for-web",
                                                    {"status": {"phase": "Ready"}})
    assert status["status"] == {"phase": "Ready"} and status["metadata"]["generation"] == 2
    stale = dict(created, spec={"images": ["redis:7"]})
    with pytest.raises(ApiException) as conflict:
        api.replace_cluster_custom_object(*IC, "auto-create-for-web", stale)
    assert conflict.value.status == 409 and status_of(conflict.value)["reason"] == "Conflict"
    fresh = dict(status, spec={"images": ["redis:7"]}, status={"phase": "Failed"})
    replaced = api.replace_cluster_custom_object(*IC, "auto-create-for-web", fresh)
    assert replaced["spec"] == {"images": ["redis:7"]}
    assert replaced["status"] == {"phase": "Ready"}  # a main-resource PUT keeps the status
    api.delete_cluster_custom_object(*IC, "auto-create-for-web")
    assert apiserver.objects("imagecaches") == []
    with pytest.raises(ApiException) as gone:
        api.delete_cluster_custom_object(*IC, "auto-create-for-web")
    assert gone.value.status == 404
    events = watch_events(apiserver, 4, resource_version="1")
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


def test_the_request_log_and_wait_for(caches: FakeApiServer) -> None:
    api = customs(caches)
    api.list_cluster_custom_object(*IC, limit=5)
    watch_events(caches, 1, resource_version="7", allow_watch_bookmarks=True,
                 timeout_seconds=1)
    first, second = caches.requests
    assert first == Request("GET", "/apis/eci.alibabacloud.com/v1/imagecaches",
                            {"limit": "5"}, "imagecaches", False)
    assert first.is_list and not second.is_list
    assert second.watch and second.resource_version == "7"
    assert second.query["allowWatchBookmarks"] == "true"
    assert caches.wait_for(lambda rs: len(rs) == 2, timeout=0.1)
    assert not caches.wait_for(lambda rs: len(rs) == 3, timeout=0.1)
    threading.Timer(0.1, lambda: api.list_cluster_custom_object(*IC)).start()
    assert caches.wait_for(lambda rs: len(rs) == 3, timeout=3)


def test_stop_returns_promptly_and_closes_every_stream() -> None:
    server = FakeApiServer()
    server.start()
    ended: list[type[Exception]] = []

    def follow() -> None:
        try:
            watch_events(server, 100, resource_version="0")
        except Exception as error:  # what the client saw as the server went
            ended.append(type(error))

    threads = [threading.Thread(target=follow) for _ in range(3)]
    for t in threads:
        t.start()
    assert server.wait_watchers(3)
    server.stop()
    for t in threads:
        t.join(timeout=3)
    assert not any(t.is_alive() for t in threads)
    assert server.watchers == 0
    assert ended == [urllib3.exceptions.ProtocolError] * 3


def test_a_watch_whose_client_hangs_up_is_closed(caches: FakeApiServer) -> None:
    # The sync cuts a silent stream itself: the server must not count it as open after.
    w = Watch()
    stream = w.stream(customs(caches).list_cluster_custom_object, *IC, resource_version="0",
                      timeout_seconds=30, _request_timeout=BOUND)
    next(stream)
    assert caches.watchers == 1
    caches.silence_watches()
    stream.close()  # the client closes its response and the connection
    assert caches.wait_watchers(0, timeout=2)


def test_a_watcher_too_slow_to_read_is_cut() -> None:
    with FakeApiServer(watch_buffer=5) as server:
        w = Watch()
        stream = w.stream(customs(server).list_cluster_custom_object, *IC,
                          resource_version="0", timeout_seconds=30, _request_timeout=BOUND)
        server.create("imagecaches", imagecache("first"))
        assert next(stream)["raw_object"]["metadata"]["name"] == "first"
        server.silence_watches()  # nothing is written: the events pile up unread
        for i in range(6):
            server.create("imagecaches", imagecache(f"c{i}"))
        with pytest.raises(urllib3.exceptions.ProtocolError):
            list(stream)
        assert server.wait_watchers(0)


def test_streaming_list_ends_its_initial_events_with_a_bookmark(
        apiserver: FakeApiServer) -> None:
    for name in ("a", "b"):
        apiserver.create("namespaces", namespace(name))
    apiserver.create("configmaps", configmap("later"))  # rv 3, another kind
    core = CoreV1Api(apiserver.api_client())
    w = Watch()
    events = []
    for event in w.stream(core.list_namespace, send_initial_events=True,
                          allow_watch_bookmarks=True, resource_version_match="NotOlderThan",
                          timeout_seconds=2, _request_timeout=BOUND):
        events.append(event)
        if len(events) == 3:
            w.stop()
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    end = events[-1]["raw_object"]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert end["resourceVersion"] == "3"
    with pytest.raises(ApiException) as caught:  # the API server's validation
        next(Watch().stream(core.list_namespace, send_initial_events=True,
                            timeout_seconds=1, _request_timeout=BOUND))
    assert caught.value.status == 422


def test_bad_requests_get_the_api_servers_status(apiserver: FakeApiServer) -> None:
    api = customs(apiserver)
    with pytest.raises(ApiException) as selector:
        api.list_cluster_custom_object(*IC, label_selector="a in b")
    assert selector.value.status == 400 and status_of(selector.value)["reason"] == "BadRequest"
    with pytest.raises(ApiException) as token:
        api.list_cluster_custom_object(*IC, _continue="not-a-token")
    assert token.value.status == 400
    with pytest.raises(ApiException) as name:
        api.create_cluster_custom_object(*IC, imagecache("Not_A_Name"))
    assert name.value.status == 422 and status_of(name.value)["reason"] == "Invalid"
    with pytest.raises(ApiException) as path:
        api.list_cluster_custom_object("eci.alibabacloud.com", "v1", "pods")
    assert path.value.status == 404
    assert apiserver.resource_version == 0 and apiserver.errors == []


def test_the_log_keeps_what_was_sent_and_core_deletes_answer_a_status(
        apiserver: FakeApiServer) -> None:
    core = CoreV1Api(apiserver.api_client())
    apiserver.create("configmaps", configmap("eci-profile", "kube-system"))
    patched = core.patch_namespaced_config_map("eci-profile", "kube-system",
                                               [{"op": "add", "path": "/data/selectors",
                                                 "value": "[]"}])
    assert patched.data == {"selectors": "[]"}
    assert apiserver.requests[-1].body == [{"op": "add", "path": "/data/selectors",
                                            "value": "[]"}]
    deleted = core.delete_namespaced_config_map("eci-profile", "kube-system")
    assert (deleted["kind"], deleted["status"]) == ("Status", "Success")
    assert deleted["details"]["name"] == "eci-profile"
    assert apiserver.objects("configmaps") == []


def test_python_side_writes(apiserver: FakeApiServer) -> None:
    old = imagecache("old", phase="Creating")
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    assert apiserver.create("imagecaches", old)["metadata"]["creationTimestamp"] == \
        "2026-01-01T00:00:00Z"
    apiserver.create("configmaps", configmap("p"))  # in "default"
    patched = apiserver.patch("imagecaches", "old", {"status": {"phase": "Ready"}})
    assert patched["status"] == {"phase": "Ready"} and patched["metadata"]["resourceVersion"] \
        == "3"
    assert apiserver.get("configmaps", "p")["metadata"]["namespace"] == "default"
    apiserver.delete("configmaps", "p")
    assert apiserver.get("configmaps", "p") is None
    with pytest.raises(KeyError):
        apiserver.update("imagecaches", imagecache("missing"))
    with pytest.raises(ApiError):
        apiserver.create("imagecaches", imagecache("old"))
    # What the caller holds is its own: changing it changes nothing stored.
    patched["spec"]["images"].append("redis:7")
    assert apiserver.objects("imagecaches")[0]["spec"]["images"] == ["nginx:1.25"]


def test_a_batch_of_writes_reaches_watchers_at_its_end(caches: FakeApiServer) -> None:
    got: list[str] = []

    def follow() -> None:
        for event in watch_events(caches, 3, resource_version="7"):
            got.append(event["raw_object"]["metadata"]["resourceVersion"])

    follower = threading.Thread(target=follow)
    follower.start()
    assert caches.wait_watchers(1)
    with caches.batch():
        for i in range(3):
            caches.update("imagecaches", imagecache(f"c{i}", phase="Failed"))
        assert caches.resource_version == 10  # written: the store is ahead of the stream
    follower.join(timeout=5)
    assert got == ["8", "9", "10"]


def test_watchers_during_churn_each_get_every_event_once_in_order() -> None:
    with FakeApiServer(history=10_000) as server:
        rng = random.Random(7)
        live: set[str] = set()
        expected: list[tuple[str, str, str]] = []  # (type, name, resourceVersion)

        def write() -> None:
            name = f"c{rng.randrange(30)}"
            if name not in live:
                done, kind = server.create("imagecaches", imagecache(name)), "ADDED"
                live.add(name)
            elif rng.random() < 0.3:
                done, kind = server.delete("imagecaches", name), "DELETED"
                live.discard(name)
            else:
                done = server.update("imagecaches", imagecache(name, phase=rng.choice(
                    ["Ready", "Failed", "Updating"])))
                kind = "MODIFIED"
            expected.append((kind, name, done["metadata"]["resourceVersion"]))
            if rng.random() < 0.1:
                server.create("configmaps", configmap(f"m{len(expected)}"))  # other kinds

        for _ in range(200):
            write()
        start = expected[-1][2]
        seen: dict[int, list[tuple[str, str, str]]] = {}

        def follow(n: int) -> None:
            seen[n] = [(e["type"], e["raw_object"]["metadata"]["name"],
                        e["raw_object"]["metadata"]["resourceVersion"])
                       for e in watch_events(server, 1000, resource_version=start,
                                             timeout_seconds=5)]

        followers = [threading.Thread(target=follow, args=(n,)) for n in range(3)]
        for t in followers:
            t.start()
        assert server.wait_watchers(3)
        for _ in range(1000):
            write()
        for t in followers:
            t.join(timeout=10)
        # Each saw the 1000 writes (and nothing of the other kind) in order, none twice.
        assert [seen.get(n) for n in range(3)] == [expected[200:]] * 3


def test_discovery_serves_the_dynamic_client(apiserver: FakeApiServer, tmp_path: Any) -> None:
    from kubernetes.dynamic import DynamicClient

    apiserver.create("imagecaches", imagecache("a"))
    apiserver.create("configmaps", configmap("b", "kube-system"))
    dynamic = DynamicClient(apiserver.api_client(), cache_file=str(tmp_path / "discovery"))
    caches = dynamic.resources.get(api_version="eci.alibabacloud.com/v1", kind="ImageCache")
    assert [item.metadata.name for item in caches.get().items] == ["a"]
    maps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    assert [item.metadata.name for item in maps.get(namespace="kube-system").items] == ["b"]


def test_a_watch_of_one_object_by_its_path(caches: FakeApiServer) -> None:
    caches.update("imagecaches", imagecache("c3", phase="Failed"))  # rv 8
    caches.update("imagecaches", imagecache("c4", phase="Failed"))  # rv 9
    http = urllib3.PoolManager()
    answer = http.request("GET", f"{caches.url}/apis/eci.alibabacloud.com/v1/imagecaches/c3"
                                 "?watch=true&resourceVersion=7&timeoutSeconds=1",
                          timeout=urllib3.Timeout(connect=2, read=3))
    events = [json.loads(line) for line in answer.data.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == \
        [("MODIFIED", "8")]
    assert answer.headers["Transfer-Encoding"] == "chunked"
    put = http.request("PUT", f"{caches.url}/apis/eci.alibabacloud.com/v1/imagecaches/c3",
                       body=b"spec: {}", headers={"Content-Type": "text/plain"})
    assert put.status == 415


def test_churn_is_random_writes_of_imagecaches_repeatable_by_seed() -> None:
    with FakeApiServer() as one, FakeApiServer() as two:
        assert one.churn(400, names=20, images=5, seed=3, stamp=True) == 400
        two.churn(400, names=20, images=5, seed=3)
        state = one.objects("imagecaches")
        assert 0 < len(state) <= 20

        def spec(objects: list[dict[str, Any]]) -> list[Any]:
            return [(o["metadata"]["name"], o["spec"], o["status"]) for o in objects]

        assert spec(state) == spec(two.objects("imagecaches"))
        assert all(len(o["spec"]["images"]) == 5 for o in state)
        assert all(o["status"]["imageCacheId"] == "imc-" + o["metadata"]["name"]
                   for o in state)
        assert all("fastmatch.io/written-at" in o["metadata"]["annotations"] for o in state)
        later = watch_events(one, 250, resource_version="150")
        assert [e["raw_object"]["metadata"]["resourceVersion"] for e in later] == \
            [str(rv) for rv in range(151, 401)]
        assert {e["type"] for e in later} == {"ADDED", "MODIFIED", "DELETED"}


def test_a_remote_api_server_serves_the_client_from_its_own_process() -> None:
    with RemoteApiServer(history=50) as remote:
        assert remote.churn(300, names=30, seed=1) == 300
        listed = customs(remote).list_cluster_custom_object(*IC)
        assert listed["items"] == remote.objects("imagecaches")
        assert listed["metadata"]["resourceVersion"] == "300" == str(remote.resource_version)
        with pytest.raises(ApiException) as caught:  # history 50: revision 200 is gone
            watch_events(remote, 1, resource_version="200")
        assert caught.value.status == 410
        remote.call("create", "configmaps", configmap("p"))
        assert [c["metadata"]["name"] for c in remote.objects("configmaps")] == ["p"]
        with pytest.raises(RuntimeError):
            remote.call("requests")
    assert remote._proc.poll() is not None  # the child is gone


def test_the_next_watches_can_end_at_once_and_empty(caches: FakeApiServer) -> None:
    caches.end_next_watches(2)
    for _ in range(2):
        assert watch_events(caches, 1, resource_version="6", timeout_seconds=30) == []
    assert len(watch_events(caches, 1, resource_version="6", timeout_seconds=30)) == 1
    assert [r.watch for r in caches.requests] == [True, True, True]
