"""The inputs readers on the shapes kubectl and ECI's API print, and on bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import fastmatch as fm
from fastmatch.inputs import (
    cache_from_describe,
    cache_from_object,
    pod_requests,
    read_namespaces,
    read_objects,
    read_profile,
)

NOW = "2026-12-01T00:00:00Z"

# ECI's documented Deployment (help.aliyun.com, "use ImageCache to accelerate pods").
ECI_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment-basic
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
      annotations:
        k8s.aliyun.com/eci-auto-imc: "true"
        k8s.aliyun.com/imc-perfect-match: "true"
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        imagePullPolicy: IfNotPresent
      - name: busybox
        image: busybox:1.30
        command: ["sleep"]
        args: ["999999"]
        imagePullPolicy: IfNotPresent
"""


def _managed_fields() -> list[dict[str, Any]]:
    return [{"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "kubectl",
             "operation": "Update", "time": "2026-11-30T10:00:00Z",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]


def _crd(name: str, images: list[str], *, phase: str | None = "Ready",
         cache_id: str | None = None, size: Any = 20, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if cache_id is not None:
        status["imageCacheId"] = cache_id
    obj: dict[str, Any] = {
        "apiVersion": "eci.alibabacloud.com/v1",
        "kind": "ImageCache",
        "metadata": {"name": name, "creationTimestamp": "2026-11-01T08:00:00Z",
                     "resourceVersion": "12345", "uid": "2b7e-...",
                     "managedFields": _managed_fields()},
        "spec": {"images": images, "imageCacheSize": size, **extra},
        "status": status,
    }
    return obj


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _json_list(items: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items,
                       "metadata": {"resourceVersion": ""}}, indent=4)


# -- pods -------------------------------------------------------------------


def test_eci_documented_deployment_gives_two_replicas_sharing_images_and_policy(
    tmp_path: Path,
) -> None:
    pods = fm.read_pods(_write(tmp_path, "deploy.yaml", ECI_DEPLOYMENT))
    assert [p.name for p in pods] == ["nginx-deployment-basic-0", "nginx-deployment-basic-1"]
    assert [p.namespace for p in pods] == ["default", "default"]
    assert [i.ref for i in pods[0].images] == [
        "docker.io/library/nginx:1.14.2", "docker.io/library/busybox:1.30"]
    assert pods[0].policy.perfect_match and pods[0].workload == "Deployment nginx-deployment-basic"
    assert pods[0].images is pods[1].images and pods[0].policy is pods[1].policy


def test_kubectl_json_list_of_workloads_with_managed_fields_and_status(tmp_path: Path) -> None:
    template = {"metadata": {"annotations": {"k8s.aliyun.com/imc-match-count-request": "1"},
                             "labels": {"app": "db"}},
                "spec": {"initContainers": [{"name": "init", "image": "busybox:1.30"}],
                         "containers": [{"name": "db", "image": "redis:7"},
                                        {"name": "side", "image": "busybox:1.30"}],
                         "ephemeralContainers": [{"name": "dbg", "image": "alpine:3"}],
                         "nodeSelector": {"kubernetes.io/arch": "aarch64"}}}
    items = [
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "db", "namespace": "data", "managedFields": _managed_fields(),
                      "annotations": {"k8s.aliyun.com/imc-perfect-match": "true"}},
         "spec": {"replicas": 3, "template": template}, "status": {"replicas": 3}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {
             "spec": {"containers": [{"name": "c", "image": "python:3.12"}]}}}}}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "fluentd"}]}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "off"},
         "spec": {"replicas": 0, "template": template}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"}, "spec": {}},
    ]
    pods = fm.read_pods(_write(tmp_path, "all.json", _json_list(items)))
    assert [p.name for p in pods] == ["db-0", "db-1", "db-2", "nightly", "agent"]
    db = pods[0]
    # Init and regular containers, each image once; not the ephemeral containers'.
    assert [i.ref for i in db.images] == ["docker.io/library/busybox:1.30",
                                           "docker.io/library/redis:7"]
    # The template's annotations, not the workload's own; the node selector's platform.
    assert db.policy.match_count == 1 and not db.policy.perfect_match
    assert (db.arch, db.namespace) == ("arm64", "data")
    assert pods[3].workload == "CronJob nightly"


def test_catalog_supplies_layers_and_unknown_images_stay_by_reference(tmp_path: Path) -> None:
    layer = {"digest": "sha256:" + "a" * 64, "size": 1000}
    catalog = fm.read_catalog(_write(tmp_path, "c.jsonl", json.dumps(
        {"ref": "docker.io/library/nginx:1.14.2", "layers": [layer]}) + "\n"))
    (pod,) = fm.read_pods(_write(tmp_path, "p.yaml", """\
kind: Pod
metadata: {name: p}
spec: {containers: [{name: a, image: nginx:1.14.2}, {name: b, image: "redis:7"}]}
"""), catalog=catalog)
    assert pod.images[0].layers[0].size == 1000
    assert pod.images[1].layers == ()


def test_pod_request_from_admission_object_and_generate_name() -> None:
    obj = {"kind": "Pod", "metadata": {"generateName": "web-7f9c-", "namespace": "prod",
                                        "annotations": {"k8s.aliyun.com/eci-imc-id": "imc-1"}},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    req = fm.PodRequest.from_object(obj)
    assert (req.name, req.namespace, req.policy.cache_id) == ("web-7f9c-", "prod", "imc-1")
    with pytest.raises(fm.InputFileError, match="not a Pod"):
        fm.PodRequest.from_object({"kind": "Deployment", "metadata": {"name": "x"}})


def test_match_pod_uses_the_requests_images_policy_and_name() -> None:
    idx = fm.CacheIndex([fm.ImageCache("imc-1", ["nginx:1.14.2"], created=NOW)])
    req = fm.PodRequest(["nginx:1.14.2", "redis:7"],
                        {"k8s.aliyun.com/imc-perfect-match": "true"}, name="web-0")
    result = idx.match_pod(req, now=NOW)
    assert result.outcome == "none"
    assert result.create is not None and result.create.name == "auto-create-for-web-0"
    with pytest.raises(fm.ValidationError, match="PodRequest"):
        idx.match_pod("nginx", now=NOW)  # type: ignore[arg-type]


def test_profile_applies_to_workload_templates(tmp_path: Path) -> None:
    selectors = [{"name": "cache-all", "namespaceSelector": {"matchLabels": {"cache": "on"}},
                  "effect": {"annotations": {"k8s.aliyun.com/imc-perfect-match": "true"}}}]
    profile_file = _write(tmp_path, "profile.yaml", yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "eci-profile", "namespace": "kube-system"},
        "data": {"selectors": json.dumps(selectors), "vSwitchIds": "vsw-1"}}))
    ns_file = _write(tmp_path, "ns.yaml", """\
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {cache: "on"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev}
""")
    deploys = "".join(f"""---
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  template:
    spec: {{containers: [{{name: c, image: nginx}}]}}
""" for ns in ("prod", "dev"))
    pods = fm.read_pods(_write(tmp_path, "d.yaml", deploys), profile=read_profile(profile_file),
                        namespaces=read_namespaces(ns_file))
    assert [p.policy.perfect_match for p in pods] == [True, False]
    assert pods[0].annotations["k8s.aliyun.com/imc-perfect-match"] == "true"


def test_profile_selects_by_namespace_name_without_a_namespaces_file(tmp_path: Path) -> None:
    selectors = [{"name": "prod", "namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "prod"}},
        "effect": {"annotations": {"k8s.aliyun.com/imc-perfect-match": "true"}}}]
    profile = fm.EciProfile.from_configmap({"kind": "ConfigMap", "metadata": {
        "name": "eci-profile", "namespace": "kube-system"},
        "data": {"selectors": json.dumps(selectors)}})
    pods = fm.read_pods(_write(tmp_path, "p.yaml", "".join(f"""---
kind: Pod
metadata: {{name: p, namespace: {ns}}}
spec: {{containers: [{{image: nginx}}]}}
""" for ns in ("prod", "dev"))), profile=profile)
    assert [p.policy.perfect_match for p in pods] == [True, False]
    ns_file = _write(tmp_path, "ns.yaml", "kind: Namespace\nmetadata: {name: prod}\n")
    assert read_namespaces(ns_file) == {"prod": {"kubernetes.io/metadata.name": "prod"}}


# -- caches -----------------------------------------------------------------


def test_imagecache_list_from_kubectl_every_phase_and_an_object_without_an_id(
    tmp_path: Path,
) -> None:
    items = [
        _crd("web", ["nginx:1.14.2", "busybox:1.30"], cache_id="imc-2ze5tm5gehgtiiga1234",
             size=40, retentionDays=7),
        _crd("building", ["redis:7"], phase="Creating", cache_id="imc-2ze0000000000000b"),
        _crd("new-one", ["redis:7"], phase=None),
        _crd("auto-create-for-web-0", ["python:3.12"], cache_id="imc-auto"),
    ]
    items[0]["status"]["expireDateTime"] = "2026-11-08T08:00:00Z"
    caches = fm.read_caches(_write(tmp_path, "ic.json", _json_list(items)))
    web, building, new, auto = caches
    assert (web.id, web.name, web.size_gib, web.retention_days) == (
        "imc-2ze5tm5gehgtiiga1234", "web", 40, 7)
    assert web.expires is not None and web.expires.day == 8
    assert building.phase is fm.Phase.CREATING
    assert (new.id, new.phase) == ("new-one", fm.Phase.PREPARING)  # identified by its name
    assert auto.auto_created and not web.auto_created


def test_describe_image_caches_answer(tmp_path: Path) -> None:
    answer = {"RequestId": "89164E57-...", "TotalCount": 1, "ImageCaches": [{
        "ImageCacheId": "imc-2zebxkiifuyzzlhl****", "ImageCacheName": "auto-create-for-web",
        "Images": ["nginx:1.14.2"], "Status": "Ready", "CreationTime": "2026-11-01T08:00:00Z",
        "ExpireDateTime": "2026-12-31T08:00:00Z", "LastMatchedTime": "2026-11-20T08:00:00Z",
        "ImageCacheSize": 30, "EliminationStrategy": "LRU", "Progress": "100%",
        "Events": [], "Tags": [], "RegionId": "cn-beijing"}]}
    (cache,) = fm.read_caches(_write(tmp_path, "describe.json", json.dumps(answer)))
    assert (cache.id, cache.size_gib, cache.auto_created) == ("imc-2zebxkiifuyzzlhl****", 30, True)
    assert cache.last_matched is not None and cache.last_matched.day == 20
    assert cache_from_describe(answer["ImageCaches"][0]) == cache


def test_cache_from_a_watch_event_object() -> None:
    obj = _crd("web", ["nginx"], cache_id="imc-1")
    assert cache_from_object(obj).id == "imc-1"
    with pytest.raises(fm.InputFileError, match=r"^ImageCache web: status.phase: unknown phase"):
        cache_from_object(_crd("web", ["nginx"], phase="Done"))


def test_decisions_match_in_the_end_to_end_example(tmp_path: Path) -> None:
    caches = fm.read_caches(_write(tmp_path, "ic.json", _json_list(
        [_crd("web", ["nginx:1.14.2", "busybox:1.30"], cache_id="imc-web")])))
    pods = fm.read_pods(_write(tmp_path, "deploy.yaml", ECI_DEPLOYMENT))
    results = fm.CacheIndex(caches).match_many(
        [p.images for p in pods], [p.policy for p in pods], now=NOW,
        pod_names=[p.name for p in pods])
    assert [(r.outcome, r.cache_id, r.perfect) for r in results] == [("use", "imc-web", True)] * 2


# -- documents --------------------------------------------------------------


def test_directories_stdin_and_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "b").mkdir()
    _write(tmp_path, "b/2.yml", "kind: Pod\nmetadata: {name: second}\n"
           "spec: {containers: [{image: nginx}]}\n")
    _write(tmp_path, "1.jsonl", json.dumps({"kind": "Pod", "metadata": {"name": "first"},
                                            "spec": {"containers": [{"image": "nginx"}]}}))
    _write(tmp_path, "notes.txt", "not read")
    assert [p.name for p in fm.read_pods([tmp_path])] == ["first", "second"]
    monkeypatch.setattr("sys.stdin", io.StringIO(ECI_DEPLOYMENT))
    assert len(fm.read_pods("-")) == 2


def test_located_objects_say_where_they_were_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.yaml", ECI_DEPLOYMENT + "---\n" + yaml.safe_dump(
        _crd("web", ["nginx"])))
    found = read_objects(path)
    assert [loc.where for loc in found] == [
        f"{path}: document 1 (Deployment nginx-deployment-basic)",
        f"{path}: document 2 (ImageCache web)"]


BAD_PODS = [
    # (file name, text, expected message after the file name)
    ("deploy.yaml",
     "kind: Pod\nmetadata: {name: ok}\nspec: {containers: [{image: nginx}]}\n---\n"
     "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
     "      containers: [{image: nginx}, {image: Nginx}]\n",
     ": document 2 (Deployment web): spec.template.spec.containers[1].image: invalid image "
     "reference 'Nginx': repository name must be lowercase"),
    ("neg.yaml",
     "kind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: -1\n  template:\n"
     "    spec: {containers: [{image: nginx}]}\n",
     ": document 1 (Deployment web): spec.replicas: expected 0 to 1,000,000, got -1"),
    ("trunc.json", '{"kind": "Pod", "metadata": {"name": "p"',
     ": not valid JSON: Expecting ',' delimiter (line 1, column 41)"),
    ("tab.yaml", "kind: Pod\nmetadata:\n\tname: p\n",
     ": not valid YAML: a tab where YAML allows only spaces (indent with spaces) "
     "(line 3, column 1)"),
    ("noimage.yaml", "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
     ": document 1 (Pod p): spec.containers[0].image: expected an image reference (a string), "
     "got None"),
    ("annot.yaml",
     "kind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.aliyun.com/imc-perfect-match: yes}\n"
     "spec: {containers: [{image: nginx}]}\n",
     ": document 1 (Pod p): metadata.annotations[k8s.aliyun.com/imc-perfect-match]: expected a "
     "string value, got True"),
    ("list.json", _json_list([{"kind": "Pod", "metadata": {"name": "a"},
                               "spec": {"containers": "nginx"}}]),
     ": document 1: items[0] (Pod a): spec.containers: expected a list of containers"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_PODS,
                         ids=[case[0] for case in BAD_PODS])
def test_bad_pods_name_file_document_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    good = _write(tmp_path, "good.yaml", ECI_DEPLOYMENT)
    path = _write(tmp_path, name, text)
    with pytest.raises(fm.InputFileError) as info:
        fm.read_pods([good, path])  # nothing half-read: the good file's pods are not returned
    assert str(info.value) == path + message


BAD_CACHES = [
    ("size.yaml", yaml.safe_dump(_crd("web", ["nginx"], size="big")),
     ": document 1 (ImageCache web): spec.imageCacheSize: expected an integer (GiB), got 'big'"),
    ("phase.yaml", yaml.safe_dump(_crd("web", ["nginx"], phase="Finished")),
     ": document 1 (ImageCache web): status.phase: unknown phase 'Finished' (expected one of "
     "Preparing, Creating, Ready, Failed, Updating, UpdateFailed)"),
    ("many.yaml", yaml.safe_dump(_crd("web", [f"app{i}" for i in range(21)])),
     ": document 1 (ImageCache web): spec.images: holds 21 images; a cache holds 1 to 20"),
    ("ref.json", json.dumps({"ImageCaches": [{"ImageCacheId": "imc-1", "Images": ["ok"]},
                                             {"ImageCacheId": "imc-2", "Images": ["UP"]}]}),
     ": document 1 (object): ImageCaches[1].Images[0]: invalid image reference 'UP': "
     "repository name must be lowercase"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_CACHES,
                         ids=[case[0] for case in BAD_CACHES])
def test_bad_caches_name_file_document_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(fm.InputFileError) as info:
        fm.read_caches(path)
    assert str(info.value) == path + message


def test_a_cache_listed_twice_is_bad_input(tmp_path: Path) -> None:
    path = _write(tmp_path, "dup.json", _json_list([_crd("a", ["nginx"], cache_id="imc-1"),
                                                   _crd("b", ["nginx"], cache_id="imc-1")]))
    with pytest.raises(fm.InputFileError, match=r"items\[1\] \(ImageCache b\): image cache "
                                                r"imc-1 is listed already, at .*items\[0\]"):
        fm.read_caches(path)


def test_missing_paths_and_bad_objects_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(fm.InputFileError, match="no such file or directory"):
        fm.read_pods(tmp_path / "nope.yaml")
    with pytest.raises(fm.InputFileError, match="expected an object, got int"):
        fm.read_pods(_write(tmp_path, "n.yaml", "5\n"))
    with pytest.raises(fm.InputFileError, match="expected an object"):
        pod_requests(["not", "a", "pod"])  # type: ignore[arg-type]


def test_profile_file_must_hold_the_configmap(tmp_path: Path) -> None:
    with pytest.raises(fm.InputFileError, match="no ConfigMap kube-system/eci-profile"):
        read_profile(_write(tmp_path, "p.yaml", "kind: Namespace\nmetadata: {name: x}\n"))
    bad = _write(tmp_path, "bad.yaml", "kind: ConfigMap\nmetadata: {name: eci-profile, "
                 "namespace: kube-system}\ndata: {selectors: '[{oops'}\n")
    with pytest.raises(fm.InputFileError, match=r"bad.yaml: document 1 \(ConfigMap "
                                                r"kube-system/eci-profile\): data.selectors"):
        read_profile(bad)
