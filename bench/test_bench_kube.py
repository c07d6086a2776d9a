"""The cluster sync over loopback HTTP: events applied per second, lag, time to ready.

The fake API server (tests/kube/apiserver.py) runs in a process of its own, so that
its Python does not share the GIL with the sync it feeds; the sync is the real
``kubernetes`` client and :class:`~fastmatch.kube.ClusterIndex`.  ImageCaches hold 5
images each.  Figures (in ``extra_info``):

- ``events_per_s``: a burst replayed from the server's watch history (the server is
  stopped, N caches created, started again: the watch resumes from its version and
  reads them as fast as the server sends), until the index holds all of them;
  ``..._matching``: the same while a thread matches pods flat out;
- ``lag_p99_s``: at a paced 5k events/s, how long events wait between socket and index
  (p99 over batches), and ``tail_lag_s``: from the last write to the index holding it;
- ``ready_s``: a ClusterIndex started against 10k caches until ``wait_ready``;
- ``match_median_us`` idle and during the paced churn (both paced alike: a match
  every half millisecond), and their ratio; and idle in a tight loop.

Run: ``.venv/bin/python -m pytest bench/test_bench_kube.py -p no:randomly --benchmark-only``
(``--benchmark-disable``, as CI does, runs it once on small numbers).
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

import fastmatch as fm
from fastmatch.kube import ClusterIndex, SyncOptions

KUBE_TESTS = str(Path(__file__).resolve().parents[1] / "tests" / "kube")
OPTIONS = SyncOptions(backoff_initial=0.02, backoff_cap=0.05, list_timeout=120.0)
IMAGES_PER_CACHE = 5


POOL = 500  # distinct images the caches list
PACE = 0.0005  # seconds between a webhook's matches during the paced churn, not flat out


def _ref(j: int) -> str:
    return f"registry.example.com/team{j % 40}/app{j}:v1"


def catalog() -> fm.Catalog:
    """Every image of the pool with 4 layers, the first shared by a tenth of them (a
    base image), as a cluster's catalog gives them."""
    def layer(n: int) -> fm.Layer:
        return fm.Layer(f"sha256:{n:064x}", 5_000_000 + n)

    return fm.Catalog([fm.Image(_ref(j), [layer(j % 10), *(layer(1000 + 3 * j + k)
                                                           for k in range(3))])
                       for j in range(POOL)])


def _cache(i: int) -> dict[str, Any]:
    images = [_ref((i * 7 + k) % POOL) for k in range(IMAGES_PER_CACHE)]
    return {"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
            "metadata": {"name": f"c{i:07}"}, "spec": {"images": images},
            "status": {"phase": "Ready", "imageCacheId": f"imc-{i:07}"}}


def _serve(conn: Connection, history: int) -> None:  # in the server's process
    sys.path.insert(0, KUBE_TESTS)
    from apiserver import FakeApiServer

    server = FakeApiServer(history=history)
    server.start()
    conn.send(server.url)
    while True:
        command, *args = conn.recv()
        if command == "create":  # n caches from number `first`, at `rate` per second or flat out
            first, n, rate = args
            began = time.perf_counter()
            for k in range(n):
                server.create("imagecaches", _cache(first + k))
                if rate and k % 50 == 0:
                    ahead = k / rate - (time.perf_counter() - began)
                    if ahead > 0:
                        time.sleep(ahead)
            conn.send(time.perf_counter() - began)
        elif command == "stop":
            server.stop()
            conn.send(None)
        elif command == "start":
            server.start()
            conn.send(None)
        elif command == "exit":
            server.stop()
            conn.send(None)
            return


class Remote:
    """The fake API server in its own process, driven through a pipe."""

    def __init__(self, history: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, history), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()
        self.next = 0

    def call(self, *command: Any) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def create(self, n: int, rate: float | None = None) -> float:
        seconds: float = self.call("create", self.next, n, rate)
        self.next += n
        return seconds

    def api_client(self) -> Any:
        import kubernetes

        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        return kubernetes.client.ApiClient(configuration)

    def close(self) -> None:
        self.call("exit")
        self._process.join(5)


@pytest.fixture
def remote(disabled: bool) -> Iterator[Remote]:
    server = Remote(history=30_000 if disabled else 120_000)
    try:
        yield server
    finally:
        server.close()


def _wait_applied(ci: ClusterIndex, n: int, timeout: float = 120.0) -> float:
    """Wait until the index holds ``n`` caches (every write here creates a new one)."""
    began = time.perf_counter()
    # len() and not stats(): a cheap look, so that watching does not slow what it watches.
    while len(ci.index) < n:
        if time.perf_counter() - began > timeout:
            raise AssertionError(f"only {len(ci.index)} of {n} applied")
        time.sleep(0.002)
    return time.perf_counter() - began


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def _pods() -> list[fm.Image]:
    known = catalog()
    return [known.image(_ref(j)) for j in range(0, POOL, 3)]


def _matcher(ci: ClusterIndex, stop: threading.Event, count: list[int]) -> None:
    images = _pods()
    k = 0
    while not stop.is_set():
        ci.index.match([images[k % len(images)]])
        k += 1
    count[0] = k


@pytest.mark.parametrize("matching", [False, True], ids=["alone", "matching"])
def test_sync_events_per_second(benchmark: Any, disabled: bool, remote: Remote,
                                matching: bool) -> None:
    benchmark.group = "kube sync: events applied per second (ImageCaches of 5 images)"
    n = 2_000 if disabled else 20_000
    with ClusterIndex(remote.api_client(), catalog=catalog(), profile=False,
                      options=OPTIONS) as ci:
        assert ci.wait_ready(30)
        applied = [0]
        rates: list[float] = []

        def setup() -> tuple[tuple[()], dict[str, Any]]:
            remote.call("stop")
            remote.create(n)
            applied[0] += n
            return (), {}

        def run() -> None:
            stop, count = threading.Event(), [0]
            thread = threading.Thread(target=_matcher, args=(ci, stop, count), daemon=True)
            if matching:
                thread.start()
            began = time.perf_counter()
            remote.call("start")
            _wait_applied(ci, applied[0])
            rates.append(n / (time.perf_counter() - began))
            stop.set()
            if matching:
                thread.join(5)

        benchmark.pedantic(run, setup=setup, rounds=1 if disabled else 3, iterations=1)
        benchmark.extra_info["events_per_s"] = round(statistics.median(rates))
        benchmark.extra_info["lag_p99_s"] = round(ci.stats()["lag_p99_seconds"], 4)
        assert len(ci.index) == applied[0]


def test_sync_lag_at_a_paced_5k_events_per_second(benchmark: Any, disabled: bool,
                                                  remote: Remote) -> None:
    benchmark.group = "kube sync: lag at 5k events/s"
    seconds = 1 if disabled else 4
    rate = 5_000
    with ClusterIndex(remote.api_client(), catalog=catalog(), profile=False,
                      options=OPTIONS) as ci:
        assert ci.wait_ready(30)
        images = _pods()
        # The caches of a previous run, so that idle and churning matches face the same
        # index size (an image is in about 200 of them).
        remote.create(rate * seconds)
        _wait_applied(ci, remote.next)
        # Idle, paced as during the churn: a match after a sleep runs on cold caches and
        # costs several times one in a tight loop (about 20 us against 3 us on this
        # index, with no sync at all), so only the same pace compares the two.  The
        # tight loop's figure is kept too.
        idle, hot = [], []
        for k in range(2000):
            began = time.perf_counter()
            ci.index.match([images[k % len(images)]])
            hot.append(time.perf_counter() - began)
        for k in range(2000):
            began = time.perf_counter()
            ci.index.match([images[k % len(images)]])
            idle.append(time.perf_counter() - began)
            time.sleep(PACE)
        during: list[float] = []
        figures: dict[str, float] = {}

        def run() -> None:
            done = threading.Event()
            total = remote.next + rate * seconds

            def produce() -> None:
                figures["server_s"] = remote.create(rate * seconds, rate)
                figures["last_write"] = time.perf_counter()
                done.set()

            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            k = 0
            while not done.is_set():
                began = time.perf_counter()
                ci.index.match([images[k % len(images)]])
                during.append(time.perf_counter() - began)
                k += 1
                time.sleep(PACE)
            producer.join()
            _wait_applied(ci, total)
            figures["tail_lag_s"] = time.perf_counter() - figures["last_write"]

        benchmark.pedantic(run, rounds=1, iterations=1)
        stats = ci.stats()
        benchmark.extra_info["offered_per_s"] = round(rate * seconds / figures["server_s"])
        benchmark.extra_info["lag_p99_s"] = round(stats["lag_p99_seconds"], 4)
        benchmark.extra_info["lag_max_s"] = round(stats["lag_max_seconds"], 4)
        benchmark.extra_info["tail_lag_s"] = round(figures["tail_lag_s"], 4)
        idle_us, during_us = statistics.median(idle) * 1e6, statistics.median(during) * 1e6
        benchmark.extra_info["match_median_us_idle_tight_loop"] = round(
            statistics.median(hot) * 1e6, 2)
        benchmark.extra_info["match_median_us_idle"] = round(idle_us, 2)
        benchmark.extra_info["match_median_us_churn"] = round(during_us, 2)
        benchmark.extra_info["match_ratio"] = round(during_us / idle_us, 2)
        # The tail: a match that comes while the applier writes a batch waits for it.
        benchmark.extra_info["match_p99_us_idle"] = round(_p99(idle) * 1e6, 2)
        benchmark.extra_info["match_p99_us_churn"] = round(_p99(during) * 1e6, 2)
        assert len(ci.index) == remote.next


def test_initial_sync_to_ready(benchmark: Any, disabled: bool, remote: Remote) -> None:
    benchmark.group = "kube sync: 10k caches listed to ready"
    n = 1_000 if disabled else 10_000
    remote.create(n)
    times: list[float] = []

    def run() -> None:
        ci = ClusterIndex(remote.api_client(), catalog=catalog(), profile=False,
                      options=OPTIONS)
        began = time.perf_counter()
        ci.start()
        try:
            assert ci.wait_ready(120)
            times.append(time.perf_counter() - began)
            assert len(ci.index) == n
        finally:
            ci.stop()

    benchmark.pedantic(run, rounds=1 if disabled else 3, iterations=1)
    benchmark.extra_info["ready_s"] = round(statistics.median(times), 3)


def test_randomized_run_converges(benchmark: Any, disabled: bool) -> None:
    """100k random creates, updates and deletes over 300 names, with compactions and
    dropped streams at random points (kube-rs's test, over HTTP): at each of ten
    checkpoints, and at the end, the index equals the server's state."""
    benchmark.group = "kube sync: randomized 100k events"
    sys.path.insert(0, KUBE_TESTS)
    import random

    from apiserver import FakeApiServer, served

    from fastmatch.inputs import cache_from_object

    total = 5_000 if disabled else 100_000
    rng = random.Random(100_000)
    server = FakeApiServer(history=2_000, bookmark_interval=1.0)
    names = [f"c{i:03}" for i in range(300)]
    pool = [f"app{i}:{v}" for i in range(30) for v in range(3)]
    held: set[str] = set()

    def state(caches: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {c.id: (c.phase.value, tuple(i.ref for i in c.images)) for c in caches}

    def expected() -> dict[str, tuple[str, tuple[str, ...]]]:
        return state(cache_from_object(o) for o in server.objects("imagecaches"))

    def converged(ci: ClusterIndex, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state(ci.index) == expected():
                return True
            time.sleep(0.05)
        return False

    for _ in served(server):
        options = SyncOptions(dead_stream_seconds=5.0, backoff_initial=0.02, backoff_cap=0.1)
        with ClusterIndex(server.api_client(), profile=False, options=options) as ci:
            assert ci.wait_ready(10)

            def run() -> None:
                for checkpoint in range(10):
                    for _ in range(total // 10):
                        name, roll = rng.choice(names), rng.random()
                        if roll < 0.002:
                            server.compact(keep=rng.randrange(0, 200))
                        elif roll < 0.004:
                            server.drop_watches()
                        if name in held and rng.random() < 0.3:
                            server.delete("imagecaches", name)
                            held.discard(name)
                            continue
                        obj = {"metadata": {"name": name},
                               "spec": {"images": rng.sample(pool, rng.randint(1, 5))},
                               "status": {"phase": rng.choice(["Ready", "Creating", "Failed"])}}
                        if rng.random() < 0.5:
                            obj["status"]["imageCacheId"] = f"imc-{name}"
                        (server.update if name in held else server.create)("imagecaches", obj)
                        held.add(name)
                    assert converged(ci), f"checkpoint {checkpoint}: {ci.problems()[-3:]}"

            benchmark.pedantic(run, rounds=1, iterations=1)
            stats = ci.stats()
            for key in ("events_received", "events_applied", "relists", "dead_streams",
                        "watch_errors"):
                benchmark.extra_info[key] = stats[key]
            assert stats["relists"] >= 1


def _apply_events(n: int, apply: bool = True) -> None:
    """Decode and apply ``n`` watch-event lines as the applier does (no HTTP): run under
    callgrind at two ``n``, with and without ``apply`` (the lines' making is not the
    sync's), for the instructions an event costs."""
    import json

    from fastmatch.kube.stats import SyncStats
    from fastmatch.kube.store import CacheStore
    from fastmatch.kube.sync import decode_lines

    lines = []
    for i in range(n):
        obj = _cache(i)
        obj["metadata"].update(uid=str(i), resourceVersion=str(i + 1))
        lines.append(json.dumps({"type": "ADDED", "object": obj}).encode())
    store = CacheStore(fm.CacheIndex(), stats=SyncStats(), layers=catalog())
    if not apply:
        return
    for start in range(0, n, 500):
        events = decode_lines(lines[start:start + 500])  # as the reader decodes a chunk
        store.apply([(event["type"], event["object"]) for event in events])
    assert len(store) == n


if __name__ == "__main__":
    # valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    #     .venv/bin/python bench/test_bench_kube.py N [setup]   (N = 2000 and 6000)
    _apply_events(int(sys.argv[1]), apply=sys.argv[2:] != ["setup"])
