"""The ``fastmatch`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys


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


def test_demo_reports_what_the_caches_buy():
    out = fastmatch("demo", "--caches", "300", "--pods", "1500", "--seed", "1")
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
