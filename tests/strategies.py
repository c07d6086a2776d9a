"""Hypothesis strategies for caches, pods and policies, shared by the property tests.

Layers come from a small pool so that caches and pods overlap often; sizes
from a small set so that ties in ``covered`` and ``distance`` happen.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

import fastmatch as fm

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LAYERS = [fm.Layer(f"sha256:{i:064x}", size) for i, size in
          enumerate([0, 1, 10, 10, 100, 250, 1000, 4096, 65536, 1 << 20, 7, 3])]
REFS = ["nginx:1.25", "nginx:1.26", "busybox", "redis:7", "app/web:1", "app/api:2",
        "registry.example.com/team/job:3", "python:3.11"]
DIGESTS = [f"sha256:{'d' * 63}{i}" for i in range(4)]
PHASES = ["Ready"] * 6 + ["Creating", "Preparing", "Failed", "Updating", "UpdateFailed"]

times = st.integers(min_value=0, max_value=60).map(lambda d: T0 + timedelta(days=d))


@st.composite
def images(draw: st.DrawFn) -> fm.Image:
    ref = draw(st.sampled_from(REFS))
    known = draw(st.booleans()) or draw(st.booleans())
    layers = draw(st.lists(st.sampled_from(LAYERS), min_size=1, max_size=5)) if known else []
    digest = draw(st.sampled_from(DIGESTS)) if draw(st.integers(0, 5)) == 0 else None
    return fm.Image(ref, layers, digest=digest)


@st.composite
def caches(draw: st.DrawFn, ident: str | None = None) -> fm.ImageCache:
    cid = ident if ident is not None else f"imc-{draw(st.integers(0, 30)):02d}"
    return fm.ImageCache(
        cid,
        draw(st.lists(images(), min_size=1, max_size=4)),
        size_gib=draw(st.sampled_from([20, 20, 30, 50, 100])),
        phase=draw(st.sampled_from(PHASES)),
        created=draw(times),
        expires=draw(st.none() | times),
        last_matched=draw(st.none() | times),
        auto_created=draw(st.booleans()),
        retention_days=draw(st.none() | st.integers(1, 40)),
        arch=draw(st.sampled_from([None, None, "amd64", "arm64"])),
        os=draw(st.sampled_from([None, None, "linux"])),
    )


@st.composite
def cache_sets(draw: st.DrawFn) -> list[fm.ImageCache]:
    n = draw(st.integers(0, 14))
    return [draw(caches(f"imc-{i:02d}")) for i in range(n)]


@st.composite
def policies(draw: st.DrawFn) -> fm.MatchPolicy:
    return fm.MatchPolicy(
        auto=draw(st.integers(0, 9)) > 0,
        perfect_match=draw(st.booleans()),
        match_count=draw(st.none() | st.integers(1, 4)),
        cache_id=draw(st.none() | st.none() | st.sampled_from(["imc-00", "imc-03", "imc-99"])),
        storage_gib=draw(st.none() | st.sampled_from([25, 40, 100.5])),
        allow_partial=draw(st.booleans()),
        extra_storage_gib=draw(st.sampled_from([0, 0, 10])),
        arch=draw(st.sampled_from([None, "amd64", "arm64", "s390x"])),
        os=draw(st.sampled_from([None, "linux", "windows"])),
    )


pods = st.lists(images(), min_size=1, max_size=4)
