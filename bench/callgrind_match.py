"""Instructions of matching 256 realistic pods against 10k caches, for callgrind.

A round matches the 256 pods one by one, then again in one ``match_many``
call on one thread.  Run under ``valgrind --tool=callgrind`` with ``--rounds 1``
and ``--rounds 3``: half the difference of the two totals is what one round
costs (set-up, warm-up and teardown cancel out), and it is the same from run to
run, whatever the machine is doing.  The garbage collector is off while they
run.  ``bench/callgrind.sh`` runs both and prints it.
"""

from __future__ import annotations

import gc
import sys

import fastmatch as fm

import workloads

N_CACHES = 10_000


def main() -> None:
    """Build the 10k-cache index and the 256 pods, then match them ``--rounds`` times."""
    index = workloads.index(N_CACHES)
    pods = workloads.default_pods(N_CACHES)
    now = workloads.cluster(N_CACHES).now
    policy = fm.MatchPolicy()
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
    # The collector off, as timeit and `make bench` time: a full collection walks
    # every object of the process, and which round one lands in is luck.
    gc.collect()
    gc.disable()
    for _ in range(rounds):
        for pod in pods:
            index.match(pod, policy, now=now)
        index.match_many(pods, policy, now=now, threads=1)


if __name__ == "__main__":
    main()
