"""The ``fastmatch`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def fastmatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastmatch", *args], capture_output=True,
                          text=True, timeout=600)


def test_every_command_is_wired():
    out = fastmatch("--help")
    assert out.returncode == 0
    for command in ("demo", "resolve", "bench"):
        assert command in out.stdout
        assert fastmatch(command, "--help").returncode == 0


def test_no_command_prints_usage_and_fails():
    out = fastmatch()
    assert out.returncode == 2 and "usage: fastmatch" in out.stderr
    assert "a command is required" in out.stderr and "Traceback" not in out.stderr


def test_demo_reports_what_the_caches_buy():
    out = fastmatch("demo", "--caches", "300", "--pods", "1500", "--seed", "1", "--no-html")
    assert out.returncode == 0, out.stderr
    for line in ("full hits", "partial hits", "misses", "bytes served from caches",
                 "one pod at a time"):
        assert line in out.stdout
    summary = json.loads(fastmatch("demo", "--caches", "300", "--pods", "1500", "--seed", "1",
                                   "--json").stdout)
    assert summary["pods"] == 1500
    assert (summary["full_hits"] + summary["partial_hits"] + summary["misses"]
            + summary["rejected"]) == 1500
    assert 0 < summary["bytes_served"] <= summary["bytes_wanted"]
    assert summary["full_hits"] > 0 and summary["misses"] > 0


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (("demo", "--caches", "-5"), "--caches", "-5"),
        (("demo", "--caches", "0"), "--caches", "0"),
        (("demo", "--pods", "-1"), "--pods", "-1"),
        (("demo", "--pods", "abc"), "--pods", "abc"),
        (("demo", "--seed", "1.5"), "--seed", "1.5"),
        (("demo", "--threads", "-2"), "--threads", "-2"),
        (("demo", "--threads", "many"), "--threads", "many"),
        (("demo", "--threads", "100000"), "--threads", "100000"),
        (("demo", "--seed", "-1"), "--seed", "-1"),
        (("demo", "--caches", "99999999999999999999999"), "--caches", "99999999999999999999999"),
        (("demo", "--pods", "10000000000"), "--pods", "10000000000"),
        (("resolve", "nginx", "--offline", "--platform", "linux"), "--platform", "linux"),
        (("resolve", "nginx", "--offline", "--platform", "linux/"), "--platform", "linux/"),
        (("resolve", "nginx", "--offline", "--plain-http", "http://r:5000"), "--plain-http", "http://r:5000"),
        (("resolve", "nginx", "--offline", "--insecure", "r/x"), "--insecure", "r/x"),
        (("resolve", "nginx", "--offline", "--tag-ttl", "-1"), "--tag-ttl", "-1"),
        (("resolve", "nginx", "--offline", "--tag-ttl", "nan"), "--tag-ttl", "nan"),
        (("resolve", "nginx", "--offline", "-j", "0"), "--concurrency", "0"),
        (("resolve", "nginx", "--offline", "-j", "x"), "--concurrency", "x"),
        (("resolve", "nginx", "--offline", "--timeout", "0"), "--timeout", "0"),
        (("resolve", "nginx", "--offline", "--timeout", "inf"), "--timeout", "inf"),
        (("resolve", "nginx", "--offline", "--timeout", "soon"), "--timeout", "soon"),
        (("resolve", "nginx", "--offline", "--retries", "-1"), "--retries", "-1"),
        (("resolve", "nginx", "--offline", "--retries", "2.5"), "--retries", "2.5"),
        (("resolve", "nginx", "--offline", "--retries", "1000000"), "--retries", "1000000"),
        (("resolve", "nginx", "--offline", "--timeout", "1e12"), "--timeout", "1e12"),
        (("resolve", "nginx", "--offline", "-j", "100000"), "--concurrency", "100000"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_option_and_value(
    args: tuple[str, ...], option: str, value: str
) -> None:
    # resolve runs --offline: were a value let through, no registry would be asked.
    out = fastmatch(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"fastmatch {args[0]}: error: argument ")
    assert option in lines[0] and repr(value) in lines[0]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (("--timeout", "x"), "--timeout", "x"),
        (("--platform", "amd64"), "--platform", "amd64"),
        (("-j", "-3"), "--concurrency", "-3"),
    ],
)
def test_the_registry_module_command_says_the_same(
    args: tuple[str, ...], option: str, value: str
) -> None:
    command = [sys.executable, "-m", "fastmatch.registry", "resolve", "nginx", "--offline"]
    out = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert line.startswith("fastmatch resolve: error: argument ")
    assert option in line and repr(value) in line


@pytest.mark.parametrize("content", ["not a certificate\n", ""])
def test_a_ca_bundle_tls_cannot_use_is_one_line_before_any_request(tmp_path, content):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(content)
    out = fastmatch("resolve", "localhost:1/app:1", "--ca-file", str(bundle), "--no-cache")
    assert out.returncode == 2 and out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith(f"fastmatch resolve: error: {bundle}: not a PEM CA bundle")
