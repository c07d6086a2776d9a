"""``fastmatch resolve`` (run as ``python -m fastmatch.registry``) end to end."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_world import PASSWORD, USER, World

from fastmatch.registry import read_catalog
from fastmatch.registry.cli import main

pytestmark = pytest.mark.registry
SRC = Path(__file__).resolve().parents[2] / "src"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def catalog_refs(text: str) -> list[str]:
    return [json.loads(line)["ref"] for line in text.splitlines() if line.strip()]


def test_refs_and_files_to_a_catalog(world: World, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    host = world.plain.host
    pods = tmp_path / "pods.yaml"
    pods.write_text(f"kind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n"
                    f"      initContainers: [{{name: i, image: '{host}/app:1.1'}}]\n"
                    f"      containers: [{{name: c, image: '{host}/multi:1.0'}}]\n")
    code, out, err = run(capsys, "resolve", f"{host}/app:1.0", "--from-file", str(pods),
                         "--plain-http", host, "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    assert catalog_refs(out) == [f"{host}/app:1.0", f"{host}/app:1.1", f"{host}/multi:1.0"]
    first = json.loads(out.splitlines()[0])
    assert first["digest"] == world.expected["app:1.0"].digest
    assert [(x["digest"], x["size"]) for x in first["layers"]] == \
        list(world.expected["app:1.0"].layers["linux/amd64"])
    assert "resolved 3 of 3 images (3 from registry)" in err


def test_failures_are_listed_and_the_exit_status_says_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = world.plain.host
    caches = tmp_path / "caches.yaml"
    caches.write_text(f"kind: ImageCache\nmetadata: {{name: imc}}\n"
                      f"spec: {{images: ['{host}/app:1.0', '{host}/app:7.7']}}\n")
    code, out, err = run(capsys, "-f", str(caches), "--plain-http", host, "--no-cache")
    assert code == 1
    assert catalog_refs(out) == [f"{host}/app:1.0"]
    assert f"failed: [not-found] {host}/app:7.7: tag 7.7 not found in app" in err
    assert f"registry {host}" in err
    assert "referenced by" in err and "(ImageCache imc) spec.images[1]" in err
    assert "1 failed" in err


def test_output_file_then_offline_from_the_catalog(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = world.plain.host
    out_path = tmp_path / "catalog.jsonl"
    code, _, err = run(capsys, f"{host}/multi:1.0", "--platform", "linux/arm64",
                       "--plain-http", host, "--no-cache", "-o", str(out_path), "-q")
    assert code == 0 and err == ""
    [image] = read_catalog(out_path)
    assert json.loads(out_path.read_text())["platform"] == "linux/arm64"
    assert [(x.digest, x.size) for x in image.layers] == \
        list(world.expected["multi:1.0"].layers["linux/arm64/v8"])
    code, out, err = run(capsys, f"{host}/multi:1.0", "--catalog", str(out_path), "--offline",
                         "--no-cache")
    assert code == 0, err
    assert out == out_path.read_text()
    assert "1 from catalog" in err


def test_basic_auth_with_a_pull_secret_and_ca_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"auths": {world.basic.host: {"auth": base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}}}
    secret = tmp_path / "regcred.json"
    secret.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret",
                                  "type": "kubernetes.io/dockerconfigjson",
                                  "metadata": {"name": "regcred"},
                                  "stringData": {".dockerconfigjson": json.dumps(config)}}))
    ref = f"{world.basic.host}/private/app:1.0"
    code, _, err = run(capsys, ref, "--no-cache", "--ca-file", str(world.pki.ca_cert))
    assert code == 1 and "[unauthorized]" in err
    code, out, err = run(capsys, ref, "--no-cache", "--pull-secret", str(secret),
                         "--ca-file", f"{world.basic.host}={world.pki.ca_cert}")
    assert code == 0, err
    assert catalog_refs(out) == [ref]


def test_docker_config_option(world: World, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {world.basic.host: {
        "username": USER, "password": PASSWORD}}}))
    code, _, err = run(capsys, f"{world.basic.host}/app:1.1", "--no-cache",
                         "--docker-config", str(config), "--insecure", world.basic.host)
    assert code == 0, err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--no-cache")
    assert code == 2 and "no image references" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: X}]}\n")
    code, _, err = run(capsys, "-f", str(bad))
    assert code == 2 and f"{bad}" in err and "spec.containers[0].image" in err
    code, _, err = run(capsys, "nginx", "--catalog", str(tmp_path / "absent.jsonl"))
    assert code == 2 and "cannot read catalog" in err
    with pytest.raises(SystemExit):
        main(["nginx", "--concurrency", "0"])


def test_python_dash_m(world: World, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "FASTMATCH_CACHE_DIR": str(tmp_path / "cache")}
    host = world.plain.host
    done = subprocess.run(
        [sys.executable, "-m", "fastmatch.registry", "resolve", f"{host}/app:1.0",
         "--plain-http", host], capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert catalog_refs(done.stdout) == [f"{host}/app:1.0"]
    assert (tmp_path / "cache" / "FORMAT").exists()


@pytest.fixture
def silent_registry() -> Iterator[tuple[str, socket.socket]]:
    """A loopback port that accepts connections and never answers: a resolve that asked
    it would hang until --timeout; the test sees whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.0)
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", server
    finally:
        server.close()


def _nobody_connected(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize("case", ["directory", "no-folder", "folder-is-a-file", "unwritable"])
def test_a_bad_output_path_fails_before_any_registry_is_asked(
    case: str, tmp_path: Path, silent_registry: tuple[str, socket.socket]
) -> None:
    host, server = silent_registry
    if case == "directory":
        target, problem = tmp_path, "is a directory"
    elif case == "no-folder":
        target, problem = tmp_path / "absent" / "catalog.jsonl", "does not exist"
    elif case == "folder-is-a-file":
        (tmp_path / "plain").write_text("")
        target, problem = tmp_path / "plain" / "catalog.jsonl", "is not a folder"
    else:
        target, problem = Path("/proc/catalog.jsonl"), "cannot write the catalog in /proc"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fastmatch", "resolve", f"{host}/app:1.0", "--plain-http", host,
         "--no-cache", "--timeout", "30", "-o", str(target)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"fastmatch resolve: error: {target}: ")
    assert problem in line
    assert _nobody_connected(server)
    assert done.stdout == ""


def test_output_dash_is_standard_output(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    host = world.plain.host
    code, out, err = run(capsys, f"{host}/app:1.0", "--plain-http", host, "--no-cache", "-o", "-")
    assert code == 0, err
    assert catalog_refs(out) == [f"{host}/app:1.0"]


def test_offline_takes_the_catalog_entry_of_the_platform_asked_for_or_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = {"digest": "sha256:" + "a" * 64, "size": 10}
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"ref": "docker.io/library/nginx:1.25",
                                   "platform": "linux/amd64", "layers": [layer]}) + "\n")
    argv = ["nginx:1.25", "--catalog", str(catalog), "--offline", "--no-cache"]
    code, out, err = run(capsys, *argv, "--platform", "linux/arm64")
    assert code == 1 and out == ""
    assert "docker.io/library/nginx:1.25" in err and "linux/arm64" in err
    assert "[no-platform]" in err
    arm = {"digest": "sha256:" + "b" * 64, "size": 20}
    with catalog.open("a") as handle:
        handle.write(json.dumps({"ref": "nginx:1.25", "platform": "linux/arm64",
                                 "layers": [arm]}) + "\n")
    code, out, err = run(capsys, *argv, "--platform", "linux/arm64")
    assert code == 0, err
    [line] = [json.loads(x) for x in out.splitlines()]
    assert line["platform"] == "linux/arm64" and line["layers"] == [arm]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert json.loads(out)["layers"] == [layer]  # no platform asked: linux/amd64


def test_a_platform_chosen_from_an_index_is_written_so_no_other_platform_takes_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = world.plain.host
    path = tmp_path / "catalog.jsonl"
    code, _, err = run(capsys, f"{host}/multi:1.0", f"{host}/app:1.0", "--plain-http", host,
                       "--no-cache", "-o", str(path), "-q")
    assert code == 0, err
    multi, app = [json.loads(line) for line in path.read_text().splitlines()]
    assert multi["platform"] == "linux/amd64"  # chosen from the index: no --platform needed
    assert "platform" not in app  # one manifest, its platform unknown: it serves any
    code, out, err = run(capsys, f"{host}/multi:1.0", f"{host}/app:1.0", "--catalog", str(path),
                         "--offline", "--no-cache", "--platform", "linux/arm64")
    assert code == 1
    assert f"[no-platform] {host}/multi:1.0" in err and "linux/arm64" in err
    assert catalog_refs(out) == [f"{host}/app:1.0"]
