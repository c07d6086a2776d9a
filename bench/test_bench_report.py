"""``fastmatch report``'s decisions against what a data engineer would write: DuckDB SQL.

A synthetic cluster's JSON files (10k ImageCaches, 4k Deployments of 50
replicas: 200k pods, and the catalog) decided by fastmatch (the inputs
readers, the index, ``match_many`` on all cores) and by
``bench/duckdb_report.py``; both decide every pod the same (checked once,
outside the timing).  Three groups: end to end from the files (reading and
parsing them, building the index or the tables included); end to end from
the parsed documents (both sides handed the files' ``json``-parsed documents:
fastmatch builds its models, index and decisions, DuckDB its columns, tables
and decisions), the issue's "from parsed objects to decisions"; and deciding
alone (from the built index or the loaded tables).

``bench/report_scale.py`` measures the whole report (1M pods to the JSON
report, time and peak memory) in a process of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fastmatch.cluster_files import cluster_from_documents, decide, read_cluster
from fastmatch.index import CacheIndex
from fastmatch.inputs import read_catalog
from fastmatch.inputs.catalog import catalog_from_documents

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


Documents = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def documents(cluster: tuple[Any, dict[str, Path]]) -> Documents:
    """The three files' documents, parsed once: the caches' and the workloads' ``List``
    objects and the catalog's lines."""
    _, paths = cluster
    with paths["catalog.jsonl"].open() as lines:
        catalog = [json.loads(line) for line in lines if line.strip()]
    return (json.loads(paths["caches.json"].read_text()),
            json.loads(paths["workloads.json"].read_text()), catalog)


def _fastmatch_documents(docs: Documents, now: Any) -> list[Any]:
    caches, workloads, entries = docs
    files = cluster_from_documents([caches], [workloads],
                                   catalog=catalog_from_documents(entries), now=now)
    return decide(files).results


def _duckdb_documents(docs: Documents, now: Any) -> list[Any]:
    return duckdb_report.decide_documents_with_duckdb(*docs, now)


def _duckdb(paths: dict[str, Path], now: Any) -> list[Any]:
    return duckdb_report.decide_with_duckdb(paths["caches.json"], paths["workloads.json"],
                                            paths["catalog.jsonl"], now)


def test_duckdb_decides_every_pod_as_fastmatch_does(cluster: tuple[Any, dict[str, Path]]) -> None:
    made, paths = cluster
    results = _fastmatch(paths, made.now)
    assert {"use", "none"} <= {r.outcome for r in results}
    duckdb_report.check_same(_duckdb(paths, made.now), results)


def test_from_documents_both_decide_as_from_the_files(
    cluster: tuple[Any, dict[str, Path]], documents: Documents
) -> None:
    made, paths = cluster
    results = _fastmatch_documents(documents, made.now)
    assert [r.as_dict() for r in results] == [r.as_dict() for r in _fastmatch(paths, made.now)]
    duckdb_report.check_same(_duckdb_documents(documents, made.now), results)


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
def test_from_documents(benchmark: Any, cluster: tuple[Any, dict[str, Path]],
                        documents: Documents, disabled: bool, how: str) -> None:
    benchmark.group = ("report from parsed documents: models or tables, index, decisions "
                       "(10k caches, 200k pods)")
    made, _ = cluster
    run = _fastmatch_documents if how == "fastmatch" else _duckdb_documents
    found = benchmark.pedantic(run, args=(documents, made.now), rounds=1 if disabled else 5,
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
