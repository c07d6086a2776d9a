"""``fastmatch report``: a whole cluster's pods and caches at once (SPEC §11).

Reads the caches and the pods (one decision per replica) as ``fastmatch
match`` does, decides them in one batch (on this machine's cores, or split
across a Dask cluster), and says what the caches buy: the pods served, the
bytes and seconds saved, each cache's use, the caches to create and to
delete, and, given a pod history, the hit rate ECI's auto-create would give
day by day.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

from fastmatch import argtypes
from fastmatch.cluster_files import read_cluster
from fastmatch.errors import OutputFileError
from fastmatch.index import CacheIndex
from fastmatch.inputs import LayerSource, read_catalog, read_namespaces, read_profile
from fastmatch.report import (
    DEFAULT_BANDWIDTH,
    ClusterReport,
    build_report,
    decide_in_parts,
    decide_on_dask,
    read_history,
    simulate,
    write_csv,
    write_html,
    write_json,
    write_table,
)
from fastmatch.report.recommend import DEFAULT_MAX_CREATE
from fastmatch.report.simulate import DEFAULT_CREATION_DELAY, TimedPod

__all__ = ["add_report_parser", "make_report", "run_report"]

_EPILOG = """\
exit status: 0 report written, 2 bad usage or input file (one line on stderr
naming the file, the document and the field).

example (the files are in the repository's examples/):
  fastmatch report --caches examples/imagecaches.json examples/describe-image-caches.json \\
      --pods examples/deployment.yaml examples/workloads.yaml examples/pods.yaml \\
      --catalog examples/catalog.jsonl --now 2026-12-01T00:00:00Z --format html -o report.html
"""

_PARTS_WITH_PROGRESS = 16  # batches the pods are decided in when a bar shows progress










def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fastmatch report`` to an argparse sub-parser set."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="a whole cluster at once: what the caches buy, which to create or delete",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group("input")
    src.add_argument("--caches", nargs="+", action="extend", required=True, metavar="PATH",
                     help="ImageCache objects and DescribeImageCaches answers: files, "
                          "directories or - (repeatable)")
    src.add_argument("--pods", nargs="+", action="extend", required=True, metavar="PATH",
                     help="Pods and workloads (a workload counts once per replica): files, "
                          "directories or - (repeatable)")
    src.add_argument("--catalog", metavar="FILE",
                     help="image catalog (JSON Lines, as fastmatch resolve writes it): the "
                          "images' layers; without it (or --resolve) images are compared by "
                          "reference")
    src.add_argument("--resolve", action="store_true",
                     help="ask the images' registries for their layers (with the resolver's "
                          "on-disk cache; after the catalog, when one is given)")
    src.add_argument("--profile", metavar="FILE",
                     help="the eci-profile ConfigMap (kube-system/eci-profile)")
    src.add_argument("--namespaces", metavar="FILE",
                     help="Namespace objects: the labels the profile's namespaceSelector reads")
    src.add_argument("--now", type=argtypes.time, default=None, metavar="TIME",
                     help="decide as at this time (ISO 8601; default: now)")
    src.add_argument("--bandwidth", type=argtypes.number(strict=True, unit="MB/s"),
                     default=DEFAULT_BANDWIDTH, metavar="MBPS",
                     help=f"pull bandwidth in MB/s (10^6 bytes) that turns bytes into seconds "
                          f"saved (default {DEFAULT_BANDWIDTH:g})")
    rec = parser.add_argument_group("recommendations and simulation")
    rec.add_argument("--max-create", type=argtypes.integer(0), default=DEFAULT_MAX_CREATE,
                     metavar="N",
                     help=f"caches to recommend creating, at most (default {DEFAULT_MAX_CREATE})")
    rec.add_argument("--simulate", action="store_true",
                     help="simulate ECI's auto-create over the pods' creation times "
                          "(metadata.creationTimestamp)")
    rec.add_argument("--history", nargs="+", action="extend", metavar="FILE",
                     help="simulate over this pod history instead: Pods and workloads with "
                          "their creation times, or JSON Lines of {\"time\", \"pod\"}")
    rec.add_argument("--creation-delay", type=argtypes.minutes, default=DEFAULT_CREATION_DELAY,
                     metavar="MINUTES",
                     help="how long ECI takes to make a created cache Ready (default "
                          f"{DEFAULT_CREATION_DELAY.total_seconds() / 60:g})")
    rec.add_argument("--quota", type=argtypes.integer(0), default=None, metavar="N",
                     help="at most N auto-created caches; the least recently matched go first")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json", "csv", "html"), default="table",
                     help="table: a summary for people (default); json: SPEC §11; csv: the "
                          "pods; html: one self-contained page with charts")
    out.add_argument("-o", "--output", metavar="PATH", help="write here (default: stdout)")
    out.add_argument("--dask", metavar="ADDRESS|local",
                     help="decide the pods across a Dask cluster: its scheduler's address, or "
                          "local for a LocalCluster on this machine")
    out.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bar and no warnings on stderr")
    parser.set_defaults(func=run_report, parser=parser)
    return parser


def _check_stdin(args: argparse.Namespace) -> None:
    named = [*(["--caches"] * args.caches.count("-")), *(["--pods"] * args.pods.count("-")),
             *(["--history"] * (args.history or []).count("-"))]
    named += [f"--{opt}" for opt in ("catalog", "profile", "namespaces")
              if getattr(args, opt) == "-"]
    if len(named) > 1:
        args.parser.error(f"standard input (-) can be read once, but {' and '.join(named)} "
                          "both ask for it")


@contextlib.contextmanager
def _layer_source(args: argparse.Namespace) -> Iterator[LayerSource | None]:
    catalog = read_catalog(args.catalog) if args.catalog is not None else None
    if not args.resolve:
        yield catalog
        return
    from fastmatch.registry import Catalog, RegistryConfig, Resolver, default_cache_dir

    known = catalog if isinstance(catalog, Catalog) else None
    with Resolver(RegistryConfig.build(), cache_dir=default_cache_dir(),
                  catalog=known) as resolver:
        yield resolver


class _Bar:
    """tqdm on stderr when it is a terminal and not --quiet; nothing otherwise."""

    def __init__(self, total: int, quiet: bool) -> None:
        self._bar: Any = None
        if quiet or not sys.stderr.isatty():
            return
        try:
            tqdm: Any = importlib.import_module("tqdm")  # the report extra, untyped
        except ImportError:  # the report extra is not installed: no bar
            return
        self._bar = tqdm.tqdm(total=total, unit="pod", unit_scale=True, file=sys.stderr,
                         desc="deciding", leave=False)

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def make_report(args: argparse.Namespace) -> ClusterReport:
    """Read the inputs ``args`` name, decide every pod and build the report; raise
    :class:`~fastmatch.errors.FastmatchError` on bad input."""
    with _layer_source(args) as source:
        files = read_cluster(args.caches, args.pods, catalog=source, profile=args.profile,
                             namespaces=args.namespaces, now=args.now)
        history: list[TimedPod] | None = None
        if args.history or args.simulate:
            profile = read_profile(args.profile) if args.profile is not None else None
            labels = read_namespaces(args.namespaces) if args.namespaces is not None else None
            history = read_history(args.history or args.pods, catalog=source, profile=profile,
                                   namespaces=labels)
    index = CacheIndex(files.caches)
    bar = _Bar(len(files.requests), args.quiet)
    try:
        if args.dask:
            results = decide_on_dask(index, files.requests, files.now, args.dask,
                                     progress=bar.update)
        else:
            parts = _PARTS_WITH_PROGRESS if bar.shown else 1
            results = decide_in_parts(index, files.requests, files.now, parts=parts,
                                      progress=bar.update)
    finally:
        bar.close()
    simulation = None
    if history is not None:
        simulation = simulate(history, files.caches, creation_delay=args.creation_delay,
                              quota=args.quota)
    return build_report(index, files.requests, results, files.now, bandwidth=args.bandwidth,
                        max_create=args.max_create, simulation=simulation,
                        warnings=files.warnings)


_WRITERS = {"table": write_table, "json": write_json, "csv": write_csv, "html": write_html}


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """Standard output, or ``path`` written whole or not at all (a temporary file
    renamed into place)."""
    if path is None or path == "-":
        yield sys.stdout
        return
    partial = f"{path}.partial-{os.getpid()}"
    try:
        out = open(partial, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise OutputFileError(f"-o {path}: cannot write there ({exc.strerror})") from None
    try:
        with out:
            yield out
        os.replace(partial, path)
    except OSError as exc:
        raise OutputFileError(f"-o {path}: cannot write there ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def run_report(args: argparse.Namespace) -> int:
    """Run ``fastmatch report``; write the report in the format asked."""
    _check_stdin(args)
    report = make_report(args)
    if not args.quiet:
        for warning in report.warnings:
            print(f"fastmatch report: warning: {warning}", file=sys.stderr)
    with _output(args.output) as out:
        _WRITERS[args.format](report, out)
    return 0
