"""SIGTERM with requests in flight: new connections refused, idle keep-alive connections
closed, the request in flight answered, the process gone with exit 0."""

from __future__ import annotations

import http.client
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from fastmatch.kube.admission import CACHE_ANNOTATION

from webhook_world import patch_of, pod, post, review

SCRIPT = Path(__file__).resolve().parent / "serve_standin.py"


def _wait_for_line(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert proc.stderr is not None
    for line in proc.stderr:  # ends when the process closes stderr: bounded by the process
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"the webhook exited before logging {pattern!r}")


def test_sigterm_finishes_the_requests_in_flight_and_closes_idle_connections(pki):
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(pki.cert_file),
                             str(pki.key_file), "2.0"], stderr=subprocess.PIPE, text=True)
    try:
        port = int(_wait_for_line(proc, r"serving on https://127\.0\.0\.1:(\d+)").group(1))
        ctx = pki.client_context()
        idle = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        idle.request("GET", "/healthz")
        assert idle.getresponse().read() == b"ok\n"
        answers: list[Any] = []
        busy = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        obj = pod()
        flight = threading.Thread(target=lambda: answers.append(post(busy, review(obj))))
        flight.start()
        _wait_for_line(proc, r"^deciding")
        proc.send_signal(signal.SIGTERM)
        _wait_for_line(proc, r"stopping")
        # The idle keep-alive connection is closed while the request is still in flight.
        assert idle.sock is not None
        idle.sock.settimeout(10)
        assert idle.sock.recv(1) == b""
        assert flight.is_alive()
        with pytest.raises(ConnectionRefusedError):  # no new connections
            socket.create_connection(("127.0.0.1", port), timeout=5)
        flight.join(30)
        assert answers, "the request in flight got no answer"
        status, answer = answers[0]
        assert status == 200 and answer["response"]["allowed"] is True
        patched = jsonpatch.apply_patch(obj, patch_of(answer))
        assert CACHE_ANNOTATION in patched["metadata"]["annotations"]
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
