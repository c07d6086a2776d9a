"""References from Pod / workload / ImageCache / DescribeImageCaches files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from fastmatch.errors import InputFileError
from fastmatch.registry import read_references

WORKLOADS = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  imagePullSecrets: [{name: regcred}]
  initContainers: [{name: init, image: busybox:1.36}]
  containers:
  - {name: app, image: nginx:1.25}
  - {name: sidecar, image: envoyproxy/envoy:v1.29}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers: [{name: api, image: "registry.local:5000/api:2"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "python:3.12"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
"""

KINDS = ["StatefulSet", "DaemonSet", "ReplicaSet", "Job"]


def test_pods_and_workloads(tmp_path: Path) -> None:
    path = tmp_path / "workloads.yaml"
    path.write_text(WORKLOADS)
    found = read_references([path])
    assert found.references == ["busybox:1.36", "nginx:1.25", "envoyproxy/envoy:v1.29",
                                "registry.local:5000/api:2", "python:3.12"]
    assert found.pull_secret_names == ["shop/regcred"]
    assert "(Pod shop/web) spec.initContainers[0].image" in found.origins["busybox:1.36"][0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_workload_kind(tmp_path: Path, kind: str) -> None:
    doc = {"kind": kind, "metadata": {"name": "w"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "redis:7"}]}}}}
    path = tmp_path / "w.json"
    path.write_text(json.dumps(doc))
    assert read_references([path]).references == ["redis:7"]


def test_kubectl_list_json(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "a"},
         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        {"kind": "ImageCache", "metadata": {"name": "imc"},
         "spec": {"images": ["redis:7", "nginx"], "imagePullSecrets": ["kube-system:hub"]}},
    ]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(doc))
    found = read_references([path])
    assert found.references == ["nginx", "redis:7"]
    assert found.pull_secret_names == ["kube-system/hub"]


def test_imagecache_yaml_and_describe_image_caches_json(tmp_path: Path) -> None:
    yaml_path = tmp_path / "caches.yaml"
    yaml_path.write_text("apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\n"
                         "metadata: {name: c1}\nspec:\n  images: [centos:7, nginx:1.25]\n")
    json_path = tmp_path / "describe.json"
    json_path.write_text(json.dumps({"RequestId": "x", "ImageCaches": [
        {"ImageCacheId": "imc-1", "Images": ["nginx:1.25", "mysql:8"]}]}))
    assert read_references([yaml_path, json_path]).references == \
        ["centos:7", "nginx:1.25", "mysql:8"]


def test_secrets_in_the_files_are_kept(tmp_path: Path) -> None:
    config = base64.b64encode(json.dumps({"auths": {}}).encode()).decode()
    path = tmp_path / "secret.yaml"
    path.write_text("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\n"
                    f"metadata: {{name: regcred}}\ndata: {{.dockerconfigjson: {config}}}\n")
    assert len(read_references([path]).secrets) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: Bad/Ref}]\n",
         "(Pod p): field 'spec.containers[0].image': invalid image reference"),
        ("kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n",
         "field 'spec.containers[0].image': expected an image reference"),
        ("kind: Deployment\nmetadata: {name: d}\nspec: {}\n",
         "(Deployment d): field 'spec.template' is missing"),
        ("kind: ImageCache\nmetadata: {name: c}\nspec: {images: []}\n",
         "(ImageCache c): field 'spec.images'"),
        ("kind: Pod\nspec: [\n", "not valid YAML"),
        ("- 1\n", "expected an object"),
    ],
)
def test_bad_input_names_file_object_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError) as caught:
        read_references([path])
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_bad_describe_json(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"ImageCaches": [{"ImageCacheId": "imc-9", "Images": ["A:B"]}]}))
    with pytest.raises(InputFileError, match=r"image cache imc-9: field 'Images\[0\]'"):
        read_references([path])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file or directory"):
        read_references([tmp_path / "absent.yaml"])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "kind: [Pod]\nspec: {}\n", "field 'kind': expected a string"),
        ("bad.yaml", "kind: Secret\ntype: [kubernetes.io/dockerconfigjson]\nmetadata: {}\n",
         None),
        ("bad.yaml", "kind: ImageCache\nmetadata: {name: c}\n"
         "spec: {images: [nginx], imagePullSecrets: 5}\n",
         "(ImageCache c): field 'spec.imagePullSecrets': expected a list"),
        ("bad.yaml", "kind: Pod\nmetadata: {name: p}\n"
         "spec: {containers: [{name: c, image: nginx}], imagePullSecrets: regcred}\n",
         "(Pod p): field 'spec.imagePullSecrets': expected a list"),
        ("bad.json", "[" * 100_000, "not valid JSON: nested too deeply"),
        ("bad.json", '{"kind": 1' + "0" * 5000 + "}", "not valid JSON: Exceeds the limit"),
        ("bad.yaml", "kind: Pod\ncreated: 2001-13-45\n", "not valid YAML: month must be"),
        ("bad.yaml", "kind: Pod\nreplicas: 1" + "0" * 5000 + "\n", "not valid YAML: Exceeds"),
        ("bad.yaml", "kind: List\nitems: &a [*a]\n", "items[0]: expected an object, got list"),
        ("bad.yaml", b"kind: Pod\n\xff\n", "not UTF-8 text"),
    ],
)
def test_a_value_of_the_wrong_type_or_shape_is_an_input_file_error(
    tmp_path: Path, name: str, text: str | bytes, message: str | None
) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if message is None:  # not a pull secret: skipped like any other kind
        assert read_references([path]).secrets == []
        return
    with pytest.raises(InputFileError) as caught:
        read_references([path])
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "set_int_max_str_digits" not in str(caught.value)


def test_standard_input_that_is_not_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    # A C locale decodes standard input with surrogateescape: the bytes still are not UTF-8.
    stdin = io.TextIOWrapper(io.BytesIO(b"kind: Pod\n\xff\n"), encoding="utf-8",
                             errors="surrogateescape")
    monkeypatch.setattr("sys.stdin", stdin)
    with pytest.raises(InputFileError, match=r"^-: not UTF-8 text"):
        read_references(["-"])
