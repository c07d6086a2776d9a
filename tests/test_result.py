"""MatchResult as a user holds it: immutable, compared without its cache, pickled, printed."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import datetime, timezone

import pytest

import fastmatch as fm
from fastmatch.reference import ReferenceIndex

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
NGINX = fm.Image(
    "nginx:1.25", [fm.Layer("sha256:" + "a" * 64, 100), fm.Layer("sha256:" + "b" * 64, 50)]
)
BUSYBOX = fm.Image("busybox", [fm.Layer("sha256:" + "c" * 64, 10)])
CACHES = [
    fm.ImageCache("imc-1", [NGINX], created=NOW),
    fm.ImageCache("imc-new", [BUSYBOX], created=NOW, phase="Creating"),
]
# One of each decision: a full hit, a partial hit with a proposal, a miss, a
# miss while the cache is being created, auto off, a named cache used and rejected.
CASES = [
    ([NGINX], fm.MatchPolicy(), ""),
    ([NGINX, "redis:7"], fm.MatchPolicy(), "web-0"),
    (["redis:7"], fm.MatchPolicy(perfect_match=True), ""),
    ([BUSYBOX], fm.MatchPolicy(), ""),
    ([NGINX], fm.MatchPolicy(auto=False), ""),
    ([BUSYBOX], fm.MatchPolicy(cache_id="imc-1"), ""),
    ([NGINX], fm.MatchPolicy(cache_id="imc-new"), ""),
    ([NGINX], fm.MatchPolicy(cache_id="imc-gone"), ""),
]


@pytest.fixture(scope="module")
def results() -> list[fm.MatchResult]:
    index = fm.CacheIndex(CACHES)
    return [index.match(pod, policy, pod_name=name, now=NOW) for pod, policy, name in CASES]


def test_results_equal_the_reference_and_word_the_same_reasons(results):
    reference = ReferenceIndex(CACHES)
    want = [reference.match(pod, policy, pod_name=name, now=NOW) for pod, policy, name in CASES]
    assert results == want
    assert [r.reason for r in results] == [w.reason for w in want]
    assert results[0].reason == "matched imc-1: the pod's image fully cached, 150 B of 150 B"
    assert results[1].reason == (
        "matched imc-1: 1 of 2 images fully cached, 150 B of 150 B; "
        "proposing to create auto-create-for-web-0 (30 GiB)"
    )
    assert results[3].reason == (
        "no cache: no usable cache holds the image fully; "
        "cache imc-new for these images is already being created"
    )
    assert results[7].reason == "rejected: image cache imc-gone does not exist"
    assert {r.outcome for r in results} == {"use", "none", "reject"}


def test_a_result_is_immutable(results):
    result = results[0]
    for name in ("outcome", "full", "reason", "cache", "hit", "anything"):
        with pytest.raises(AttributeError):
            setattr(result, name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.full = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del result.full
    assert result.full == 1 and result.hit


def test_equality_and_hash_ignore_the_cache_object_only():
    args = ("use", "imc-1", False, 1, 150, 1, True, None, "matched")
    one = fm.MatchResult(*args, 0, CACHES[0])
    other = fm.MatchResult(*args, 0, CACHES[0].replace(name="renamed"))
    assert one == other and hash(one) == hash(other)
    assert one != fm.MatchResult(*args[:-1], "matched, worded otherwise", 0, CACHES[0])
    assert one != fm.MatchResult(*args, 1, CACHES[0])
    assert one != tuple(args)


def test_a_result_pickles_and_copies(results):
    for result in results:
        for again in (pickle.loads(pickle.dumps(result)), copy.copy(result), copy.deepcopy(result)):
            assert again == result and hash(again) == hash(result)
            assert again.reason == result.reason
            assert (again.cache is None) == (result.cache is None)


def test_repr_shows_the_compared_fields(results):
    text = repr(results[0])
    assert text.startswith("MatchResult(outcome='use', cache_id='imc-1', named=False, full=1,")
    assert "reason=\"matched imc-1: the pod's image fully cached, 150 B of 150 B\"" in text
    assert "distance=0" in text and "cache=" not in text


def test_dataclass_helpers_still_work(results):
    result = results[0]
    assert [f.name for f in dataclasses.fields(result)][-3:] == ["reason", "distance", "cache"]
    assert dataclasses.asdict(result)["reason"] == result.reason
    changed = dataclasses.replace(result, full=0)
    assert changed.full == 0 and changed.reason == result.reason and changed != result


def test_a_pickle_of_the_dataclass_result_still_loads():
    # pickle.dumps(MatchResult("reject", "imc-x", True, 0, 0, 1, False, None, reason),
    # protocol=2) when MatchResult was a frozen dataclass.
    old = (
        b"\x80\x02cfastmatch.result\nMatchResult\nq\x00)\x81q\x01]q\x02(X\x06\x00\x00\x00"
        b"rejectq\x03X\x05\x00\x00\x00imc-xq\x04\x88K\x00K\x00K\x01\x89NX*\x00\x00\x00"
        b"rejected: image cache imc-x does not existq\x05NNeb."
    )
    want = fm.MatchResult(
        "reject", "imc-x", True, 0, 0, 1, False, None, "rejected: image cache imc-x does not exist"
    )
    assert pickle.loads(old) == want
