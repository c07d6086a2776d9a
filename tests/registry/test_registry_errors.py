"""Where the registry's errors live: fastmatch.registry.errors, and fastmatch.RegistryError."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

import fastmatch
import fastmatch.errors
from fastmatch.registry import RegistryConfig, RegistryUnreachableError, Resolver
from fastmatch.registry.errors import RegistryError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_registry_failure_is_caught_as_fastmatch_registry_error() -> None:
    host = f"127.0.0.1:{closed_port()}"
    config = RegistryConfig.build(plain_http=[host], docker_config=False)
    with Resolver(config, retries=0, timeout=2) as resolver, \
            pytest.raises(fastmatch.RegistryError) as caught:
        resolver.resolve(f"{host}/app:1.0")
    assert isinstance(caught.value, RegistryUnreachableError)
    assert isinstance(caught.value, fastmatch.FastmatchError)
    assert fastmatch.RegistryError is RegistryError is fastmatch.registry.RegistryError


def test_the_generic_errors_module_knows_nothing_of_registries() -> None:
    assert not hasattr(fastmatch.errors, "RegistryError")
    tree = ast.parse(Path(fastmatch.errors.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("fastmatch.registry")]


def test_type_checkers_see_fastmatch_registry_error_as_the_class() -> None:
    # `import fastmatch` loads it lazily; a type checker must still know what it is.
    api = pytest.importorskip("mypy.api")
    code = (
        "import fastmatch as fm\n"
        "try:\n    pass\n"
        "except fm.RegistryError as exc:\n    reveal_type(exc)\n"
    )
    out, err, status = api.run(["--strict", "--no-incremental", "-c", code])
    assert status == 0, out + err
    assert 'Revealed type is "fastmatch.registry.errors.RegistryError"' in out
