"""``fastmatch demo``: the main job on a built-in example.

Builds a synthetic cluster (about 2,000 caches and 10,000 pods with realistic
layer sharing, see :mod:`fastmatch.synthetic`), indexes the caches, matches
every pod, and prints what the caches buy: full hits, partial hits, misses,
rejected pods, bytes served from caches, proposed caches, and how long a
match takes; then the cluster's ``fastmatch report`` (its summary table, and
the HTML page written to ``report.html``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from typing import Any

from fastmatch import argtypes
from fastmatch.batch import default_threads
from fastmatch.errors import FastmatchError
from fastmatch.explain import human_bytes
from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest
from fastmatch.report import ReportExtraError, build_report, write_html, write_table
from fastmatch.result import MatchResult
from fastmatch.synthetic import SyntheticCluster, synthetic_cluster

__all__ = ["add_demo_parser", "run_demo", "summarize"]


def summarize(results: list[MatchResult], pod_bytes: list[int]) -> dict[str, Any]:
    """Counts and bytes over a list of match results (one per pod)."""
    kinds: Counter[str] = Counter()
    for result in results:
        if result.outcome == "use":
            kinds["full hit" if result.perfect else "partial hit"] += 1
        elif result.outcome == "reject":
            kinds["rejected"] += 1
        else:
            kinds["miss"] += 1
    # Replicas of one workload get one proposal each; one cache serves them all.
    proposals = {frozenset(i.key for i in r.create.images) for r in results if r.create is not None}
    served = sum(r.covered for r in results if r.outcome == "use")
    return {
        "pods": len(results),
        "full_hits": kinds["full hit"],
        "partial_hits": kinds["partial hit"],
        "misses": kinds["miss"],
        "rejected": kinds["rejected"],
        "bytes_wanted": sum(pod_bytes),
        "bytes_served": served,
        "proposals": len(proposals),
    }




def _requests(cluster: SyntheticCluster) -> list[PodRequest]:
    return [PodRequest(images, policy.annotations(), name=name)
            for images, policy, name in zip(cluster.pods, cluster.policies, cluster.pod_names)]


def _report(cluster: SyntheticCluster, index: CacheIndex, results: list[MatchResult],
            html: str | None) -> None:
    """Print the cluster's report, and write its HTML page to ``html`` (unless ``None``)."""
    report = build_report(index, _requests(cluster), results, cluster.now)
    print()
    sys.stdout.flush()
    write_table(report, sys.stdout)
    if html is None:
        return
    try:
        with open(html, "w", encoding="utf-8") as out:
            write_html(report, out, title="fastmatch demo: a synthetic cluster's report")
    except ReportExtraError as exc:
        print(f"\n  (no {html}: {exc})")
        return
    except OSError as exc:
        raise FastmatchError(f"--html {html}: cannot write there ({exc.strerror})") from None
    print(f"\n  the whole report, with charts: {html} (open it in a browser)")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; print a report (or JSON with ``--json``)."""
    t0 = time.perf_counter()
    cluster = synthetic_cluster(args.caches, args.pods, seed=args.seed)
    t1 = time.perf_counter()
    index = CacheIndex(cluster.caches)
    t2 = time.perf_counter()
    threads = args.threads or default_threads()
    results = index.match_many(
        cluster.pods,
        cluster.policies,
        now=cluster.now,
        threads=threads,
        pod_names=cluster.pod_names,
    )
    t3 = time.perf_counter()
    # One pod at a time, as an admission webhook calls it.
    sample = range(0, len(cluster.pods), max(1, len(cluster.pods) // 2000))
    latencies = []
    for i in sample:
        start = time.perf_counter()
        index.match(
            cluster.pods[i], cluster.policies[i], pod_name=cluster.pod_names[i], now=cluster.now
        )
        latencies.append(time.perf_counter() - start)
    pod_bytes = [
        sum({k: v for im in pod for k, v in im.layer_sizes().items()}.values())
        for pod in cluster.pods
    ]
    summary = summarize(results, pod_bytes)
    summary.update(
        {
            "caches": len(index),
            "ready_caches": index.ready,
            "seconds_generate": t1 - t0,
            "seconds_index": t2 - t1,
            "seconds_match_many": t3 - t2,
            "threads": threads,
            "match_many_us_per_pod": 1e6 * (t3 - t2) / max(1, len(results)),
            "match_us_p50": 1e6 * statistics.median(latencies) if latencies else 0.0,
            "match_us_p99": 1e6 * _percentile(latencies, 0.99) if latencies else 0.0,
        }
    )
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    n = max(1, summary["pods"])

    def share(k: str) -> str:
        return f"{summary[k]:>7,}  ({100 * summary[k] / n:4.1f}%)"

    wanted = max(1, summary["bytes_wanted"])
    print(
        f"fastmatch demo: {summary['caches']:,} image caches ({summary['ready_caches']:,} Ready), "
        f"{summary['pods']:,} pods, seed {args.seed}"
    )
    print()
    print(f"  full hits      {share('full_hits')}   every image of the pod cached")
    print(f"  partial hits   {share('partial_hits')}   some images cached")
    print(f"  misses         {share('misses')}   no usable cache")
    print(f"  rejected       {share('rejected')}   named cache missing or not Ready")
    print(
        f"  caches to create: {summary['proposals']:,} distinct image sets (auto-create proposals)"
    )
    print()
    print(
        f"  bytes served from caches  {human_bytes(summary['bytes_served'])} of "
        f"{human_bytes(summary['bytes_wanted'])} pulled by the pods "
        f"({100 * summary['bytes_served'] / wanted:.1f}%)"
    )
    print()
    print(
        f"  index built in {summary['seconds_index'] * 1e3:,.0f} ms; "
        f"match_many on {threads} thread(s): {summary['seconds_match_many'] * 1e3:,.0f} ms "
        f"({summary['match_many_us_per_pod']:.1f} µs a pod)"
    )
    print(
        f"  one pod at a time (as a webhook calls it): p50 {summary['match_us_p50']:.1f} µs, "
        f"p99 {summary['match_us_p99']:.1f} µs"
    )
    print()
    print("  a few decisions, as fastmatch explains them:")
    shown: set[str] = set()
    for name, result in zip(cluster.pod_names, results):
        kind = result.outcome + ("-perfect" if result.perfect else "")
        if kind in shown:
            continue
        shown.add(kind)
        print(f"    {name}: {result.reason}")
    _report(cluster, index, results, None if args.no_html else args.html)
    return 0


# Past these a synthetic cluster no longer fits a small machine's memory.
MAX_DEMO_CACHES = 1_000_000
MAX_DEMO_PODS = 1_000_000
MAX_DEMO_THREADS = 1024




def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fastmatch demo`` to an argparse sub-parser set."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="match a built-in synthetic cluster and print what the caches buy",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--caches", type=argtypes.integer(1, MAX_DEMO_CACHES), default=2000,
                        metavar="N", help="image caches (default 2000)")
    parser.add_argument("--pods", type=argtypes.integer(1, MAX_DEMO_PODS), default=10000,
                        metavar="N", help="pods (default 10000)")
    parser.add_argument("--seed", type=argtypes.integer(0), default=0, metavar="N",
                        help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--threads", type=argtypes.integer(1, MAX_DEMO_THREADS), default=None,
                        metavar="N", help="threads for match_many (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--html", default="report.html", metavar="PATH",
                        help="write the cluster's HTML report here (default report.html)")
    parser.add_argument("--no-html", action="store_true", help="write no HTML report")
    parser.set_defaults(func=run_demo)
    return parser
