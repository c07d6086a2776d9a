"""``fastmatch bench``: a short run of the benchmark suite, without pytest.

It measures on synthetic clusters (:mod:`fastmatch.synthetic`) what the
suite in ``bench/`` measures, with ``time.perf_counter`` and medians, and
prints one table, so that anyone can check fastmatch's performance claims on
their own machine:

* one pod against 1k and 10k caches (and 100k with ``--full``): fastmatch
  and the alternatives of :mod:`fastmatch.benchmark.alternatives` (Python sets, the
  reference, NumPy, pyroaring when installed), median and p99 per pod, and
  how many times slower than fastmatch each is; every alternative's decisions
  are first checked against fastmatch's;
* ``match_many`` on 1 and 2 threads;
* cache upserts and removes per second, and the match median while another
  thread applies upserts and removes;
* building, saving and loading an index; bytes per (cache, layer) pair.

The posting-read reference point of the full suite needs a C compiler and
lives in ``bench/``; it is not part of this command.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastmatch as fm
from fastmatch.benchmark.alternatives import (
    ALTERNATIVES,
    check_same_decisions,
    roaring_available,
)
from fastmatch.model import ImageCache
from fastmatch.synthetic import synthetic_cluster

__all__ = ["Row", "add_bench_parser", "run_bench", "run_benchmarks"]

SEED = 20260101


@dataclass
class Row:
    """One line of the table: what was measured, the median and p99, and a note."""

    name: str
    median: float  # seconds (or the value, when ``unit`` says so)
    p99: float | None = None
    ratio: float | None = None
    note: str = ""
    unit: str = "time"


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _per_call(
    fn: Callable[[Any], object], inputs: Sequence[Any], budget: float, min_calls: int = 5
) -> tuple[float, float]:
    """Median and p99 of ``fn(x)`` per call, cycling through ``inputs`` for about ``budget`` s."""
    times: list[float] = []
    clock = time.perf_counter
    deadline = clock() + budget
    i = 0
    while len(times) < min_calls or (clock() < deadline and len(times) < 50 * len(inputs)):
        x = inputs[i % len(inputs)]
        i += 1
        start = clock()
        fn(x)
        times.append(clock() - start)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def _one_pod(n_caches: int, quick: bool, log: Callable[[str], None]) -> list[Row]:
    sample = 64 if quick else 256
    cluster = synthetic_cluster(n_caches, sample, seed=SEED, policy_shares=(0.0, 0.0, 0.0))
    index = fm.CacheIndex(cluster.caches)
    now, pods, policy = cluster.now, cluster.pods, fm.MatchPolicy()
    budget = 1.0 if quick else 3.0
    med, p99 = _per_call(lambda pod: index.match(pod, policy, now=now), pods, budget)
    label = f"one pod vs {_count(n_caches)} caches"
    rows = [Row(f"{label}: fastmatch", med, p99, 1.0)]
    for key, cls in ALTERNATIVES.items():
        if key == "roaring" and not roaring_available():
            rows.append(Row(f"{label}: {key}", float("nan"), note="pyroaring not installed"))
            continue
        alt = cls(cluster.caches)
        # The reference scans every cache in Python: check and time it on fewer pods.
        subset = (
            pods[: max(4, int(sample * min(1.0, 2_000 / n_caches)))] if key == "reference" else pods
        )
        log(f"  checking {alt.name} against fastmatch on {len(subset)} pods")
        check_same_decisions(alt, index, subset, None, now)

        def run(pod: Any, alt: Any = alt) -> object:
            return alt.match(pod, now=now)

        a_med, a_p99 = _per_call(run, subset, budget)
        rows.append(Row(f"{label}: {alt.name}", a_med, a_p99, a_med / med, "same decisions"))
    return rows


def _match_many(n_caches: int, n_pods: int, quick: bool) -> list[Row]:
    cluster = synthetic_cluster(n_caches, n_pods, seed=SEED)
    index = fm.CacheIndex(cluster.caches)
    label = f"match_many {_count(n_pods)} pods vs {_count(n_caches)} caches"
    rows = []
    base = 0.0
    for threads in (1, 2):
        runs = []
        for _ in range(2 if quick else 3):
            start = time.perf_counter()
            index.match_many(cluster.pods, cluster.policies, now=cluster.now, threads=threads)
            runs.append(time.perf_counter() - start)
        med = statistics.median(runs)
        base = base or med
        rows.append(
            Row(
                f"{label}: {threads} thread{'s' if threads > 1 else ''}",
                med,
                note=f"{med / n_pods * 1e6:.1f} us/pod; {base / med:.2f}x vs 1 thread",
            )
        )
    return rows


def _churn_caches(catalog: Sequence[Any], n: int, created: Any) -> list[ImageCache]:
    step = 7919
    return [
        ImageCache(
            f"imc-churn-{i:08d}",
            [catalog[(i * 5 + k) * step % len(catalog)] for k in range(5)],
            created=created,
        )
        for i in range(n)
    ]


def _churn(n_caches: int, quick: bool) -> list[Row]:
    cluster = synthetic_cluster(n_caches, 64, seed=SEED, policy_shares=(0.0, 0.0, 0.0))
    index = fm.CacheIndex(cluster.caches)
    batch = _churn_caches(cluster.images, min(n_caches, 5_000 if quick else 10_000), cluster.now)
    ups, rms = [], []
    for _ in range(3 if quick else 7):
        start = time.perf_counter()
        for cache in batch:
            index.upsert(cache)
        ups.append(time.perf_counter() - start)
        start = time.perf_counter()
        for cache in batch:
            index.remove(cache.id)
        rms.append(time.perf_counter() - start)
    label = f"churn on {_count(n_caches)} caches (5 images each)"
    rows = [
        Row(f"{label}: upserts/s", len(batch) / statistics.median(ups), unit="rate"),
        Row(f"{label}: removes/s", len(batch) / statistics.median(rms), unit="rate"),
    ]
    now, policy, budget = cluster.now, fm.MatchPolicy(), 1.0 if quick else 3.0

    def match(pod: Any) -> object:
        return index.match(pod, policy, now=now)

    idle, idle_p99 = _per_call(match, cluster.pods, budget)
    rows.append(Row(f"match, idle index ({_count(n_caches)} caches)", idle, idle_p99, 1.0))
    stop = threading.Event()
    done = [0]
    small = batch[:1000]

    def churn() -> None:
        # Paced at 10k operations/s: a steady stream, as from a Kubernetes watch.
        start = time.perf_counter()
        while not stop.is_set():
            for cache in small:
                index.upsert(cache)
                index.remove(cache.id)
                done[0] += 2
                ahead = done[0] / 10_000 - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
                if stop.is_set():
                    return

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        busy, busy_p99 = _per_call(match, cluster.pods, budget)
    finally:
        stop.set()
        thread.join()
    rows.append(
        Row(
            "match, another thread churning (10k ops/s)",
            busy,
            busy_p99,
            busy / idle,
            "ratio vs idle",
        )
    )
    return rows


def _build(sizes: Sequence[int], quick: bool) -> list[Row]:
    rows = []
    for n in sizes:
        caches = synthetic_cluster(n, 0, seed=SEED).caches
        runs = []
        index = fm.CacheIndex()
        for _ in range(1 if quick or n >= 100_000 else 3):
            start = time.perf_counter()
            index = fm.CacheIndex(caches)
            runs.append(time.perf_counter() - start)
        med = statistics.median(runs)
        per_pair = index.nbytes() / max(index.pairs, 1)
        rows.append(
            Row(
                f"build index of {_count(n)} caches",
                med,
                note=f"{med / n * 1e6:.1f} us/cache; {per_pair:.1f} bytes/pair; "
                f"{index.nbytes() / max(index.ready, 1):.0f} bytes/cache",
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.npz"
            start = time.perf_counter()
            index.save(path)
            saved = time.perf_counter() - start
            loads = []
            for _ in range(3):
                start = time.perf_counter()
                fm.CacheIndex.load(path)
                loads.append(time.perf_counter() - start)
            rows.append(
                Row(
                    f"load saved index of {_count(n)} caches",
                    statistics.median(loads),
                    note=f"save {_fmt_time(saved)}; {path.stat().st_size / 1e6:.1f} MB file",
                )
            )
    return rows


def _table(rows: Sequence[Row], header: str) -> str:
    lines = [header, ""]
    width = max(len(r.name) for r in rows)
    lines.append(f"{'benchmark':<{width}}  {'median':>11}  {'p99':>11}  {'x fastmatch':>11}  note")
    lines.append("-" * (width + 50))
    for r in rows:
        if r.unit == "rate":
            med = f"{r.median:,.0f}"
        elif r.median != r.median:  # NaN: not run
            med = "-"
        else:
            med = _fmt_time(r.median)
        p99 = _fmt_time(r.p99) if r.p99 is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        lines.append(f"{r.name:<{width}}  {med:>11}  {p99:>11}  {ratio:>11}  {r.note}")
    return "\n".join(lines)


def machine() -> str:
    """One line about the machine: CPU model, cores usable, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return f"{cpu}, {cores} cores usable, Python {platform.python_version()}"


def run_benchmarks(
    quick: bool = True,
    log: Callable[[str], None] | None = None,
    *,
    sizes: Sequence[int] | None = None,
    pods: int | None = None,
) -> str:
    """Run the short (``quick``) or the full benchmark run; return the table as text.

    ``sizes`` (cache counts for the one-pod and build rows; the largest is
    also used for ``match_many`` and churn) and ``pods`` (for ``match_many``)
    override the defaults, e.g. for a smoke test.
    """
    say = log or (lambda _msg: None)
    if sizes is None:
        sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    many = min(max(sizes), 10_000)
    rows: list[Row] = []
    for n in sizes:
        say(f"one pod vs {n:,} caches")
        rows += _one_pod(n, quick, say)
    say("match_many")
    rows += _match_many(many, pods or (20_000 if quick else 100_000), quick)
    say("churn")
    rows += _churn(many, quick)
    say("build, save, load")
    rows += _build(sizes, quick)
    header = f"fastmatch bench ({'quick' if quick else 'full'}) on {machine()}"
    return _table(rows, header)


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` command to an ``argparse`` sub-parser collection."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run a short benchmark and print the table",
        description=(
            "Measure fastmatch against Python sets, the reference, NumPy and pyroaring on "
            "synthetic clusters, and print medians and ratios."
        ),
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="the longer run: 100k caches too, more pods and rounds (several minutes)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    parser.set_defaults(func=run_bench)
    return parser


def run_bench(args: argparse.Namespace) -> int:
    """Run ``fastmatch bench``; print the table; return the exit status."""
    quiet = getattr(args, "quiet", False)

    def log(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    print(run_benchmarks(quick=not getattr(args, "full", False), log=log))
    return 0
