"""The ``fastmatch`` command: one sub-command per job."""

from __future__ import annotations

import argparse
import sys

from fastmatch import __version__
from fastmatch.benchmark import add_bench_parser
from fastmatch.demo import add_demo_parser
from fastmatch.errors import FastmatchError
from fastmatch.match_cli import add_match_parser
from fastmatch.registry.cli import ArgumentParser, add_resolve_parser
from fastmatch.report_cli import add_report_parser
from fastmatch.webhook_cli import add_webhook_parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastmatch`` command."""
    parser = ArgumentParser(
        prog="fastmatch",
        description="Fast, explainable image-cache matching for serverless pods.",
    )
    parser.add_argument("--version", action="version", version=f"fastmatch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_match_parser(commands)
    add_report_parser(commands)
    add_demo_parser(commands)
    add_resolve_parser(commands)
    add_bench_parser(commands)
    add_webhook_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fastmatch`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print("fastmatch: error: a command is required "
              "(match, report, demo, resolve, bench, webhook)", file=sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except FastmatchError as exc:
        print(f"fastmatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head & co.: not an error
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
