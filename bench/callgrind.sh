#!/bin/sh
# Instructions that 256 pods' matches cost (bench/callgrind_match.py): the total
# of a run that matches less the total of one that only sets up.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
count() {
    PYTHONPATH=src:bench PYTHONHASHSEED=0 valgrind --tool=callgrind \
        --callgrind-out-file=/dev/null "$PY" bench/callgrind_match.py "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
setup=$(count --setup-only)
total=$(count)
echo "setup $setup, with matches $total, matches $((total - setup)) instructions"
