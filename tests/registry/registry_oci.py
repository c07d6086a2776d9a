"""Build OCI image layouts with real gzipped tar layers, for skopeo to push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor; ``platform`` for manifests of an index."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.platform:
            doc["platform"] = self.platform
        return doc


@dataclass(frozen=True)
class BuiltImage:
    """An image manifest in the layout and what resolving it must give."""

    manifest: Descriptor
    layers: tuple[tuple[str, int], ...]


def tar_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar of ``files`` (deterministic) and its diff id (digest of the tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    compressed = gzip.compress(tar_bytes, mtime=0)
    return compressed, "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


class OciLayout:
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str) -> Descriptor:
        """Store a blob; return its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return Descriptor(media_type, "sha256:" + digest, len(data))

    def image(self, layers: list[dict[str, bytes]], os: str = "linux", arch: str = "amd64",
              variant: str | None = None) -> BuiltImage:
        """An image of the given layers (each a dict of file name to content)."""
        descriptors = []
        diff_ids = []
        for files in layers:
            data, diff_id = tar_layer(files)
            descriptors.append(self.blob(data, OCI_LAYER))
            diff_ids.append(diff_id)
        config: dict[str, Any] = {
            "architecture": arch, "os": os, "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if variant:
            config["variant"] = variant
        config_desc = self.blob(json.dumps(config).encode(), OCI_CONFIG)
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc.json(),
            "layers": [d.json() for d in descriptors],
        }
        desc = self.blob(json.dumps(manifest, indent=2).encode(), OCI_MANIFEST)
        platform = {"architecture": arch, "os": os}
        if variant:
            platform["variant"] = variant
        desc = Descriptor(desc.media_type, desc.digest, desc.size, platform)
        return BuiltImage(desc, tuple((d.digest, d.size) for d in descriptors))

    def index(self, images: list[BuiltImage]) -> Descriptor:
        """An OCI index of ``images`` (their platforms recorded)."""
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [i.manifest.json() for i in images]}
        return self.blob(json.dumps(doc, indent=2).encode(), OCI_INDEX)

    def tag(self, name: str, desc: Descriptor) -> None:
        """Name ``desc`` in ``index.json`` (what ``oci:DIR:name`` refers to)."""
        entry = Descriptor(desc.media_type, desc.digest, desc.size).json()
        entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(entry)
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}
        (self.root / "index.json").write_text(json.dumps(doc, indent=2))
