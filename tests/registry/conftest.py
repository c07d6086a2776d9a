"""Fixtures of the registry tests: real ``docker-registry`` processes on loopback ports,
images pushed by ``skopeo``, a token server; all stopped at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_world import World, build_world, tools_missing


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    missing = tools_missing()
    if missing:
        message = f"registry tests need {', '.join(missing)} (apt-get install docker-registry " \
                  "skopeo openssl)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    built = build_world(tmp_path_factory.mktemp("registry"))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _no_user_docker_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own ~/.docker/config.json must not change what the tests see.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.setenv("FASTMATCH_CACHE_DIR", str(tmp_path / "default-cache"))
