"""Instructions of matching 256 realistic pods against 10k caches, for callgrind.

A round matches the 256 pods one by one, then again in one ``match_many``
call on one thread.  Run under ``valgrind --tool=callgrind`` with ``--rounds 1``
and ``--rounds 3``: half the difference of the two totals is what one round
costs (set-up, warm-up and teardown cancel out), and it is the same from run to
run, whatever the machine is doing.  The garbage collector is off while they
run.  ``bench/callgrind.sh`` runs both and prints it (``bench/callgrind.sh --mixed
20000`` the same for one ``match_many`` over 20k pods of mixed policies).
"""

from __future__ import annotations

import gc
import sys

import fastmatch as fm

import workloads

N_CACHES = 10_000


def mixed(rounds: int, n_pods: int) -> None:
    """``--mixed N``: a round is one ``match_many`` (one thread) over N pods of the synthetic
    cluster's mix of policies and replicas, where most groups miss and propose."""
    index = workloads.index(N_CACHES)
    cluster = workloads.cluster(N_CACHES, n_pods)
    gc.collect()
    gc.disable()
    for _ in range(rounds):
        index.match_many(cluster.pods, cluster.policies, now=cluster.now, threads=1)


def main() -> None:
    """Build the 10k-cache index and the 256 pods, then match them ``--rounds`` times."""
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
    if "--mixed" in sys.argv:
        mixed(rounds, int(sys.argv[sys.argv.index("--mixed") + 1]))
        return
    index = workloads.index(N_CACHES)
    pods = workloads.default_pods(N_CACHES)
    now = workloads.cluster(N_CACHES).now
    policy = fm.MatchPolicy()
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
