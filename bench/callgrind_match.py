"""Instructions of matching 256 realistic pods against 10k caches, for callgrind.

Run twice under ``valgrind --tool=callgrind``: once with ``--setup-only`` (the
index and the pods are built, nothing is matched) and once without; the
difference of the two totals is what the 256 matches (one by one, then again in
one ``match_many`` call) cost, and it is the same from run to run, whatever the
machine is doing::

    PYTHONPATH=src:bench valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/callgrind_match.py --setup-only
    PYTHONPATH=src:bench valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/callgrind_match.py

(``bench/callgrind.sh`` runs both and prints the difference.)
"""

from __future__ import annotations

import sys

import fastmatch as fm

import workloads

N_CACHES = 10_000


def main() -> None:
    """Build the 10k-cache index and the 256 pods, then (unless told not to) match them."""
    index = workloads.index(N_CACHES)
    pods = workloads.default_pods(N_CACHES)
    now = workloads.cluster(N_CACHES).now
    policy = fm.MatchPolicy()
    if "--setup-only" in sys.argv:
        return
    for pod in pods:
        index.match(pod, policy, now=now)
    index.match_many(pods, policy, now=now, threads=1)


if __name__ == "__main__":
    main()
