"""The cache: by digest for ever, by tag for a while, shared between runs, stale when down."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from registry_servers import skopeo_copy
from registry_world import World

from fastmatch.model import Image
from fastmatch.registry import (
    Catalog,
    ReferenceNotFoundError,
    RegistryConfig,
    RegistryUnreachableError,
    Resolver,
)

pytestmark = pytest.mark.registry


def resolver(world: World, cache_dir: Path | None, hosts: list[str] | None = None,
             **kwargs: object) -> Resolver:
    config = RegistryConfig.build(plain_http=hosts or [world.plain.host], docker_config=False)
    return Resolver(config, cache_dir=cache_dir, retries=1, backoff=0.01, **kwargs)  # type: ignore[arg-type]


def test_second_run_answers_from_the_disk_cache(world: World, cache_dir: Path) -> None:
    refs = [f"{world.plain.host}/app:1.0", f"{world.plain.host}/multi:1.0"]
    with resolver(world, cache_dir) as first:
        cold = first.resolve_many(refs)
        assert first.client.requests >= 3
    with resolver(world, cache_dir) as second:
        warm = second.resolve_many(refs)
        assert second.client.requests == 0
    assert warm.images == cold.images
    assert {r.source for r in warm.resolved} == {"cache"}
    assert {r.source for r in cold.resolved} == {"registry"}


def test_digest_references_are_cached_for_ever(world: World, cache_dir: Path) -> None:
    digest = world.expected["multi:1.0"].digest
    ref = f"{world.plain.host}/multi@{digest}"
    with resolver(world, cache_dir, tag_ttl=0) as first:
        image = first.resolve(ref)
    with resolver(world, cache_dir, tag_ttl=0) as second:
        assert second.resolve(ref) == image
        assert second.client.requests == 0


def test_an_expired_tag_is_revalidated_with_one_head(world: World, cache_dir: Path) -> None:
    ref = f"{world.plain.host}/multi:1.0"
    with resolver(world, cache_dir) as first:
        image = first.resolve(ref)
    with resolver(world, cache_dir, tag_ttl=0) as second:
        again = second.resolve_one(ref)
        assert second.client.requests == 1  # HEAD: same digest, manifests from the cache
    assert again.image == image


def test_a_moved_tag_is_seen_after_the_ttl(world: World, cache_dir: Path) -> None:
    repo = f"moving-{uuid.uuid4().hex[:8]}"
    layout = world.root / "layout"
    ref = f"{world.plain.host}/{repo}:1"
    skopeo_copy(f"oci:{layout}:app-1.0", f"docker://{ref}")
    with resolver(world, cache_dir) as r:
        old = r.resolve(ref)
    skopeo_copy(f"oci:{layout}:app-1.1", f"docker://{ref}")
    with resolver(world, cache_dir, tag_ttl=3600) as r:
        assert r.resolve(ref) == old  # still fresh: not asked
    with resolver(world, cache_dir, tag_ttl=0) as r:
        new = r.resolve(ref)
    assert new.digest == world.expected["app:1.1"].digest
    assert new.layers != old.layers


def test_stale_entry_served_with_a_warning_when_the_registry_is_down(
    world: World, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = world.start()
    ref = f"{reg.host}/multi:1.0"
    with resolver(world, cache_dir, [reg.host]) as r:
        image = r.resolve(ref)
    reg.stop()
    with caplog.at_level(logging.WARNING, logger="fastmatch.registry"), \
            resolver(world, cache_dir, [reg.host], tag_ttl=0) as r:
        report = r.resolve_many([ref])
    assert report.ok and report.images == [image]
    assert report.resolved[0].source == "stale-cache"
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert reg.host in warning and "cannot be reached" in warning and image.digest in warning
    assert warning in caplog.text
    with resolver(world, cache_dir, [reg.host], tag_ttl=0, serve_stale=False) as r, \
            pytest.raises(RegistryUnreachableError):
        r.resolve(ref)
    with resolver(world, cache_dir, [reg.host], tag_ttl=0) as r, \
            pytest.raises(RegistryUnreachableError):
        r.resolve(f"{reg.host}/app:1.0")  # never cached: nothing stale to serve


def test_a_damaged_cache_file_is_a_miss(world: World, cache_dir: Path) -> None:
    ref = f"{world.plain.host}/app:1.0"
    with resolver(world, cache_dir) as r:
        image = r.resolve(ref)
    for path in (cache_dir / "manifests").rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[:-5] + b"XXXXX")
    with resolver(world, cache_dir) as r:
        assert r.resolve(ref) == image
        assert r.client.requests == 1  # the manifest again, by digest


def test_offline_answers_from_the_cache_only(world: World, cache_dir: Path) -> None:
    ref = f"{world.plain.host}/app:1.1"
    with resolver(world, cache_dir) as r:
        image = r.resolve(ref)
    with resolver(world, cache_dir, tag_ttl=0, offline=True) as r:
        assert r.resolve(ref) == image
        with pytest.raises(ReferenceNotFoundError) as caught:
            r.resolve(f"{world.plain.host}/app:1.0")
        assert "offline" in str(caught.value)
        assert r.client.requests == 0


def test_a_catalog_answers_before_the_registry(world: World) -> None:
    known = Image(f"{world.plain.host}/app:1.0", [("sha256:" + "a" * 64, 10)])
    with resolver(world, None, catalog=Catalog([known])) as r:
        resolution = r.resolve_one(f"{world.plain.host}/app:1.0")
        assert resolution.image == known and resolution.source == "catalog"
        assert r.client.requests == 0


def test_memory_only_cache_within_one_resolver(world: World) -> None:
    with resolver(world, None) as r:
        r.resolve(f"{world.plain.host}/app:1.0")
        count = r.client.requests
        r.resolve(f"{world.plain.host}/app:1.0")
        assert r.client.requests == count


def test_unwritable_cache_dir_degrades_to_memory(world: World, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with resolver(world, blocker / "cache") as r:
        assert r.resolve(f"{world.plain.host}/app:1.0").layers
