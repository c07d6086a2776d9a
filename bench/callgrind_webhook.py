"""Instructions one admission costs the webhook process (callgrind): the process run under
valgrind twice, answering N and then 3N reviews on one kept-alive TLS connection after the
same warm-up; half the difference of the two totals, over N, is one review's cost (start-up,
the index's build and the warm-up cancel out).  The load's client runs outside valgrind.

    PYTHONPATH=src .venv/bin/python bench/callgrind_webhook.py [--reviews 200] [--workers 0]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_load import ROOT, Webhook, review_bodies

N_CACHES = 1_000  # the decision is microseconds of the whole; a small index starts faster


def count(reviews: int, workers: int, bodies: list[bytes]) -> int:
    """The instructions the webhook process ran to start, warm up, answer ``reviews``
    reviews and stop."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
           "FASTMATCH_BENCH_WORKERS": str(workers),
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    prefix = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    webhook = Webhook(N_CACHES, prefix=prefix, env=env)
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", webhook.port, context=webhook.context,
                                           timeout=120)
        for i in range(20 + reviews):
            conn.request("POST", "/mutate", body=bodies[i % len(bodies)],
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200, response.status
            response.read()
        conn.close()
        webhook.proc.send_signal(signal.SIGTERM)
        assert webhook.proc.stderr is not None
        err = webhook.proc.stderr.read()
        webhook.proc.wait(120)
    finally:
        webhook.close()
    found = re.search(r"Collected : (\d+)", err)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{err[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    bodies = review_bodies(N_CACHES)
    one = count(args.reviews, args.workers, bodies)
    three = count(3 * args.reviews, args.workers, bodies)
    per = (three - one) / (2 * args.reviews)
    print(f"workers={args.workers}: {args.reviews} reviews {one}, {3 * args.reviews} reviews "
          f"{three}: one review {per:,.0f} instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
