#!/bin/sh
# Instructions that one round of 256 pods' matches costs (bench/callgrind_match.py):
# half the difference between a run of 3 rounds and a run of 1.
# `bench/callgrind.sh --mixed 20000`: one match_many over 20k pods of mixed policies instead.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
count() {
    # One BLAS thread: OpenBLAS workers spinning beside the run add noise.
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:bench PYTHONHASHSEED=0 valgrind --tool=callgrind \
        --callgrind-out-file=/dev/null "$PY" bench/callgrind_match.py "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
one=$(count --rounds 1 "$@")
three=$(count --rounds 3 "$@")
echo "1 round $one, 3 rounds $three: one round of matches $(((three - one) / 2)) instructions"
