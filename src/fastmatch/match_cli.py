"""``fastmatch match``: what ECI would do with these pods, and why (SPEC §9).

Reads image caches (``ImageCache`` objects, ``DescribeImageCaches`` answers)
and pods (Pods and workloads, one decision per replica), applies the
eci-profile when one is given, decides every pod in one ``match_many`` batch
(so replicas propose one cache to create between them, SPEC §3.7), and prints
the decisions: a table for people, or JSON for programs.

The table gives a workload's replicas one row when they got the same decision
(the first replica proposes the cache to create, the others say it is
proposed already: still one decision), then a summary line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import IO, Any

from fastmatch import argtypes
from fastmatch.cluster_files import Decisions, decide, read_cluster
from fastmatch.index import CacheIndex
from fastmatch.inputs import PodRequest, read_catalog
from fastmatch.result import MatchResult

__all__ = ["Decisions", "Row", "add_match_parser", "decisions", "run_match", "table_rows"]

_EPILOG = """\
exit status: 0 every pod decided (a rejected pod is a decision), 2 bad usage or
input file (one line on stderr naming the file, the document and the field).

example (the files are in the repository's examples/):
  fastmatch match --caches examples/imagecaches.json examples/describe-image-caches.json \\
      --catalog examples/catalog.jsonl --profile examples/eci-profile.yaml \\
      --namespaces examples/namespaces.yaml --now 2026-12-01T00:00:00Z \\
      examples/deployment.yaml examples/workloads.yaml examples/pods.yaml
"""

_HEADER = ("NAMESPACE", "POD", "OUTCOME", "CACHE", "CREATE", "REASON")
Row = tuple[str, str, str, str, str, str]




def add_match_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fastmatch match`` to an argparse sub-parser set."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "match",
        help="what ECI would do with these pods: the cache each one starts from, and why",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "pods", nargs="+", metavar="PODS",
        help="Pods and workloads (YAML or JSON files, directories, - for standard input); "
             "after another option or --, since --caches takes several paths",
    )
    parser.add_argument(
        "--caches", nargs="+", action="extend", required=True, metavar="PATH",
        help="ImageCache objects (kubectl get imagecaches -o json or -o yaml) and "
             "DescribeImageCaches answers: files, directories or - (repeatable)",
    )
    parser.add_argument("--catalog", metavar="FILE",
                        help="image catalog (JSON Lines, as fastmatch resolve writes it): the "
                             "images' layers; without it images are compared by reference")
    parser.add_argument("--profile", metavar="FILE",
                        help="the eci-profile ConfigMap (kube-system/eci-profile): its "
                             "selectors' annotations are added to the pods they select")
    parser.add_argument("--namespaces", metavar="FILE",
                        help="Namespace objects (kubectl get namespaces -o yaml): the labels "
                             "the profile's namespaceSelector reads")
    parser.add_argument("--now", type=argtypes.time, default=None, metavar="TIME",
                        help="decide as at this time (ISO 8601; default: now)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table for people (default), json for programs")
    parser.set_defaults(func=run_match, parser=parser)
    return parser


def _check_stdin(args: argparse.Namespace) -> None:
    # Standard input can be read once: two inputs from "-" would leave the second empty.
    named = [*(["--caches"] * args.caches.count("-")), *(["PODS"] * args.pods.count("-"))]
    named += [f"--{opt}" for opt in ("catalog", "profile", "namespaces")
              if getattr(args, opt) == "-"]
    if len(named) > 1:
        args.parser.error(f"standard input (-) can be read once, but {' and '.join(named)} "
                          "both ask for it")


def decisions(args: argparse.Namespace) -> Decisions:
    """Read the inputs ``args`` name and decide every pod in one batch; raise
    :class:`~fastmatch.errors.FastmatchError` on bad input."""
    catalog = read_catalog(args.catalog) if args.catalog is not None else None
    files = read_cluster(args.caches, args.pods, catalog=catalog, profile=args.profile,
                         namespaces=args.namespaces, now=args.now)
    return decide(files)


def run_match(args: argparse.Namespace) -> int:
    """Run ``fastmatch match``; print the decisions (a table, or JSON with
    ``--format json``)."""
    _check_stdin(args)
    requests, results, index, now, warnings = decisions(args)
    for warning in warnings:
        print(f"fastmatch match: warning: {warning}", file=sys.stderr)
    out = sys.stdout
    if args.format == "json":
        rows = [{"namespace": q.namespace, "name": q.name, **r.as_dict()}
                for q, r in zip(requests, results)]
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    _write_table(out, table_rows(requests, results))
    out.write(("\n" if requests else "") + _summary(results, index, now) + "\n")
    return 0


# -- the table -------------------------------------------------------------------


def _same_decision(first: MatchResult, other: MatchResult) -> bool:
    """Whether a later replica got ``first``'s decision: the same outcome, cache and
    scores, and no proposal of its own (the first replica's covers it)."""
    return (
        other.outcome == first.outcome
        and other.cache_id == first.cache_id
        and other.named == first.named
        and other.full == first.full
        and other.covered == first.covered
        and other.images == first.images
        and other.create is None
        and (first.create is not None or other.reason == first.reason)
    )


def _runs(requests: Sequence[PodRequest]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each workload's replicas (consecutive, sharing their images),
    a bare pod alone."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(requests) + 1):
        if i < len(requests):
            a, b = requests[start], requests[i]
            if (a.workload and b.workload == a.workload and b.namespace == a.namespace
                    and b.images is a.images):
                continue
        runs.append((start, i))
        start = i
    return runs


def _pod_label(requests: Sequence[PodRequest], start: int, stop: int, total: int) -> str:
    """``web (Deployment, 3 pods)`` for a whole workload, ``web-1 (Deployment web)`` for
    one of its replicas, ``migrate`` for a bare pod."""
    first = requests[start]
    if not first.workload:
        return first.name
    kind, _, name = first.workload.partition(" ")
    count = stop - start
    if count == total:
        if first.name == name:  # a DaemonSet, Job, CronJob: one request, named after it
            return f"{name} ({kind})"
        return f"{name} ({kind}, {count} pod{'s' if count != 1 else ''})"
    if count == 1:
        return f"{first.name} ({first.workload})"
    last = requests[stop - 1]
    return f"{first.name}..{last.name} ({first.workload}, {count} of {total} pods)"


def _cache_cell(result: MatchResult) -> str:
    if result.cache_id is None:
        return "-"
    return result.cache_id + (" (named)" if result.named and result.outcome == "use" else "")


def _create_cell(result: MatchResult) -> str:
    create = result.create
    return f"{create.name} ({create.size_gib} GiB)" if create is not None else "-"


def table_rows(
    requests: Sequence[PodRequest], results: Sequence[MatchResult]
) -> list[Row]:
    """The table's rows: one per workload whose replicas got the same decision, else one
    per run of replicas that did; one per bare pod."""
    rows: list[Row] = []
    for start, stop in _runs(requests):
        total = stop - start
        i = start
        while i < stop:
            j = i + 1
            while j < stop and _same_decision(results[i], results[j]):
                j += 1
            r = results[i]
            rows.append((requests[i].namespace, _pod_label(requests, i, j, total), r.outcome,
                         _cache_cell(r), _create_cell(r), r.reason))
            i = j
    return rows


def _write_table(out: IO[str], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        return
    table = [_HEADER, *rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(_HEADER) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


def _summary(results: Sequence[MatchResult], index: CacheIndex, now: datetime) -> str:
    used = sum(r.outcome == "use" for r in results)
    perfect = sum(r.outcome == "use" and r.perfect for r in results)
    rejected = sum(r.outcome == "reject" for r in results)
    proposals = sum(r.create is not None for r in results)
    pods = len(results)
    at = now.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        f"{pods} pod{'s' if pods != 1 else ''} against {len(index)} image caches "
        f"({index.ready} Ready) at {at}: {used} used a cache ({perfect} with all their images), "
        f"{pods - used - rejected} no cache, {rejected} rejected; "
        f"{proposals} cache{'s' if proposals != 1 else ''} to create"
    )
