"""``ClusterIndex`` (SPEC §10): what the index holds as the cluster changes, through faults.

The stores' rules first (no server: per-object newer-only apply, uid change, replace), then
the whole sync against the fake API server: ids and phases, the eci-profile followed, layers
from a catalog and from a resolver in the background, a warm start, matches from threads
during churn, and a randomized run with compactions and dropped streams at random points
that must end, and pass each checkpoint, equal to the server's state.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import FakeApiServer, served
from kube_world import cache, wait

import fastmatch as fm
from fastmatch.errors import FastmatchError
from fastmatch.inputs import cache_from_object
from fastmatch.kube import ClusterIndex, KubeConfigError, SyncOptions, apply_batch
from fastmatch.kube.stats import SyncStats
from fastmatch.kube.store import CacheStore, NamespaceStore, ProfileStore, newer

FAST = SyncOptions(dead_stream_seconds=5.0, backoff_initial=0.05, backoff_cap=0.2,
                   connect_timeout=1.0, list_timeout=5.0)
NOW = "2026-12-01T00:00:00Z"




def pod(*images: str, namespace: str = "default", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": namespace, "labels": labels or {},
                            "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": f"c{i}", "image": image}
                                    for i, image in enumerate(images)]}}




def state_of(caches: Any) -> dict[str, tuple[str, tuple[str, ...], int]]:
    """id -> (phase, image references, layers known): what must agree with the server."""
    return {c.id: (c.phase.value, tuple(i.ref for i in c.images),
                   sum(i.layers_known for i in c.images)) for c in caches}


def server_state(server: FakeApiServer) -> dict[str, tuple[str, tuple[str, ...], int]]:
    return state_of(cache_from_object(obj) for obj in server.objects("imagecaches"))


@pytest.fixture
def following(apiserver: FakeApiServer) -> Iterator[tuple[FakeApiServer, ClusterIndex]]:
    ci = ClusterIndex(apiserver.api_client(), profile=False, options=FAST)
    ci.start()
    try:
        assert ci.wait_ready(5)
        yield apiserver, ci
    finally:
        ci.stop()


# -- the stores' rules ------------------------------------------------------------------------


def store() -> tuple[CacheStore, fm.CacheIndex, SyncStats]:
    index, stats = fm.CacheIndex(), SyncStats()
    return CacheStore(index, stats=stats), index, stats


def test_resource_versions_compare_as_numbers() -> None:
    assert newer("10", "9") and not newer("9", "10") and not newer("7", "7")
    assert newer("b", "a") and newer("a", "b")  # not numbers: only told apart


def test_an_event_not_newer_than_the_held_version_is_skipped() -> None:
    caches, index, stats = store()
    caches.apply([("ADDED", cache("a", "nginx:1", uid="u1", rv="5"))])
    caches.apply([("MODIFIED", cache("a", "nginx:1", phase="Failed", uid="u1", rv="5")),
                  ("MODIFIED", cache("a", "nginx:1", phase="Failed", uid="u1", rv="4")),
                  ("DELETED", cache("a", "nginx:1", uid="u1", rv="3"))])
    assert index["a"].phase.value == "Ready"
    assert stats.snapshot()["events_skipped"] == 3
    caches.apply([("MODIFIED", cache("a", "nginx:1", phase="Failed", uid="u1", rv="6"))])
    assert index["a"].phase.value == "Failed"


def test_a_new_uid_under_a_known_name_replaces_the_cache_whatever_its_id() -> None:
    caches, index, _ = store()
    caches.apply([("ADDED", cache("a", "nginx:1", cache_id="imc-old", uid="u1", rv="5"))])
    # Deleted and created again while the watch was away: one change, another object.
    caches.apply([("MODIFIED", cache("a", "redis:7", phase="Creating", uid="u2", rv="9"))])
    assert state_of(index) == {"a": ("Creating", ("docker.io/library/redis:7",), 0)}


def test_an_id_given_by_eci_moves_the_cache_from_its_name_to_its_id() -> None:
    caches, index, _ = store()
    caches.apply([("ADDED", cache("a", "nginx:1", phase="Creating", uid="u1", rv="2"))])
    caches.apply([("MODIFIED", cache("a", "nginx:1", cache_id="imc-1", uid="u1", rv="3"))])
    assert [c.id for c in index] == ["imc-1"]
    caches.apply([("DELETED", cache("a", "nginx:1", cache_id="imc-1", uid="u1", rv="4"))])
    assert len(index) == 0 and len(caches) == 0


def test_a_change_the_index_cannot_see_is_not_written_again() -> None:
    caches, index, stats = store()
    building = cache("a", "nginx:1", phase="Creating", uid="u1", rv="2")
    caches.apply([("ADDED", building)])
    held = index["a"]
    building = cache("a", "nginx:1", phase="Creating", uid="u1", rv="3")
    building["status"]["progress"] = "40%"
    assert caches.apply([("MODIFIED", building)]) == 1
    assert index["a"] is held
    assert stats.snapshot()["events_applied"] == 2


def test_an_unreadable_object_is_kept_out_of_the_index_and_counted() -> None:
    caches, index, stats = store()
    caches.apply([("ADDED", cache("a", "nginx:1", uid="u1", rv="2"))])
    bad = cache("a", uid="u1", rv="3")
    bad["spec"]["images"] = []
    caches.apply([("MODIFIED", bad)])
    assert "a" not in index
    assert stats.snapshot()["bad_objects"] == 1
    assert "ImageCache a" in stats.problems()[-1] and "spec.images" in stats.problems()[-1]
    caches.apply([("MODIFIED", cache("a", "nginx:2", uid="u1", rv="4"))])
    assert "a" in index


def test_replace_removes_what_vanished_and_leaves_the_unchanged_untouched() -> None:
    caches, index, _ = store()
    caches.apply([("ADDED", cache(n, f"{n}:1", uid=n, rv=str(i + 1)))
                  for i, n in enumerate("abc")])
    kept = index["a"]
    caches.replace([cache("a", "a:1", uid="a", rv="1"),
                    cache("c", "c:1", phase="Failed", uid="c", rv="7"),
                    cache("d", "d:1", uid="d", rv="8")])
    assert sorted(c.id for c in index) == ["a", "c", "d"]
    assert index["a"] is kept
    assert index["c"].phase.value == "Failed"


def test_a_list_started_again_drops_the_pages_read_before_and_waits_for_its_end() -> None:
    caches, index, _ = store()
    caches.page([cache("a", uid="a", rv="1"), cache("b", uid="b", rv="2")], first=True)
    assert len(index) == 0  # nothing is written before the list is whole
    caches.page([cache("c", uid="c", rv="5")], first=True)  # a 410 mid-list: from the start
    caches.page([cache("d", uid="d", rv="5")], first=False)
    caches.commit()
    assert sorted(c.id for c in index) == ["c", "d"]


def test_replace_over_a_warm_index_removes_caches_the_cluster_no_longer_holds() -> None:
    index, stats = fm.CacheIndex([fm.ImageCache("gone", ["nginx:1"]),
                                  fm.ImageCache("a", ["nginx:1"])]), SyncStats()
    CacheStore(index, stats=stats).replace([cache("a", "redis:7", uid="a", rv="3")])
    assert state_of(index) == {"a": ("Ready", ("docker.io/library/redis:7",), 0)}


def test_apply_batch_removes_then_upserts() -> None:
    index = fm.CacheIndex([fm.ImageCache("a", ["nginx:1"])])
    apply_batch(index, upserts=[fm.ImageCache("b", ["nginx:1"])], removes=["a", "missing"])
    assert [c.id for c in index] == ["b"]


PROFILE_SELECTORS = [{"name": "shop", "namespaceSelector": {"matchLabels": {"team": "shop"}},
                      "effect": {"annotations": {"k8s.aliyun.com/imc-perfect-match": "true"}}}]


def configmap(selectors: Any, rv: str = "1") -> dict[str, Any]:
    text = selectors if isinstance(selectors, str) else json.dumps(selectors)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "eci-profile", "namespace": "kube-system",
                         "resourceVersion": rv},
            "data": {"selectors": text}}


def test_a_malformed_profile_keeps_the_last_good_one_and_is_counted() -> None:
    stats = SyncStats()
    profiles = ProfileStore(stats)
    profiles.replace([configmap(PROFILE_SELECTORS)])
    assert [s.name for s in profiles.profile.selectors] == ["shop"]
    profiles.apply([("MODIFIED", configmap("[{not json", rv="2"))])
    assert [s.name for s in profiles.profile.selectors] == ["shop"]
    assert stats.snapshot()["profile_errors"] == 1
    assert "last good one kept" in stats.problems()[-1]
    profiles.apply([("DELETED", configmap(PROFILE_SELECTORS, rv="3"))])
    assert profiles.profile.selectors == ()


def test_namespaces_carry_their_name_label() -> None:
    spaces = NamespaceStore()
    spaces.replace([{"metadata": {"name": "shop", "labels": {"team": "shop"}}}])
    assert spaces.get("shop") == {"kubernetes.io/metadata.name": "shop", "team": "shop"}
    spaces.apply([("DELETED", {"metadata": {"name": "shop"}})])
    assert spaces.get("shop") == {"kubernetes.io/metadata.name": "shop"}


# -- the whole sync ---------------------------------------------------------------------------


def test_the_index_holds_every_cache_whatever_its_phase_by_id_else_name(following: Any) -> None:
    server, ci = following
    server.create("imagecaches", cache("web", "nginx:1.25", cache_id="imc-web"))
    server.create("imagecaches", cache("new", "redis:7", phase="Creating"))
    server.create("imagecaches", cache("bad", "busybox:1", phase="Failed"))
    assert wait(lambda: len(ci.index) == 3)
    assert state_of(ci.index) == server_state(server)
    assert sorted(ci.index.get(i).id for i in ("imc-web", "new", "bad")) == \
        ["bad", "imc-web", "new"]
    assert ci.match_pod(pod("nginx:1.25"), now=NOW).cache_id == "imc-web"
    server.update("imagecaches", cache("new", "redis:7", cache_id="imc-new"))
    server.delete("imagecaches", "web")
    assert wait(lambda: state_of(ci.index) == server_state(server))
    assert ci.match_pod(pod("redis:7"), now=NOW).cache_id == "imc-new"
    stats = ci.stats()
    for key in ("events_applied", "relists", "lag_seconds", "queue_depth", "caches",
                "resolve_failures"):
        assert isinstance(stats[key], (int, float)), key
    assert stats["caches"] == 2 and stats["events_applied"] == 5 and stats["queue_depth"] == 0


def test_match_pod_applies_the_followed_profile_with_the_namespace_labels(
        apiserver: FakeApiServer) -> None:
    apiserver.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "shop"}}})
    apiserver.create("imagecaches", cache("half", "nginx:1.25"))
    apiserver.create("configmaps", configmap(PROFILE_SELECTORS))
    with ClusterIndex(apiserver.api_client(), options=FAST) as ci:
        assert ci.wait_ready(5)
        kinds = {r.kind for r in apiserver.requests}
        assert kinds == {"imagecaches", "configmaps", "namespaces"}
        # In shop the profile asks a perfect match: the cache lacks redis, so none.
        assert ci.match_pod(pod("nginx:1.25", "redis:7", namespace="shop"),
                            now=NOW).cache_id is None
        assert ci.match_pod(pod("nginx:1.25", "redis:7"), now=NOW).cache_id == "half"
        # Labels given by the caller stand in for the followed ones.
        assert ci.match_pod(pod("nginx:1.25", "redis:7"), namespace_labels={"team": "shop"},
                            now=NOW).cache_id is None
        bad = configmap("[{not json")
        apiserver.update("configmaps", bad)
        assert wait(lambda: ci.stats()["profile_errors"] == 1)
        assert ci.match_pod(pod("nginx:1.25", "redis:7", namespace="shop"),
                            now=NOW).cache_id is None
        apiserver.delete("configmaps", "eci-profile", "kube-system")
        assert wait(lambda: ci.stats()["selectors"] == 0)
        assert ci.match_pod(pod("nginx:1.25", "redis:7", namespace="shop"),
                            now=NOW).cache_id == "half"


def test_without_profile_nothing_reads_configmaps_or_namespaces(following: Any) -> None:
    server, _ = following
    assert {r.kind for r in server.requests} == {"imagecaches"}


def test_a_bad_pod_is_refused_naming_the_field(following: Any) -> None:
    _, ci = following
    with pytest.raises(fm.InputFileError, match="image"):
        ci.match_pod(pod("Nginx"))


def test_layers_come_from_the_catalog_as_objects_arrive(apiserver: FakeApiServer) -> None:
    layer = fm.Layer("sha256:" + "1" * 64, 10_000_000)
    catalog = fm.Catalog([fm.Image("nginx:1.25", [layer])])
    apiserver.create("imagecaches", cache("web", "nginx:1.25", "redis:7"))
    with ClusterIndex(apiserver.api_client(), catalog=catalog, profile=False,
                      options=FAST) as ci:
        assert ci.wait_ready(5)
        assert state_of(ci.index)["web"][2] == 1  # nginx by layers, redis by reference
        result = ci.match_pod(pod("nginx:1.25"), now=NOW)
        assert result.cache_id == "web" and result.covered == 10_000_000


class FlakyRegistry:
    """A resolver that cannot tell the first ``fails`` times it is asked, then answers."""

    def __init__(self, fails: int) -> None:
        self.fails = fails
        self.asked: list[str] = []
        self.layer = fm.Layer("sha256:" + "2" * 64, 5_000_000)

    def get(self, ref: str, *, platform: str | None = None) -> fm.Image | None:
        self.asked.append(ref)
        if len(self.asked) <= self.fails:
            raise FastmatchError(f"registry unreachable for {ref}")
        return fm.Image(ref, [self.layer]) if "redis" in ref else None


def test_a_resolver_upgrades_caches_in_the_background_retrying_failures(
        apiserver: FakeApiServer) -> None:
    apiserver.create("imagecaches", cache("kv", "redis:7"))
    registry = FlakyRegistry(fails=2)
    options = SyncOptions(backoff_initial=0.05, resolve_retry_initial=0.05)
    with ClusterIndex(apiserver.api_client(), resolver=registry, profile=False,
                      options=options) as ci:
        assert ci.wait_ready(5)
        assert wait(lambda: state_of(ci.index)["kv"][2] == 1, 5)
        stats = ci.stats()
        assert stats["resolve_failures"] == 2 and stats["resolved"] == 1
        assert "registry unreachable" in " ".join(ci.problems())
        assert ci.match_pod(pod("redis:7"), now=NOW).covered == 5_000_000
        # An image the registry does not know is asked once, and stays by reference.
        apiserver.create("imagecaches", cache("other", "busybox:1"))
        assert wait(lambda: "other" in ci.index)
        assert wait(lambda: ci.stats()["resolve_pending"] == 0)
        assert registry.asked.count("docker.io/library/busybox:1") == 1


def test_a_warm_start_serves_its_snapshot_until_the_first_list_replaces_it(
        apiserver: FakeApiServer, tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    fm.CacheIndex([fm.ImageCache("gone", ["nginx:1.25"]),
                   fm.ImageCache("kept", ["redis:7"])]).save(path)
    apiserver.create("imagecaches", cache("kept", "redis:7"))
    apiserver.fail_next(503, times=3, match=lambda r: r.is_list)
    ci = ClusterIndex(apiserver.api_client(), profile=False, options=FAST, snapshot=path)
    assert ci.match_pod(pod("nginx:1.25"), now=NOW).cache_id == "gone"  # before start
    with ci:
        assert not ci.ready
        assert ci.wait_ready(5)
        assert sorted(c.id for c in ci.index) == ["kept"]


def test_a_small_queue_slows_the_readers_and_loses_nothing(apiserver: FakeApiServer) -> None:
    with ClusterIndex(apiserver.api_client(), profile=False, options=FAST, queue_size=1,
                      batch_size=1) as ci:
        assert ci.wait_ready(5)
        for i in range(300):
            apiserver.create("imagecaches", cache(f"c{i}", f"app{i % 7}:1"))
        for i in range(0, 300, 3):
            apiserver.delete("imagecaches", f"c{i}")
        assert wait(lambda: state_of(ci.index) == server_state(apiserver), 10)


def test_without_a_client_nor_any_config_the_error_says_so(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="no way to reach the API server"):
        ClusterIndex()


def test_bad_arguments_are_refused(apiserver: FakeApiServer) -> None:
    with pytest.raises(KubeConfigError, match="queue_size"):
        ClusterIndex(apiserver.api_client(), queue_size=0)
    ci = ClusterIndex(apiserver.api_client(), profile=False, options=FAST)
    ci.start()
    ci.stop()
    with pytest.raises(fm.FastmatchError, match="stopped"):
        ci.start()


# -- churn ------------------------------------------------------------------------------------


IMAGES = [f"app{i}:{v}" for i in range(12) for v in (1, 2)]
PHASES = ["Ready", "Ready", "Ready", "Creating", "Failed", "Updating"]


def churn(server: FakeApiServer, rng: random.Random, names: list[str], events: int,
          held: dict[str, dict[str, Any]], faults: bool, every: dict[str, set[str]]) -> None:
    """``events`` random creates, updates and deletes, with compactions and dropped streams
    at random points; ``every`` collects each Ready (id, image) ever written."""
    for _ in range(events):
        name = rng.choice(names)
        roll = rng.random()
        if faults and roll < 0.004:
            server.compact(keep=rng.randrange(0, 50))
        elif faults and roll < 0.008:
            server.drop_watches()
        if name in held and rng.random() < 0.3:
            server.delete("imagecaches", name)
            del held[name]
            continue
        images = rng.sample(IMAGES, rng.randint(1, 5))
        phase = rng.choice(PHASES)
        cache_id = f"imc-{name}" if rng.random() < 0.5 else None
        obj = cache(name, *images, phase=phase, cache_id=cache_id)
        if phase == "Ready":
            for image in images:
                every.setdefault(fm.Image(image).ref, set()).add(cache_id or name)
        if name in held:
            server.update("imagecaches", obj)
        else:
            server.create("imagecaches", obj)
        held[name] = obj


def test_a_randomized_run_converges_at_every_checkpoint_through_faults() -> None:
    """100k random events over 300 names (as kube-rs's randomized watcher test), with
    compactions and dropped streams at random points and a restart half way; the index
    equals the server at each of 20 checkpoints."""
    rng = random.Random(20261203)
    server = FakeApiServer(history=300, bookmark_interval=0.2)
    options = SyncOptions(dead_stream_seconds=2.0, backoff_initial=0.02, backoff_cap=0.1,
                          page_size=50, connect_timeout=1.0, list_timeout=5.0)
    names = [f"c{i:03}" for i in range(300)]
    held: dict[str, dict[str, Any]] = {}
    every: dict[str, set[str]] = {}
    for _ in served(server):
        with ClusterIndex(server.api_client(), profile=False, options=options) as ci:
            assert ci.wait_ready(5)
            for checkpoint in range(20):
                churn(server, rng, names, 5000, held, True, every)
                if checkpoint == 10:
                    server.restart()
                assert wait(lambda: state_of(ci.index) == server_state(server), 15), (
                    f"checkpoint {checkpoint}: {len(ci.index)} caches, "
                    f"{len(server.objects('imagecaches'))} on the server; {ci.problems()[-3:]}"
                )
            stats = ci.stats()
            assert stats["relists"] >= 1  # the compactions were felt
            assert stats["events_received"] >= stats["events_applied"] > 100


def test_matches_from_threads_during_churn_never_fail_and_see_states_the_server_had() -> None:
    rng = random.Random(7)
    server = FakeApiServer(history=300)
    names = [f"c{i:03}" for i in range(100)]
    held: dict[str, dict[str, Any]] = {}
    every: dict[str, set[str]] = {}
    failures: list[str] = []
    matched = [0]
    for _ in served(server):
        with ClusterIndex(server.api_client(), profile=False, options=FAST) as ci:
            assert ci.wait_ready(5)
            churning = threading.Event()
            churning.set()

            def matcher(seed: int, churning: threading.Event = churning) -> None:
                local = random.Random(seed)
                while churning.is_set():
                    image = local.choice(IMAGES)
                    try:
                        result = ci.match_pod(pod(image), now=NOW)
                    except Exception as exc:  # what the test is for: none may escape
                        failures.append(repr(exc))
                        return
                    ref = fm.Image(image).ref
                    if result.cache_id is not None and result.cache_id not in every.get(ref, ()):
                        failures.append(f"{image} matched {result.cache_id}, never Ready with it")
                    matched[0] += 1

            threads = [threading.Thread(target=matcher, args=(s,), daemon=True)
                       for s in range(3)]
            for thread in threads:
                thread.start()
            try:
                churn(server, rng, names, 2000, held, True, every)
                assert wait(lambda: state_of(ci.index) == server_state(server), 15)
            finally:
                churning.clear()
                for thread in threads:
                    thread.join(5)
            assert not failures, failures[:5]
            assert matched[0] > 100
