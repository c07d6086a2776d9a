"""``fastmatch match`` as a user runs it: on the repository's examples, and on bad input."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastmatch.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOW = "2026-12-01T00:00:00Z"

CACHES = [str(EXAMPLES / "imagecaches.json"), str(EXAMPLES / "describe-image-caches.json")]
PODS = [str(EXAMPLES / name) for name in ("deployment.yaml", "workloads.yaml", "pods.yaml")]
CONTEXT = [
    "--catalog", str(EXAMPLES / "catalog.jsonl"),
    "--profile", str(EXAMPLES / "eci-profile.yaml"),
    "--namespaces", str(EXAMPLES / "namespaces.yaml"),
]
API = "registry.cn-hangzhou.aliyuncs.com/acme/api:2.3.1"
WEB_CACHE = "imc-2ze5tm5gehgtiiga8x3k"  # nginx:1.14.2 and busybox:1.30, Ready
API_CACHE = "imc-2zebxkhhmcgjf0xhuhfl"  # the api image alone, auto-created, Ready


def run(capsys, *args, stdin=None, monkeypatch=None):
    """``fastmatch match ARGS``: the exit code, standard output and standard error."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["match", *args])
    out, err = capsys.readouterr()
    return code, out, err


def decided(capsys, *args):
    """The JSON decisions of ``fastmatch match --format json ARGS``."""
    code, out, err = run(capsys, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def examples(capsys, *extra, pods=PODS):
    return decided(capsys, "--caches", *CACHES, *CONTEXT, "--now", NOW, *extra, "--", *pods)


def by_name(rows):
    return {row["name"]: row for row in rows}


# -- JSON -------------------------------------------------------------------------


def test_json_gives_one_object_per_replica_in_input_order(capsys):
    rows = examples(capsys)
    assert [(r["namespace"], r["name"]) for r in rows] == [
        ("default", "web-0"), ("default", "web-1"),
        ("shop", "api-0"), ("shop", "api-1"), ("shop", "api-2"),
        ("data", "postgres-0"), ("data", "postgres-1"),
        ("logging", "log-agent"), ("default", "cleanup"), ("default", "nightly-report"),
        ("default", "migrate"), ("default", "billing"), ("default", "invoice-export"),
    ]
    for row in rows:
        assert list(row) == ["namespace", "name", "outcome", "cache_id", "named", "full",
                             "images", "covered", "perfect", "reason", "create"]
    web = by_name(rows)["web-0"]
    assert web == {
        "namespace": "default", "name": "web-0", "outcome": "use", "cache_id": WEB_CACHE,
        "named": False, "full": 2, "images": 2, "covered": 45_149_495, "perfect": True,
        "reason": f"matched {WEB_CACHE}: 2 of 2 images fully cached, 45.1 MB of 45.1 MB",
        "create": None,
    }


def test_replicas_propose_one_cache_between_them(capsys):
    rows = by_name(examples(capsys))
    assert rows["api-0"]["create"] == {
        "name": "auto-create-for-api-0",
        "images": [API, "docker.io/fluent/fluent-bit:3.0.4"],
        "size_gib": 30,
    }
    for name in ("api-1", "api-2"):
        assert rows[name]["outcome"] == "none" and rows[name]["create"] is None
        assert "proposed once for these images, with pod api-0" in rows[name]["reason"]
    assert [r["create"]["name"] for r in rows.values() if r["create"]] == [
        "auto-create-for-api-0", "auto-create-for-postgres-0", "auto-create-for-migrate"]


def test_the_profile_turns_perfect_match_on_for_a_labelled_namespace(capsys):
    catalog = ["--catalog", str(EXAMPLES / "catalog.jsonl")]
    pods = [str(EXAMPLES / "workloads.yaml")]
    without = by_name(decided(capsys, "--caches", *CACHES, *catalog, "--now", NOW, *pods))
    # Without the profile the api pods start from the cache of their main image ...
    assert without["api-0"]["outcome"] == "use"
    assert without["api-0"]["cache_id"] == API_CACHE and without["api-0"]["full"] == 1
    # ... with it (shop is labelled image-cache=perfect-match) no cache holds both images.
    with_profile = by_name(examples(capsys, pods=pods))
    assert with_profile["api-0"]["outcome"] == "none"
    assert "perfect match required" in with_profile["api-0"]["reason"]
    # The other namespaces are not labelled: the profile leaves their pods alone.
    assert with_profile["cleanup"] == without["cleanup"]


def test_a_profile_on_namespace_labels_without_the_namespaces_warns(capsys):
    code, out, err = run(capsys, "--caches", *CACHES, "--profile",
                         str(EXAMPLES / "eci-profile.yaml"), "--now", NOW, "--", PODS[1])
    assert code == 0
    assert "warning: the eci-profile selects on namespace labels, but --namespaces" in err
    assert re.search(r"^shop +api \(Deployment, 3 pods\) +use ", out, flags=re.M)


def test_named_caches_are_used_or_the_pod_rejected_and_the_exit_status_is_0(capsys):
    code, out, err = run(capsys, "--format", "json", "--caches", *CACHES, "--now", NOW,
                         "--", PODS[1], PODS[2])
    assert code == 0 and err == ""
    rows = by_name(json.loads(out))
    report = rows["nightly-report"]
    assert (report["outcome"], report["cache_id"], report["named"]) == (
        "use", "imc-2ze9ktz1y3l0v6n4c8rb", True)
    assert rows["billing"]["outcome"] == "reject"
    assert rows["billing"]["reason"] == (
        "rejected: image cache imc-2ze1q9x8t0dv3lm5k2wc does not exist")
    assert rows["invoice-export"]["reason"].endswith("is Failed, not Ready")


# -- the table --------------------------------------------------------------------


def test_the_table_gives_a_workload_one_row_and_ends_with_a_summary(capsys):
    code, out, err = run(capsys, "--caches", *CACHES, *CONTEXT, "--now", NOW, *PODS)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "POD", "OUTCOME", "CACHE", "CREATE", "REASON"]
    assert lines[-2] == ""  # the rows, a blank line, the summary
    rows = {re.split(r" {2,}", line)[1]: line for line in lines[1:-2]}
    assert re.match(rf"default +web \(Deployment, 2 pods\) +use +{WEB_CACHE} +- +matched ",
                    rows["web (Deployment, 2 pods)"])
    assert re.match(r"shop +api \(Deployment, 3 pods\) +none +- +auto-create-for-api-0 "
                    r"\(30 GiB\) +no cache: ", rows["api (Deployment, 3 pods)"])
    assert "postgres (StatefulSet, 2 pods)" in rows
    assert "log-agent (DaemonSet)" in rows and "migrate" in rows
    assert " reject " in rows["billing"]
    assert not any("web-1" in line or "api-2" in line for line in lines)
    # Columns line up: every row's cache starts where the header's CACHE does.
    column = lines[0].index("CACHE")
    assert all(line[column - 2:column] == "  " and line[column] != " "
               for line in lines[1:-2])
    assert lines[-1] == (
        f"13 pods against 7 image caches (4 Ready) at {NOW}: 5 used a cache (3 with all "
        "their images), 6 no cache, 2 rejected; 3 caches to create")


def test_the_readme_shows_what_the_command_prints(capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n(NAMESPACE .*?)```", readme, flags=re.S)
    assert shown, "the README's fastmatch match example"
    cwd_paths = [str(Path(p).relative_to(ROOT)) for p in (*CACHES, *PODS)]
    assert all(path in readme for path in cwd_paths)
    code, out, _ = run(capsys, "--caches", *CACHES, *CONTEXT, "--now", NOW, *PODS)
    assert code == 0 and out == shown.group(1)


def test_replicas_that_differ_get_rows_of_their_own():
    import fastmatch as fm
    from fastmatch.match_cli import table_rows

    first = fm.PodRequest(["nginx:1.14.2"], name="web-0", namespace="default",
                          workload="Deployment web")
    requests = [first, first.renamed("web-1"), first.renamed("web-2")]
    used = fm.MatchResult("use", "imc-a", False, 1, 10, 1, True, None, "matched imc-a")
    other = fm.MatchResult("use", "imc-b", False, 1, 10, 1, True, None, "matched imc-b")
    rows = table_rows(requests, [used, other, other])
    assert [row[1] for row in rows] == [
        "web-0 (Deployment web)", "web-1..web-2 (Deployment web, 2 of 3 pods)"]
    assert [row[3] for row in rows] == ["imc-a", "imc-b"]


# -- input from standard input, and the command as installed ----------------------


def test_pods_can_come_from_standard_input(capsys, monkeypatch):
    text = (EXAMPLES / "deployment.yaml").read_text(encoding="utf-8")
    code, out, err = run(capsys, "--format", "json", "--caches", CACHES[0], "--now", NOW,
                         "--", "-", stdin=text, monkeypatch=monkeypatch)
    assert code == 0, err
    assert [(r["name"], r["cache_id"]) for r in json.loads(out)] == [
        ("web-0", WEB_CACHE), ("web-1", WEB_CACHE)]


def test_standard_input_read_twice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["match", "--caches", "-", "--", "-"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "standard input (-) can be read once" in err and len(err.splitlines()) == 1


def test_python_m_fastmatch_match_runs_on_the_examples():
    out = subprocess.run(
        [sys.executable, "-m", "fastmatch", "match", "--caches", *CACHES, *CONTEXT,
         "--now", NOW, "--format", "json", *PODS],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 13 and {r["outcome"] for r in rows} == {"use", "none", "reject"}


# -- usage and bad input: exit 2, one line naming the file, document and field ----


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*PODS], "the following arguments are required: --caches"),
        (["--caches", CACHES[0], "--now", "yesterday", *PODS],
         "argument --now: expected an ISO-8601 time"),
        (["--caches", CACHES[0], "--format", "yaml", *PODS], "argument --format"),
        (["--caches", CACHES[0]], "the following arguments are required: PODS"),
    ],
    ids=["no --caches", "bad --now", "bad --format", "no pods"],
)
def test_usage_errors_exit_2_with_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["match", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("fastmatch match: error: ") and message in err
    assert len(err.splitlines()) == 1


DEPLOYMENT_WITH_A_BAD_IMAGE = """\
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  containers: [{name: a, image: nginx}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - {name: a, image: nginx}
      - {name: b, image: Nginx}
"""
NEGATIVE_REPLICAS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: -1
  template:
    spec:
      containers: [{name: a, image: nginx}]
"""
A_TAB = "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n"
CACHE_SIZE_WORDS = """\
apiVersion: eci.alibabacloud.com/v1
kind: ImageCache
metadata: {name: web-cache}
spec: {images: [nginx], imageCacheSize: big}
"""
UNKNOWN_PHASE = """\
apiVersion: eci.alibabacloud.com/v1
kind: ImageCache
metadata: {name: web-cache}
spec: {images: [nginx]}
status: {phase: Sleeping, imageCacheId: imc-2ze5tm5gehgtiiga8x3k}
"""
SELECTORS_NOT_JSON = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: eci-profile, namespace: kube-system}
data:
  selectors: '[{"name": "perfect",'
"""


@pytest.mark.parametrize(
    ("role", "name", "text", "expected"),
    [
        ("pods", "pods.yaml", DEPLOYMENT_WITH_A_BAD_IMAGE,
         "pods.yaml: document 2 (Deployment web): spec.template.spec.containers[1].image: "
         "invalid image reference 'Nginx'"),
        ("pods", "pods.yaml", NEGATIVE_REPLICAS,
         "pods.yaml: document 1 (Deployment web): spec.replicas: "),
        ("pods", "pods.yaml", A_TAB, "pods.yaml: not valid YAML: a tab"),
        ("caches", "caches.yaml", CACHE_SIZE_WORDS,
         "caches.yaml: document 1 (ImageCache web-cache): spec.imageCacheSize: "
         "expected an integer (GiB), got 'big'"),
        ("caches", "caches.yaml", UNKNOWN_PHASE,
         "caches.yaml: document 1 (ImageCache web-cache): status.phase: "
         "unknown phase 'Sleeping'"),
        ("caches", "caches.json",
         (EXAMPLES / "describe-image-caches.json").read_text(encoding="utf-8")[:300],
         "caches.json: not valid JSON: "),
        ("profile", "profile.yaml", SELECTORS_NOT_JSON,
         "profile.yaml: document 1 (ConfigMap kube-system/eci-profile): data.selectors: "
         "not valid JSON"),
    ],
    ids=["bad image in document 2", "replicas -1", "YAML tab", "imageCacheSize not a number",
         "unknown phase", "truncated JSON", "selectors not JSON"],
)
def test_bad_input_exits_2_with_one_line_naming_where(capsys, tmp_path, role, name, text,
                                                      expected):
    bad = tmp_path / name
    bad.write_text(text, encoding="utf-8")
    args = {"caches": CACHES[0], "pods": PODS[0], "profile": None}
    args[role] = str(bad)
    argv = ["--caches", args["caches"], "--now", NOW]
    if args["profile"] is not None:
        argv += ["--profile", args["profile"]]
    code, out, err = run(capsys, *argv, "--", args["pods"])
    assert code == 2 and out == ""
    assert err.startswith(f"fastmatch: error: {bad.parent}/") and expected in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_missing_file_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "--caches", str(tmp_path / "nothere.json"), "--", PODS[0])
    assert code == 2 and out == ""
    assert err == f"fastmatch: error: {tmp_path}/nothere.json: no such file or directory\n"
