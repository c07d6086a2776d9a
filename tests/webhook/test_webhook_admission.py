"""The admission decision (SPEC §10): reviews in, answers out, the patch applied to the pod
with a JSON Patch library as the API server would."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

import fastmatch as fm
from fastmatch.inputs import read_catalog
from fastmatch.kube.admission import (
    CACHE_ANNOTATION,
    DECISION_ANNOTATION,
    MAX_WARNING,
    AdmissionError,
    admit,
    cache_object_name,
    parse_review,
)

from webhook_world import EXAMPLES, example_world, patch_of, pod, review

WEB_CACHE = "imc-2ze5tm5gehgtiiga8x3k"  # the examples' cache of nginx:1.14.2 and busybox:1.30
SPEC_9_FIELDS = {"namespace", "name", "outcome", "cache_id", "named", "full", "images",
                 "covered", "perfect", "reason", "create"}
DNS = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.fixture(scope="module")
def world() -> Any:
    return example_world()


def answer(world: Any, obj: dict[str, Any] | None, **kwargs: Any) -> Any:
    body = json.dumps(review(obj, **kwargs)).encode()
    return admit(parse_review(body), world, layers=world.catalog)


def applied(obj: dict[str, Any], admission: Any) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, patch_of(admission.review))
    return patched


def decision(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(obj["metadata"]["annotations"][DECISION_ANNOTATION])
    return found


def eci_deployment_pod() -> dict[str, Any]:
    """A replica of ECI's documented Deployment, as the ReplicaSet controller creates it."""
    deployment = yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"].pop("name")
    template["metadata"]["generateName"] = "web-6d4cf56db6-"
    template["metadata"]["namespace"] = "default"
    for c in template["spec"]["containers"]:
        c["imagePullPolicy"] = "IfNotPresent"
    return {"apiVersion": "v1", "kind": "Pod", **template}


def test_eci_documented_deployment_gets_the_cache_holding_both_images(world):
    obj = eci_deployment_pod()
    admission = answer(world, obj)
    response = admission.review["response"]
    assert admission.review["apiVersion"] == "admission.k8s.io/v1"
    assert admission.review["kind"] == "AdmissionReview"
    assert response["allowed"] is True and "warnings" not in response
    patched = applied(obj, admission)
    annotations = patched["metadata"]["annotations"]
    assert annotations[CACHE_ANNOTATION] == WEB_CACHE
    assert annotations["k8s.aliyun.com/imc-perfect-match"] == "true"  # the pod's, kept
    found = decision(patched)
    assert set(found) == SPEC_9_FIELDS
    assert found["outcome"] == "use" and found["cache_id"] == WEB_CACHE
    assert found["perfect"] is True and found["full"] == found["images"] == 2
    assert found["name"] == "web-6d4cf56db6" and found["namespace"] == "default"
    assert WEB_CACHE in found["reason"]
    # The rest of the pod is untouched.
    assert patched["spec"] == obj["spec"]


def test_uid_and_version_are_echoed(world):
    admission = answer(world, pod(), uid="705ab4f5-6393-11e8-b7cc-42010a800002")
    assert admission.review["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"


def test_a_pod_without_annotations_gets_the_map_created(world):
    obj = pod()
    assert "annotations" not in obj["metadata"]
    admission = answer(world, obj)
    ops = patch_of(admission.review)
    assert [op["path"] for op in ops] == ["/metadata/annotations"]
    assert all(op["op"] == "add" for op in ops)
    assert applied(obj, admission)["metadata"]["annotations"][CACHE_ANNOTATION] == WEB_CACHE


def test_keys_with_slashes_are_escaped_and_existing_keys_kept(world):
    obj = pod(annotations={"team": "shop", "example.com/owner": "ops"})
    admission = answer(world, obj)
    ops = patch_of(admission.review)
    assert {op["path"] for op in ops} == {
        "/metadata/annotations/k8s.aliyun.com~1eci-imc-id",
        "/metadata/annotations/fastmatch.io~1decision",
    }
    assert all(op["op"] == "add" for op in ops)
    annotations = applied(obj, admission)["metadata"]["annotations"]
    assert annotations["team"] == "shop" and annotations["example.com/owner"] == "ops"
    assert annotations[CACHE_ANNOTATION] == WEB_CACHE


def test_a_pod_that_names_a_ready_cache_keeps_it(world):
    named = "imc-2ze9ktz1y3l0v6n4c8rb"
    obj = pod(["registry.cn-hangzhou.aliyuncs.com/acme/api:2.3.1"],
              annotations={CACHE_ANNOTATION: named})
    admission = answer(world, obj)
    ops = patch_of(admission.review)
    assert [op["path"] for op in ops] == ["/metadata/annotations/fastmatch.io~1decision"]
    patched = applied(obj, admission)
    assert patched["metadata"]["annotations"][CACHE_ANNOTATION] == named
    found = decision(patched)
    assert found["named"] is True and found["cache_id"] == named


@pytest.mark.parametrize(("cache", "says"), [
    ("imc-2ze1q9x8t0dv3lm5k2wc", "imc-2ze1q9x8t0dv3lm5k2wc does not exist"),
    ("imc-2zeb3n7q1w0ttp5xk8mn", "imc-2zeb3n7q1w0ttp5xk8mn is Failed, not Ready"),
])
def test_a_named_cache_eci_would_refuse_is_denied(world, cache, says):
    obj = pod(["registry.cn-hangzhou.aliyuncs.com/acme/billing:1.8.0"],
              annotations={CACHE_ANNOTATION: cache})
    admission = answer(world, obj)
    response = admission.review["response"]
    assert response["allowed"] is False
    assert "patch" not in response and "patchType" not in response
    assert response["status"]["code"] == 400
    assert says in response["status"]["message"]
    assert admission.outcome == "denied" and admission.create is None


def test_a_named_cache_that_expired_is_denied():
    cache = fm.ImageCache("imc-old", ["nginx:1.14.2"], created="2026-01-01T00:00:00Z",
                          expires="2026-02-01T00:00:00Z")
    from webhook_world import StandIn

    world = StandIn([cache])
    obj = pod(["nginx:1.14.2"], annotations={CACHE_ANNOTATION: "imc-old"})
    body = json.dumps(review(obj)).encode()
    response = admit(parse_review(body), world).review["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "imc-old" in response["status"]["message"]
    assert "expired" in response["status"]["message"]


def test_a_second_call_on_the_patched_pod_changes_nothing(world):
    obj = pod(["redis:7"])
    first = answer(world, obj)
    assert first.create is not None
    patched = applied(obj, first)
    again = answer(world, patched)
    assert again.outcome == "unchanged"
    assert patch_of(again.review) == [] and again.review["response"]["allowed"] is True
    assert again.create is None  # nor is the cache asked for twice


def test_a_miss_proposes_a_cache_named_by_its_image_set(world):
    obj = pod(["redis:7", "memcached:1.6"], name="cache-0")
    admission = answer(world, obj)
    found = decision(applied(obj, admission))
    assert found["outcome"] == "none" and CACHE_ANNOTATION not in obj["metadata"].get(
        "annotations", {})
    assert found["create"]["name"] == "auto-create-for-cache-0"
    assert found["create"]["size_gib"] == 30
    created = admission.create
    assert created["apiVersion"] == "eci.alibabacloud.com/v1"
    assert created["kind"] == "ImageCache"
    assert created["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "fastmatch"}
    assert sorted(created["spec"]["images"]) == ["docker.io/library/memcached:1.6",
                                                "docker.io/library/redis:7"]
    assert created["spec"]["imageCacheSize"] == 30
    name = created["metadata"]["name"]
    assert name.startswith("auto-create-for-") and DNS.fullmatch(name) and len(name) <= 63
    # Another replica, another order, another namespace: the same object name.
    other = answer(world, pod(["memcached:1.6", "redis:7"], name="cache-1", namespace="b"))
    assert other.create["metadata"]["name"] == name
    # Another image set: another name.
    assert answer(world, pod(["redis:6"])).create["metadata"]["name"] != name


def test_a_dry_run_decides_but_creates_nothing(world):
    obj = pod(["redis:7"])
    admission = answer(world, obj, dry_run=True)
    assert admission.create is None
    found = decision(applied(obj, admission))
    assert found["create"] is not None  # the decision still says what would be created


def test_generate_name_pods_get_a_valid_name(world):
    obj = pod(["redis:7"], name=None, generate_name="api-7f9c8d-")
    admission = answer(world, obj)
    found = decision(applied(obj, admission))
    assert found["name"] == "api-7f9c8d"
    assert found["create"]["name"] == "auto-create-for-api-7f9c8d"
    assert DNS.fullmatch(found["create"]["name"])
    assert admission.create["metadata"]["annotations"]["fastmatch.io/proposed-for"] == (
        "default/api-7f9c8d")


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"operation": "UPDATE"}, "an update"),
    ({"operation": "DELETE"}, "a delete"),
    ({"resource": "deployments"}, "another resource"),
])
def test_other_requests_are_allowed_unchanged(world, kwargs, why):
    admission = answer(world, pod(["redis:7"]), **kwargs)
    assert admission.review["response"]["allowed"] is True, why
    assert patch_of(admission.review) == [] and admission.create is None
    assert admission.outcome == "skipped"


def test_before_the_first_sync_the_pod_is_admitted_unchanged_with_a_warning():
    from webhook_world import StandIn

    world = StandIn(ready=False)
    admission = admit(parse_review(json.dumps(review(pod())).encode()), world)
    response = admission.review["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] and "not synced" in response["warnings"][0]
    assert world.calls == 0


def test_a_pod_that_cannot_be_decided_is_admitted_unchanged(world):
    obj = pod(annotations={"k8s.aliyun.com/imc-perfect-match": "maybe"})
    admission = answer(world, obj)
    response = admission.review["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "imc-perfect-match" in response["warnings"][0]
    assert len(response["warnings"][0]) <= MAX_WARNING


def test_warnings(world):
    many = [f"registry.example.com/app/part{i}:1" for i in range(23)]
    obj = pod(many, pull_policy="Always")
    response = answer(world, obj).review["response"]
    warnings = response["warnings"]
    assert response["allowed"] is True
    assert all(len(w) < 120 for w in warnings)
    pull = [w for w in warnings if "imagePullPolicy Always" in w]
    assert len(pull) == 1 and "23 containers" in pull[0] and "IfNotPresent" in pull[0]
    assert sum(len(w) for w in warnings) < 1024  # the API server drops them past 4 KiB
    assert any("23 images" in w and "20" in w for w in warnings)
    unresolved = [w for w in warnings if "could not be resolved" in w]
    assert 1 <= len(unresolved) <= 3  # a few lines, not 23
    # An image the catalog knows gets no such warning.
    known = answer(world, pod(["nginx:1.14.2"])).review["response"]
    assert "warnings" not in known


def test_a_cache_being_built_for_the_images_is_a_warning(world):
    obj = pod(["fluent/fluent-bit:3.0.4"], name="log-agent")
    admission = answer(world, obj)
    assert admission.create is None
    warnings = admission.review["response"]["warnings"]
    assert any("being built" in w for w in warnings)


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "expected an AdmissionReview object"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "request: missing"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}',
     "request.uid"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", '
     b'"request": {"uid": 7}}', "request.uid"),
    (b'{"kind": "Pod", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u"}}',
     "kind: expected AdmissionReview, got 'Pod'"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", '
     b'"request": {"uid": "u"}}', "apiVersion: expected admission.k8s.io/v1"),
])
def test_bodies_that_are_not_a_v1_admission_review_are_refused(body, says):
    with pytest.raises(AdmissionError, match=re.escape(says)) as info:
        parse_review(body)
    assert info.value.status == 400
    assert isinstance(info.value, fm.FastmatchError)


def test_a_pod_create_without_its_object_is_refused(world):
    with pytest.raises(AdmissionError, match=r"request\.object"):
        answer(world, None)


def test_the_object_name_ignores_tags_order_and_duplicates(tmp_path: Path):
    catalog = read_catalog(str(EXAMPLES / "catalog.jsonl"))
    a = fm.CreateProposal("auto-create-for-a", (catalog.image("nginx:1.14.2"),
                                                catalog.image("busybox:1.30")), 30)
    b = fm.CreateProposal("auto-create-for-b", (catalog.image("busybox:1.30"),
                                                catalog.image("nginx:1.14.2")), 40)
    assert cache_object_name(a) == cache_object_name(b)
    assert DNS.fullmatch(cache_object_name(a))


def test_a_minimal_review_without_resource_is_read_by_its_kind(world):
    obj = pod()
    body = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "u-min", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "namespace": "default", "object": obj}}
    admission = admit(parse_review(json.dumps(body).encode()), world)
    assert admission.outcome == "patched"
    patched = applied(obj, admission)
    assert patched["metadata"]["annotations"][CACHE_ANNOTATION] == WEB_CACHE
    body["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert admit(parse_review(json.dumps(body).encode()), world).outcome == "skipped"


def test_a_binding_subresource_is_not_a_pod_create(world):
    body = review(pod())
    body["request"]["subResource"] = "binding"
    admission = admit(parse_review(json.dumps(body).encode()), world)
    assert admission.outcome == "skipped" and patch_of(admission.review) == []
