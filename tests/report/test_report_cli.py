"""``fastmatch report`` as a user runs it: on the repository's examples, in every format."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import fastmatch as fm
from fastmatch.cli import main

from report_helpers import CACHES, CONTEXT, EXAMPLES, NOW, PODS


def run(capsys, *args):
    code = main(["report", "--caches", *CACHES, "--pods", *PODS, *CONTEXT, *args])
    out, err = capsys.readouterr()
    return code, out, err


def report_json(capsys, *args):
    code, out, err = run(capsys, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_the_json_has_exactly_the_fields_of_spec_11(capsys):
    got = report_json(capsys)
    assert list(got) == ["summary", "pods", "caches", "recommendations"]
    assert list(got["summary"]) == ["pods", "perfect", "partial", "miss", "rejected",
                                    "bytes_from_cache", "bytes_pulled", "seconds_saved"]
    assert {tuple(row) for row in got["pods"]} == {(
        "namespace", "name", "outcome", "cache_id", "named", "full", "images", "covered",
        "perfect", "reason", "create")}
    assert {tuple(c) for c in got["caches"]} == {("id", "pods", "bytes_served", "idle",
                                                  "expires")}
    assert list(got["recommendations"]) == ["create", "delete"]
    assert {tuple(c) for c in got["recommendations"]["create"]} == {
        ("images", "size_gib", "pods", "bytes")}
    assert {tuple(d) for d in got["recommendations"]["delete"]} == {("id", "reason")}


def test_the_pods_are_the_decisions_of_fastmatch_match(capsys):
    got = report_json(capsys)
    assert main(["match", "--caches", *CACHES, *CONTEXT, "--format", "json", "--", *PODS]) == 0
    matched = json.loads(capsys.readouterr().out)
    assert got["pods"] == matched


def test_the_summary_counts_and_bytes_follow_the_pods(capsys):
    got = report_json(capsys)
    rows, s = got["pods"], got["summary"]
    assert s["pods"] == len(rows) == 13
    assert s["perfect"] == sum(r["outcome"] == "use" and r["perfect"] for r in rows) == 3
    assert s["partial"] == sum(r["outcome"] == "use" and not r["perfect"] for r in rows) == 2
    assert s["miss"] == sum(r["outcome"] == "none" for r in rows) == 6
    assert s["rejected"] == sum(r["outcome"] == "reject" for r in rows) == 2
    assert s["bytes_from_cache"] == sum(r["covered"] for r in rows if r["outcome"] == "use")
    # Pulled: each pod's distinct layers, from the catalog, with no cache at all.
    catalog = fm.read_catalog(str(EXAMPLES / "catalog.jsonl"))
    requests = fm.read_pods(PODS, catalog=catalog)
    pulled = sum(sum({la.digest: la.size for i in r.images for la in i.layers}.values())
                 for r in requests)
    assert s["bytes_pulled"] == pulled
    assert s["seconds_saved"] == s["bytes_from_cache"] / 100e6
    slower = report_json(capsys, "--bandwidth", "50")["summary"]
    assert slower["seconds_saved"] == pytest.approx(2 * s["seconds_saved"])


def test_every_cache_read_is_listed_with_what_it_served(capsys):
    got = report_json(capsys)
    caches = {c["id"]: c for c in got["caches"]}
    assert len(caches) == 7
    web = caches["imc-2ze5tm5gehgtiiga8x3k"]
    served = [r for r in got["pods"] if r["cache_id"] == web["id"] and r["outcome"] == "use"]
    assert (web["pods"], web["idle"]) == (2, False)
    assert web["bytes_served"] == sum(r["covered"] for r in served)
    idle = {c["id"] for c in got["caches"] if c["idle"]}
    assert idle == {c["id"] for c in got["caches"] if c["pods"] == 0}
    assert all(c["expires"] is None or c["expires"].endswith("Z") for c in got["caches"])
    # A Failed cache serves nobody and is recommended for deletion.
    deleted = {d["id"]: d["reason"] for d in got["recommendations"]["delete"]}
    assert "Failed" in deleted["imc-2zeb3n7q1w0ttp5xk8mn"]


def test_csv_has_the_pods_rows(capsys):
    code, out, err = run(capsys, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 13
    assert list(rows[0]) == ["namespace", "name", "outcome", "cache_id", "named", "full",
                             "images", "covered", "perfect", "reason", "create"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["web-0"]["perfect"] == "true" and by_name["web-0"]["create"] == ""
    assert by_name["api-0"]["create"] == "auto-create-for-api-0"
    assert by_name["api-0"]["cache_id"] == ""  # null is empty
    assert by_name["api-1"]["named"] == "false"


def test_the_table_is_a_short_summary(capsys):
    code, out, err = run(capsys)
    assert code == 0, err
    assert "13 pods against 7 image caches at 2026-12-01T00:00:00Z" in out
    assert "5 of 13 pods (38.5%)" in out
    assert "at least 63% of the bytes" in out
    assert len(out.splitlines()) < 40
    assert err == ""  # no progress bar: standard error is not a terminal


def test_output_goes_to_the_file_named_whole(capsys, tmp_path):
    target = tmp_path / "report.json"
    code, out, err = run(capsys, "--format", "json", "-o", str(target))
    assert code == 0, err
    assert out == ""
    assert json.loads(target.read_text())["summary"]["pods"] == 13
    assert list(tmp_path.iterdir()) == [target]
    code, out, err = run(capsys, "-o", str(tmp_path / "missing" / "report.txt"))
    assert code == 2
    assert "-o" in err and "cannot write there" in err


def test_bad_input_names_the_file_and_exits_2(capsys, tmp_path):
    bad = tmp_path / "pods.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: x}\nspec: {containers: [{image: Nginx}]}\n")
    code = main(["report", "--caches", *CACHES, "--pods", str(bad), "--now", NOW])
    err = capsys.readouterr().err
    assert code == 2
    assert "pods.yaml" in err and "lowercase" in err
    with pytest.raises(SystemExit) as usage:
        main(["report", "--caches", *CACHES, "--pods", *PODS, "--bandwidth", "0"])
    assert usage.value.code == 2
    assert "--bandwidth: expected a number of MB/s > 0" in capsys.readouterr().err


def test_a_history_gives_the_simulated_hit_rate_by_day(capsys, tmp_path):
    history = tmp_path / "history.jsonl"
    pod = {"kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}
    history.write_text("".join(
        json.dumps({"time": f"2026-11-0{d}T12:00:00Z", "pod": pod}) + "\n" for d in (1, 2, 4)))
    got = report_json(capsys, "--history", str(history))
    assert [(d["day"], d["pods"], d["hits"], d["hit_rate"]) for d in got["simulation"]] == [
        ("2026-11-01", 1, 0, 0.0), ("2026-11-02", 1, 1, 1.0), ("2026-11-03", 0, 0, None),
        ("2026-11-04", 1, 1, 1.0)]
    code, out, err = run(capsys, "--history", str(history))
    assert code == 0, err
    assert "simulated auto-create over 4 days: 2 of 3 pods" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_shows_on_a_terminal_unless_quiet(capsys, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["report", "--caches", *CACHES, "--pods", *PODS, *CONTEXT]) == 0
    assert "pod" in terminal.getvalue()  # tqdm's "13/13 [...]  pod/s"
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["report", "--caches", *CACHES, "--pods", *PODS, *CONTEXT, "--quiet"]) == 0
    assert quiet.getvalue() == ""
    capsys.readouterr()


def test_the_command_loads_no_extra_until_it_needs_one():
    code = ("import sys, fastmatch.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('plotly', 'tqdm', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_simulate_reads_the_pods_own_creation_times(capsys, tmp_path):
    pods = tmp_path / "pods.yaml"
    pods.write_text("".join(
        f"---\nkind: Pod\nmetadata: {{name: p{d}, creationTimestamp: '2026-11-0{d}T08:00:00Z'}}\n"
        "spec: {containers: [{name: c, image: 'redis:7'}]}\n" for d in (1, 3)))
    code = main(["report", "--caches", *CACHES, "--pods", str(pods), "--now", NOW,
                 "--format", "json", "--simulate"])
    out, err = capsys.readouterr()
    assert code == 0, err
    days = json.loads(out)["simulation"]
    assert [(d["day"], d["pods"], d["hits"], d["created"]) for d in days] == [
        ("2026-11-01", 1, 0, 1), ("2026-11-02", 0, 0, 0), ("2026-11-03", 1, 1, 0)]
    # Without the times, the simulation cannot run: the error names the pod.
    bare = tmp_path / "bare.yaml"
    bare.write_text("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{image: 'redis:7'}]}\n")
    code = main(["report", "--caches", *CACHES, "--pods", str(bare), "--simulate"])
    assert code == 2
    assert "bare.yaml" in capsys.readouterr().err


def test_resolve_takes_the_layers_from_the_registry_resolver(capsys, monkeypatch, tmp_path):
    # The registry itself is the resolver's tests' business: here, a stand-in resolver
    # that knows one image, to see that --resolve hands it to the readers as their layers.
    import fastmatch.registry as registry

    asked = []

    class Resolver:
        def __init__(self, config, *, cache_dir=None, catalog=None):
            asked.append(("made", catalog is not None))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            asked.append(("closed",))

        def get(self, ref, *, platform=None):
            if ref.startswith("docker.io/library/redis"):
                return fm.Image(ref, [fm.Layer("sha256:" + "1" * 64, 7_000_000)])
            return None

    monkeypatch.setattr(registry, "Resolver", Resolver)
    pods = tmp_path / "pods.yaml"
    pods.write_text("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{image: 'redis:7'}]}\n")
    code = main(["report", "--caches", *CACHES, "--pods", str(pods), "--now", NOW,
                 "--format", "json", "--resolve"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["summary"]["bytes_pulled"] == 7_000_000
    assert asked == [("made", False), ("closed",)]
