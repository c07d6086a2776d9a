"""Pods read as runs of replicas (``PodRequests``): a list to every reader, one object per
workload underneath, and ``match_many(replicas=...)`` over the runs."""

from __future__ import annotations

import pytest

import fastmatch as fm
from fastmatch.inputs import ImageReader, Located
from fastmatch.inputs.pods import PodRequests, replica_runs, requests_from, workload_lists


def _deployment(name: str, replicas: int, image: str, namespace: str = "prod") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "template": {"spec": {
                "containers": [{"name": "c", "image": image}]}}}}


OBJECTS = [
    _deployment("web", 3, "nginx:1.25"),
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
     "spec": {"containers": [{"name": "c", "image": "redis:7"}]}},
    _deployment("idle", 0, "busybox"),
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
     "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
    _deployment("api", 2, "nginx:1.25", namespace="dev"),
]


@pytest.fixture
def runs() -> PodRequests:
    located = [Located(obj, f"pods.yaml: document {i}") for i, obj in enumerate(OBJECTS, 1)]
    return requests_from(located, ImageReader(None))


def test_runs_read_as_the_list_of_every_replica(runs: PodRequests) -> None:
    names = ["web-0", "web-1", "web-2", "solo", "agent", "api-0", "api-1"]
    assert [r.name for r in runs] == names
    assert len(runs) == 7
    assert [runs[i].name for i in range(7)] == names
    assert [r.name for r in runs[-3:]] == ["agent", "api-0", "api-1"]
    assert runs[-1].name == "api-1" and runs[-1].namespace == "dev"
    assert [r.name for r in runs[::3]] == ["web-0", "solo", "api-1"]
    with pytest.raises(IndexError):
        runs[7]
    # Equal to the list the public reader gives, either way round.
    every = [fm.PodRequest.from_object(o) for o in OBJECTS if o["kind"] == "Pod"]
    assert runs[3] == every[0]
    assert list(runs) == runs and runs == list(runs)
    assert runs != list(runs)[:-1]


def test_replicas_share_the_workloads_objects(runs: PodRequests) -> None:
    assert runs[1].images is runs[0].images and runs[2].policy is runs[0].policy
    assert [(first.name, n) for first, n in replica_runs(runs)] == [
        ("web-0", 3), ("solo", 1), ("agent", 1), ("api-0", 2)]
    # The runs of a plain list of the same requests are the same.
    assert [(f.name, n) for f, n in replica_runs(list(runs))] == [
        (f.name, n) for f, n in replica_runs(runs)]
    pods, _, counts, names = workload_lists(runs)
    assert counts == [3, 1, 1, 2] and names == ["web-0", "solo", "agent", "api-0"]
    assert pods[0] == [fm.Image("nginx:1.25")] and pods[0] == pods[3]


def test_workloads_decide_as_their_replicas_do(runs: PodRequests) -> None:
    index = fm.CacheIndex([fm.ImageCache("imc-1", ["busybox"])])
    pods, policies, counts, names = workload_lists(runs)
    got = index.match_many(pods, policies, pod_names=names, replicas=counts)
    want = index.match_many([list(r.images) for r in runs], [r.policy for r in runs],
                            pod_names=[r.name for r in runs])
    assert got == want
    assert [r.create.name if r.create else None for r in got] == [
        "auto-create-for-web-0", None, None, "auto-create-for-solo", None, None, None]
    assert got[4].cache_id == "imc-1"


@pytest.mark.parametrize(("replicas", "message"), [
    ([1], "3 pods but 1 replica counts"),
    ([1, 0, 1], "replica count 1 must be at least 1, got 0"),
    ([1, 2.0, 1], "replica count 1 must be an integer, got 2.0"),
    ("3", "replicas must be a list of counts, got str"),
])
def test_bad_replica_counts_are_named(replicas: object, message: str) -> None:
    index = fm.CacheIndex()
    with pytest.raises(fm.FastmatchError, match=message):
        index.match_many([["nginx"]] * 3, replicas=replicas)  # type: ignore[arg-type]
