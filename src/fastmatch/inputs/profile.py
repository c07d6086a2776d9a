"""The eci-profile ConfigMap: which annotations ECI adds to a pod before it starts (SPEC §6, §8).

ECI reads the ConfigMap ``kube-system/eci-profile`` when a pod is created.  Its
``data.selectors`` is a JSON array (in a string, as every ConfigMap value is) of
selectors; a selector picks pods by their namespace's labels (``namespaceSelector``) and
their own (``objectSelector``), and its ``effect`` writes annotations and labels over the
pod's.  ECI's image-cache annotations (SPEC §2) often arrive that way, so fastmatch applies
the profile before it reads a pod's policy: a decision sees the pod ECI would see.

The design, in the order a pod meets it:

- Everything is checked when the profile is read, so that matching a pod cannot fail on the
  profile: a malformed ConfigMap raises :class:`~fastmatch.errors.InputFileError` naming the
  ConfigMap and the field as Kubernetes writes it (``data.selectors[1].objectSelector...``),
  and a caller that reloads keeps its last good profile (what ECI does with a bad edit).
- A selector's two label selectors are Kubernetes' ``metav1.LabelSelector`` (the open-source
  Selector CRD, aliyuneci/eci-profile, converts them with ``LabelSelectorAsSelector``):
  ``matchLabels`` and ``matchExpressions`` (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``)
  all ANDed; an absent or empty one selects everything.
- Of the selectors that match, one applies: the highest ``priority``, then the first name.
- The profile is sorted once in that order and each label selector compiled to tuples and
  frozensets, so a pod costs a few dictionary look-ups per selector tried, and a profile
  without selectors costs one dictionary copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Final, NoReturn

from fastmatch.errors import InputFileError, InvalidAnnotationError, ValidationError
from fastmatch.policy import ANNOTATIONS, MatchPolicy

__all__ = ["OPERATORS", "EciProfile", "LabelSelector", "LabelSelectorRequirement", "Selector"]

OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")
"""The operators of a ``matchExpressions`` requirement, spelled as Kubernetes spells them."""

# Kubernetes' priority is an int32 (SelectorSpec.Priority); a larger number does not decode.
_PRIORITY_MIN: Final = -(2**31)
_PRIORITY_MAX: Final = 2**31 - 1

# Label and annotation keys are qualified names, label values a restricted alphabet
# (k8s.io/apimachinery/pkg/util/validation): a selector on a label no pod can carry is a
# typo that would silently select nothing, and an effect that writes one makes the API
# server refuse every pod it applies to.
_NAME: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_CHARS: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

# The fields fastmatch reads in each object.  A selector or an effect may carry others
# (ECI adds fields over time); a label selector may not, since Kubernetes fixed its shape.
_SELECTOR_FIELDS: Final = ("name", "priority", "namespaceSelector", "objectSelector", "effect")
_EFFECT_FIELDS: Final = ("annotations", "labels")
_LABEL_SELECTOR_FIELDS: Final = ("matchLabels", "matchExpressions")
_REQUIREMENT_FIELDS: Final = ("key", "operator", "values")
# The Selector CRD's names for the ConfigMap's two selectors: written in a ConfigMap they
# would be ignored and the selector would match every pod.
_CRD_SPELLINGS: Final = {
    "namespaceLabels": "namespaceSelector",
    "objectLabels": "objectSelector",
}


# --- what a value is, in the words of the JSON it came from -------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _show(value: object) -> str:
    """A scalar as the user wrote it (JSON's spelling), anything bigger by its kind."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (str, int, float)):
        return repr(value)
    return _kind(value)


# --- the checks, shared by the ConfigMap reader and the constructors ----------------------


def _qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes qualified name (``[prefix/]name``), or None."""
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name has at most one '/'"
    name = parts[-1]
    if not name:
        return "the name part must not be empty"
    if len(name) > 63:
        return "the name part must be no more than 63 characters"
    if not _NAME.fullmatch(name):
        return f"the name part {_NAME_CHARS}"
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "the prefix part must not be empty"
        if len(prefix) > 253:
            return "the prefix part must be no more than 253 characters"
        if not _SUBDOMAIN.fullmatch(prefix):
            return "the prefix part must be a lowercase DNS subdomain (RFC 1123)"
    return None


def _label_key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return f"label keys are strings, got {_show(key)}"
    problem = _qualified_name_problem(key)
    return None if problem is None else f"invalid label key {key!r}: {problem}"


def _label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"label values are strings, got {_show(value)}"
    if len(value) > 63:
        return f"invalid label value {value!r}: must be no more than 63 characters"
    if value and not _NAME.fullmatch(value):
        return f"invalid label value {value!r}: a label value is empty or {_NAME_CHARS}"
    return None


def _annotation_key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return f"annotation keys are strings, got {_show(key)}"
    # The API server checks annotation keys lower-cased (ValidateAnnotations), labels as given.
    problem = _qualified_name_problem(key.lower())
    return None if problem is None else f"invalid annotation key {key!r}: {problem}"


def _annotation_value_problem(key: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"annotation values are strings, got {_show(value)}"
    if key in ANNOTATIONS:
        # ECI's own annotations are checked here, where the profile can be named, rather
        # than on every pod the selector reaches.
        try:
            MatchPolicy.from_annotations({key: value})
        except InvalidAnnotationError as exc:
            return str(exc).removeprefix(f"annotation {key}: ")
    return None


def _operator_problem(operator: object) -> str | None:
    if operator in OPERATORS:
        return None
    return f"unknown operator {_show(operator)} (expected In, NotIn, Exists or DoesNotExist)"


def _values_problem(operator: str, values: tuple[object, ...]) -> str | None:
    if operator in ("In", "NotIn") and not values:
        return f"operator {operator} needs at least one value"
    if operator in ("Exists", "DoesNotExist") and values:
        return f"operator {operator} takes no values, got {len(values)}"
    return None


def _priority_problem(priority: object) -> str | None:
    # bool is an int to Python and 1.0 equals 1, but neither decodes into Go's int32.
    if isinstance(priority, bool) or not isinstance(priority, int):
        return f"expected an integer, got {_show(priority)}"
    if not _PRIORITY_MIN <= priority <= _PRIORITY_MAX:
        return f"expected an integer from -2**31 to 2**31-1, got {priority}"
    return None


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"expected a string, got {_show(name)}"
    if not name.strip():
        return "a selector's name must not be empty"
    return None


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


_KeyCheck = Callable[[object], "str | None"]
_ValueCheck = Callable[[str, object], "str | None"]


def _label_value_of(_key: str, value: object) -> str | None:
    return _label_value_problem(value)


def _map_problem(
    mapping: Mapping[object, object], key_problem: _KeyCheck, value_problem: _ValueCheck
) -> tuple[object, str] | None:
    """The first (key, why) of a string map whose key or value is bad, or None."""
    for key, value in mapping.items():
        problem = key_problem(key)
        if problem is None and isinstance(key, str):
            problem = value_problem(key, value)
        if problem is not None:
            return key, problem
    return None


def _check_map(
    owner: str, mapping: object, key_problem: _KeyCheck, value_problem: _ValueCheck
) -> None:
    """A constructor's check of a string map; ``owner`` names the attribute in the error."""
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{owner} must be a mapping of strings, got {_kind(mapping)}")
    bad = _map_problem(mapping, key_problem, value_problem)
    if bad is not None:
        raise ValidationError(f"{owner}[{bad[0]}]: {bad[1]}")


# --- the values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    """One ``matchExpressions`` entry: ``key``, ``operator`` (one of :data:`OPERATORS`), ``values``.

    ``In`` and ``NotIn`` need at least one value, ``Exists`` and ``DoesNotExist`` none, as in
    Kubernetes.  ``NotIn`` and ``DoesNotExist`` also match a pod without the label.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _label_key_problem(self.key) or _operator_problem(self.operator)
        if problem is None and isinstance(self.values, str):  # tuple() would split it
            problem = f"values is a sequence of strings, got the string {self.values!r}"
        if problem is None:
            object.__setattr__(self, "values", tuple(self.values))
            problem = next(filter(None, map(_label_value_problem, self.values)), None)
            problem = problem or _values_problem(self.operator, self.values)
        if problem is not None:
            raise ValidationError(f"LabelSelectorRequirement: {problem}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` (a pod's or a namespace's) meet this requirement."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        held = self.key in labels and labels[self.key] in self.values
        return held if self.operator == "In" else not held


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector: every ``match_labels`` pair AND every requirement.

    An empty selector (the default) matches every set of labels, as in Kubernetes.
    """

    match_labels: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()
    # Compiled once: the requirements grouped by what they ask of a label.
    _equal: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _in: tuple[tuple[str, frozenset[str]], ...] = field(init=False, repr=False, compare=False)
    _not_in: tuple[tuple[str, frozenset[str]], ...] = field(
        init=False, repr=False, compare=False
    )
    _present: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _absent: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_map(
            "LabelSelector.match_labels", self.match_labels, _label_key_problem, _label_value_of
        )
        object.__setattr__(self, "match_labels", _frozen(self.match_labels))
        expressions = tuple(self.match_expressions)
        for requirement in expressions:
            if not isinstance(requirement, LabelSelectorRequirement):
                raise ValidationError(
                    "LabelSelector.match_expressions holds LabelSelectorRequirement values, "
                    f"got {type(requirement).__name__}"
                )
        object.__setattr__(self, "match_expressions", expressions)

        def by(operator: str) -> list[LabelSelectorRequirement]:
            return [r for r in expressions if r.operator == operator]

        object.__setattr__(self, "_equal", tuple(self.match_labels.items()))
        object.__setattr__(self, "_in", tuple((r.key, frozenset(r.values)) for r in by("In")))
        object.__setattr__(
            self, "_not_in", tuple((r.key, frozenset(r.values)) for r in by("NotIn"))
        )
        object.__setattr__(self, "_present", tuple(r.key for r in by("Exists")))
        object.__setattr__(self, "_absent", tuple(r.key for r in by("DoesNotExist")))

    def __bool__(self) -> bool:
        """False for the empty selector, the one that matches everything."""
        return bool(self.match_labels or self.match_expressions)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` (a mapping of strings) satisfy every requirement."""
        get = labels.get
        for key, value in self._equal:
            if get(key) != value:
                return False
        # An absent label reads as None, which no set of strings holds: In fails, NotIn holds.
        for key, values in self._in:
            if get(key) not in values:
                return False
        for key, values in self._not_in:
            if get(key) in values:
                return False
        for key in self._present:
            if key not in labels:
                return False
        return all(key not in labels for key in self._absent)


_EVERYTHING: Final = LabelSelector()


@dataclass(frozen=True, slots=True)
class Selector:
    """One selector of the profile: the pods it picks and the effect it has on them.

    ``name`` identifies it (unique within a profile); ``priority`` (an int32, default 0)
    ranks it against the other selectors that match the same pod.  ``namespace_selector``
    is matched against the labels of the pod's namespace, ``object_selector`` against the
    pod's own; both must match.  ``annotations`` and ``labels`` are the effect: written over
    the pod's keys of the same name.
    """

    name: str
    _: KW_ONLY
    priority: int = 0
    namespace_selector: LabelSelector = _EVERYTHING
    object_selector: LabelSelector = _EVERYTHING
    annotations: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # Plain dicts of the effect: dict.update takes its fast path only for a dict.
    _annotations: dict[str, str] = field(init=False, repr=False, compare=False)
    _labels: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem is not None:
            raise ValidationError(f"Selector.name: {problem}")
        problem = _priority_problem(self.priority)
        if problem is not None:
            raise ValidationError(f"Selector {self.name!r}: priority: {problem}")
        for attribute in ("namespace_selector", "object_selector"):
            if not isinstance(getattr(self, attribute), LabelSelector):
                raise ValidationError(
                    f"Selector {self.name!r}: {attribute} must be a LabelSelector, "
                    f"got {type(getattr(self, attribute)).__name__}"
                )
        owner = f"Selector {self.name!r}"
        _check_map(
            f"{owner}: annotations", self.annotations, _annotation_key_problem,
            _annotation_value_problem,
        )
        _check_map(f"{owner}: labels", self.labels, _label_key_problem, _label_value_of)
        _check_policy_annotations(self.annotations, f"{owner}: annotations", ValidationError)
        object.__setattr__(self, "annotations", _frozen(self.annotations))
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "_annotations", dict(self.annotations))
        object.__setattr__(self, "_labels", dict(self.labels))

    def matches(
        self, pod_labels: Mapping[str, str], namespace_labels: Mapping[str, str] | None = None
    ) -> bool:
        """Whether this selector picks a pod with ``pod_labels`` in a namespace with
        ``namespace_labels`` (None: a namespace without labels)."""
        return self.object_selector.matches(pod_labels) and self.namespace_selector.matches(
            namespace_labels if namespace_labels is not None else {}
        )


def _check_policy_annotations(
    annotations: Mapping[str, str], where: str, error: type[Exception]
) -> None:
    """An effect that sets an ECI annotation and its legacy alias to different values."""
    try:
        MatchPolicy.from_annotations({k: v for k, v in annotations.items() if k in ANNOTATIONS})
    except InvalidAnnotationError as exc:
        raise error(f"{where}: {exc}") from None


def _precedence(selector: Selector) -> tuple[int, str]:
    # Highest priority first; among equals the first name.  Upstream sorts with Go's
    # sort.Sort on priority alone, which is not stable, so which of two equal-priority
    # selectors applies there is unspecified; fastmatch picks by name so that a decision
    # can be repeated.  Python compares str by code point, the order of their UTF-8 bytes.
    return (-selector.priority, selector.name)


@dataclass(frozen=True, slots=True)
class EciProfile:
    """The selectors of an eci-profile ConfigMap, ready to apply to pods.

    ``selectors`` keeps the order of the ConfigMap; the one that applies to a pod is the
    matching selector with the highest priority, then the first name.  ``EciProfile()``
    (or :meth:`empty`) has no selectors and leaves every pod as it is.
    """

    selectors: tuple[Selector, ...] = ()
    # The selectors in the order they are tried: the first match applies.
    _ordered: tuple[Selector, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        selectors = tuple(self.selectors)
        seen: set[str] = set()
        for selector in selectors:
            if not isinstance(selector, Selector):
                raise ValidationError(
                    f"EciProfile.selectors holds Selector values, got {type(selector).__name__}"
                )
            if selector.name in seen:
                raise ValidationError(
                    f"EciProfile.selectors: two selectors named {selector.name!r}"
                )
            seen.add(selector.name)
        object.__setattr__(self, "selectors", selectors)
        object.__setattr__(self, "_ordered", tuple(sorted(selectors, key=_precedence)))

    @classmethod
    def empty(cls) -> EciProfile:
        """A profile without selectors: every pod keeps its own annotations and labels."""
        return cls()

    @classmethod
    def from_configmap(cls, obj: object, *, where: str | None = None) -> EciProfile:
        """Read the ``eci-profile`` ConfigMap (a dict as YAML or JSON gives it).

        ``data.selectors`` holds the selectors as a JSON array; without it (or with an empty
        string, as ECI ships the ConfigMap) the profile has no selectors.  The ConfigMap's
        other keys (vSwitchIds, securityGroupId, ...) are ECI's and ignored.  Bad input raises
        :class:`~fastmatch.errors.InputFileError` naming ``where`` (by default
        ``ConfigMap <namespace>/<name>``) and the field, e.g. ``ConfigMap
        kube-system/eci-profile: data.selectors[1].priority: expected an integer, got 'high'``.
        """
        if not isinstance(obj, Mapping):
            raise InputFileError(f"{where or 'ConfigMap'}: expected a ConfigMap object, "
                                 f"got {_kind(obj)}")
        place = _configmap_place(obj.get("metadata"), where)
        kind = obj.get("kind")
        # Items of a List answer from the API server carry no kind, so only a wrong one is bad.
        if kind is not None and kind != "ConfigMap":
            _fail(place, "kind", f"expected ConfigMap, got {_show(kind)}")
        data = obj.get("data")
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            _fail(place, "data", f"expected an object, got {_kind(data)}")
        text = data.get("selectors")
        # null is what the API server stores as "" for `selectors:` left blank in YAML.
        if text is None:
            return cls()
        if not isinstance(text, str):
            _fail(place, "data.selectors", "expected a string holding a JSON array of "
                  f"selectors (ConfigMap values are strings), got {_kind(text)}")
        if not text.strip():
            return cls()
        return cls(_read_selectors(text, place))

    def select(
        self, pod_labels: Mapping[str, str], namespace_labels: Mapping[str, str] | None = None
    ) -> Selector | None:
        """The selector that applies to a pod with ``pod_labels`` in a namespace with
        ``namespace_labels`` (None: no labels), or None when no selector matches.

        Both are mappings of strings, as a pod's ``metadata.labels`` are.
        """
        namespace = namespace_labels if namespace_labels is not None else {}
        for selector in self._ordered:
            if selector.object_selector.matches(pod_labels) and (
                selector.namespace_selector.matches(namespace)
            ):
                return selector
        return None

    def annotations_for(
        self,
        pod_obj: Mapping[str, object],
        namespace_labels: Mapping[str, str] | None = None,
        *,
        where: str | None = None,
    ) -> dict[str, str]:
        """The pod's ``metadata.annotations`` with the applying selector's effect written
        over them: a new dict; ``pod_obj`` is not changed.

        ``pod_obj`` is a Pod or a pod template (``metadata.labels``, ``metadata.annotations``;
        absent ones are empty); ``namespace_labels`` are its namespace's labels (None: none).
        Metadata that is not a mapping of strings raises
        :class:`~fastmatch.errors.InputFileError` naming ``where`` (by default ``Pod
        <namespace>/<name>``) and the field.
        """
        metadata, labels, annotations = _pod_metadata(pod_obj, where)
        result = dict(annotations)
        if self._ordered:
            namespace = _string_map(namespace_labels, metadata, where, "namespace labels")
            selector = self.select(labels, namespace)
            if selector is not None:
                result.update(selector._annotations)
        return result

    def labels_for(
        self,
        pod_obj: Mapping[str, object],
        namespace_labels: Mapping[str, str] | None = None,
        *,
        where: str | None = None,
    ) -> dict[str, str]:
        """The pod's ``metadata.labels`` with the applying selector's effect labels written
        over them, as :meth:`annotations_for` does for annotations."""
        metadata, labels, _ = _pod_metadata(pod_obj, where)
        result = dict(labels)
        if self._ordered:
            namespace = _string_map(namespace_labels, metadata, where, "namespace labels")
            selector = self.select(labels, namespace)
            if selector is not None:
                result.update(selector._labels)
        return result


# --- reading a ConfigMap -----------------------------------------------------------------


def _fail(place: str, path: str, message: str) -> NoReturn:
    raise InputFileError(f"{place}: {path}: {message}")


def _configmap_place(metadata: object, where: str | None) -> str:
    """``where``, else ``ConfigMap <namespace>/<name>`` from the metadata."""
    if metadata is not None and not isinstance(metadata, Mapping):
        _fail(where or "ConfigMap", "metadata", f"expected an object, got {_kind(metadata)}")
    metadata = metadata or {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    for path, value in (("metadata.name", name), ("metadata.namespace", namespace)):
        if value is not None and not isinstance(value, str):
            _fail(where or "ConfigMap", path, f"expected a string, got {_show(value)}")
    if where is not None:
        return where
    if not name:
        return "ConfigMap"
    return f"ConfigMap {namespace}/{name}" if namespace else f"ConfigMap {name}"


def _read_selectors(text: str, place: str) -> tuple[Selector, ...]:
    path = "data.selectors"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(place, path, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        _fail(place, path, "not valid JSON: nested too deeply")
    except ValueError:  # an integer of thousands of digits
        _fail(place, path, "not valid JSON: a number too long to read")
    if raw is None:  # JSON null: Go decodes it into an empty list of selectors
        return ()
    if not isinstance(raw, list):
        hint = " (write a single selector as [{...}])" if isinstance(raw, dict) else ""
        _fail(place, path, f"expected a JSON array of selectors, got {_kind(raw)}{hint}")
    selectors: list[Selector] = []
    first: dict[str, int] = {}
    for i, item in enumerate(raw):
        selector = _read_selector(item, place, f"{path}[{i}]")
        if selector.name in first:
            _fail(place, f"{path}[{i}].name", f"duplicate name {selector.name!r} "
                  f"(also {path}[{first[selector.name]}])")
        first[selector.name] = i
        selectors.append(selector)
    return tuple(selectors)


def _object(raw: object, place: str, path: str) -> dict[str, object]:
    if not isinstance(raw, dict):
        _fail(place, path, f"expected an object, got {_kind(raw)}")
    return raw


def _check_spelling(
    raw: dict[str, object],
    known: tuple[str, ...],
    place: str,
    path: str,
    *,
    closed: bool,
    others: Mapping[str, str] | None = None,
) -> None:
    """Keys that are not ``known``: an error when they differ from one only in case (Go's
    decoder would take them, fastmatch's would not), when ``others`` knows them as another
    object's spelling, and, when ``closed``, in any case."""
    folded = {name.lower(): name for name in known}
    for key in raw:
        if key in known:
            continue
        if others is not None and key in others:
            _fail(place, f"{path}.{key}", f"{key} is the Selector CRD's field; "
                  f"the ConfigMap's is {others[key]}")
        if key.lower() in folded:
            _fail(place, f"{path}.{key}", f"field names are case-sensitive: write "
                  f"{folded[key.lower()]}")
        if closed:
            _fail(place, f"{path}.{key}", f"unknown field (expected {' or '.join(known)})")


def _read_selector(raw: object, place: str, path: str) -> Selector:
    item = _object(raw, place, path)
    _check_spelling(item, _SELECTOR_FIELDS, place, path, closed=False, others=_CRD_SPELLINGS)
    if item.get("name") is None:
        _fail(place, f"{path}.name", "required: every selector has a name")
    name = item["name"]
    problem = _name_problem(name)
    if problem is not None:
        _fail(place, f"{path}.name", problem)
    assert isinstance(name, str)
    priority = item.get("priority")
    if priority is None:  # absent or null: Go leaves the *int32 nil, which ranks as 0
        priority = 0
    problem = _priority_problem(priority)
    if problem is not None:
        _fail(place, f"{path}.priority", problem)
    assert isinstance(priority, int)
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}
    effect = item.get("effect")
    if effect is not None:
        effect = _object(effect, place, f"{path}.effect")
        _check_spelling(effect, _EFFECT_FIELDS, place, f"{path}.effect", closed=False)
        annotations = _read_string_map(
            effect.get("annotations"), place, f"{path}.effect.annotations",
            _annotation_key_problem, _annotation_value_problem,
        )
        _check_policy_annotations(annotations, f"{place}: {path}.effect.annotations",
                                  InputFileError)
        labels = _read_string_map(
            effect.get("labels"), place, f"{path}.effect.labels",
            _label_key_problem, _label_value_of,
        )
    return Selector(
        name,
        priority=priority,
        namespace_selector=_read_label_selector(
            item.get("namespaceSelector"), place, f"{path}.namespaceSelector"
        ),
        object_selector=_read_label_selector(
            item.get("objectSelector"), place, f"{path}.objectSelector"
        ),
        annotations=annotations,
        labels=labels,
    )


def _read_string_map(
    raw: object, place: str, path: str, key_problem: _KeyCheck, value_problem: _ValueCheck
) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        _fail(place, path, f"expected an object of strings, got {_kind(raw)}")
    bad = _map_problem(raw, key_problem, value_problem)
    if bad is not None:
        _fail(place, f"{path}[{bad[0]}]", bad[1])
    return raw


def _read_label_selector(raw: object, place: str, path: str) -> LabelSelector:
    if raw is None:
        return _EVERYTHING
    item = _object(raw, place, path)
    # A misspelt matchLabels would be ignored and the selector would pick every pod.
    _check_spelling(item, _LABEL_SELECTOR_FIELDS, place, path, closed=True)
    match_labels = _read_string_map(
        item.get("matchLabels"), place, f"{path}.matchLabels",
        _label_key_problem, _label_value_of,
    )
    raw_expressions = item.get("matchExpressions")
    if raw_expressions is None:
        raw_expressions = []
    if not isinstance(raw_expressions, list):
        _fail(place, f"{path}.matchExpressions",
              f"expected an array of requirements, got {_kind(raw_expressions)}")
    expressions = tuple(
        _read_requirement(entry, place, f"{path}.matchExpressions[{i}]")
        for i, entry in enumerate(raw_expressions)
    )
    if not match_labels and not expressions:
        return _EVERYTHING
    return LabelSelector(match_labels, expressions)


def _read_requirement(raw: object, place: str, path: str) -> LabelSelectorRequirement:
    item = _object(raw, place, path)
    _check_spelling(item, _REQUIREMENT_FIELDS, place, path, closed=True)
    key = item.get("key")
    if key is None:
        _fail(place, f"{path}.key", "required: the label key the requirement is about")
    problem = _label_key_problem(key)
    if problem is not None:
        _fail(place, f"{path}.key", problem)
    assert isinstance(key, str)
    operator = item.get("operator")
    if operator is None:
        _fail(place, f"{path}.operator", "required: In, NotIn, Exists or DoesNotExist")
    problem = _operator_problem(operator)
    if problem is not None:
        _fail(place, f"{path}.operator", problem)
    assert isinstance(operator, str)
    raw_values = item.get("values")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, list):
        _fail(place, f"{path}.values", f"expected an array of strings, got {_kind(raw_values)}")
    for j, value in enumerate(raw_values):
        problem = _label_value_problem(value)
        if problem is not None:
            _fail(place, f"{path}.values[{j}]", problem)
    values = tuple(raw_values)
    problem = _values_problem(operator, values)
    if problem is not None:
        _fail(place, f"{path}.values", problem)
    return LabelSelectorRequirement(key, operator, values)


# --- reading a pod -----------------------------------------------------------------------


def _pod_place(metadata: Mapping[str, object], where: str | None) -> str:
    if where is not None:
        return where
    name = metadata.get("name") or metadata.get("generateName")
    namespace = metadata.get("namespace") or "default"
    return f"Pod {namespace}/{name}" if isinstance(name, str) and name else "Pod"


def _string_map(
    raw: object, metadata: Mapping[str, object], where: str | None, path: str
) -> Mapping[str, str]:
    """``raw`` when it is a mapping of strings (None: empty); the error names the pod only
    when there is one, so the common case builds no message."""
    if raw is None:
        return {}
    # An exact dict of exact strings is what YAML and JSON give: checked without the ABC.
    if type(raw) is dict:
        for key, value in raw.items():  # a loop: a generator costs more on a few labels
            if type(key) is not str or type(value) is not str:
                break
        else:
            return raw
    if not isinstance(raw, Mapping):
        place = _pod_place(metadata, where)
        raise InputFileError(f"{place}: {path}: expected a mapping of strings, got {_kind(raw)}")
    for key, value in raw.items():
        if not isinstance(key, str):
            place = _pod_place(metadata, where)
            raise InputFileError(f"{place}: {path}: keys are strings, got {_show(key)}")
        if not isinstance(value, str):
            place = _pod_place(metadata, where)
            raise InputFileError(f"{place}: {path}[{key}]: expected a string, got {_show(value)}")
    return raw


_NO_METADATA: Final[Mapping[str, object]] = MappingProxyType({})


def _pod_metadata(
    pod_obj: object, where: str | None
) -> tuple[Mapping[str, object], Mapping[str, str], Mapping[str, str]]:
    """The pod's (metadata, labels, annotations); absent ones are empty, bad ones an error."""
    if type(pod_obj) is not dict and not isinstance(pod_obj, Mapping):
        raise InputFileError(f"{where or 'Pod'}: expected a Pod object, got {_kind(pod_obj)}")
    metadata = pod_obj.get("metadata")
    if metadata is None:
        return _NO_METADATA, {}, {}
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise InputFileError(f"{where or 'Pod'}: metadata: expected an object, "
                             f"got {_kind(metadata)}")
    return (
        metadata,
        _string_map(metadata.get("labels"), metadata, where, "metadata.labels"),
        _string_map(metadata.get("annotations"), metadata, where, "metadata.annotations"),
    )
