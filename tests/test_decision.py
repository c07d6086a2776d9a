"""One test per rule of SPEC §3, each with the example that shows it.

Every test runs twice: against the compiled :class:`fastmatch.CacheIndex` and
against the plain-Python :class:`fastmatch.reference.ReferenceIndex`, which
answer to the same names (as msgpack runs one suite against both of its
implementations).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import fastmatch as fm
from fastmatch.policy import IMC_ID, MATCH_COUNT, PERFECT_MATCH
from fastmatch.reference import ReferenceIndex

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
MB = 1_000_000


def layer(n: int, size: int = 10 * MB) -> fm.Layer:
    return fm.Layer(f"sha256:{n:064x}", size)


BASE = [layer(1, 30 * MB), layer(2, 2 * MB)]  # a shared base image's layers
NGINX = fm.Image("nginx:1.14.2", [*BASE, layer(10, 40 * MB), layer(11, 1 * MB)])
NGINX_OTHER_TAG = fm.Image("nginx:stable", NGINX.layers)
BUSYBOX = fm.Image("busybox:1.30", [layer(20, 1 * MB)])
REDIS = fm.Image("redis:7", [*BASE, layer(30, 20 * MB)])
APP = fm.Image("example.com/team/app:3", [*BASE, layer(40, 5 * MB)])


def cache(cid: str, images, **kw) -> fm.ImageCache:
    kw.setdefault("created", NOW - timedelta(days=1))
    return fm.ImageCache(cid, images, **kw)


Index = fm.CacheIndex  # the implementation under test (see the fixture below)


@pytest.fixture(autouse=True, params=["index", "reference"])
def implementation(request, monkeypatch):
    """Run the test against the compiled index, then against the reference."""
    chosen = {"index": fm.CacheIndex, "reference": ReferenceIndex}[request.param]
    monkeypatch.setitem(globals(), "Index", chosen)
    return chosen


def match(caches, images, policy=None, **kw):
    return Index(caches).match(images, policy, now=NOW, **kw)


# -- §3.1 named cache ---------------------------------------------------------


def test_named_cache_is_used_whatever_its_images():
    caches = [cache("imc-named", [BUSYBOX]), cache("imc-best", [NGINX])]
    result = match(caches, [NGINX], fm.MatchPolicy(cache_id="imc-named"))
    assert (result.outcome, result.cache_id, result.named) == ("use", "imc-named", True)
    assert result.full == 0 and result.covered == 0 and not result.perfect
    assert result.reason.startswith("named cache imc-named: the pod's image not fully cached")


def test_named_cache_that_does_not_exist_rejects_the_pod():
    result = match([cache("imc-1", [NGINX])], [NGINX], fm.MatchPolicy(cache_id="imc-gone"))
    assert (result.outcome, result.cache_id, result.named) == ("reject", "imc-gone", True)
    assert result.reason == "rejected: image cache imc-gone does not exist"


@pytest.mark.parametrize("phase", ["Creating", "Preparing", "Failed", "Updating", "UpdateFailed"])
def test_named_cache_not_ready_rejects_the_pod(phase):
    caches = [cache("imc-1", [NGINX], phase=phase), cache("imc-2", [NGINX])]
    result = match(caches, [NGINX], fm.MatchPolicy(cache_id="imc-1"))
    assert result.outcome == "reject"
    assert result.reason == f"rejected: image cache imc-1 is {phase}, not Ready"
    assert result.create is None  # automatic matching is not tried


def test_named_cache_annotation_wins_over_automatic_matching():
    policy = fm.MatchPolicy.from_annotations({IMC_ID: "imc-2", PERFECT_MATCH: "true"})
    caches = [cache("imc-1", [NGINX]), cache("imc-2", [REDIS])]
    assert match(caches, [NGINX], policy).cache_id == "imc-2"


# -- §3.2 automatic matching off --------------------------------------------------


def test_auto_off_uses_no_cache_and_proposes_none():
    policy = fm.MatchPolicy.from_annotations({"k8s.aliyun.com/eci-auto-imc": "false"})
    result = match([cache("imc-1", [NGINX])], [NGINX], policy)
    assert (result.outcome, result.cache_id, result.create) == ("none", None, None)
    assert "automatic image cache matching is off" in result.reason


# -- §3.3 candidates ---------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Creating", "Preparing", "Failed", "Updating", "UpdateFailed"])
def test_only_ready_caches_are_candidates(phase):
    assert match([cache("imc-1", [NGINX], phase=phase)], [NGINX]).outcome == "none"


def test_expired_caches_are_not_candidates():
    caches = [cache("imc-old", [NGINX], expires=NOW), cache("imc-ok", [NGINX], expires=NOW +
                                                             timedelta(seconds=1))]
    assert match(caches, [NGINX]).cache_id == "imc-ok"
    retention = cache("imc-r", [NGINX], created=NOW - timedelta(days=3), retention_days=2)
    assert match([retention], [NGINX]).outcome == "none"


def test_auto_created_cache_never_matched_expires_after_seven_days():
    young = cache("imc-a", [NGINX], auto_created=True, created=NOW - timedelta(days=6))
    old = cache("imc-b", [NGINX], auto_created=True, created=NOW - timedelta(days=8))
    assert match([young], [NGINX]).cache_id == "imc-a"
    assert match([old], [NGINX]).outcome == "none"
    kept = old.replace(last_matched=NOW - timedelta(days=29))
    assert match([kept], [NGINX]).cache_id == "imc-b"


def test_storage_limit_filters_caches_that_do_not_fit():
    caches = [cache("imc-big", [NGINX], size_gib=100), cache("imc-small", [NGINX], size_gib=40)]
    assert match(caches, [NGINX], fm.MatchPolicy(storage_gib=50)).cache_id == "imc-small"
    assert match(caches, [NGINX], fm.MatchPolicy(storage_gib=30)).outcome == "none"


def test_arch_and_os_must_agree_when_both_known():
    caches = [cache("imc-arm", [NGINX], arch="arm64"), cache("imc-any", [NGINX], created=NOW -
                                                           timedelta(days=9))]
    assert match(caches, [NGINX], fm.MatchPolicy(arch="amd64")).cache_id == "imc-any"
    # newer wins when the pod's arch is unknown or agrees
    assert match(caches, [NGINX]).cache_id == "imc-arm"
    assert match(caches, [NGINX], fm.MatchPolicy(arch="ARM64")).cache_id == "imc-arm"
    win = [cache("imc-win", [NGINX], os="windows")]
    assert match(win, [NGINX], fm.MatchPolicy(os="linux")).outcome == "none"


# -- §3.4 scores -------------------------------------------------------------------


def test_same_image_under_another_tag_counts_as_full():
    result = match([cache("imc-1", [NGINX_OTHER_TAG])], [NGINX])
    assert (result.outcome, result.full, result.perfect) == ("use", 1, True)


def test_image_whose_layers_lie_inside_another_cached_image_counts():
    base_only = fm.Image("example.com/base:1", BASE)
    result = match([cache("imc-1", [REDIS])], [base_only])
    assert (result.full, result.covered) == (1, 32 * MB)


def test_full_covered_and_distance_are_reported():
    result = match([cache("imc-1", [NGINX, BUSYBOX])], [NGINX, REDIS])
    assert result.full == 1
    assert result.covered == NGINX.size  # the base layers counted once
    pod_bytes = NGINX.size + 20 * MB
    assert result.distance == abs((NGINX.size + BUSYBOX.size) - pod_bytes)
    assert result.images == 2 and not result.perfect


def test_image_without_layers_matches_only_a_cache_holding_that_reference():
    unresolved = fm.Image("nginx:1.14.2")
    assert match([cache("imc-1", [NGINX])], [unresolved]).cache_id == "imc-1"
    assert match([cache("imc-1", [NGINX_OTHER_TAG])], [unresolved]).outcome == "none"
    assert match([cache("imc-1", ["nginx:1.14.2"])], [unresolved]).full == 1


def test_pod_images_are_counted_once():
    result = match([cache("imc-1", [NGINX])], [NGINX, NGINX_OTHER_TAG.ref and NGINX])
    assert result.images == 1


# -- §3.5 eligibility ---------------------------------------------------------------


def test_perfect_match_needs_every_image():
    caches = [cache("imc-1", [NGINX])]
    policy = fm.MatchPolicy.from_annotations({PERFECT_MATCH: "true"})
    result = match(caches, [NGINX, BUSYBOX], policy, pod_name="web")
    assert result.outcome == "none"
    assert "perfect match required" in result.reason


def test_match_count_request():
    caches = [cache("imc-1", [NGINX, BUSYBOX]), cache("imc-2", [NGINX])]
    two = fm.MatchPolicy.from_annotations({MATCH_COUNT: "2"})
    assert match(caches[1:], [NGINX, BUSYBOX, REDIS], two).outcome == "none"
    assert match(caches, [NGINX, BUSYBOX, REDIS], two).cache_id == "imc-1"


def test_match_count_is_ignored_under_perfect_match():
    policy = fm.MatchPolicy.from_annotations({MATCH_COUNT: "1", PERFECT_MATCH: "true"})
    assert match([cache("imc-1", [NGINX])], [NGINX, BUSYBOX], policy).outcome == "none"


def test_default_bar_is_one_full_image_and_partial_hits_are_opt_in():
    caches = [cache("imc-1", [REDIS])]  # shares only the base layers with nginx
    assert match(caches, [NGINX]).outcome == "none"
    loose = match(caches, [NGINX], fm.MatchPolicy(allow_partial=True))
    assert (loose.outcome, loose.full, loose.covered) == ("use", 0, 32 * MB)
    assert loose.create is not None  # not a full match: the cache to create is proposed


# -- §3.6 order ---------------------------------------------------------------------


def test_order_more_full_images_first():
    caches = [cache("imc-1", [NGINX]), cache("imc-2", [NGINX, BUSYBOX])]
    assert match(caches, [NGINX, BUSYBOX]).cache_id == "imc-2"


def test_order_then_more_bytes_covered():
    caches = [cache("imc-1", [BUSYBOX]), cache("imc-2", [BUSYBOX, REDIS])]
    # both hold busybox fully; imc-2 also covers nginx's base layers
    assert match(caches, [NGINX, BUSYBOX]).cache_id == "imc-2"


def test_order_then_closest_size():
    small = cache("imc-small", [NGINX])
    big = cache("imc-big", [NGINX, APP])
    assert match([big, small], [NGINX]).cache_id == "imc-small"


def test_order_then_newest_then_id():
    older = cache("imc-a", [NGINX], created=NOW - timedelta(days=5))
    newer = cache("imc-b", [NGINX], created=NOW - timedelta(days=2))
    assert match([older, newer], [NGINX]).cache_id == "imc-b"
    twin_a = cache("imc-z", [NGINX])
    twin_b = cache("imc-y", [NGINX])
    assert match([twin_a, twin_b], [NGINX]).cache_id == "imc-y"


# -- §3.7 auto-create --------------------------------------------------------------


def test_miss_proposes_a_cache_to_create():
    policy = fm.MatchPolicy.from_annotations(
        {"k8s.aliyun.com/eci-extra-ephemeral-storage": "50Gi"})
    result = match([], [NGINX, BUSYBOX], policy, pod_name="web-7d9c")
    assert result.outcome == "none"
    assert result.create == fm.CreateProposal("auto-create-for-web-7d9c", (NGINX, BUSYBOX), 80)
    assert result.reason.endswith("proposing to create auto-create-for-web-7d9c (80 GiB)")


def test_partial_use_also_proposes_and_full_use_does_not():
    caches = [cache("imc-1", [NGINX])]
    partial = match(caches, [NGINX, BUSYBOX], pod_name="p")
    assert partial.outcome == "use" and partial.create is not None
    assert partial.create.size_gib == 30 and partial.create.auto_created
    assert match(caches, [NGINX], pod_name="p").create is None


def test_no_second_proposal_while_a_cache_for_the_same_images_is_being_created():
    recent = NOW - timedelta(minutes=5)
    building = cache("imc-new", [BUSYBOX, NGINX], phase="Creating", created=recent)
    result = match([building], [NGINX, BUSYBOX], pod_name="web-2")
    assert result.create is None
    assert "imc-new for these images is already being created" in result.reason
    # another image set still gets its proposal
    assert match([building], [NGINX], pod_name="web-2").create is not None


def test_proposal_follows_the_building_cache_through_its_lifecycle():
    recent = NOW - timedelta(minutes=30)
    index = Index([cache("imc-new", [NGINX], phase="Preparing", created=recent)])
    assert index.match([NGINX], now=NOW).create is None
    index.upsert(cache("imc-new", [NGINX], phase="Failed", created=recent))
    assert index.match([NGINX], now=NOW).create is not None
    index.upsert(cache("imc-new", [NGINX], phase="Creating", created=recent))
    assert index.match([NGINX], now=NOW).create is None
    index.remove("imc-new")
    assert index.match([NGINX], now=NOW).create is not None


# -- §3.8 the ECI documentation's Deployment ------------------------------------------


def test_eci_documentation_deployment_with_perfect_match():
    """nginx:1.14.2 and busybox:1.30 with imc-perfect-match on, as in ECI's documentation."""
    annotations = {"k8s.aliyun.com/eci-auto-imc": "true", PERFECT_MATCH: "true"}
    policy = fm.MatchPolicy.from_annotations(annotations)
    caches = [
        cache("imc-nginx-only", [NGINX], created=NOW - timedelta(hours=1)),
        cache("imc-both", [NGINX, BUSYBOX, REDIS], created=NOW - timedelta(days=3)),
        cache("imc-exact", [BUSYBOX, NGINX], created=NOW - timedelta(days=2)),
    ]
    index = Index(caches)
    results = index.match_many([[NGINX, BUSYBOX]] * 3, policy, now=NOW,
                               pod_names=[f"nginx-deployment-{i}" for i in range(3)])
    for result in results:
        assert (result.outcome, result.cache_id, result.full, result.perfect) == (
            "use", "imc-exact", 2, True)
        assert result.create is None
        assert result.reason == ("matched imc-exact: 2 of 2 images fully cached, "
                                 "74.0 MB of 74.0 MB")


# -- §1 and §3.4: the same image across reference and layers ---------------------

NGINX_BY_DIGEST = fm.Image(
    "nginx:1.14.2", NGINX.layers, digest="sha256:" + "d" * 64
)  # resolved through a registry: the manifest digest is known too


def test_a_resolved_pod_matches_a_cache_that_lists_its_reference():
    result = match([cache("imc-ref", ["nginx:1.14.2"])], [NGINX])
    assert (result.outcome, result.cache_id, result.full, result.perfect) == (
        "use", "imc-ref", 1, True)
    assert result.covered == NGINX.size  # the cache holds the image: all its layers
    assert result.create is None  # a full match proposes nothing


def test_a_cache_listing_the_manifest_digest_holds_the_resolved_image():
    by_digest = cache("imc-d", [f"docker.io/library/nginx@{NGINX_BY_DIGEST.digest}"])
    assert match([by_digest], [NGINX_BY_DIGEST]).cache_id == "imc-d"
    assert match([by_digest], [NGINX]).outcome == "none"  # no digest known: another image


def test_a_tag_that_moved_is_not_held_by_a_cache_of_its_old_layers():
    moved = fm.Image("nginx:1.14.2", [layer(90, 5 * MB), layer(91, 5 * MB)])
    result = match([cache("imc-old", [NGINX])], [moved])
    assert result.outcome == "none" and result.create is not None


def test_by_reference_and_by_layers_are_ranked_together():
    # imc-both holds nginx by reference and busybox by layers: both images, full 2;
    # imc-layers holds only nginx's layers: full 1.
    caches = [cache("imc-layers", [NGINX]), cache("imc-both", ["nginx:1.14.2", BUSYBOX])]
    result = match(caches, [NGINX, BUSYBOX])
    assert (result.cache_id, result.full, result.perfect) == ("imc-both", 2, True)
    assert result.covered == NGINX.size + BUSYBOX.size
    # a not-Ready or expired by-reference cache is no candidate
    stale = [cache("imc-ref", ["nginx:1.14.2"], expires=NOW - timedelta(hours=1)),
             cache("imc-building", ["nginx:1.14.2"], phase="Creating")]
    assert match(stale, [NGINX]).outcome == "none"


def test_a_creating_cache_listed_by_reference_stops_proposals_for_a_resolved_pod():
    building = cache("imc-new", ["nginx:1.14.2", "busybox:1.30"], phase="Creating",
                     created=NOW - timedelta(minutes=10))
    result = match([building], [NGINX, BUSYBOX], pod_name="web-0")
    assert result.create is None
    assert "imc-new for these images is already being created" in result.reason
    # the same set by identity, not a subset or superset
    assert match([building], [NGINX], pod_name="web-0").create is not None


# -- §3.1 expired named cache -----------------------------------------------------


def test_an_expired_named_cache_rejects_the_pod_saying_it_expired():
    expired = cache("imc-old", [NGINX], expires=NOW - timedelta(days=1))
    result = match([expired], [NGINX], fm.MatchPolicy(cache_id="imc-old"))
    assert (result.outcome, result.cache_id, result.named) == ("reject", "imc-old", True)
    assert "expired" in result.reason and "imc-old" in result.reason
    auto = cache("imc-auto", [NGINX], auto_created=True, created=NOW - timedelta(days=8))
    assert match([auto], [NGINX], fm.MatchPolicy(cache_id="imc-auto")).outcome == "reject"


# -- §3.3 platform names as containerd normalizes them ------------------------------


def test_arch_and_os_compare_as_containerd_normalizes_them():
    x86 = cache("imc-x86", [NGINX], arch="x86_64", os="Linux")
    arm = cache("imc-arm", [NGINX], arch="aarch64")
    assert match([x86, arm], [NGINX], fm.MatchPolicy(arch="amd64", os="linux")).cache_id == (
        "imc-x86")
    assert match([x86, arm], [NGINX], fm.MatchPolicy(arch="arm64")).cache_id == "imc-arm"
    assert x86.arch == "amd64" and arm.arch == "arm64"


# -- §3.5 eligibility ------------------------------------------------------------------


@pytest.mark.parametrize("count", ["3", "2147483648", "99999999999999999999999"])
def test_a_count_above_the_image_count_asks_for_all_of_them(count):
    policy = fm.MatchPolicy.from_annotations({MATCH_COUNT: count})
    both = cache("imc-both", [NGINX, BUSYBOX])
    one = cache("imc-one", [NGINX])
    result = match([one, both], [NGINX, BUSYBOX], policy)
    assert (result.cache_id, result.full) == ("imc-both", 2)
    assert match([one], [NGINX, BUSYBOX], policy).outcome == "none"
    many = Index([one, both]).match_many([[NGINX, BUSYBOX], [NGINX]], policy, now=NOW)
    assert [r.cache_id for r in many] == ["imc-both", "imc-one"]  # one image: closest size


def test_partial_hits_need_real_bytes():
    empty = fm.Layer("sha256:" + "e" * 64, 0)  # a zero-byte layer many images share
    shares_nothing = cache("imc-empty", [fm.Image("tiny:1", [empty])])
    pod = [fm.Image("app:1", [empty, layer(70, 5 * MB)])]
    partial = fm.MatchPolicy(allow_partial=True)
    assert match([shares_nothing], pod, partial).outcome == "none"
    shares_bytes = cache("imc-bytes", [fm.Image("base:1", [layer(70, 5 * MB)])])
    result = match([shares_nothing, shares_bytes], pod, partial)
    assert (result.cache_id, result.full, result.covered) == ("imc-bytes", 0, 5 * MB)


# -- §3.7 proposals ----------------------------------------------------------------------


def test_a_proposal_holds_at_most_the_20_largest_images_and_says_so():
    pod = [fm.Image(f"app{i}:1", [layer(100 + i, (i + 1) * MB)]) for i in range(25)]
    result = match([], pod, pod_name="big")
    assert len(result.create.images) == 20
    assert {im.ref for im in result.create.images} == {im.ref for im in pod[5:]}
    assert "20 largest" in result.reason and "5 images left out" in result.reason
    built = result.create.to_cache(created=NOW)  # always a valid ImageCache
    assert built.auto_created and built.phase is fm.Phase.CREATING


def test_a_proposal_is_at_most_32768_gib():
    policy = fm.MatchPolicy.from_annotations(
        {"k8s.aliyun.com/eci-extra-ephemeral-storage": "40000Gi"})
    create = match([], [NGINX], policy, pod_name="huge").create
    assert create.size_gib == 32768
    assert create.to_cache().size_gib == 32768


@pytest.mark.parametrize("pod_name", ["Web_Server.0", "x" * 300, "", "--", "a..b", "ÜBER-1"])
def test_proposal_names_are_valid_kubernetes_names(pod_name):
    import re

    name = match([], [NGINX], pod_name=pod_name).create.name
    assert len(name) <= 253
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                        name), name
    assert name.startswith("auto-create-for-")


def test_one_proposal_per_image_set_within_one_match_many_call():
    pods = [[NGINX, BUSYBOX]] * 3 + [[BUSYBOX, NGINX], [REDIS]]
    names = ["web-0", "web-1", "web-2", "other-0", "cache-0"]
    results = Index([]).match_many(pods, now=NOW, pod_names=names)
    proposals = [r.create.name if r.create else None for r in results]
    assert proposals == ["auto-create-for-web-0", None, None, None, "auto-create-for-cache-0"]
    for r in results[1:4]:
        assert "auto-create-for-web-0 is proposed once for these images, with pod web-0" in (
            r.reason)


def test_a_cache_stuck_building_past_the_creation_timeout_no_longer_suppresses():
    stuck = cache("imc-stuck", [NGINX], phase="Creating", created=NOW - timedelta(hours=3))
    result = match([stuck], [NGINX], pod_name="web-0")
    assert result.create is not None
    assert "imc-stuck" in result.reason and "over 2 h" in result.reason
    patient = Index([stuck], creation_timeout=timedelta(hours=4))
    later = patient.match([NGINX], now=NOW, pod_name="web-0")
    assert later.create is None and "imc-stuck" in later.reason


# -- reasons read well ------------------------------------------------------------------


def test_reasons_for_one_image_read_well():
    miss = match([], [NGINX], fm.MatchPolicy(perfect_match=True))
    assert "all 1 images" not in miss.reason and "the image" in miss.reason
    hit = match([cache("imc-1", [NGINX])], [NGINX])
    assert hit.reason.startswith("matched imc-1: the pod's image fully cached")
    two = match([cache("imc-1", [NGINX])], [NGINX, BUSYBOX])
    assert two.reason.startswith("matched imc-1: 1 of 2 images fully cached")


def test_a_pod_known_by_reference_is_not_proposed_while_its_resolved_cache_builds():
    building = cache("imc-new", [NGINX], phase="Creating", created=NOW - timedelta(minutes=10))
    result = match([building], ["nginx:1.14.2"], pod_name="web-0")
    assert result.create is None and "imc-new" in result.reason
    # and within one call, a resolved and an unresolved copy of one image set propose once
    results = Index([]).match_many([[NGINX], ["nginx:1.14.2"]], now=NOW, pod_names=["a", "b"])
    assert [r.create is not None for r in results] == [True, False]
