"""Pod annotations become a MatchPolicy (SPEC §2).

Booleans are ``true``/``false`` in any case; counts are positive integers;
a cache id is not empty; legacy aliases mean the same as the current names.
Anything else is bad input with an error that names the annotation and the
value.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastmatch.errors import FastmatchError, InvalidAnnotationError, ValidationError
from fastmatch.policy import ANNOTATIONS, MatchPolicy

AUTO = "k8s.aliyun.com/eci-auto-imc"
AUTO_LEGACY = "k8s.aliyun.com/eci-image-cache"
PERFECT = "k8s.aliyun.com/imc-perfect-match"
COUNT = "k8s.aliyun.com/imc-match-count-request"
IMC_ID = "k8s.aliyun.com/eci-imc-id"
IMC_ID_LEGACY = "k8s.aliyun.com/eci-image-snapshot-id"
EXTRA = "k8s.aliyun.com/eci-extra-ephemeral-storage"


def policy(**annotations: str) -> MatchPolicy:
    """A policy from annotations given as keyword arguments, by short name."""
    names = {
        "auto": AUTO,
        "auto_legacy": AUTO_LEGACY,
        "perfect": PERFECT,
        "count": COUNT,
        "imc_id": IMC_ID,
        "imc_id_legacy": IMC_ID_LEGACY,
        "extra": EXTRA,
    }
    return MatchPolicy.from_annotations({names[k]: v for k, v in annotations.items()})


def refused(annotations: dict[str, Any]) -> str:
    with pytest.raises(InvalidAnnotationError) as caught:
        MatchPolicy.from_annotations(annotations)
    return str(caught.value)


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("annotations", [{}, None, {"app.kubernetes.io/name": "web"}])
def test_without_annotations_a_pod_matches_automatically_with_no_bar(
    annotations: dict[str, str] | None,
) -> None:
    p = MatchPolicy.from_annotations(annotations)
    assert p == MatchPolicy()
    assert (p.auto, p.perfect_match, p.match_count, p.cache_id) == (True, False, None, None)
    assert p.extra_storage_gib == 0
    assert p.min_full(3) == 1


def test_the_known_annotations_are_listed() -> None:
    assert set(ANNOTATIONS) == {AUTO, AUTO_LEGACY, PERFECT, COUNT, IMC_ID, IMC_ID_LEGACY, EXTRA}


# --- booleans -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        (" tRuE ", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("fAlSe", False),
    ],
)
def test_booleans_are_read_in_any_case(value: str, expected: bool) -> None:
    assert policy(auto=value).auto is expected
    assert policy(auto_legacy=value).auto is expected
    assert policy(perfect=value).perfect_match is expected


@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "", "truee", "t", "null"])
@pytest.mark.parametrize("key", [AUTO, AUTO_LEGACY, PERFECT])
def test_a_bad_boolean_names_the_annotation_and_the_value(key: str, value: str) -> None:
    text = refused({key: value})
    assert text == f"annotation {key}: expected true or false, got {value!r}"


def test_auto_off_turns_automatic_matching_off() -> None:
    assert policy(auto="false").auto is False
    assert policy(auto_legacy="false").auto is False


# --- legacy aliases -------------------------------------------------------------------------


def test_the_legacy_cache_id_annotation_names_the_cache() -> None:
    assert policy(imc_id_legacy="imc-2ze5tm5gehgtiiga1234").cache_id == "imc-2ze5tm5gehgtiiga1234"


@pytest.mark.parametrize(
    ("current", "legacy", "expected"),
    [("true", "true", True), ("true", "True", True), ("FALSE", "false", False)],
)
def test_an_alias_that_agrees_with_the_current_name_is_fine(
    current: str, legacy: str, expected: bool
) -> None:
    assert policy(auto=current, auto_legacy=legacy).auto is expected


def test_an_auto_alias_that_disagrees_names_both_annotations() -> None:
    text = refused({AUTO: "true", AUTO_LEGACY: "false"})
    assert AUTO in text and AUTO_LEGACY in text
    assert "'true'" in text and "'false'" in text
    assert "disagree" in text


def test_an_id_alias_that_disagrees_names_both_annotations() -> None:
    text = refused({IMC_ID: "imc-a", IMC_ID_LEGACY: "imc-b"})
    assert f"{IMC_ID}='imc-a'" in text
    assert f"{IMC_ID_LEGACY}='imc-b'" in text
    assert policy(imc_id="imc-a", imc_id_legacy="imc-a").cache_id == "imc-a"
    assert policy(imc_id="imc-a", imc_id_legacy=" imc-a ").cache_id == "imc-a"


# --- match count ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "count"), [("1", 1), ("3", 3), (" 2 ", 2), ("20", 20)])
def test_a_count_request_is_a_positive_integer(value: str, count: int) -> None:
    p = policy(count=value)
    assert p.match_count == count
    assert p.min_full(20) == count


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc", "", " ", "+2", "2x", "١"])
def test_a_count_that_is_not_a_positive_integer_names_the_annotation(value: str) -> None:
    assert refused({COUNT: value}) == (
        f"annotation {COUNT}: expected a positive integer, got {value!r}"
    )


def test_a_count_request_is_ignored_under_perfect_match() -> None:
    p = policy(perfect="true", count="1")
    assert p.match_count == 1
    assert p.min_full(4) == 4


# --- cache id -------------------------------------------------------------------------------


def test_a_named_cache_is_read_and_trimmed() -> None:
    assert policy(imc_id="imc-1").cache_id == "imc-1"
    assert policy(imc_id="  imc-1\n").cache_id == "imc-1"


@pytest.mark.parametrize("key", [IMC_ID, IMC_ID_LEGACY])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_cache_id_names_the_annotation(key: str, value: str) -> None:
    assert refused({key: value}) == f"annotation {key}: the cache id is empty"


def test_a_named_cache_does_not_switch_automatic_matching_off() -> None:
    p = policy(imc_id="imc-1", auto="false")
    assert (p.cache_id, p.auto) == ("imc-1", False)


# --- extra ephemeral storage ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "gib"),
    [
        ("50Gi", 50),
        (" 50Gi ", 50),
        ("1Ti", 1024),
        ("1.5Gi", 2),  # rounded up to whole GiB
        ("500Mi", 1),
        ("1024Mi", 1),
        ("1025Mi", 2),
        ("50G", 47),  # 50 * 10^9 bytes
        ("1073741824", 1),  # plain bytes
        ("0", 0),
        ("0Gi", 0),
    ],
)
def test_extra_storage_is_read_as_a_quantity_in_whole_gib(value: str, gib: int) -> None:
    assert policy(extra=value).extra_storage_gib == gib


@pytest.mark.parametrize("value", ["abc", "-5Gi", "50 GB", "", "5gi", "Gi", "50GiB"])
def test_a_bad_storage_quantity_names_the_annotation_and_the_value(value: str) -> None:
    assert refused({EXTRA: value}) == (
        f"annotation {EXTRA}: expected a storage quantity such as 50Gi, got {value!r}"
    )


# --- values that are not strings, mappings that are not mappings ----------------------------


@pytest.mark.parametrize("key", [AUTO, PERFECT, COUNT, IMC_ID, EXTRA])
@pytest.mark.parametrize("value", [True, 3, ["true"]])
def test_annotation_values_must_be_strings(key: str, value: Any) -> None:
    assert refused({key: value}) == f"annotation {key}: values are strings, got {value!r}"


def test_annotations_must_be_a_mapping() -> None:
    assert "must be a mapping" in refused([(AUTO, "true")])  # type: ignore[arg-type]


def test_unknown_annotations_are_ignored_even_with_odd_values() -> None:
    assert MatchPolicy.from_annotations({"example.com/x": 3}) == MatchPolicy()  # type: ignore[dict-item]


# --- options that do not come from annotations ----------------------------------------------


def test_caller_options_are_carried_into_the_policy() -> None:
    p = MatchPolicy.from_annotations(
        {PERFECT: "false"}, storage_gib=40, allow_partial=True, arch="AMD64", os=" Linux "
    )
    assert (p.storage_gib, p.allow_partial, p.arch, p.os) == (40, True, "amd64", "linux")


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"auto": "true"}, "MatchPolicy.auto must be a bool, got 'true'"),
        ({"perfect_match": 1}, "MatchPolicy.perfect_match must be a bool, got 1"),
        ({"allow_partial": None}, "MatchPolicy.allow_partial must be a bool, got None"),
        ({"match_count": 0}, "MatchPolicy.match_count must be a positive integer, got 0"),
        ({"match_count": True}, "MatchPolicy.match_count must be a positive integer, got True"),
        ({"match_count": 1.5}, "MatchPolicy.match_count must be a positive integer, got 1.5"),
        ({"match_count": "2"}, "MatchPolicy.match_count must be a positive integer, got '2'"),
        ({"cache_id": ""}, "MatchPolicy.cache_id must be a non-empty string, got ''"),
        ({"cache_id": 5}, "MatchPolicy.cache_id must be a non-empty string, got 5"),
        ({"storage_gib": 0}, "MatchPolicy.storage_gib must be a positive number, got 0"),
        ({"storage_gib": -1.0}, "MatchPolicy.storage_gib must be a positive number, got -1.0"),
        ({"storage_gib": True}, "MatchPolicy.storage_gib must be a positive number, got True"),
        ({"storage_gib": "40"}, "MatchPolicy.storage_gib must be a positive number, got '40'"),
        ({"extra_storage_gib": -1}, "MatchPolicy.extra_storage_gib must be an integer >= 0"),
        ({"arch": ""}, "MatchPolicy.arch must be a non-empty string, got ''"),
        ({"os": 3}, "MatchPolicy.os must be a non-empty string, got 3"),
    ],
)
def test_a_policy_built_directly_names_the_bad_field(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MatchPolicy(**fields)
    assert str(caught.value).startswith(why)


def test_a_storage_limit_that_is_nan_is_refused() -> None:
    with pytest.raises(ValidationError, match="storage_gib must be a positive number, got nan"):
        MatchPolicy(storage_gib=float("nan"))


# --- how many images must be fully cached ---------------------------------------------------


@pytest.mark.parametrize(
    ("p", "images", "bar"),
    [
        (MatchPolicy(), 3, 1),
        (MatchPolicy(perfect_match=True), 3, 3),
        (MatchPolicy(perfect_match=True), 1, 1),
        (MatchPolicy(match_count=2), 3, 2),
        # A count above the number of images asks for all of them (SPEC §3.5).
        (MatchPolicy(match_count=5), 3, 3),
        (MatchPolicy(match_count=2**31), 3, 3),
        (MatchPolicy(match_count=10**23), 1, 1),
        (MatchPolicy(perfect_match=True, match_count=2), 4, 4),
        (MatchPolicy(allow_partial=True), 3, 0),
        (MatchPolicy(allow_partial=True, match_count=2), 3, 2),
        (MatchPolicy(allow_partial=True, perfect_match=True), 3, 3),
    ],
)
def test_min_full_is_the_eligibility_bar(p: MatchPolicy, images: int, bar: int) -> None:
    assert p.min_full(images) == bar


def test_annotation_errors_are_fastmatch_errors_and_value_errors() -> None:
    with pytest.raises(FastmatchError):
        policy(perfect="maybe")
    with pytest.raises(ValueError):
        policy(count="0")


@given(auto=st.booleans(), perfect=st.booleans(),
       count=st.none() | st.integers(1, 10_000),
       cache_id=st.none() | st.from_regex(r"imc-[a-z0-9]{1,20}", fullmatch=True),
       extra=st.integers(0, 4096))
def test_annotations_read_back_as_the_same_policy(auto: bool, perfect: bool, count: int | None,
                                                  cache_id: str | None, extra: int) -> None:
    wanted = MatchPolicy(auto=auto, perfect_match=perfect, match_count=count,
                         cache_id=cache_id, extra_storage_gib=extra)
    annotations = wanted.annotations()
    assert set(annotations) <= set(ANNOTATIONS)
    assert MatchPolicy.from_annotations(annotations) == wanted


def test_the_default_policy_needs_no_annotation() -> None:
    assert MatchPolicy().annotations() == {}
    assert MatchPolicy(auto=False, cache_id="imc-1").annotations() == {
        "k8s.aliyun.com/eci-auto-imc": "false", "k8s.aliyun.com/eci-imc-id": "imc-1"}
