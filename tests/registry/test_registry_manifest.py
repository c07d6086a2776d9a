"""Manifest parsing and platform choice."""

from __future__ import annotations

import json

import pytest

from fastmatch.registry import Platform
from fastmatch.registry.manifest import (
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    ManifestIndex,
    ManifestProblem,
    parse_manifest,
)

D = ["sha256:" + c * 64 for c in "0123456789"]


def index(*platforms: dict[str, str] | None) -> ManifestIndex:
    entries = []
    for i, platform in enumerate(platforms):
        entry = {"mediaType": OCI_MANIFEST, "digest": D[i], "size": 1}
        if platform is not None:
            entry["platform"] = platform
        entries.append(entry)
    parsed = parse_manifest(json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST,
                                        "manifests": entries}).encode())
    assert isinstance(parsed, ManifestIndex)
    return parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [("linux/amd64", Platform("linux", "amd64")),
     ("linux/arm64", Platform("linux", "arm64", "v8")),
     ("Linux/AARCH64", Platform("linux", "arm64", "v8")),
     ("linux/x86_64", Platform("linux", "amd64")),
     ("linux/arm", Platform("linux", "arm", "v7")),
     ("linux/arm/v6", Platform("linux", "arm", "v6"))],
)
def test_platform_parsing(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "a/b/c/d", ""])
def test_bad_platforms(text: str) -> None:
    with pytest.raises(ManifestProblem, match="os/arch"):
        Platform.parse(text)


def test_choice_skips_attestations_and_prefers_exact_variants() -> None:
    idx = index({"os": "unknown", "architecture": "unknown"},
                {"os": "linux", "architecture": "amd64"},
                {"os": "linux", "architecture": "amd64", "variant": "v3"},
                {"os": "linux", "architecture": "arm64"},
                {"os": "linux", "architecture": "arm", "variant": "v6"},
                None)
    assert idx.choose(Platform.parse("linux/amd64")).digest == D[1]  # type: ignore[union-attr]
    assert idx.choose(Platform.parse("linux/amd64/v3")).digest == D[2]  # type: ignore[union-attr]
    assert idx.choose(Platform.parse("linux/arm64/v8")).digest == D[3]  # type: ignore[union-attr]
    assert idx.choose(Platform.parse("linux/arm/v7")) is None
    assert idx.choose(Platform.parse("windows/amd64")) is None


def test_oci_manifest_without_media_type_is_recognized_by_shape() -> None:
    body = json.dumps({"schemaVersion": 2, "config": {"digest": D[0], "size": 1},
                       "layers": [{"digest": D[1], "size": 5}]}).encode()
    parsed = parse_manifest(body, "application/vnd.oci.image.manifest.v1+json")
    assert [(layer.digest, layer.size) for layer in parsed.layers] == [(D[1], 5)]  # type: ignore[union-attr]
