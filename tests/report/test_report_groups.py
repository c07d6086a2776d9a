"""The report's pod groups: a workload's replicas summed once, the replica that proposed
a cache apart from those that say it was proposed, pods in input order of first sight."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest
from fastmatch.model import Image, ImageCache
from fastmatch.report.aggregate import pod_groups, summarize
from fastmatch.report.cluster_report import build_report
from fastmatch.report.formats import write_json

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
D1, D2 = ("sha256:" + c * 64 for c in "ab")
NGINX = Image("nginx:1.25", [(D1, 100)])
REDIS = Image("redis:7", [(D2, 50)])


def _replicas(name: str, image: Image, count: int) -> list[PodRequest]:
    first = PodRequest([image], name=f"{name}-0", namespace="shop")
    return [first] + [first.renamed(f"{name}-{i}") for i in range(1, count)]


def test_replicas_group_once_and_the_proposing_replica_apart() -> None:
    index = CacheIndex([ImageCache("imc-1", [NGINX], created=NOW)])
    requests = [*_replicas("web", NGINX, 3), *_replicas("kv", REDIS, 4),
                *_replicas("web2", NGINX, 2)]
    results = index.match_many([list(r.images) for r in requests],
                               [r.policy for r in requests], now=NOW,
                               pod_names=[r.name for r in requests])
    groups = pod_groups(requests, results)
    assert [(g.first, g.count, g.result.outcome) for g in groups] == [
        (0, 3, "use"),  # web's replicas: one result object
        (3, 1, "none"),  # kv-0 proposes the cache to create
        (4, 3, "none"),  # kv-1..3 say it was proposed
        (7, 2, "use"),  # web2: a workload of its own
    ]
    assert groups[1].result.create is not None and groups[2].result.create is None
    summary = summarize(groups)
    assert (summary.pods, summary.perfect, summary.miss) == (9, 5, 4)
    assert summary.bytes_pulled == 5 * 100 + 4 * 50
    assert summary.bytes_from_cache == 5 * 100


def test_results_that_differ_within_a_run_are_grouped_pod_by_pod() -> None:
    index = CacheIndex([ImageCache("imc-1", [NGINX], created=NOW)])
    requests = _replicas("web", NGINX, 3)
    one = index.match_pod(requests[0], now=NOW)
    other = index.match([REDIS], now=NOW)
    groups = pod_groups(requests, [one, other, one])
    assert [(g.first, g.count, g.result.outcome) for g in groups] == [(0, 2, "use"),
                                                                       (1, 1, "none")]


def test_the_json_spells_any_pod_name_as_json_does() -> None:
    index = CacheIndex([ImageCache("imc-1", [NGINX], created=NOW)])
    requests = [*_replicas('wéb"\\\t', NGINX, 2), *_replicas("kv", REDIS, 1)]
    results = index.match_many([list(r.images) for r in requests],
                               [r.policy for r in requests], now=NOW,
                               pod_names=[r.name for r in requests])
    report = build_report(index, requests, results, NOW)
    out = io.StringIO()
    write_json(report, out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(report.as_dict()))
    assert [p["name"] for p in json.loads(out.getvalue())["pods"]] == \
        ['wéb"\\\t-0', 'wéb"\\\t-1', "kv-0"]
