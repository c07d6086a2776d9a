"""A report as one self-contained HTML page: numbers as text, charts, tables that sort.

The charts are plotly's (the ``report`` extra): interactive (hover for the
numbers, zoom), and its JavaScript bundle is inlined once in the page, so the
file works with no network and stays one file to mail or attach to a ticket.
(matplotlib's SVG would be smaller but static; a hand-drawn SVG is one more
thing to keep right.)  The tables sort on a click of their header with a few
lines of inline script.  The pods table shows the first rows only: the full
list is the JSON's or the CSV's.
"""

from __future__ import annotations

import html
import importlib
from typing import IO, Any

from fastmatch.explain import human_bytes
from fastmatch.report.aggregate import iso
from fastmatch.report.cluster_report import ClusterReport
from fastmatch.report.errors import ReportExtraError
from fastmatch.report.formats import human_seconds, short_ref
from fastmatch.report.recommend import GREEDY_GUARANTEE

__all__ = ["MAX_POD_ROWS", "write_html"]

MAX_POD_ROWS = 2000  # pods listed in the page; the JSON and the CSV list them all
_TOP = 25  # bars in a chart of caches or image sets


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8em 1.2em; min-width: 10em; }
.card .value { font-size: 1.6em; font-weight: 600; } .card .label { color: #666; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
table.sortable { border-collapse: collapse; width: 100%; font-size: 0.9em; }
table.sortable th, table.sortable td { border-bottom: 1px solid #eee; padding: 0.3em 0.6em;
  text-align: left; vertical-align: top; }
table.sortable th { cursor: pointer; background: #f6f6f6; user-select: none; }
table.sortable td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #666; }
"""

# Sort a table by the clicked column: numbers by their data-sort value, else as text.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute("data-dir") !== "up";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", up ? "up" : "down");
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var p = x.getAttribute("data-sort"), q = y.getAttribute("data-sort");
        var c = (p !== null && q !== null) ? (Number(p) - Number(q))
                : x.textContent.localeCompare(y.textContent);
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _table(table_id: str, headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, tuple):  # (text shown, number sorted by)
                cells.append(f'<td class="num" data-sort="{value[1]}">{html.escape(value[0])}</td>')
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append(f'<td class="num" data-sort="{value}">{value:,}</td>')
            else:
                cells.append(f"<td>{html.escape('' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _bytes(n: int) -> tuple[str, int]:
    return (human_bytes(n), n)


def _figures(report: ClusterReport) -> list[tuple[str, Any]]:
    go: Any = importlib.import_module("plotly.graph_objects")  # the report extra, untyped

    s = report.summary
    layout = {"margin": {"l": 40, "r": 20, "t": 50, "b": 40}, "height": 360}
    figures: list[tuple[str, Any]] = []
    outcomes = go.Figure(go.Pie(
        labels=["all images cached", "partial", "no cache", "rejected"],
        values=[s.perfect, s.partial, s.miss, s.rejected], hole=0.5, sort=False))
    outcomes.update_layout(title=f"Hit rate: {100 * s.hit_rate:.1f}% of pods from a cache",
                           **layout)
    figures.append(("chart-hit-rate", outcomes))
    gb = 1e9
    moved = go.Figure(go.Bar(
        x=["from caches", "pulled with no cache"],
        y=[s.bytes_from_cache / gb, s.bytes_pulled / gb], text=[
            human_bytes(s.bytes_from_cache), human_bytes(s.bytes_pulled)]))
    moved.update_layout(title="Bytes from caches against bytes pulled (GB)", **layout)
    figures.append(("chart-bytes", moved))
    busiest = sorted((c for c in report.caches if not c.idle),
                     key=lambda c: (-c.pods, c.id))[:_TOP]
    served = go.Figure(go.Bar(x=[c.id for c in busiest], y=[c.pods for c in busiest]))
    served.update_layout(title=f"Pods served per cache (top {len(busiest)})", **layout)
    figures.append(("chart-served", served))
    missed: dict[tuple[str, ...], list[int]] = {}
    for g in report.groups:
        if g.result.outcome == "use" and g.result.perfect:
            continue
        key = tuple(short_ref(image.ref) for image in g.images)
        entry = missed.setdefault(key, [0, 0])
        entry[0] += g.count
        entry[1] += g.count * g.missed
    worst = sorted(missed.items(), key=lambda kv: (-kv[1][1], kv[0]))[:_TOP]
    sets = go.Figure(go.Bar(
        y=[" + ".join(k)[:60] for k, _ in worst][::-1], x=[v[1] / gb for _, v in worst][::-1],
        orientation="h", text=[f"{v[0]:,} pods" for _, v in worst][::-1]))
    sets.update_layout(title="Most-missed image sets (GB still pulled)",
                       **{**layout, "margin": {"l": 300, "r": 20, "t": 50, "b": 40}})
    figures.append(("chart-missed", sets))
    if report.create:
        names = [f"{n}. " + " + ".join(short_ref(i.ref) for i in c.images)[:50]
                 for n, c in enumerate(report.create, 1)]
        create = go.Figure(go.Bar(y=names[::-1], x=[c.bytes / gb for c in report.create][::-1],
                                  orientation="h",
                                  text=[f"{c.pods:,} pods" for c in report.create][::-1]))
        create.update_layout(title="Caches to create: GB each would serve",
                             **{**layout, "margin": {"l": 300, "r": 20, "t": 50, "b": 40}})
        figures.append(("chart-create", create))
    if report.simulation:
        days = report.simulation
        rate = go.Figure(go.Scatter(
            x=[d.day.isoformat() for d in days],
            y=[None if d.hit_rate is None else 100 * d.hit_rate for d in days],
            mode="lines+markers", connectgaps=False))
        rate.update_layout(title="Simulated hit rate per day with ECI's auto-create (%)",
                           yaxis={"range": [0, 100]}, **layout)
        figures.append(("chart-simulation", rate))
    return figures


def write_html(report: ClusterReport, out: IO[str], *, title: str = "fastmatch report") -> None:
    """Write the report as one self-contained HTML page (no network needed to view it)."""
    try:
        pio: Any = importlib.import_module("plotly.io")
    except ImportError:
        raise ReportExtraError("the HTML report needs the report extra: "
                               "pip install 'fastmatch[report]'") from None
    s = report.summary
    used = s.perfect + s.partial
    cards = [
        ("pods", f"{s.pods:,}", "summary-pods"),
        ("from a cache", f"{used:,} ({100 * s.hit_rate:.1f}%)", "summary-hit"),
        ("all images cached", f"{s.perfect:,}", "summary-perfect"),
        ("partial", f"{s.partial:,}", "summary-partial"),
        ("no cache", f"{s.miss:,}", "summary-miss"),
        ("rejected", f"{s.rejected:,}", "summary-rejected"),
        ("bytes from caches", human_bytes(s.bytes_from_cache), "summary-from-cache"),
        ("bytes pulled with no cache", human_bytes(s.bytes_pulled), "summary-pulled"),
        ("time saved", f"{human_seconds(s.seconds_saved)} at {s.bandwidth:g} MB/s",
         "summary-saved"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{s.pods:,} pods against {len(report.caches):,} image caches at '
        f"{iso(report.now)}</p>",
        '<div class="cards">',
        *(f'<div class="card" id="{i}"><div class="value">{html.escape(v)}</div>'
          f'<div class="label">{html.escape(k)}</div></div>' for k, v, i in cards),
        "</div>",
    ]
    for warning in report.warnings:
        parts.append(f'<p class="note">warning: {html.escape(warning)}</p>')
    parts.append('<div class="charts">')
    for n, (div_id, figure) in enumerate(_figures(report)):
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=(n == 0),
                                 div_id=div_id, config={"displaylogo": False}))
    parts.append("</div>")
    parts.append(f"<h2>Caches to create</h2><p class=\"note\">Chosen greedily for the bytes "
                 f"they would serve (maximum coverage): at least "
                 f"{100 * GREEDY_GUARANTEE:.0f}% (1 - 1/e) of what the best choice of as many "
                 f"caches would serve.</p>")
    parts.append(_table("table-create", ["#", "images", "size (GiB)", "pods", "bytes"], [
        [n, ", ".join(short_ref(i.ref) for i in c.images), c.size_gib, c.pods, _bytes(c.bytes)]
        for n, c in enumerate(report.create, 1)]))
    parts.append("<h2>Caches to delete</h2>")
    parts.append(_table("table-delete", ["cache", "why"],
                        [[d.id, d.reason] for d in report.delete]))
    parts.append("<h2>Caches</h2>")
    parts.append(_table("table-caches", ["cache", "pods", "bytes served", "idle", "expires"], [
        [c.id, c.pods, _bytes(c.bytes_served), "idle" if c.idle else "", iso(c.expires) or "never"]
        for c in report.caches]))
    if report.simulation:
        parts.append("<h2>Simulated auto-create, by day</h2>")
        parts.append(_table("table-simulation",
                            ["day", "pods", "from a cache", "hit rate", "caches created"], [
            [d.day.isoformat(), d.pods, d.hits,
             ("-", -1) if d.hit_rate is None else (f"{100 * d.hit_rate:.1f}%", d.hit_rate),
             d.created] for d in report.simulation]))
    shown = min(len(report.requests), MAX_POD_ROWS)
    parts.append(f"<h2>Pods</h2><p class=\"note\">{shown:,} of {len(report.requests):,} pods"
                 f"{'' if shown == len(report.requests) else ' (the JSON and the CSV list all)'}"
                 "</p>")
    rows = []
    for request, result in zip(report.requests[:shown], report.results[:shown]):
        create = result.create
        rows.append([request.namespace, request.name, result.outcome, result.cache_id or "",
                     _bytes(result.covered), create.name if create is not None else "",
                     result.reason])
    parts.append(_table("table-pods",
                        ["namespace", "pod", "outcome", "cache", "covered", "create", "reason"],
                        rows))
    parts.append(f"<script>{_SORT_SCRIPT}</script>")
    parts.append("</body></html>")
    out.write("\n".join(parts) + "\n")
