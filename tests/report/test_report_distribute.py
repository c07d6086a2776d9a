"""Deciding in parts (a progress bar) and across Dask gives the results of one batch."""

from __future__ import annotations

import json

import pytest

import fastmatch as fm
from fastmatch.cli import main
from fastmatch.report import DaskError, decide_in_parts, decide_on_dask, split_by_image_set
from fastmatch.synthetic import synthetic_cluster

from report_helpers import CACHES, CONTEXT, PODS, image, layer, pods, synthetic_requests


@pytest.fixture(scope="module")
def cluster():
    made = synthetic_cluster(150, 600, seed=7)
    return made, fm.CacheIndex(made.caches), synthetic_requests(made)


def one_batch(index, requests, now):
    return index.match_many([r.images for r in requests], [r.policy for r in requests],
                            now=now, pod_names=[r.name for r in requests])


def test_parts_keep_every_image_set_together_in_input_order(cluster):
    requests = cluster[2]
    parts = split_by_image_set(requests, 5)
    assert sorted(i for part in parts for i in part) == list(range(len(requests)))
    where = {}
    for n, part in enumerate(parts):
        assert part == sorted(part)
        for i in part:
            key = frozenset(im.key for im in requests[i].images)
            assert where.setdefault(key, n) == n


@pytest.mark.parametrize("parts", [1, 3, 16])
def test_deciding_in_parts_gives_one_batchs_results(cluster, parts):
    made, index, requests = cluster
    expected = one_batch(index, requests, made.now)
    seen = []
    got = decide_in_parts(index, requests, made.now, parts=parts, progress=seen.append)
    assert got == expected
    assert [r.create for r in got] == [r.create for r in expected]
    assert sum(seen) == len(requests)
    assert sum(r.create is not None for r in got) > 0  # the case that needs the split


def test_two_workloads_of_one_image_set_propose_once_whatever_the_parts():
    a = image("a", layer(1, 10))
    requests = [*pods("first", [a], 2), *pods("second", [a], 2)]
    index = fm.CacheIndex()
    for parts in (1, 4):
        results = decide_in_parts(index, requests, "2026-12-01T00:00:00Z", parts=parts)
        assert [r.create.name if r.create else None for r in results] == [
            "auto-create-for-first-0", None, None, None]


def test_dask_local_cluster_gives_one_batchs_results(cluster):
    distributed = pytest.importorskip("distributed")
    made, index, requests = cluster
    expected = one_batch(index, requests, made.now)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as dc:
        seen = []
        got = decide_on_dask(index, requests, made.now, dc.scheduler_address,
                             progress=seen.append)
        assert sum(seen) == len(requests)
    assert got == expected
    assert [r.as_dict() for r in got] == [r.as_dict() for r in expected]


def test_the_dask_report_equals_the_local_one(capsys):
    distributed = pytest.importorskip("distributed")
    args = ["report", "--caches", *CACHES, "--pods", *PODS, *CONTEXT, "--format", "json"]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as dc:
        assert main([*args, "--dask", dc.scheduler_address]) == 0
    assert json.loads(capsys.readouterr().out) == local


def test_an_address_with_no_scheduler_is_a_clear_error(cluster):
    pytest.importorskip("distributed")
    made, index, requests = cluster
    with pytest.raises(DaskError, match=r"--dask tcp://127.0.0.1:9: cannot connect"):
        decide_on_dask(index, requests, made.now, "tcp://127.0.0.1:9", connect_timeout=1)
