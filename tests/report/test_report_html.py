"""The HTML report in a real browser (Debian's headless chromium), with no network.

The page is loaded from a copy that records console errors and uncaught
exceptions into the DOM (a hook placed before any of the page's scripts);
chromium prints the DOM once the page has settled, and takes a screenshot
into the test's directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from fastmatch.cli import main

from report_helpers import CACHES, CONTEXT, PODS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Console errors and uncaught exceptions, written into the page where --dump-dom sees them.
_HOOK = """<script>
(function () {
  var seen = [];
  function keep(kind, text) { seen.push(kind + ": " + text); }
  var error = console.error;
  console.error = function () {
    keep("console.error", Array.prototype.join.call(arguments, " "));
    return error.apply(console, arguments);
  };
  window.addEventListener("error", function (e) { keep("uncaught", e.message); });
  window.addEventListener("unhandledrejection", function (e) {
    keep("unhandled rejection", String(e.reason));
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      // Click the caches table's "pods" header twice: up, then down.
      var header = document.querySelector("#table-caches th:nth-child(2)");
      var orders = [];
      for (var n = 0; n < 2; n++) {
        header.click();
        orders.push(Array.prototype.map.call(
          document.querySelectorAll("#table-caches tbody tr td:nth-child(2)"),
          function (td) { return Number(td.getAttribute("data-sort")); }));
      }
      var sorted = document.createElement("pre");
      sorted.id = "sorted";
      sorted.textContent = JSON.stringify(orders);
      document.body.appendChild(sorted);
      var out = document.createElement("pre");
      out.id = "console-errors";
      out.textContent = JSON.stringify(seen);
      document.body.appendChild(out);
    }, 500);
  });
})();
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    offline = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", *offline, "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--window-size=1280,2400", *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    where = tmp_path_factory.mktemp("html")
    history = where / "history.jsonl"
    pod = {"kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}
    history.write_text("".join(
        json.dumps({"time": f"2026-11-0{d}T12:00:00Z", "pod": pod}) + "\n" for d in (1, 2, 4)))
    path = where / "report.html"
    assert main(["report", "--caches", *CACHES, "--pods", *PODS, *CONTEXT, "--history",
                 str(history), "--format", "html", "-o", str(path)]) == 0
    return path


def test_the_page_is_one_file_that_needs_no_network(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # No script, style or image from elsewhere: everything is inline.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", text)
    assert "Plotly" in text  # the library, inlined


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (make system-deps installs it)")
def test_the_page_renders_in_chromium_with_no_errors_and_shows_the_summary(page, tmp_path):
    hooked = tmp_path / "hooked.html"
    hooked.write_text(page.read_text().replace("<head>", "<head>" + _HOOK, 1))
    shown = _chromium("--dump-dom", hooked.as_uri())
    assert shown.returncode == 0, shown.stderr[-2000:]
    dom = shown.stdout
    found = re.search(r'<pre id="console-errors">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    assert json.loads(found.group(1).replace("&quot;", '"')) == []
    assert "Uncaught" not in shown.stderr
    # A click on a header sorts the table by it, a second click the other way.
    up, down = json.loads(re.search(r'<pre id="sorted">(.*?)</pre>', dom, re.S).group(1))
    assert up == sorted(up) and down == sorted(up, reverse=True) and len(set(up)) > 1
    # The summary numbers, as text.
    for card, value in [("summary-pods", "13"), ("summary-hit", "5 (38.5%)"),
                        ("summary-perfect", "3"), ("summary-partial", "2"),
                        ("summary-miss", "6"), ("summary-rejected", "2")]:
        assert re.search(rf'id="{card}"><div class="value">{re.escape(value)}</div>', dom), card
    # Every chart was drawn by plotly (its SVG is in the DOM), the simulation's too.
    for chart in ("chart-hit-rate", "chart-bytes", "chart-served", "chart-missed",
                  "chart-create", "chart-simulation"):
        assert re.search(rf'id="{chart}"[^>]*class="[^"]*js-plotly-plot', dom), chart
    assert dom.count('class="main-svg"') >= 6
    # And a screenshot, for a person to look at.
    shot = tmp_path / "report.png"
    taken = _chromium(f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_table_can_sort(page):
    assert page.read_text().count('class="sortable"') >= 5
