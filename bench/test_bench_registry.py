"""Benchmarks of the registry resolver: 1,000 references from the on-disk cache, and
cold against a local ``docker-registry`` with concurrency.

Run: ``PYTHONPATH=src pytest bench/test_bench_registry.py`` (figures), or with
``--benchmark-disable`` as plain tests (one round each).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "registry"))

from registry_world import World, build_world, put_tagged_copies, tools_missing

from fastmatch.registry import RegistryConfig, Resolver

pytestmark = pytest.mark.registry
N = 1000
CONCURRENCY = 16


@pytest.fixture(scope="module")
def bench_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, list[str]]]:
    missing = tools_missing()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    world = build_world(tmp_path_factory.mktemp("bench-registry"))
    try:
        tags = put_tagged_copies(world.plain.host, "bench/app", "base", N)
        yield world, [f"{world.plain.host}/bench/app:{tag}" for tag in tags]
    finally:
        world.close()


def _resolver(world: World, cache_dir: Path | None) -> Resolver:
    config = RegistryConfig.build(plain_http=[world.plain.host], docker_config=False)
    return Resolver(config, cache_dir=cache_dir, max_concurrency=CONCURRENCY)


def test_resolve_1000_cold_from_the_registry(
    benchmark: Any, bench_world: tuple[World, list[str]]
) -> None:
    world, refs = bench_world

    def setup() -> tuple[tuple[Resolver], dict[str, Any]]:
        return (_resolver(world, Path(tempfile.mkdtemp(dir=world.root))),), {}

    def run(resolver: Resolver) -> Any:
        with resolver:
            return resolver.resolve_many(refs), resolver.client.requests

    report, requests = benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    assert report.ok and len(report.images) == N
    assert requests == N  # one GET per tag; nothing else
    assert {r.source for r in report.resolved} == {"registry"}


def test_resolve_1000_from_the_disk_cache(
    benchmark: Any, bench_world: tuple[World, list[str]]
) -> None:
    world, refs = bench_world
    cache_dir = Path(tempfile.mkdtemp(dir=world.root))
    with _resolver(world, cache_dir) as warm_up:
        expected = warm_up.resolve_many(refs).images

    def setup() -> tuple[tuple[Resolver], dict[str, Any]]:
        return (_resolver(world, cache_dir),), {}  # a new process would start like this

    def run(resolver: Resolver) -> Any:
        with resolver:
            return resolver.resolve_many(refs), resolver.client.requests

    report, requests = benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    assert requests == 0
    assert report.images == expected
    assert {r.source for r in report.resolved} == {"cache"}
