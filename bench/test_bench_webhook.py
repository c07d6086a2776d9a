"""The admission webhook under load (issue 11): AdmissionReviews over TLS with keep-alive on
loopback, 10k caches in the index, the webhook in a process of its own.

- ``test_webhook_round_trip``: one review at a time on one kept-alive connection (closed
  loop): the median round trip, with the decision on the event loop (the default) and on a
  thread pool (``--workers 4``: the budget a hard deadline even for a decision that hangs);
- ``test_webhook_open_loop``: the open-loop generator of ``webhook_load.py`` at 300, 1,000
  and 2,000 requests a second: p50, p99, p99.9, errors and the CPU of both processes, in
  ``extra_info`` (one round: a load run is its own repetition).

Run: ``PYTHONPATH=src pytest bench/test_bench_webhook.py -p no:randomly``; the table of
issue 11 with the search for the highest rate under 10 ms p99:
``PYTHONPATH=src .venv/bin/python bench/webhook_load.py``.  With ``--benchmark-disable``
(CI) each runs once, small (1k caches, 300 requests a second for 1 s), as a test.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from typing import Any

import pytest

from webhook_load import Webhook, review_bodies, run_load


@pytest.fixture(scope="module", params=[0, 4], ids=["inline", "thread-pool"])
def webhook(request: pytest.FixtureRequest, disabled: bool) -> Iterator[tuple[Webhook, list]]:
    n_caches = 1_000 if disabled else 10_000
    os.environ["FASTMATCH_BENCH_WORKERS"] = str(request.param)
    server = Webhook(n_caches)
    try:
        yield server, review_bodies(n_caches)
    finally:
        server.close()
        os.environ.pop("FASTMATCH_BENCH_WORKERS", None)


def test_webhook_round_trip(benchmark: Any, webhook: tuple[Webhook, list]) -> None:
    server, bodies = webhook
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.context,
                                       timeout=10)
    headers = {"Content-Type": "application/json"}
    state = {"i": 0}

    def one() -> bytes:
        state["i"] += 1
        conn.request("POST", "/mutate", body=bodies[state["i"] % len(bodies)],
                     headers=headers)
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200
        return answer

    for _ in range(50):  # the TLS handshake and the first decisions are not what is measured
        one()
    answer = benchmark.pedantic(one, rounds=2000 if not benchmark.disabled else 1,
                                iterations=1)
    assert b'"allowed":true' in answer
    conn.close()


@pytest.mark.parametrize("rate", [300, 1000, 2000])
def test_webhook_open_loop(benchmark: Any, webhook: tuple[Webhook, list], rate: int,
                           disabled: bool) -> None:
    server, bodies = webhook
    seconds = 0.5 if disabled else 5.0  # as a test: every rate, briefly
    result = benchmark.pedantic(run_load, args=(server, bodies, rate, seconds), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(result.row())
    assert result.sent == int(rate * seconds)
    assert result.errors == 0
    assert len(result.latencies) == result.sent
