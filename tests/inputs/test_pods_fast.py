"""Pods and workloads read in C (plain objects) read as the careful reader reads them: the
same runs of replicas, the same requests (images, annotations, namespace, platform, policy
objects, workload), and every object the fast path refuses still read, or refused, word
for word as the careful reader does."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.errors import InputFileError
from fastmatch.inputs import ImageReader, Located
from fastmatch.inputs.documents import FieldError
from fastmatch.inputs.pods import PodRequests, _run, requests_from, workload_lists
from fastmatch.policy import MATCH_COUNT, PERFECT_MATCH

A, B = ("sha256:" + c * 64 for c in "ab")
NGINX = "docker.io/library/nginx:1.25"
CATALOG = fm.Catalog()
CATALOG.add(fm.Image(NGINX, [fm.Layer(A, 100)]))
CATALOG.add(fm.Image(NGINX, [fm.Layer(B, 200)]), platform="linux/arm64")
CATALOG.add(fm.Image("registry.example.com/api:v1", [fm.Layer(A, 100), fm.Layer(B, 5)]))


class _Mapping(Mapping[str, Any]):
    """A mapping that is not a dict: what an embedding program may hand in."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _located(objects: list[Any]) -> list[Located]:
    return [Located(obj, f"pods: document {i}") for i, obj in enumerate(objects, 1)]


def _careful(objects: list[Any]) -> PodRequests | str:
    """What the careful reader alone makes of these objects: the requests, or the error."""
    reader = ImageReader(CATALOG)
    runs = []
    for located in _located(objects):
        try:
            run = _run(located.obj, reader, None, None)
        except FieldError as exc:
            return str(located.error(exc))
        except TypeError as exc:  # a kind that cannot be looked up
            return f"TypeError: {exc}"
        if run is not None:
            runs.append(run)
    return PodRequests(runs)


def _read(objects: list[Any]) -> PodRequests | str:
    try:
        return requests_from(_located(objects), ImageReader(CATALOG))
    except InputFileError as exc:
        return str(exc)
    except TypeError as exc:
        return f"TypeError: {exc}"


def _assert_same(objects: list[Any]) -> None:
    before = copy.deepcopy(objects)
    fast, careful = _read(objects), _careful(objects)
    assert objects == before  # neither reader writes to what it reads
    if isinstance(careful, str) or isinstance(fast, str):
        assert fast == careful
        return
    assert fast._ends == careful._ends
    assert [(f.name, n, stem) for f, n, stem in fast._runs] == [
        (f.name, n, stem) for f, n, stem in careful._runs]
    for (got, _, _), (want, _, _) in zip(fast._runs, careful._runs, strict=True):
        assert type(got) is type(want) and type(got._shared) is type(want._shared)
        assert got == want and got._shared == want._shared and hash(got) == hash(want)
        assert got.policy is want.policy  # the policy objects the careful reader shares
        assert type(got.annotations) is dict and got.annotations is not want.annotations
        assert [(i.ref, i.layers) for i in got.images] == [(i.ref, i.layers) for i in want.images]
    assert list(fast) == list(careful)
    _assert_same_lists(fast)


def _assert_same_lists(requests: PodRequests) -> None:
    """``workload_lists`` of the runs, in C, is what it is of the list of every request:
    the same lists, shared by the same workloads."""
    got, want = workload_lists(requests), workload_lists(list(requests))
    assert got == want
    assert [[id(x) for x in got[0]].index(id(p)) for p in got[0]] == [
        [id(x) for x in want[0]].index(id(p)) for p in want[0]]
    assert all(a is b for a, b in zip(got[1], want[1], strict=True))


def _workload(kind: str = "Deployment", name: Any = "web", **fields: Any) -> dict[str, Any]:
    """A workload; ``fields`` set paths in it (``spec__replicas=3``), ``None`` deleting."""
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"replicas": 2, "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}},
    }
    for path, value in fields.items():
        *parts, last = path.split("__")
        at = obj
        for part in parts:
            at = at[part]
        if value is None:
            del at[last]
        else:
            at[last] = value
    return obj


def _pod(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"image": "nginx:1.25"}]}}


T = "spec__template__"
CASES = {
    "plain": [_workload()],
    "every kind": [
        _workload(kind) for kind in
        ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "DaemonSet", "Job")],
    "a cron job": [{"kind": "CronJob", "metadata": {"name": "nightly"}, "spec": {
        "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"image": "busybox"}]}}}}}}],
    "a pod template": [{"kind": "PodTemplate", "metadata": {"name": "t"}, "template": {
        "spec": {"containers": [{"image": "busybox"}]}}}],
    "other kinds skipped": [{"kind": "ConfigMap"}, {"kind": 5}, {"metadata": {}}],
    "an unhashable kind": [{"kind": ["Pod"]}],
    "pods": [_pod(name="p"), _pod(generateName="p-"), _pod(), _pod(name="", namespace=""),
             {"kind": "Pod", "spec": {"containers": [{"image": "nginx"}]}}],
    "a pod's name not a string": [_pod(name=3)],
    "a pod's falsy name": [_pod(name=0, generateName="g-")],
    "generateName": [_workload(name=None, metadata__generateName="web-")],
    "no name": [_workload(name="")],
    "a name not a string": [_workload(name=7)],
    "a namespace not a string": [_workload(metadata__namespace=["prod"])],
    "a falsy namespace": [_workload(metadata__namespace=0)],
    "no namespace": [_workload(metadata__namespace=None)],
    "replicas": [_workload(spec__replicas=n) for n in (0, 1, 3, 1_000_000)],
    "replicas absent or null": [_workload(spec__replicas=None), {
        "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": None, "template": {"spec": {"containers": [{"image": "x"}]}}}}],
    "replicas out of range": [_workload(spec__replicas=1_000_001)],
    "replicas negative": [_workload(spec__replicas=-1)],
    "replicas beyond 64 bits": [_workload(spec__replicas=2**70)],
    "replicas as bool": [_workload(spec__replicas=True)],
    "replicas as float": [_workload(spec__replicas=2.0)],
    "no template": [_workload(spec__template=None)],
    "a template not an object": [_workload(spec__template="x")],
    "a template as another mapping": [_workload(spec__template=_Mapping(
        {"spec": {"containers": [{"image": "nginx"}]}}))],
    "no template metadata": [_workload(spec__template__metadata=None)],
    "template metadata null": [{"kind": "Job", "metadata": {"name": "j"}, "spec": {
        "template": {"metadata": None, "spec": {"containers": [{"image": "busybox"}]}}}}],
    "annotations": [_workload(**{f"{T}metadata__annotations": {PERFECT_MATCH: "true"}}),
                    _workload(**{f"{T}metadata__annotations": {MATCH_COUNT: "2", "x": "y"}}),
                    _workload(**{f"{T}metadata__annotations": {"x": "y"}})],
    "a bad annotation value": [_workload(**{f"{T}metadata__annotations": {MATCH_COUNT: "x"}})],
    "an annotation not a string": [
        _workload(**{f"{T}metadata__annotations": {PERFECT_MATCH: True}})],
    "annotations not an object": [_workload(**{f"{T}metadata__annotations": ["x"]})],
    "node selectors": [
        _workload(**{f"{T}spec__nodeSelector": sel}) for sel in (
            {}, {"disk": "ssd"}, {"kubernetes.io/arch": "arm64"},
            {"beta.kubernetes.io/arch": "aarch64", "kubernetes.io/os": "Linux"},
            {"kubernetes.io/arch": "x86_64", "beta.kubernetes.io/arch": "arm64"},
            {"kubernetes.io/os": "windows"}, {"kubernetes.io/arch": ""})],
    "a node selector not an object": [_workload(**{f"{T}spec__nodeSelector": "x"})],
    "a node selector value not a string": [
        _workload(**{f"{T}spec__nodeSelector": {"kubernetes.io/arch": 64}})],
    "an empty node selector of another type": [_workload(**{f"{T}spec__nodeSelector": []})],
    "init containers": [_workload(**{f"{T}spec__initContainers": [
        {"image": "busybox"}, {"image": "nginx:1.25"}]})],
    "one image twice, two spellings": [_workload(**{f"{T}spec__containers": [
        {"image": "nginx:1.25"}, {"image": NGINX}, {"image": "nginx:1.25"}]})],
    "no containers": [_workload(**{f"{T}spec__containers": []})],
    "containers not a list": [_workload(**{f"{T}spec__containers": "nginx"})],
    "a container not an object": [_workload(**{f"{T}spec__containers": ["nginx"]})],
    "a container as another mapping": [_workload(**{f"{T}spec__containers": [
        _Mapping({"image": "nginx"})]})],
    "no image": [_workload(**{f"{T}spec__containers": [{"name": "c"}]})],
    "a bad image": [_workload(**{f"{T}spec__containers": [
        {"image": "nginx"}, {"image": "Nginx"}]})],
    "an empty image": [_workload(**{f"{T}spec__containers": [{"image": " "}]})],
    "an image not a string": [_workload(**{f"{T}spec__containers": [{"image": 5}]})],
    "no spec": [_workload(spec=None)],
    "a spec not an object": [_workload(spec=[])],
    "a template spec not an object": [_workload(**{f"{T}spec": "x"})],
    "metadata not an object": [_workload(metadata="x")],
    "an object not a dict": [_Mapping(_workload())],
    "a bad object after good ones": [_workload(), _workload(name="api"), _workload(spec=3)],
}


@pytest.mark.parametrize("objects", list(CASES.values()), ids=list(CASES))
def test_plain_and_odd_objects_read_as_the_careful_reader_reads_them(objects: list[Any]) -> None:
    _assert_same(objects)


@pytest.mark.parametrize(("obj", "message"), [
    (_workload(**{f"{T}spec__containers": [{"image": "nginx"}, {"image": "Nginx"}]}),
     "spec.template.spec.containers[1].image: invalid image reference 'Nginx': repository "
     "name must be lowercase"),
    (_workload(spec__replicas=-1), "spec.replicas: expected 0 to 1,000,000, got -1"),
    (_workload(**{f"{T}metadata__annotations": {PERFECT_MATCH: True}}),
     f"spec.template.metadata.annotations[{PERFECT_MATCH}]: expected a string value, got True"),
    (_workload(**{f"{T}spec__nodeSelector": {"kubernetes.io/arch": 64}}),
     "spec.template.spec.nodeSelector[kubernetes.io/arch]: expected a string value, got 64"),
])
def test_errors_in_otherwise_plain_objects_name_the_field(obj: Any, message: str) -> None:
    with pytest.raises(InputFileError) as info:
        requests_from(_located([_workload(name="ok"), obj]), ImageReader(CATALOG))
    assert str(info.value) == f"pods: document 2 (Deployment prod/web): {message}"


def test_platforms_give_the_catalogs_image_for_each() -> None:
    sel = {"kubernetes.io/arch": "arm64"}
    got = requests_from(_located([_workload(), _workload(**{f"{T}spec__nodeSelector": sel}),
                                  _workload(name="api")]), ImageReader(CATALOG))
    first, arm, again = (run[0] for run in got._runs)
    assert first.images[0].layers == (fm.Layer(A, 100),) and arm.arch == "arm64"
    assert arm.images[0].layers == (fm.Layer(B, 200),)
    assert again.images is not first.images and again.images[0] is first.images[0]
    _assert_same_lists(got)


def _mostly(good: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``good``, and one time in eight one of ``odd`` (a read stops at its first
    error: most objects must be good for the rest to be read)."""
    return st.integers(0, 7).flatmap(lambda n: st.sampled_from(odd if n == 7 else good))


_names = _mostly(["web", "api"], ["", None, 3])
_namespaces = _mostly(["prod", None], ["", 1])
_refs = _mostly(["nginx:1.25", NGINX, "busybox", "registry.example.com/api:v1"],
                ["Nginx", "", None, 5])
_listed = st.lists(st.fixed_dictionaries({"image": _refs}), min_size=1, max_size=3)
_odd_containers = st.sampled_from([None, "nginx", [{"name": "c"}], ["x"], []])
_containers = st.integers(0, 7).flatmap(lambda n: _odd_containers if n == 7 else _listed)
_init_containers = st.integers(0, 3).flatmap(lambda n: _listed if n == 3 else st.none())
_annotations = st.one_of(st.none(), st.dictionaries(
    st.sampled_from([PERFECT_MATCH, MATCH_COUNT, "other"]),
    _mostly(["true", "false", "1", "2"], ["x", True]), max_size=2))
_selectors = st.one_of(st.none(), _mostly([{}], ["x"]), st.dictionaries(
    st.sampled_from(["kubernetes.io/arch", "beta.kubernetes.io/arch", "kubernetes.io/os",
                     "disk"]),
    _mostly(["arm64", "x86_64", "linux", "Windows", ""], [1]), max_size=2))


@st.composite
def _objects(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Deployment", "StatefulSet", "DaemonSet", "Job", "Pod",
                                 "CronJob", "ConfigMap"]))
    template_spec: dict[str, Any] = {}
    for group, containers in (("initContainers", _init_containers),
                              ("containers", _containers)):
        found = draw(containers)
        if found is not None:
            template_spec[group] = found
    selector = draw(_selectors)
    if selector is not None:
        template_spec["nodeSelector"] = selector
    template: dict[str, Any] = {"spec": template_spec}
    annotations = draw(_annotations)
    if annotations is not None or draw(st.booleans()):
        template["metadata"] = {"annotations": annotations}
    meta = {"name": draw(_names), "namespace": draw(_namespaces)}
    if kind == "Pod":
        return {"kind": kind, "metadata": meta | template.get("metadata", {}),
                "spec": template_spec}
    spec: dict[str, Any] = {"template": template}
    replicas = draw(_mostly([0, 1, 3, None], [-1, 2.0, False]))
    if replicas is not None or draw(st.booleans()):
        spec["replicas"] = replicas
    if kind == "CronJob":
        spec = {"jobTemplate": {"spec": spec}}
    return {"kind": kind, "metadata": meta, "spec": spec}


@settings(max_examples=300, deadline=None)
@given(st.lists(_objects(), max_size=4))
def test_generated_objects_read_as_the_careful_reader_reads_them(objects: list[Any]) -> None:
    _assert_same(objects)


def test_a_mapping_that_is_not_a_dict_is_read_carefully() -> None:
    obj: Mapping[str, Any] = _Mapping(_workload())
    got = requests_from(_located([obj]), ImageReader(CATALOG))
    assert [r.name for r in got] == ["web-0", "web-1"]


def test_objects_of_several_documents_read_alike() -> None:
    # json.loads makes one key object per name and document: objects of two documents,
    # interleaved, and an object made here (whose keys are Python's own), read alike.
    one = json.loads(json.dumps([_workload(name=f"a{i}") for i in range(3)] + [
        {"metadata": {}}]))
    two = json.loads(json.dumps([_workload(name=f"b{i}", **{
        f"{T}spec__nodeSelector": {"kubernetes.io/arch": "arm64"},
        f"{T}metadata__annotations": {PERFECT_MATCH: "true"}}) for i in range(3)]))
    objects = [one[3], one[0], two[0], _workload(name="c"), one[1], two[1], two[2], one[2]]
    _assert_same(objects)
    got = _read(objects)
    assert not isinstance(got, str)
    assert [r.name for r in got][::2] == ["a0-0", "b0-0", "c-0", "a1-0", "b1-0", "b2-0", "a2-0"]
