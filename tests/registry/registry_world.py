"""The registries the tests and benchmarks run against, built once per session.

One storage directory, filled by ``skopeo copy`` through a plain-HTTP
registry, is then served by four ``docker-registry`` processes: plain HTTP,
TLS with a generated CA, TLS with htpasswd Basic auth, and token auth in
front of a test token server.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from registry_oci import OCI_MANIFEST, BuiltImage, OciLayout
from registry_pki import Pki, TokenKey, make_pki, make_token_key
from registry_servers import (
    RegistryProcess,
    TokenServer,
    skopeo_copy,
    start_registry,
    write_htpasswd,
)

USER, PASSWORD = "alice", "wonderland"
REFRESH_TOKEN = "fastmatch-refresh-token"


def tools_missing() -> list[str]:
    """The programs the registry tests need that are not installed."""
    return [t for t in ("docker-registry", "skopeo", "openssl") if shutil.which(t) is None]


@dataclass
class Expected:
    """What resolving a pushed reference must give: the digest the tag points to and the
    layers of the linux/amd64 image (per platform for multi-platform images)."""

    digest: str
    layers: dict[str, tuple[tuple[str, int], ...]]


@dataclass
class World:
    root: Path
    pki: Pki
    token_key: TokenKey
    storage: Path
    plain: RegistryProcess
    tls: RegistryProcess
    basic: RegistryProcess
    token: RegistryProcess
    token_server: TokenServer
    expected: dict[str, Expected] = field(default_factory=dict)
    processes: list[RegistryProcess] = field(default_factory=list)

    def start(self, **kwargs: object) -> RegistryProcess:
        """Another registry on the same storage (stopped at the end of the session)."""
        reg = start_registry(self.root / "extra", self.storage, **kwargs)  # type: ignore[arg-type]
        self.processes.append(reg)
        return reg

    def close(self) -> None:
        for reg in self.processes:
            reg.stop()
        self.token_server.stop()


def _noise(seed: str, size: int) -> bytes:
    # Incompressible but reproducible, so layers have realistic compressed sizes.
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def _files(tag: str, n: int = 3, size: int = 2048) -> dict[str, bytes]:
    return {f"{tag}/file{i}": _noise(f"{tag}-{i}", size) for i in range(n)}


def build_layout(root: Path) -> tuple[OciLayout, dict[str, dict[str, BuiltImage]]]:
    """The test images: single-platform ones sharing a base layer, and a multi-platform
    index (amd64, arm64/v8, arm/v7, windows)."""
    oci = OciLayout(root)
    base = _files("base", 4, 8192)
    app10 = oci.image([base, _files("app-1.0")])
    app11 = oci.image([base, _files("app-1.1")])
    amd = oci.image([base, _files("multi-amd64")], "linux", "amd64")
    arm64 = oci.image([_files("base-arm64"), _files("multi-arm64")], "linux", "arm64", "v8")
    arm7 = oci.image([_files("base-armv7")], "linux", "arm", "v7")
    win = oci.image([_files("windows-base"), _files("windows-app")], "windows", "amd64")
    oci.tag("app-1.0", app10.manifest)
    oci.tag("app-1.1", app11.manifest)
    oci.tag("multi-1.0", oci.index([amd, arm64, arm7, win]))
    images = {
        "app-1.0": {"linux/amd64": app10},
        "app-1.1": {"linux/amd64": app11},
        "multi-1.0": {"linux/amd64": amd, "linux/arm64/v8": arm64, "linux/arm/v7": arm7,
                      "windows/amd64": win},
    }
    return oci, images


def registry_digest(host: str, repo: str, tag: str) -> str:
    """What ``repo:tag`` points to on a plain-HTTP registry."""
    conn = http.client.HTTPConnection(host, timeout=10)
    accept = ("application/vnd.oci.image.index.v1+json, "
              "application/vnd.docker.distribution.manifest.list.v2+json, "
              f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json")
    try:
        conn.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (repo, tag, response.status)
        return response.headers["Docker-Content-Digest"]
    finally:
        conn.close()


def put_tagged_copies(host: str, repo: str, base_tag: str, count: int) -> list[str]:
    """``count`` distinct manifests (the base one with an annotation added) under tags
    ``t0``..; returns the tags.  Used to give the benchmark a thousand references."""
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("GET", f"/v2/{repo}/manifests/{base_tag}", headers={"Accept": OCI_MANIFEST})
    manifest = json.loads(conn.getresponse().read())
    tags = []
    for i in range(count):
        manifest["annotations"] = {"fastmatch.test/copy": str(i)}
        body = json.dumps(manifest).encode()
        conn.request("PUT", f"/v2/{repo}/manifests/t{i}", body=body,
                     headers={"Content-Type": OCI_MANIFEST})
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status
        tags.append(f"t{i}")
    conn.close()
    return tags


def build_world(root: Path) -> World:
    """Generate the PKI and images, start the registries, push with skopeo."""
    pki = make_pki(root / "pki")
    token_key = make_token_key(root / "token")
    storage = root / "storage"
    storage.mkdir()
    _, images = build_layout(root / "layout")
    processes: list[RegistryProcess] = []
    token_server = TokenServer(token_key, {USER: PASSWORD}, {REFRESH_TOKEN: USER}).start()
    try:
        plain = start_registry(root / "plain", storage)
        processes.append(plain)
        layout = root / "layout"
        pushes = [
            ("app-1.0", "app:1.0", ()),
            ("app-1.1", "app:1.1", ()),
            ("multi-1.0", "multi:1.0", ("--all",)),
            ("app-1.0", "docker/app:1.0", ("--format", "v2s2")),
            ("multi-1.0", "docker/multi:1.0", ("--all", "--format", "v2s2")),
            ("app-1.0", "private/app:1.0", ()),
            ("app-1.1", "public/app:1.1", ()),
            ("app-1.0", "bench/app:base", ()),
        ]
        expected: dict[str, Expected] = {}
        for name, dest, extra in pushes:
            skopeo_copy(f"oci:{layout}:{name}", f"docker://{plain.host}/{dest}", *extra)
            repo, tag = dest.split(":")
            layers = {p: img.layers for p, img in images[name].items()}
            expected[dest] = Expected(registry_digest(plain.host, repo, tag), layers)
        tls = start_registry(root / "tls", storage, tls=(pki.server_cert, pki.server_key))
        processes.append(tls)
        htpasswd = root / "htpasswd"
        write_htpasswd(htpasswd, {USER: PASSWORD})
        basic = start_registry(root / "basic", storage, tls=(pki.server_cert, pki.server_key),
                               htpasswd=htpasswd)
        processes.append(basic)
        token = start_registry(root / "token-registry", storage,
                               token=(token_server.realm, token_key.cert))
        processes.append(token)
    except BaseException:
        for reg in processes:
            reg.stop()
        token_server.stop()
        raise
    return World(root, pki, token_key, storage, plain, tls, basic, token, token_server,
                 expected, processes)
