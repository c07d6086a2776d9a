"""A report as text: the summary table for people, JSON (SPEC §11), CSV of the pods.

The JSON is written as it goes, one pod a line: a workload's replicas share
one result, whose fields are encoded once (a million pods cost their
workloads' encoding and a million short lines, not a million dictionaries).
"""

from __future__ import annotations

import csv
import json
from json.encoder import encode_basestring_ascii
from typing import IO, Any

from fastmatch.explain import human_bytes
from fastmatch.report.aggregate import iso
from fastmatch.report.cluster_report import ClusterReport
from fastmatch.report.recommend import GREEDY_GUARANTEE

__all__ = ["CSV_COLUMNS", "human_seconds", "short_ref", "write_csv", "write_json", "write_table"]

CSV_COLUMNS = ("namespace", "name", "outcome", "cache_id", "named", "full", "images",
               "covered", "perfect", "reason", "create")
_FLUSH = 4096  # pod lines joined before each write


def write_json(report: ClusterReport, out: IO[str]) -> None:
    """Write the report as SPEC §11's JSON (``json.load`` gives ``report.as_dict()``)."""
    out.write('{"summary": ' + json.dumps(report.summary.as_dict()) + ',\n"pods": [\n')
    tails: dict[int, str] = {}
    spaces: dict[str, str] = {}
    dumps = json.dumps
    lines: list[str] = []
    sep = ""
    for request, result in zip(report.requests, report.results):
        tail = tails.get(id(result))
        if tail is None:
            tail = tails[id(result)] = dumps(result.as_dict())[1:]
        ns = request.namespace
        head = spaces.get(ns)
        if head is None:
            head = spaces[ns] = '{"namespace": ' + dumps(ns) + ', "name": '
        # What json.dumps does with a string, without its encoder's set-up per call.
        lines.append(head + encode_basestring_ascii(request.name) + ", " + tail)
        if len(lines) >= _FLUSH:
            out.write(sep + ",\n".join(lines))
            sep = ",\n"
            lines.clear()
    if lines:
        out.write(sep + ",\n".join(lines))
    out.write("\n],\n")
    caches = ",\n".join(dumps(c.as_dict()) for c in report.caches)
    out.write('"caches": [\n' + caches + "\n],\n")
    recommendations = {"create": [c.as_dict() for c in report.create],
                       "delete": [d.as_dict() for d in report.delete]}
    out.write('"recommendations": ' + dumps(recommendations, indent=1))
    if report.simulation is not None:
        out.write(',\n"simulation": ' + dumps([d.as_dict() for d in report.simulation]))
    out.write("}\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(report: ClusterReport, out: IO[str]) -> None:
    """Write the pods as CSV (SPEC §11): SPEC §9's fields, ``create`` as the proposal's
    name or empty, booleans ``true``/``false``, nulls empty."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cells: dict[int, list[str]] = {}
    for request, result in zip(report.requests, report.results):
        tail = cells.get(id(result))
        if tail is None:
            create = result.create
            tail = cells[id(result)] = [
                result.outcome, _cell(result.cache_id), _cell(result.named), str(result.full),
                str(result.images), str(result.covered), _cell(result.perfect), result.reason,
                create.name if create is not None else "",
            ]
        writer.writerow([request.namespace, request.name, *tail])


def short_ref(ref: str) -> str:
    """A reference as people write it: ``docker.io/library/nginx:1.14.2`` is
    ``nginx:1.14.2``, ``docker.io/user/app:1`` is ``user/app:1``."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def human_seconds(seconds: float) -> str:
    """Seconds for a person: ``4.4 s``, ``12.5 min``, ``30.5 h``, ``3.2 days``."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def _pods(n: int) -> str:
    return f"{n:,} pod{'s' if n != 1 else ''}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def write_table(report: ClusterReport, out: IO[str], *, top: int = 5) -> None:
    """Write the summary a person reads in ten seconds: the pods by outcome, the bytes and
    time the caches save, the busiest and idle caches, and the recommendations."""
    s = report.summary
    used = s.perfect + s.partial
    idle = sum(c.idle for c in report.caches)
    lines = [
        f"fastmatch report: {s.pods:,} pods against {len(report.caches):,} image caches "
        f"at {iso(report.now)}",
        "",
        f"  from a cache       {used:,} of {s.pods:,} pods ({_share(used, s.pods)}): "
        f"{s.perfect:,} with all their images, {s.partial:,} partial",
        f"  no cache           {s.miss:,}",
        f"  rejected           {s.rejected:,}",
        f"  bytes from caches  {human_bytes(s.bytes_from_cache)} of "
        f"{human_bytes(s.bytes_pulled)} ({_share(s.bytes_from_cache, s.bytes_pulled)})",
        f"  time saved         {human_seconds(s.seconds_saved)} of pulling at "
        f"{s.bandwidth:g} MB/s",
        f"  caches             {len(report.caches) - idle:,} served pods, {idle:,} idle",
    ]
    busiest = sorted((c for c in report.caches if not c.idle),
                     key=lambda c: (-c.pods, -c.bytes_served, c.id))[:top]
    if busiest:
        lines += ["", "busiest caches:"]
        width = max(len(c.id) for c in busiest)
        lines += [f"  {c.id.ljust(width)}  {_pods(c.pods)}, {human_bytes(c.bytes_served)}"
                  for c in busiest]
    if report.create:
        lines += ["", f"caches to create (greedy maximum coverage: at least "
                      f"{100 * GREEDY_GUARANTEE:.0f}% of the bytes the best choice would serve):"]
        for n, c in enumerate(report.create[:top], 1):
            refs = ", ".join(short_ref(image.ref) for image in c.images)
            lines.append(f"  {n}. {refs} ({c.size_gib} GiB): {_pods(c.pods)}, "
                         f"{human_bytes(c.bytes)}")
        if len(report.create) > top:
            lines.append(f"  ... and {len(report.create) - top} more (--format json)")
    if report.delete:
        lines += ["", "caches to delete:"]
        lines += [f"  {d.id}: {d.reason}" for d in report.delete[:top]]
        if len(report.delete) > top:
            lines.append(f"  ... and {len(report.delete) - top} more (--format json)")
    if report.simulation:
        days = report.simulation
        pods = sum(d.pods for d in days)
        hits = sum(d.hits for d in days)
        last = next((d for d in reversed(days) if d.pods), days[-1])
        lines += ["", f"simulated auto-create over {len(days)} days: {hits:,} of {pods:,} pods "
                      f"from a cache ({_share(hits, pods)}); on {last.day.isoformat()} "
                      f"{_share(last.hits, last.pods)}"]
    out.write("\n".join(lines) + "\n")
