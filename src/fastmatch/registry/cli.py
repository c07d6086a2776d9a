"""``fastmatch resolve``: image references to an image catalog (SPEC §6).

The main CLI wires it with one line::

    from fastmatch.registry.cli import add_resolve_parser
    add_resolve_parser(subparsers)       # sets func=run_resolve

Exit status: 0 when every reference resolved, 1 when some failed (the
catalog still holds the others, and each failure is on standard error), 2 on
bad usage or bad input files.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any, NoReturn

from fastmatch import argtypes
from fastmatch.errors import FastmatchError
from fastmatch.platforms import normalize_platform
from fastmatch.registry.cache import DEFAULT_TAG_TTL, default_cache_dir
from fastmatch.registry.catalog import Catalog, check_output_path, read_catalog, write_catalog
from fastmatch.registry.client import MAX_CONCURRENCY, MAX_RETRIES, MAX_WAIT
from fastmatch.registry.config import RegistryConfig
from fastmatch.registry.resolver import DEFAULT_PLATFORM, Resolver, ResolveReport
from fastmatch.registry.sources import read_references

__all__ = [
    "EXIT_FAILURES",
    "EXIT_OK",
    "EXIT_USAGE",
    "ArgumentParser",
    "add_resolve_parser",
    "run_resolve",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
_PROG = "fastmatch resolve"

_DESCRIPTION = """\
Resolve image references to their layers and write the image catalog (JSON
Lines: ref, digest, layers) to standard output or --output.  References come
from the command line and from --from-file files (Pods, workloads,
ImageCaches, DescribeImageCaches JSON).  Manifests are cached on disk (by
digest for ever, by tag for --tag-ttl seconds); with --catalog and --offline
no registry is asked."""

_EPILOG = """\
exit status: 0 all resolved, 1 some failed (listed on stderr; the catalog
holds the rest), 2 bad usage or input file.

examples:
  fastmatch resolve nginx:1.25 redis:7 > catalog.jsonl
  fastmatch resolve -f deploy.yaml -f imagecaches.yaml --platform linux/arm64 -o catalog.jsonl
  fastmatch resolve -f pods.yaml --plain-http registry.local:5000 --pull-secret regcred.yaml
"""


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on standard error, exit 2.

    Sub-command parsers made with ``add_subparsers`` are of the same class; the
    ``fastmatch`` command uses it too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_resolve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``resolve`` subcommand to an argparse ``subparsers`` object and return it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "resolve",
        help="resolve image references to layers and write an image catalog",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_parser(parser)
    parser.set_defaults(func=run_resolve)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``resolve`` arguments to ``parser``."""
    parser.add_argument("refs", nargs="*", metavar="REF", help="image references")
    src = parser.add_argument_group("input and output")
    src.add_argument("-f", "--from-file", action="append", default=[], metavar="FILE",
                     help="read references from Pods/workloads/ImageCaches/"
                          "DescribeImageCaches YAML or JSON (repeatable; - is stdin)")
    src.add_argument("-o", "--output", metavar="FILE",
                     help="write the catalog here (atomically; - is standard output); checked "
                          "before any registry is asked")
    src.add_argument("--catalog", action="append", default=[], metavar="FILE",
                     help="an existing catalog: images found there are not asked of a registry")
    src.add_argument("--offline", action="store_true",
                     help="never contact a registry: answer from --catalog and the cache only")
    src.add_argument("--platform", type=_platform, default=None,
                     metavar="OS/ARCH[/VARIANT]",
                     help="platform to choose from multi-platform images and catalogs, "
                          f"written on every line (default {DEFAULT_PLATFORM} from registries)")
    src.add_argument("-q", "--quiet", action="store_true",
                     help="print failures only, not the summary")
    reg = parser.add_argument_group("registries")
    reg.add_argument("--docker-config", metavar="FILE",
                     help="Docker config.json with credentials (default $DOCKER_CONFIG/"
                          "config.json or ~/.docker/config.json when present)")
    reg.add_argument("--no-docker-config", action="store_true",
                     help="do not read any Docker config.json")
    reg.add_argument("--pull-secret", action="append", default=[], metavar="FILE",
                     help="YAML/JSON with kubernetes.io/dockerconfigjson Secrets (repeatable); "
                          "Secrets inside --from-file files are used too")
    reg.add_argument("--plain-http", type=_host, action="append", default=[], metavar="HOST[:PORT]",
                     help="speak plain HTTP to this registry (repeatable)")
    reg.add_argument("--insecure", type=_host, action="append", default=[], metavar="HOST[:PORT]",
                     help="do not verify this registry's TLS certificate (repeatable)")
    reg.add_argument("--ca-file", action="append", default=[], metavar="[HOST=]FILE",
                     help="PEM CA bundle to verify registries with; HOST=FILE for one registry")
    run = parser.add_argument_group("caching and concurrency")
    run.add_argument("--cache-dir", metavar="DIR",
                     help=f"on-disk cache (default {default_cache_dir()})")
    run.add_argument("--no-cache", action="store_true", help="do not use the on-disk cache")
    run.add_argument("--tag-ttl", type=argtypes.number(unit="seconds"), default=DEFAULT_TAG_TTL,
                     metavar="SECONDS",
                     help=f"trust a cached tag this long (default {DEFAULT_TAG_TTL:.0f})")
    run.add_argument("-j", "--concurrency", type=argtypes.integer(1, MAX_CONCURRENCY), default=8,
                     metavar="N",
                     help="references resolved and requests in flight at once "
                          f"(default 8, at most {MAX_CONCURRENCY})")
    run.add_argument("--timeout", type=argtypes.number(0, MAX_WAIT, strict=True, unit="seconds"),
                     default=30.0, metavar="SECONDS",
                     help=f"connect and read timeout (default 30, at most {MAX_WAIT:g})")
    run.add_argument("--retries", type=argtypes.integer(0, MAX_RETRIES), default=4, metavar="N",
                     help="retries on 429, 5xx and dropped connections "
                          f"(default 4, at most {MAX_RETRIES})")


def _platform(text: str) -> str:
    try:
        value = normalize_platform(text, "platform")
    except FastmatchError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"expected OS/ARCH[/VARIANT] such as linux/arm64, "
                                         f"got {text!r}")
    return value


_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")


def _host(text: str) -> str:
    if not _HOST.match(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a registry HOST[:PORT] such as "
                                         f"registry.local:5000, got {text!r}")
    return text.strip()


class _Stderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"{_PROG}: warning: {record.getMessage()}", file=sys.stderr)


def run_resolve(args: argparse.Namespace) -> int:
    """Run ``fastmatch resolve`` with parsed arguments; return the exit status."""
    logger = logging.getLogger("fastmatch.registry")
    handler = _Stderr(logging.WARNING)
    logger.addHandler(handler)
    old_propagate = logger.propagate
    logger.propagate = False
    try:
        return _run(args)
    except FastmatchError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _run(args: argparse.Namespace) -> int:
    if args.output and args.output != "-":
        check_output_path(args.output)  # before any file is read or registry asked
    found = read_references(args.from_file)
    secrets = list(found.secrets)
    if args.pull_secret:
        extra = read_references(args.pull_secret)
        if not extra.secrets:
            print(f"{_PROG}: error: no kubernetes.io/dockerconfigjson Secret in "
                  f"{', '.join(args.pull_secret)}", file=sys.stderr)
            return EXIT_USAGE
        secrets = extra.secrets + secrets
    refs = list(args.refs) + [r for r in found.references if r not in args.refs]
    if not refs:
        print(f"{_PROG}: error: no image references (give REF arguments or --from-file)",
              file=sys.stderr)
        return EXIT_USAGE
    ca_file: str | None = None
    ca_files: dict[str, str] = {}
    for value in args.ca_file:
        host, sep, path = value.partition("=")
        if sep and host and not os.path.exists(value):
            ca_files[host] = path
        else:
            ca_file = value
    docker_config: str | bool | None = args.docker_config
    if args.no_docker_config:
        docker_config = False
    config = RegistryConfig.build(
        plain_http=args.plain_http, insecure=args.insecure, ca_file=ca_file, ca_files=ca_files,
        docker_config=docker_config, pull_secrets=secrets,
    )
    catalog = Catalog()
    for path in args.catalog:
        catalog.update(read_catalog(path))
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    with Resolver(
        config, cache_dir=cache_dir, tag_ttl=args.tag_ttl, platform=args.platform,
        max_concurrency=args.concurrency, timeout=args.timeout, retries=args.retries,
        catalog=catalog if len(catalog) else None, offline=args.offline,
    ) as resolver:
        report = resolver.resolve_many(refs)
    images = report.images
    # Asked for a platform: every line says it.  Else a line says the platform chosen from
    # an index (or a catalog's entry had): a line without one would serve any platform.
    platforms = [args.platform or res.platform for res in report.resolved]
    if args.output and args.output != "-":
        write_catalog(images, args.output, platforms=platforms)
    else:
        write_catalog(images, sys.stdout, platforms=platforms)
    _print_failures(report, found.origins)
    if not args.quiet:
        _print_summary(report, len(refs))
    return EXIT_OK if report.ok else EXIT_FAILURES


def _print_failures(report: ResolveReport, origins: dict[str, list[str]]) -> None:
    for failure in report.failures:
        print(f"{_PROG}: failed: [{failure.kind}] {failure.message}", file=sys.stderr)
        seen = origins.get(failure.reference)
        if seen:
            more = f" and {len(seen) - 1} more" if len(seen) > 1 else ""
            print(f"    referenced by {seen[0]}{more}", file=sys.stderr)


def _print_summary(report: ResolveReport, given: int) -> None:
    sources: dict[str, int] = {}
    for res in report.resolved:
        sources[res.source] = sources.get(res.source, 0) + 1
    how = ", ".join(f"{n} from {s}" for s, n in sorted(sources.items()))
    total = len(report.resolved) + len(report.failures)
    line = f"{_PROG}: resolved {len(report.resolved)} of {total} images"
    if total != given:
        line += f" ({given} references)"
    if how:
        line += f" ({how})"
    if report.failures:
        line += f"; {len(report.failures)} failed"
    print(line, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser for ``python -m fastmatch.registry``."""
    parser = ArgumentParser(
        prog=_PROG, description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_parser(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m fastmatch.registry [resolve] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["resolve"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    return run_resolve(args)
