"""Processes and servers the registry tests run: the Distribution registry from
Debian, a JWT token server, and a scriptable fake registry for faults a real
registry will not produce (malformed manifests, 429s)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import registry_bcrypt
from registry_pki import TokenKey

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "fastmatch-test-registry"
ISSUER = "fastmatch-test-issuer"


def _die_with_parent() -> None:
    # Linux: the registry gets SIGTERM if the test process dies without cleaning up.
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryProcess:
    """A running ``docker-registry``; ``host`` is ``127.0.0.1:<port>``."""

    host: str
    proc: subprocess.Popen[bytes]
    log: Path
    config: Path

    def stop(self) -> None:
        """Stop the registry and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """An htpasswd file with bcrypt hashes (the only kind the registry accepts)."""
    path.write_text("".join(f"{u}:{registry_bcrypt.bcrypt(p)}\n" for u, p in users.items()))


def start_registry(
    workdir: Path, storage: Path, *, tls: tuple[Path, Path] | None = None,
    htpasswd: Path | None = None, token: tuple[str, Path] | None = None,
) -> RegistryProcess:
    """Start the Distribution registry on a free loopback port and wait until it answers.

    ``tls``: (certificate, key).  ``htpasswd``: Basic auth file.  ``token``:
    (realm URL, certificate bundle trusted for token signatures).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        lines = [
            "version: 0.1",
            "log: {level: warn, accesslog: {disabled: true}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {storage}}}",
            "  delete: {enabled: true}",
            "  maintenance: {uploadpurging: {enabled: false}}",
            "http:",
            f"  addr: 127.0.0.1:{port}",
            "  secret: fastmatch-test-secret",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: fastmatch-test",
                      f"    path: {htpasswd}"]
        if token:
            lines += ["auth:", "  token:", f"    realm: {token[0]}", f"    service: {SERVICE}",
                      f"    issuer: {ISSUER}", f"    rootcertbundle: {token[1]}"]
        config = workdir / f"config-{port}.yml"
        config.write_text("\n".join(lines) + "\n")
        log = workdir / f"registry-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)
        reg = RegistryProcess(f"127.0.0.1:{port}", proc, log, config)
        if _wait_ready(reg, tls is not None):
            return reg
        reg.stop()
    raise RuntimeError(f"docker-registry did not start; see {log}:\n{log.read_text()[-2000:]}")


def _wait_ready(reg: RegistryProcess, tls: bool) -> bool:
    deadline = time.monotonic() + 15
    host, port = reg.host.split(":")
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def skopeo_copy(src: str, dest: str, *extra: str) -> None:
    """``skopeo copy`` with the policy and TLS switches the tests need."""
    cmd = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
           *extra, src, dest]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")


# Token server ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Issues registry tokens (RS256 JWTs) as Docker's token servers do.

    ``users``: username to password.  Authenticated users may pull anything;
    anonymous requests get a token with no access (the registry then refuses
    it) unless the repository starts with ``public/``.  ``refresh_tokens``:
    OAuth2 refresh tokens accepted on POST, as ``identitytoken`` logins send.
    """

    key: TokenKey
    users: dict[str, str]
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    expires_in: int = 300
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def issue(self, subject: str, scope: str, service: str) -> str:
        now = int(time.time())
        access = []
        for item in scope.split(" ") if scope else []:
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if subject or name.startswith("public/"):
                access.append({"type": kind, "name": name,
                               "actions": [a for a in actions.split(",") if a]})
        header = {"typ": "JWT", "alg": "RS256", "kid": self.key.kid}
        claims = {"iss": ISSUER, "sub": subject, "aud": service, "exp": now + self.expires_in,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        return signing_input + "." + _b64url(self.key.sign(signing_input.encode()))

    def start(self) -> TokenServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, params: dict[str, str], subject: str | None) -> None:
                outer.requests.append({"method": self.command, "params": params,
                                       "subject": subject})
                if subject is None:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = outer.issue(subject, params.get("scope", ""),
                                    params.get("service", ""))
                body = json.dumps({"token": token, "access_token": token,
                                   "expires_in": outer.expires_in}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                params = dict(urllib.parse.parse_qsl(query))
                auth = self.headers.get("Authorization", "")
                subject: str | None = ""
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    subject = user if outer.users.get(user) == password else None
                self._answer(params, subject)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                subject = outer.refresh_tokens.get(params.get("refresh_token", ""))
                self._answer(params, subject)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# Fake registry ----------------------------------------------------------------------

Reply = tuple[int, dict[str, str], bytes]


class FakeRegistry:
    """A tiny HTTP server answering ``/v2/...`` from a routing function.

    ``route(method, path, headers) -> (status, headers, body)``.  It counts
    requests and the most that were in flight at once.
    """

    def __init__(self, route: Callable[[str, str, dict[str, str]], Reply],
                 delay: float = 0.0) -> None:
        self.route = route
        self.delay = delay
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                with outer._lock:
                    outer.count += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    outer.paths.append(self.path)
                try:
                    if outer.delay:
                        time.sleep(outer.delay)
                    status, headers, body = outer.route(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                    )
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = _handle
            do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def http_get(host: str, path: str) -> tuple[int, bytes]:
    """A plain GET, to check a server from a test."""
    conn = http.client.HTTPConnection(host, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
