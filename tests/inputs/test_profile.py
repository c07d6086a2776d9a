"""The eci-profile ConfigMap applied to pods (SPEC §6, §8).

A selector picks pods by their namespace's labels and their own (Kubernetes label
selectors: matchLabels and matchExpressions, ANDed); of those that match, the highest
priority applies, ties going to the first name; its effect is written over the pod's
annotations and labels.  A malformed ConfigMap is refused with the ConfigMap and the
field named.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fastmatch.errors import FastmatchError, InputFileError, ValidationError
from fastmatch.inputs.profile import (
    EciProfile,
    LabelSelector,
    LabelSelectorRequirement,
    Selector,
)
from fastmatch.policy import MatchPolicy

PLACE = "ConfigMap kube-system/eci-profile"
PERFECT = "k8s.aliyun.com/imc-perfect-match"
AUTO = "k8s.aliyun.com/eci-auto-imc"
AUTO_LEGACY = "k8s.aliyun.com/eci-image-cache"
IMC_ID = "k8s.aliyun.com/eci-imc-id"


def configmap(selectors: Any, **data: Any) -> dict[str, Any]:
    """The eci-profile ConfigMap as ``kubectl get cm -o json`` gives it; a list of
    selectors is written as the JSON string ECI expects, anything else as given."""
    if isinstance(selectors, list):
        selectors = json.dumps(selectors)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "eci-profile", "namespace": "kube-system"},
        "data": {"vpcId": "vpc-2zeghwzptn5zii0w7****", "selectors": selectors, **data},
    }


def profile(*selectors: dict[str, Any]) -> EciProfile:
    return EciProfile.from_configmap(configmap(list(selectors)))


def pod(
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    *,
    name: str = "web",
    namespace: str = "default",
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": "nginx:1.14.2"}]}}


def chosen(p: EciProfile, labels: dict[str, str], ns: dict[str, str] | None = None) -> str | None:
    selector = p.select(labels, ns)
    return None if selector is None else selector.name


def refused(obj: Any, **kwargs: Any) -> str:
    with pytest.raises(InputFileError) as caught:
        EciProfile.from_configmap(obj, **kwargs)
    return str(caught.value)


# --- ECI's own shapes ------------------------------------------------------------------------

# As `kubectl get cm -n kube-system eci-profile -o yaml` prints it, with the selectors in
# the shape ECI's documentation gives them (name, namespaceSelector, objectSelector, effect)
# and an image-cache effect, the typical use.
ECI_PROFILE_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  creationTimestamp: "2024-03-01T08:00:00Z"
  name: eci-profile
  namespace: kube-system
  resourceVersion: "123456"
  uid: 0c6e3b6e-1111-2222-3333-444455556666
data:
  enableClusterIp: "true"
  enableHybridMode: "false"
  enablePrivateZone: "false"
  securityGroupId: sg-2zeeyaaxlkq9sppl****
  vSwitchIds: vsw-2ze23nqzig8inprou****,vsw-2ze94pjtfuj9vaymf****
  vpcId: vpc-2zeghwzptn5zii0w7****
  selectors: |
    [
      {
        "name": "imagecache-for-web",
        "namespaceSelector": {
          "matchLabels": {
            "eci": "true"
          }
        },
        "objectSelector": {
          "matchLabels": {
            "app": "web"
          }
        },
        "effect": {
          "annotations": {
            "k8s.aliyun.com/eci-auto-imc": "true",
            "k8s.aliyun.com/imc-perfect-match": "true"
          },
          "labels": {
            "eci-profile/selected": "true"
          }
        }
      }
    ]
"""


def test_ecis_documented_configmap_adds_its_effect_to_the_pods_it_selects() -> None:
    p = EciProfile.from_configmap(yaml.safe_load(ECI_PROFILE_YAML))
    web = pod({"app": "web"}, {"owner": "team-a"})
    annotations = p.annotations_for(web, {"eci": "true", "kubernetes.io/metadata.name": "shop"})
    assert annotations == {
        "owner": "team-a",
        AUTO: "true",
        PERFECT: "true",
    }
    assert p.labels_for(web, {"eci": "true"}) == {"app": "web", "eci-profile/selected": "true"}
    # What fastmatch does with it: the pod now asks for a perfect match.
    assert MatchPolicy.from_annotations(annotations).perfect_match
    assert not MatchPolicy.from_annotations(web["metadata"]["annotations"]).perfect_match


@pytest.mark.parametrize(
    ("labels", "ns"),
    [
        ({"app": "web"}, {"eci": "false"}),  # the namespace is not selected
        ({"app": "web"}, None),  # its labels unknown: a namespace without labels
        ({"app": "db"}, {"eci": "true"}),  # the pod is not selected
        ({}, {"eci": "true"}),
    ],
)
def test_ecis_documented_configmap_leaves_other_pods_alone(
    labels: dict[str, str], ns: dict[str, str] | None
) -> None:
    p = EciProfile.from_configmap(yaml.safe_load(ECI_PROFILE_YAML))
    assert p.select(labels, ns) is None
    assert p.annotations_for(pod(labels, {"owner": "team-a"}), ns) == {"owner": "team-a"}
    assert p.labels_for(pod(labels), ns) == labels


@pytest.mark.parametrize(
    "data",
    [
        {"selectors": ""},  # as ECI ships the ConfigMap
        {"selectors": "  \n"},  # `selectors: |` with nothing under it
        {"selectors": None},  # `selectors:` left blank
        {"selectors": "null"},  # JSON null: Go reads it as no selectors
        {"selectors": "[]"},
        {"vpcId": "vpc-1"},  # no selectors key at all
    ],
    ids=["empty", "blank", "null", "json-null", "empty-array", "absent"],
)
def test_a_configmap_without_selectors_is_a_profile_that_changes_nothing(
    data: dict[str, Any],
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "eci-profile", "namespace": "kube-system"}, "data": data}
    p = EciProfile.from_configmap(cm)
    assert p == EciProfile.empty() == EciProfile()
    assert p.selectors == ()
    web = pod({"app": "web"}, {AUTO: "false"})
    out = p.annotations_for(web)
    assert out == {AUTO: "false"}
    out["x"] = "y"  # a new dict: the pod is not touched through it
    assert web["metadata"]["annotations"] == {AUTO: "false"}


def test_a_configmap_without_data_is_a_profile_without_selectors() -> None:
    assert EciProfile.from_configmap({"kind": "ConfigMap", "metadata": {"name": "x"}}) == (
        EciProfile()
    )


def test_a_configmap_from_a_list_answer_has_no_kind_and_is_read() -> None:
    cm = configmap([{"name": "all", "effect": {"annotations": {AUTO: "true"}}}])
    del cm["kind"], cm["apiVersion"]
    assert [s.name for s in EciProfile.from_configmap(cm).selectors] == ["all"]


def test_selectors_keep_the_configmaps_order_and_their_fields() -> None:
    p = profile(
        {"name": "b", "priority": 5, "objectSelector": {"matchLabels": {"app": "web"}}},
        {"name": "a", "namespaceSelector": {
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
         "effect": {"annotations": {AUTO: "true"}, "labels": {"x": "1"}}},
    )
    b, a = p.selectors
    assert (b.name, b.priority, dict(b.object_selector.match_labels)) == ("b", 5, {"app": "web"})
    assert not b.namespace_selector and not b.annotations and not b.labels
    assert (a.name, a.priority) == ("a", 0)
    assert a.namespace_selector.match_expressions == (
        LabelSelectorRequirement("env", "In", ("prod", "dev")),
    )
    assert dict(a.annotations) == {AUTO: "true"} and dict(a.labels) == {"x": "1"}


# --- label selectors ------------------------------------------------------------------------


def test_match_labels_are_anded() -> None:
    p = profile({"name": "s", "objectSelector": {"matchLabels": {"app": "web", "tier": "fe"}}})
    assert chosen(p, {"app": "web", "tier": "fe"}) == "s"
    assert chosen(p, {"app": "web", "tier": "fe", "other": "x"}) == "s"
    assert chosen(p, {"app": "web"}) is None
    assert chosen(p, {"app": "web", "tier": "be"}) is None
    assert chosen(p, {"tier": "fe"}) is None


def test_the_namespace_and_the_object_selector_are_anded() -> None:
    p = profile({"name": "s", "namespaceSelector": {"matchLabels": {"env": "prod"}},
                 "objectSelector": {"matchLabels": {"app": "web"}}})
    assert chosen(p, {"app": "web"}, {"env": "prod"}) == "s"
    assert chosen(p, {"app": "web"}, {"env": "dev"}) is None
    assert chosen(p, {"app": "db"}, {"env": "prod"}) is None
    # Pod labels are not namespace labels, nor the other way round.
    assert chosen(p, {"env": "prod"}, {"app": "web"}) is None


@pytest.mark.parametrize(
    ("operator", "values", "labels", "matches"),
    [
        ("In", ["web", "api"], {"app": "web"}, True),
        ("In", ["web", "api"], {"app": "api"}, True),
        ("In", ["web", "api"], {"app": "db"}, False),
        ("In", ["web", "api"], {}, False),
        ("In", [""], {"app": ""}, True),
        ("NotIn", ["web", "api"], {"app": "db"}, True),
        ("NotIn", ["web", "api"], {"app": "web"}, False),
        ("NotIn", ["web", "api"], {}, True),  # absent: not in the set, as in Kubernetes
        ("NotIn", ["web"], {"other": "web"}, True),
        ("Exists", [], {"app": ""}, True),
        ("Exists", [], {"app": "db"}, True),
        ("Exists", [], {"other": "x"}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"other": "x"}, True),
        ("DoesNotExist", [], {"app": ""}, False),
    ],
)
def test_match_expressions_follow_kubernetes_operators(
    operator: str, values: list[str], labels: dict[str, str], matches: bool
) -> None:
    expression: dict[str, Any] = {"key": "app", "operator": operator}
    if values:
        expression["values"] = values
    for side in ("objectSelector", "namespaceSelector"):
        p = profile({"name": "s", side: {"matchExpressions": [expression]}})
        pod_labels, ns_labels = (labels, {}) if side == "objectSelector" else ({}, labels)
        assert (chosen(p, pod_labels, ns_labels) == "s") is matches, side
        requirement = LabelSelectorRequirement("app", operator, tuple(values))
        assert requirement.matches(labels) is matches


def test_match_labels_and_expressions_are_anded_together() -> None:
    p = profile({"name": "s", "objectSelector": {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }})
    assert chosen(p, {"app": "web", "tier": "fe"}) == "s"
    assert chosen(p, {"app": "web", "tier": "fe", "canary": "yes"}) is None
    assert chosen(p, {"app": "web", "tier": "db"}) is None
    assert chosen(p, {"app": "api", "tier": "fe"}) is None


@pytest.mark.parametrize(
    "label_selector",
    [None, {}, {"matchLabels": {}}, {"matchExpressions": []},
     {"matchLabels": None, "matchExpressions": None}],
    ids=["absent", "empty", "empty-labels", "empty-expressions", "nulls"],
)
def test_an_absent_or_empty_selector_matches_every_pod(label_selector: Any) -> None:
    item: dict[str, Any] = {"name": "everyone"}
    if label_selector is not None:
        item["namespaceSelector"] = label_selector
        item["objectSelector"] = label_selector
    p = profile(item)
    assert chosen(p, {}) == "everyone"
    assert chosen(p, {"app": "web"}, {"env": "prod"}) == "everyone"
    assert p.annotations_for({"kind": "Pod"}) == {}  # not even metadata


def test_namespace_labels_unknown_are_a_namespace_without_labels() -> None:
    p = profile(
        {"name": "prod", "priority": 1, "namespaceSelector": {"matchLabels": {"env": "prod"}}},
        {"name": "untagged", "namespaceSelector": {
            "matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}},
    )
    assert chosen(p, {}, None) == "untagged"
    assert chosen(p, {}, {}) == "untagged"
    assert chosen(p, {}, {"env": "prod"}) == "prod"
    assert chosen(p, {}, {"env": "dev"}) is None


# --- which selector applies -------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_the_highest_priority_applies_wherever_it_is_written(reverse: bool) -> None:
    items = [
        {"name": "a-low", "priority": -1, "effect": {"annotations": {"x": "low"}}},
        {"name": "m-default", "effect": {"annotations": {"x": "default"}}},
        {"name": "z-high", "priority": 10, "effect": {"annotations": {"x": "high"}}},
    ]
    p = profile(*(reversed(items) if reverse else items))
    assert chosen(p, {}) == "z-high"
    assert p.annotations_for(pod()) == {"x": "high"}


@pytest.mark.parametrize("reverse", [False, True])
def test_equal_priorities_go_to_the_first_name(reverse: bool) -> None:
    items = [
        {"name": "beta", "priority": 3, "effect": {"annotations": {"x": "beta"}}},
        {"name": "alpha", "priority": 3, "effect": {"annotations": {"x": "alpha"}}},
        {"name": "Zed", "priority": 3, "effect": {"annotations": {"x": "Zed"}}},
        {"name": "aardvark", "priority": 2, "effect": {"annotations": {"x": "aardvark"}}},
    ]
    p = profile(*(reversed(items) if reverse else items))
    # By code point, as Go compares strings: upper case sorts before lower case.
    assert chosen(p, {}) == "Zed"
    assert p.annotations_for(pod()) == {"x": "Zed"}


def test_a_higher_priority_that_does_not_match_gives_way() -> None:
    p = profile(
        {"name": "gpu", "priority": 100, "objectSelector": {"matchLabels": {"gpu": "true"}},
         "effect": {"annotations": {"x": "gpu"}}},
        {"name": "all", "effect": {"annotations": {"x": "all"}}},
    )
    assert chosen(p, {"gpu": "true"}) == "gpu"
    assert chosen(p, {"gpu": "false"}) == "all"
    assert p.annotations_for(pod({"gpu": "false"})) == {"x": "all"}


def test_only_the_applying_selectors_effect_is_written() -> None:
    p = profile(
        {"name": "first", "priority": 2,
         "effect": {"annotations": {"a": "1"}, "labels": {"a": "1"}}},
        {"name": "second", "priority": 1,
         "effect": {"annotations": {"b": "2"}, "labels": {"b": "2"}}},
    )
    assert p.annotations_for(pod()) == {"a": "1"}
    assert p.labels_for(pod({"app": "web"})) == {"app": "web", "a": "1"}


# --- the effect -------------------------------------------------------------------------------


def test_the_effect_overwrites_the_pods_keys_of_the_same_name_and_keeps_the_rest() -> None:
    p = profile({"name": "s", "effect": {
        "annotations": {AUTO: "true", IMC_ID: "imc-2ze5tm5gehgtiiga1234"},
        "labels": {"tier": "eci"},
    }})
    web = pod({"app": "web", "tier": "fe"}, {AUTO: "false", "owner": "team-a"})
    assert p.annotations_for(web) == {
        AUTO: "true", IMC_ID: "imc-2ze5tm5gehgtiiga1234", "owner": "team-a",
    }
    assert p.labels_for(web) == {"app": "web", "tier": "eci"}
    assert MatchPolicy.from_annotations(p.annotations_for(web)).cache_id == (
        "imc-2ze5tm5gehgtiiga1234"
    )


def test_a_selector_is_matched_on_the_pods_own_labels_not_the_effects() -> None:
    p = profile(
        {"name": "a", "priority": 2, "effect": {"labels": {"stage": "two"}}},
        {"name": "b", "priority": 1, "objectSelector": {"matchLabels": {"stage": "two"}},
         "effect": {"annotations": {"x": "b"}}},
    )
    assert p.annotations_for(pod()) == {}
    assert p.labels_for(pod()) == {"stage": "two"}


def test_no_match_returns_the_pods_annotations_unchanged_in_a_new_dict() -> None:
    p = profile({"name": "s", "objectSelector": {"matchLabels": {"app": "db"}},
                 "effect": {"annotations": {AUTO: "false"}}})
    web = pod({"app": "web"}, {AUTO: "true"})
    out = p.annotations_for(web)
    assert out == {AUTO: "true"}
    assert out is not web["metadata"]["annotations"]
    assert p.labels_for(web) == {"app": "web"}
    assert p.labels_for(web) is not web["metadata"]["labels"]


@pytest.mark.parametrize(
    "metadata",
    [{}, {"labels": None, "annotations": None}, {"name": "web"}],
    ids=["empty", "nulls", "name-only"],
)
def test_a_pod_without_labels_or_annotations_has_empty_ones(metadata: dict[str, Any]) -> None:
    p = profile({"name": "s", "effect": {"annotations": {AUTO: "true"}}},
                {"name": "t", "priority": 1, "objectSelector": {"matchLabels": {"app": "web"}},
                 "effect": {"annotations": {AUTO: "false"}}})
    assert p.annotations_for({"metadata": metadata}) == {AUTO: "true"}
    assert p.labels_for({"metadata": metadata}) == {}
    assert p.annotations_for({}) == {AUTO: "true"}


def test_no_input_is_changed() -> None:
    cm = yaml.safe_load(ECI_PROFILE_YAML)
    cm_before = copy.deepcopy(cm)
    p = EciProfile.from_configmap(cm)
    web = pod({"app": "web"}, {AUTO: "false"})
    ns = {"eci": "true"}
    web_before, ns_before = copy.deepcopy(web), dict(ns)
    p.annotations_for(web, ns)["new"] = "x"
    p.labels_for(web, ns)["new"] = "x"
    p.select(web["metadata"]["labels"], ns)
    assert (cm, web, ns) == (cm_before, web_before, ns_before)
    # Nor is the profile changed by what it was read from.
    json.loads(cm["data"]["selectors"])  # still the text it was
    cm["data"]["selectors"] = "[]"
    assert p.annotations_for(web, ns)[PERFECT] == "true"


def test_a_profile_and_its_selectors_cannot_be_changed() -> None:
    p = EciProfile.from_configmap(yaml.safe_load(ECI_PROFILE_YAML))
    selector = p.selectors[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        selector.priority = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        selector.annotations[AUTO] = "false"  # type: ignore[index]
    with pytest.raises(TypeError):
        selector.object_selector.match_labels["app"] = "db"  # type: ignore[index]
    effect = {AUTO: "true"}
    built = Selector("s", annotations=effect)
    effect[AUTO] = "false"
    assert dict(built.annotations) == {AUTO: "true"}
    assert EciProfile((built,)).annotations_for(pod()) == {AUTO: "true"}


# --- extra fields, and nulls ------------------------------------------------------------------


def test_fields_fastmatch_does_not_read_are_ignored_in_a_selector_and_its_effect() -> None:
    p = profile({
        "name": "s",
        "policy": {"virtualNodeOnly": {}},  # the Selector CRD's; ECI adds fields over time
        "description": "cache the web tier",
        "effect": {"annotations": {AUTO: "true"}, "tolerations": [{"key": "virtual-kubelet"}]},
    })
    assert p.annotations_for(pod()) == {AUTO: "true"}


def test_null_fields_are_absent_ones() -> None:
    p = profile({
        "name": "s", "priority": None, "namespaceSelector": None, "effect": None,
        "objectSelector": {"matchLabels": None, "matchExpressions": [
            {"key": "app", "operator": "Exists", "values": None}]},
    })
    (selector,) = p.selectors
    assert selector.priority == 0 and not selector.annotations
    assert chosen(p, {"app": "x"}) == "s" and chosen(p, {}) is None


def test_where_names_the_source_in_place_of_the_configmap() -> None:
    bad = configmap([{"name": "s", "priority": "high"}])
    where = "profile.yaml: document 1 (ConfigMap eci-profile)"
    assert refused(bad, where=where) == (
        f"{where}: data.selectors[0].priority: expected an integer, got 'high'"
    )


@pytest.mark.parametrize(
    ("metadata", "place"),
    [
        ({"name": "eci-profile"}, "ConfigMap eci-profile"),
        ({}, "ConfigMap"),
        (None, "ConfigMap"),
        ({"name": "my-profile", "namespace": "ops"}, "ConfigMap ops/my-profile"),
    ],
)
def test_errors_name_the_configmap_as_far_as_it_is_known(metadata: Any, place: str) -> None:
    bad = configmap([{"name": ""}])
    bad["metadata"] = metadata
    assert refused(bad).startswith(f"{place}: data.selectors[0].name: ")


# --- bad input --------------------------------------------------------------------------------


def expression(**fields: Any) -> list[dict[str, Any]]:
    """One selector whose objectSelector has one matchExpressions entry, after a good one."""
    return [{"name": "ok"}, {"name": "s", "objectSelector": {"matchExpressions": [fields]}}]


E = "data.selectors[1].objectSelector.matchExpressions[0]"

BAD_SELECTORS: list[tuple[str, Any, str]] = [
    ("not-json", '[{"name": "s",\n  "priority": 1,}]',
     "data.selectors: not valid JSON: Expecting property name enclosed in double quotes "
     "(line 2, column 17)"),
    ("truncated", '[{"name": "s"',
     "data.selectors: not valid JSON: Expecting ',' delimiter (line 1, column 14)"),
    ("too-deep", "[" * 100_000 + "]" * 100_000,
     "data.selectors: not valid JSON: nested too deeply"),
    ("huge-number", '[{"name": "s", "priority": ' + "9" * 5000 + "}]",
     "data.selectors: not valid JSON: a number too long to read"),
    ("object", '{"name": "s"}',
     "data.selectors: expected a JSON array of selectors, got an object "
     "(write a single selector as [{...}])"),
    ("string", '"s"', "data.selectors: expected a JSON array of selectors, got a string"),
    ("selector-string", ["gpu"], "data.selectors[0]: expected an object, got a string"),
    ("selector-null", [{"name": "ok"}, None], "data.selectors[1]: expected an object, got null"),
    ("name-missing", [{"name": "ok"}, {"priority": 1}],
     "data.selectors[1].name: required: every selector has a name"),
    ("name-null", [{"name": None}], "data.selectors[0].name: required: every selector has a name"),
    ("name-empty", [{"name": ""}], "data.selectors[0].name: a selector's name must not be empty"),
    ("name-blank", [{"name": "  "}],
     "data.selectors[0].name: a selector's name must not be empty"),
    ("name-number", [{"name": 7}], "data.selectors[0].name: expected a string, got 7"),
    ("name-twice", [{"name": "a"}, {"name": "b"}, {"name": "a"}],
     "data.selectors[2].name: duplicate name 'a' (also data.selectors[0])"),
    ("priority-bool", [{"name": "s", "priority": True}],
     "data.selectors[0].priority: expected an integer, got true"),
    ("priority-float", [{"name": "s", "priority": 1.5}],
     "data.selectors[0].priority: expected an integer, got 1.5"),
    ("priority-whole-float", [{"name": "s", "priority": 1.0}],
     "data.selectors[0].priority: expected an integer, got 1.0"),
    ("priority-string", [{"name": "s", "priority": "1"}],
     "data.selectors[0].priority: expected an integer, got '1'"),
    ("priority-int32", [{"name": "s", "priority": 2**31}],
     "data.selectors[0].priority: expected an integer from -2**31 to 2**31-1, got 2147483648"),
    ("operator-unknown", expression(key="app", operator="Equals", values=["web"]),
     f"{E}.operator: unknown operator 'Equals' (expected In, NotIn, Exists or DoesNotExist)"),
    ("operator-case", expression(key="app", operator="in", values=["web"]),
     f"{E}.operator: unknown operator 'in' (expected In, NotIn, Exists or DoesNotExist)"),
    ("operator-missing", expression(key="app", values=["web"]),
     f"{E}.operator: required: In, NotIn, Exists or DoesNotExist"),
    ("operator-number", expression(key="app", operator=1),
     f"{E}.operator: unknown operator 1 (expected In, NotIn, Exists or DoesNotExist)"),
    ("in-no-values", expression(key="app", operator="In"),
     f"{E}.values: operator In needs at least one value"),
    ("notin-empty-values", expression(key="app", operator="NotIn", values=[]),
     f"{E}.values: operator NotIn needs at least one value"),
    ("exists-values", expression(key="app", operator="Exists", values=["web"]),
     f"{E}.values: operator Exists takes no values, got 1"),
    ("doesnotexist-values", expression(key="app", operator="DoesNotExist", values=["a", "b"]),
     f"{E}.values: operator DoesNotExist takes no values, got 2"),
    ("values-string", expression(key="app", operator="In", values="web"),
     f"{E}.values: expected an array of strings, got a string"),
    ("value-number", expression(key="app", operator="In", values=["web", 3]),
     f"{E}.values[1]: label values are strings, got 3"),
    ("value-invalid", expression(key="app", operator="In", values=["my web"]),
     f"{E}.values[0]: invalid label value 'my web': a label value is empty or must consist of "
     "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
     "character"),
    ("key-missing", expression(operator="Exists"),
     f"{E}.key: required: the label key the requirement is about"),
    ("key-number", expression(key=5, operator="Exists"), f"{E}.key: label keys are strings, got 5"),
    ("key-invalid", expression(key="-app", operator="Exists"),
     f"{E}.key: invalid label key '-app': the name part must consist of alphanumeric "
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
    ("key-prefix", expression(key="Example.com/app", operator="Exists"),
     f"{E}.key: invalid label key 'Example.com/app': the prefix part must be a lowercase DNS "
     "subdomain (RFC 1123)"),
    ("key-slashes", expression(key="a/b/c", operator="Exists"),
     f"{E}.key: invalid label key 'a/b/c': a qualified name has at most one '/'"),
    ("key-long", expression(key="a" * 64, operator="Exists"),
     f"{E}.key: invalid label key '{'a' * 64}': the name part must be no more than 63 "
     "characters"),
    ("expression-unknown-field", expression(key="app", operator="Exists", value=["x"]),
     f"{E}.value: unknown field (expected key or operator or values)"),
    ("expression-not-object", [{"name": "s", "objectSelector": {"matchExpressions": ["app"]}}],
     "data.selectors[0].objectSelector.matchExpressions[0]: expected an object, got a string"),
    ("expressions-object", [{"name": "s", "objectSelector": {"matchExpressions": {"key": "a"}}}],
     "data.selectors[0].objectSelector.matchExpressions: expected an array of requirements, "
     "got an object"),
    ("match-labels-array", [{"name": "s", "namespaceSelector": {"matchLabels": ["env=prod"]}}],
     "data.selectors[0].namespaceSelector.matchLabels: expected an object of strings, "
     "got an array"),
    ("match-labels-number", [{"name": "s", "objectSelector": {"matchLabels": {"version": 1}}}],
     "data.selectors[0].objectSelector.matchLabels[version]: label values are strings, got 1"),
    ("match-labels-bool", [{"name": "s", "objectSelector": {"matchLabels": {"eci": True}}}],
     "data.selectors[0].objectSelector.matchLabels[eci]: label values are strings, got true"),
    ("match-labels-key", [{"name": "s", "objectSelector": {"matchLabels": {"my app": "x"}}}],
     "data.selectors[0].objectSelector.matchLabels[my app]: invalid label key 'my app': the "
     "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
     "end with an alphanumeric character"),
    ("match-labels-value-long", [{"name": "s", "objectSelector": {"matchLabels": {"a": "v" * 64}}}],
     f"data.selectors[0].objectSelector.matchLabels[a]: invalid label value '{'v' * 64}': must "
     "be no more than 63 characters"),
    ("label-selector-array", [{"name": "s", "objectSelector": [{"matchLabels": {}}]}],
     "data.selectors[0].objectSelector: expected an object, got an array"),
    ("label-selector-misspelt", [{"name": "s", "objectSelector": {"matchlabels": {"a": "b"}}}],
     "data.selectors[0].objectSelector.matchlabels: field names are case-sensitive: "
     "write matchLabels"),
    ("label-selector-unknown", [{"name": "s", "objectSelector": {"matchLabel": {"a": "b"}}}],
     "data.selectors[0].objectSelector.matchLabel: unknown field "
     "(expected matchLabels or matchExpressions)"),
    ("selector-field-case", [{"name": "s", "Priority": 5}],
     "data.selectors[0].Priority: field names are case-sensitive: write priority"),
    ("crd-spelling", [{"name": "s", "objectLabels": {"matchLabels": {"app": "web"}}}],
     "data.selectors[0].objectLabels: objectLabels is the Selector CRD's field; "
     "the ConfigMap's is objectSelector"),
    ("effect-array", [{"name": "s", "effect": [{"annotations": {}}]}],
     "data.selectors[0].effect: expected an object, got an array"),
    ("effect-annotations-string", [{"name": "s", "effect": {"annotations": "a=b"}}],
     "data.selectors[0].effect.annotations: expected an object of strings, got a string"),
    ("effect-annotation-number", [{"name": "s", "effect": {"annotations": {
        "k8s.aliyun.com/imc-match-count-request": 2}}}],
     "data.selectors[0].effect.annotations[k8s.aliyun.com/imc-match-count-request]: "
     "annotation values are strings, got 2"),
    ("effect-annotation-key", [{"name": "s", "effect": {"annotations": {"a b": "x"}}}],
     "data.selectors[0].effect.annotations[a b]: invalid annotation key 'a b': the name part "
     "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
     "an alphanumeric character"),
    ("effect-eci-annotation", [{"name": "s", "effect": {"annotations": {PERFECT: "yes"}}}],
     f"data.selectors[0].effect.annotations[{PERFECT}]: expected true or false, got 'yes'"),
    ("effect-eci-empty-id", [{"name": "s", "effect": {"annotations": {IMC_ID: " "}}}],
     f"data.selectors[0].effect.annotations[{IMC_ID}]: the cache id is empty"),
    ("effect-eci-aliases", [{"name": "s", "effect": {"annotations": {
        AUTO: "true", AUTO_LEGACY: "false"}}}],
     f"data.selectors[0].effect.annotations: annotations {AUTO}='true' and its legacy alias "
     f"{AUTO_LEGACY}='false' disagree"),
    ("effect-labels-array", [{"name": "s", "effect": {"labels": ["a"]}}],
     "data.selectors[0].effect.labels: expected an object of strings, got an array"),
    ("effect-label-number", [{"name": "s", "effect": {"labels": {"tier": 2}}}],
     "data.selectors[0].effect.labels[tier]: label values are strings, got 2"),
    ("effect-label-value", [{"name": "s", "effect": {"labels": {"tier": "front end"}}}],
     "data.selectors[0].effect.labels[tier]: invalid label value 'front end': a label value is "
     "empty or must consist of alphanumeric characters, '-', '_' or '.', and must start and "
     "end with an alphanumeric character"),
]


@pytest.mark.parametrize(
    ("selectors", "message"),
    [(s, m) for _, s, m in BAD_SELECTORS],
    ids=[i for i, _, _ in BAD_SELECTORS],
)
def test_bad_selectors_are_refused_naming_the_configmap_and_the_field(
    selectors: Any, message: str
) -> None:
    assert refused(configmap(selectors)) == f"{PLACE}: {message}"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "ConfigMap: expected a ConfigMap object, got an array"),
        ("selectors: []", "ConfigMap: expected a ConfigMap object, got a string"),
        ({**configmap([]), "kind": "Secret"}, f"{PLACE}: kind: expected ConfigMap, got 'Secret'"),
        ({**configmap([]), "data": ["selectors"]}, f"{PLACE}: data: expected an object, "
         "got an array"),
        ({**configmap([]), "metadata": ["eci-profile"]}, "ConfigMap: metadata: expected an "
         "object, got an array"),
        ({**configmap([]), "metadata": {"name": 3}}, "ConfigMap: metadata.name: expected a "
         "string, got 3"),
        (configmap([[{"name": "s"}]]), f"{PLACE}: data.selectors[0]: expected an object, "
         "got an array"),
        # Written as YAML under data instead of as a JSON string: the usual slip.
        ({**configmap(None), "data": {"selectors": [{"name": "s"}]}},
         f"{PLACE}: data.selectors: expected a string holding a JSON array of selectors "
         "(ConfigMap values are strings), got an array"),
        ({**configmap(None), "data": {"selectors": 1}},
         f"{PLACE}: data.selectors: expected a string holding a JSON array of selectors "
         "(ConfigMap values are strings), got a number"),
    ],
    ids=["array", "string", "kind", "data", "metadata", "metadata-name", "nested-array",
         "selectors-yaml", "selectors-number"],
)
def test_a_configmap_of_the_wrong_shape_is_refused(obj: Any, message: str) -> None:
    assert refused(obj) == message


def test_the_json_position_is_within_the_selectors_string() -> None:
    # Line 11 of the block under `selectors: |`, YAML's indentation taken off: `"app" "web"`
    # at 8 spaces, the ':' missing before column 15.
    cm = yaml.safe_load(ECI_PROFILE_YAML)
    cm["data"]["selectors"] = cm["data"]["selectors"].replace('"app": "web"', '"app" "web"')
    assert cm["data"]["selectors"].splitlines()[10] == '        "app" "web"'
    assert refused(cm) == (
        f"{PLACE}: data.selectors: not valid JSON: Expecting ':' delimiter (line 11, column 15)"
    )


def test_the_error_is_a_fastmatch_error_and_a_value_error() -> None:
    with pytest.raises(FastmatchError):
        EciProfile.from_configmap(configmap([{"name": 1}]))
    with pytest.raises(ValueError):
        EciProfile.from_configmap(configmap([{"name": 1}]))


# --- bad pods -------------------------------------------------------------------------------


@pytest.mark.parametrize("with_selectors", [False, True])
@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (["web"], "Pod: expected a Pod object, got an array"),
        ({"metadata": "web"}, "Pod: metadata: expected an object, got a string"),
        ({"metadata": {"name": "web", "namespace": "shop", "labels": ["app=web"]}},
         "Pod shop/web: metadata.labels: expected a mapping of strings, got an array"),
        ({"metadata": {"name": "web", "labels": {"version": 1}}},
         "Pod default/web: metadata.labels[version]: expected a string, got 1"),
        ({"metadata": {"generateName": "web-", "annotations": {PERFECT: True}}},
         f"Pod default/web-: metadata.annotations[{PERFECT}]: expected a string, got true"),
        ({"metadata": {"annotations": {1: "x"}}},
         "Pod: metadata.annotations: keys are strings, got 1"),
    ],
    ids=["array", "metadata", "labels", "label-value", "annotation-value", "annotation-key"],
)
def test_a_pod_with_bad_metadata_is_refused_naming_the_pod_and_the_field(
    obj: Any, message: str, with_selectors: bool
) -> None:
    p = profile({"name": "s"}) if with_selectors else EciProfile()
    for read in (p.annotations_for, p.labels_for):
        with pytest.raises(InputFileError) as caught:
            read(obj)
        assert str(caught.value) == message


def test_bad_pod_metadata_names_where_when_given() -> None:
    p = profile({"name": "s"})
    bad = {"metadata": {"labels": {"app": ["web"]}}}
    where = "deploy.yaml: document 2 (Deployment web)"
    with pytest.raises(InputFileError, match=r"^deploy\.yaml: document 2 \(Deployment web\): "
                       r"metadata\.labels\[app\]: expected a string, got an array$"):
        p.annotations_for(bad, where=where)


def test_bad_namespace_labels_are_refused() -> None:
    p = profile({"name": "s"})
    with pytest.raises(InputFileError, match=r"^Pod default/web: namespace labels\[env\]: "
                       r"expected a string, got 1$"):
        p.annotations_for(pod(), {"env": 1})  # type: ignore[dict-item]


# --- the values built in Python ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LabelSelectorRequirement("app", "Equals", ("x",)),
         "LabelSelectorRequirement: unknown operator 'Equals'"),
        (lambda: LabelSelectorRequirement("app", "In"),
         "LabelSelectorRequirement: operator In needs at least one value"),
        (lambda: LabelSelectorRequirement("app", "In", "web"),  # type: ignore[arg-type]
         "LabelSelectorRequirement: values is a sequence of strings, got the string 'web'"),
        (lambda: LabelSelectorRequirement("app", "Exists", ("x",)),
         "LabelSelectorRequirement: operator Exists takes no values"),
        (lambda: LabelSelector({"app": 1}),  # type: ignore[dict-item]
         r"LabelSelector.match_labels\[app\]: label values"),
        (lambda: LabelSelector(match_expressions=({"key": "a"},)),  # type: ignore[arg-type]
         "LabelSelector.match_expressions holds LabelSelectorRequirement values"),
        (lambda: Selector(""), "Selector.name: a selector's name must not be empty"),
        (lambda: Selector("s", priority=True), "Selector 's': priority: expected an integer"),
        (lambda: Selector("s", annotations={PERFECT: "yes"}),
         rf"Selector 's': annotations\[{PERFECT}\]: expected true or false"),
        (lambda: Selector("s", labels={"a": "b c"}),
         r"Selector 's': labels\[a\]: invalid label value"),
        (lambda: Selector("s", object_selector={"matchLabels": {}}),  # type: ignore[arg-type]
         "Selector 's': object_selector must be a LabelSelector"),
        (lambda: EciProfile((Selector("s"), Selector("s"))),
         "EciProfile.selectors: two selectors named 's'"),
        (lambda: EciProfile(({"name": "s"},)),  # type: ignore[arg-type]
         "EciProfile.selectors holds Selector values"),
    ],
)
def test_values_built_in_python_are_checked_as_the_configmaps_are(
    build: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_a_profile_built_in_python_applies_as_a_read_one_does() -> None:
    built = EciProfile((
        Selector("b", priority=1, annotations={"x": "b"}),
        Selector("a", priority=1, annotations={"x": "a"},
                 object_selector=LabelSelector({"app": "web"}, (
                     LabelSelectorRequirement("canary", "DoesNotExist"),))),
    ))
    read = profile(
        {"name": "b", "priority": 1, "effect": {"annotations": {"x": "b"}}},
        {"name": "a", "priority": 1, "effect": {"annotations": {"x": "a"}},
         "objectSelector": {"matchLabels": {"app": "web"},
                            "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}},
    )
    assert built == read
    for labels in ({"app": "web"}, {"app": "web", "canary": "1"}, {}):
        assert built.annotations_for(pod(labels)) == read.annotations_for(pod(labels))
    assert built.annotations_for(pod({"app": "web"})) == {"x": "a"}


# --- against a model --------------------------------------------------------------------------

KEYS = ["app", "tier", "env", "example.com/team"]
VALUES = ["web", "db", "prod", ""]

label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=4)


@st.composite
def requirements(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    entry: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": operator}
    if operator in ("In", "NotIn"):
        entry["values"] = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3))
    return entry


label_selectors = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={
        "matchLabels": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES),
                                       max_size=2),
        "matchExpressions": st.lists(requirements(), max_size=3),
    }),
)


@st.composite
def raw_selectors(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"name": draw(st.sampled_from(["a", "b", "c", "d", "e", "B"]))}
    for field_name, strategy in (
        ("priority", st.integers(-2, 2)),
        ("namespaceSelector", label_selectors),
        ("objectSelector", label_selectors),
    ):
        value = draw(strategy)
        if value is not None or draw(st.booleans()):
            item[field_name] = value
    item["effect"] = {"annotations": draw(st.dictionaries(
        st.sampled_from(["x", "y", "owner"]), st.sampled_from(["1", "2"]), max_size=2))}
    return item


def model_matches(label_selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes' label selector, written the plain way."""
    if not label_selector:
        return True
    for key, value in (label_selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for entry in label_selector.get("matchExpressions") or []:
        key, operator = entry["key"], entry["operator"]
        if operator == "In" and not (key in labels and labels[key] in entry["values"]):
            return False
        if operator == "NotIn" and key in labels and labels[key] in entry["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def model_select(
    items: list[dict[str, Any]], pod_labels: dict[str, str], ns_labels: dict[str, str]
) -> dict[str, Any] | None:
    matching = [
        item for item in items
        if model_matches(item.get("namespaceSelector"), ns_labels)
        and model_matches(item.get("objectSelector"), pod_labels)
    ]
    if not matching:
        return None
    top = max(item.get("priority") or 0 for item in matching)
    return min((item for item in matching if (item.get("priority") or 0) == top),
               key=lambda item: item["name"])


@given(
    st.lists(raw_selectors(), max_size=6, unique_by=lambda item: item["name"]),
    label_sets,
    label_sets,
    st.dictionaries(st.sampled_from(["x", "owner", "z"]), st.sampled_from(["p", "q"]),
                    max_size=2),
)
def test_select_and_annotations_for_agree_with_a_plain_model(
    items: list[dict[str, Any]],
    pod_labels: dict[str, str],
    ns_labels: dict[str, str],
    pod_annotations: dict[str, str],
) -> None:
    p = EciProfile.from_configmap(configmap(items))
    # Every selector's match, not only the winner's: few random selectors match a pod.
    for item, selector in zip(items, p.selectors):
        assert selector.matches(pod_labels, ns_labels) is (
            model_matches(item.get("namespaceSelector"), ns_labels)
            and model_matches(item.get("objectSelector"), pod_labels)
        ), item
    expected = model_select(items, pod_labels, ns_labels)
    got = p.select(pod_labels, ns_labels)
    assert (got.name if got else None) == (expected["name"] if expected else None)
    effect = expected["effect"]["annotations"] if expected else {}
    assert p.annotations_for(pod(pod_labels, pod_annotations), ns_labels) == {
        **pod_annotations, **effect,
    }
