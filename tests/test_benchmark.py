"""``fastmatch bench``: the short benchmark runs end to end and prints its table."""

from __future__ import annotations

import argparse

from fastmatch.benchmark import add_bench_parser, run_benchmarks


def test_a_tiny_run_prints_every_row() -> None:
    table = run_benchmarks(quick=True, sizes=(200,), pods=300)
    assert "one pod vs 200 caches: fastmatch" in table
    for name in ("python sets", "reference", "numpy csr"):
        assert f"one pod vs 200 caches: {name}" in table
    assert table.count("same decisions") >= 3
    assert "match_many 300 pods vs 200 caches: 2 threads" in table
    assert "upserts/s" in table and "load saved index of 200 caches" in table


def test_the_command_line_parser() -> None:
    parser = argparse.ArgumentParser(prog="fastmatch")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--full", "--quiet"])
    assert args.command == "bench" and args.full and args.quiet
