#!/bin/sh
# Instructions that one ImageCache watch event costs the sync's applier: decoding the
# JSON line, reading the object (fastmatch.inputs.cache_from_object), the store's checks
# and the index's write (CacheIndex.apply in batches of 500), no HTTP.  Counted by
# callgrind over N and 3N events, each less a run that only makes the lines, so that
# start-up and the lines' making cancel out: (apply(3N) - make(3N) - apply(N) + make(N)) / 2N.
# `bench/callgrind_sync.sh 2000` (N, default 2000).
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
N=${1:-2000}
count() {
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:bench PYTHONHASHSEED=0 valgrind --tool=callgrind \
        --callgrind-out-file=/dev/null "$PY" bench/test_bench_kube.py "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a1=$(count "$N")
m1=$(count "$N" setup)
a3=$(count $((3 * N)))
m3=$(count $((3 * N)) setup)
echo "N=$N: apply $a1 make $m1; 3N: apply $a3 make $m3"
echo "instructions per event: $(((a3 - m3 - a1 + m1) / (2 * N)))"
