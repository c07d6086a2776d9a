"""Instructions one report pipeline costs (callgrind): a synthetic cluster's caches, pods
and catalog to every pod's decision, from the parsed documents (``--from documents``:
models, index, decisions) or from the files (``--from files``: reading and parsing them
too).  Run twice under valgrind, for 1 and 3 rounds after the same set-up; half the
difference of the two totals is one round's cost (start-up, imports, writing the files
and the first parse cancel out).

    PYTHONPATH=src .venv/bin/python bench/callgrind_report.py [--from documents|files]
        [--caches 2000] [--workloads 400] [--replicas 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rounds(folder: Path, source: str, rounds: int, now: Any) -> None:
    from fastmatch.cluster_files import cluster_from_documents, decide, read_cluster
    from fastmatch.inputs import read_catalog
    from fastmatch.inputs.catalog import catalog_from_documents

    paths = {name: folder / name for name in ("caches.json", "workloads.json", "catalog.jsonl")}
    with paths["catalog.jsonl"].open() as lines:
        entries = [json.loads(line) for line in lines if line.strip()]
    caches = json.loads(paths["caches.json"].read_text())
    workloads = json.loads(paths["workloads.json"].read_text())
    for _ in range(rounds):
        if source == "documents":
            files = cluster_from_documents([caches], [workloads],
                                           catalog=catalog_from_documents(entries), now=now)
        else:
            files = read_cluster([paths["caches.json"]], [paths["workloads.json"]],
                                 catalog=read_catalog(paths["catalog.jsonl"]), now=now)
        decide(files)


def _count(args: argparse.Namespace, folder: Path, rounds: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--inside", str(folder), "--rounds", str(rounds), "--from", args.source],
        env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    assert found is not None, run.stderr[-2000:]
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", choices=["documents", "files"],
                        default="documents")
    parser.add_argument("--caches", type=int, default=2_000)
    parser.add_argument("--workloads", type=int, default=400)
    parser.add_argument("--replicas", type=int, default=50)
    parser.add_argument("--inside", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from fastmatch.synthetic import synthetic_cluster

    if args.inside is not None:  # the run valgrind counts
        now = synthetic_cluster(1, 1, seed=0).now
        _rounds(args.inside, args.source, args.rounds, now)
        return 0
    import report_scale

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cluster, _ = report_scale.write_cluster_files(folder, args.caches, args.workloads,
                                                      args.replicas)
        assert cluster.now == synthetic_cluster(1, 1, seed=0).now
        one, three = _count(args, folder, 1), _count(args, folder, 3)
    pods = args.workloads * args.replicas
    print(f"from {args.source}, {args.caches:,} caches and {pods:,} pods: 1 round {one:,}, "
          f"3 rounds {three:,}: one round {(three - one) // 2:,} instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
