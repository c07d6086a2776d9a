"""``fastmatch demo`` ends with the report of its synthetic cluster, and writes report.html."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_prints_the_report_and_writes_its_page(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fastmatch", "demo", "--caches", "200",
                          "--pods", "1000"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "fastmatch report: 1,000 pods against 200 image caches" in out.stdout
    assert "caches to create (greedy maximum coverage" in out.stdout
    page = (tmp_path / "report.html").read_text()
    assert 'id="summary-pods"><div class="value">1,000</div>' in page
    elsewhere = tmp_path / "page.html"
    out = subprocess.run([sys.executable, "-m", "fastmatch", "demo", "--caches", "100",
                          "--pods", "300", "--html", str(elsewhere)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert elsewhere.exists()
