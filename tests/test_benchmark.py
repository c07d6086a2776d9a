"""``fastmatch bench``: the short benchmark runs end to end and prints its table; and the
benchmark package stays outside the engine, reaching it only through its public face."""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

import fastmatch as fm
from fastmatch.benchmark import add_bench_parser, run_benchmarks

PACKAGE = Path(fm.__file__).resolve().parent
BENCHMARK = sorted((PACKAGE / "benchmark").rglob("*.py"))
# The engine's modules the benchmark may import from, besides the package's face.
PUBLIC_MODULES = {
    "fastmatch.model",
    "fastmatch.reference",
    "fastmatch.synthetic",
    "fastmatch.timeutil",
}


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


def _public(module: str, name: str) -> bool:
    exported = getattr(importlib.import_module(module), "__all__", None)
    return not name.startswith("_") and (exported is None or name in exported)


def _crossings(path: Path) -> list[str]:
    """What ``path`` takes from the engine that is not its public face."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {"fastmatch"}  # names bound to the package itself (``import fastmatch as fm``)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "fastmatch":
                    aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("fastmatch."):
                    bad.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastmatch"):
            module = node.module or ""
            if module.startswith("fastmatch.benchmark"):
                continue
            if module != "fastmatch" and module not in PUBLIC_MODULES:
                bad.append(f"line {node.lineno}: from {module}")
                continue
            bad += [
                f"line {node.lineno}: from {module} import {a.name}"
                for a in node.names
                if not _public(module, a.name)
            ]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr not in fm.__all__:
                bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif (
            node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            bad.append(f"line {node.lineno}: .{node.attr}")
    return bad


@pytest.mark.parametrize("path", BENCHMARK, ids=lambda p: p.name)
def test_the_benchmark_reaches_the_engine_only_through_its_public_face(path: Path) -> None:
    assert _crossings(path) == []


def test_the_boundary_check_sees_a_crossing(tmp_path: Path) -> None:
    source = tmp_path / "crossing.py"
    source.write_text(
        "import fastmatch as fm\n"
        "from fastmatch.index import CacheIndex\n"
        "from fastmatch.model import _trusted\n"
        "from fastmatch.timeutil import to_micros\n"
        "import fastmatch._core\n"
        "n = fm.CacheIndex()._core.nbytes() + fm._version\n",
        encoding="utf-8",
    )
    assert _crossings(source) == [
        "line 2: from fastmatch.index",
        "line 3: from fastmatch.model import _trusted",
        "line 5: import fastmatch._core",
        "line 6: fm._version",
        "line 6: ._core",
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PACKAGE.rglob("*.py")) if "benchmark" not in p.parts],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_engine_module_imports_the_benchmark(path: Path) -> None:
    if path.relative_to(PACKAGE).as_posix() == "cli.py":  # the command that runs it
        return
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        assert not any(m.startswith("fastmatch.benchmark") for m in modules), node.lineno
