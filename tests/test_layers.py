"""The boundaries of the house that import-linter cannot see (``make lint`` checks the rest).

The compiled core is an extension module, invisible to import-linter's graph:
only the index and its batch pipeline may import it.  And no module reaches
for another module's underscore names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fastmatch"
TESTS = Path(__file__).resolve().parent
CORE_OWNERS = {"index.py", "batch.py"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in ``path``."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _touches_core(module: str, names: list[str]) -> bool:
    return module == "fastmatch._core" or (module == "fastmatch" and "_core" in names)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_index_imports_the_compiled_core(path: Path) -> None:
    if path.relative_to(PACKAGE).as_posix() in CORE_OWNERS:
        return
    assert not any(_touches_core(m, n) for m, n in _imports(path)), (
        f"{path.name} imports fastmatch._core: go through CacheIndex"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    for module, names in _imports(path):
        if module.startswith("fastmatch"):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private = [n for n in private if n != "_core"]
            assert not private, f"{path.name} imports {private} from {module}"


def test_tests_reach_the_core_only_in_their_own_folder() -> None:
    for path in sorted(TESTS.rglob("*.py")):
        if "core" in path.relative_to(TESTS).parts[:1] or path == Path(__file__).resolve():
            continue  # white-box tests of the core live in tests/core/
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and n.attr == "_core"]
        assert not reads, f"{path.name} reads ._core on lines {reads}"
        assert not any(_touches_core(m, n) for m, n in _imports(path)), path.name


def test_the_benchmark_uses_only_the_public_face() -> None:
    """The alternatives and the runner sit outside the engine: no private attribute of
    another object (an index's core, a cache's derived fields) is read there."""
    for path in sorted((PACKAGE / "benchmark").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                raise AssertionError(f"{path.name}:{node.lineno} reads .{node.attr}")


def test_importing_the_engine_imports_no_adapter_benchmark_or_command() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fastmatch\n"
        "loaded = [m for m in sys.modules if m.startswith(('fastmatch.benchmark', "
        "'fastmatch.synthetic', 'fastmatch.demo', 'fastmatch.cli', 'fastmatch.registry'))]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
