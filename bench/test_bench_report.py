"""``fastmatch report``'s decisions against what a data engineer would write: DuckDB SQL.

A synthetic cluster's JSON files (10k ImageCaches, 4k Deployments of 50
replicas: 200k pods, and the catalog) decided by fastmatch (the inputs
readers, the index, ``match_many`` on all cores) and by
``bench/duckdb_report.py``; both decide every pod the same (checked once,
outside the timing).  Two groups: end to end (from the files, building the
index or the tables included), and deciding alone (from the built index or
the loaded tables).

``bench/report_scale.py`` measures the whole report (1M pods to the JSON
report, time and peak memory) in a process of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fastmatch.cluster_files import decide, read_cluster
from fastmatch.index import CacheIndex
from fastmatch.inputs import read_catalog

import duckdb_report
import report_scale
import workloads

CACHES, WORKLOADS, REPLICAS = 10_000, 4_000, 50


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, disabled: bool
) -> tuple[Any, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("report")
    n_caches = workloads.scaled(CACHES, disabled)
    n_workloads = workloads.scaled(WORKLOADS, disabled)
    return report_scale.write_cluster_files(folder, n_caches, n_workloads, REPLICAS)


def _fastmatch(paths: dict[str, Path], now: Any) -> list[Any]:
    catalog = read_catalog(paths["catalog.jsonl"])
    files = read_cluster([paths["caches.json"]], [paths["workloads.json"]], catalog=catalog,
                         now=now)
    return decide(files).results


def _duckdb(paths: dict[str, Path], now: Any) -> list[Any]:
    return duckdb_report.decide_with_duckdb(paths["caches.json"], paths["workloads.json"],
                                            paths["catalog.jsonl"], now)


def test_duckdb_decides_every_pod_as_fastmatch_does(cluster: tuple[Any, dict[str, Path]]) -> None:
    made, paths = cluster
    results = _fastmatch(paths, made.now)
    assert {"use", "none"} <= {r.outcome for r in results}
    duckdb_report.check_same(_duckdb(paths, made.now), results)


@pytest.mark.parametrize("how", ["fastmatch", "duckdb"])
def test_end_to_end(benchmark: Any, cluster: tuple[Any, dict[str, Path]], disabled: bool,
                    how: str) -> None:
    benchmark.group = "report end to end: JSON files to decisions (10k caches, 200k pods)"
    made, paths = cluster
    run = _fastmatch if how == "fastmatch" else _duckdb
    found = benchmark.pedantic(run, args=(paths, made.now), rounds=1 if disabled else 3,
                               iterations=1)
    assert len(found) == workloads.scaled(WORKLOADS, disabled) * REPLICAS


@pytest.mark.parametrize("how", ["fastmatch", "duckdb"])
def test_deciding_alone(benchmark: Any, cluster: tuple[Any, dict[str, Path]], disabled: bool,
                        how: str) -> None:
    benchmark.group = "report deciding alone: built index or loaded tables (200k pods)"
    made, paths = cluster
    if how == "fastmatch":
        files = read_cluster([paths["caches.json"]], [paths["workloads.json"]],
                             catalog=read_catalog(paths["catalog.jsonl"]), now=made.now)
        index = CacheIndex(files.caches)
        found = benchmark.pedantic(decide, args=(files,), kwargs={"index": index},
                                   rounds=1 if disabled else 3, iterations=1).results
    else:
        tables = duckdb_report.Tables(paths["caches.json"], paths["workloads.json"],
                                      paths["catalog.jsonl"], made.now)
        found = benchmark.pedantic(tables.decide, rounds=1 if disabled else 3, iterations=1)
    assert len(found) == workloads.scaled(WORKLOADS, disabled) * REPLICAS
