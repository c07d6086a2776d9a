"""ECI's auto-create lifecycle over hand-computed pod histories."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import fastmatch as fm
from fastmatch.report import TimedPod, read_history, simulate

from report_helpers import T0, image, layer, pods

A = image("a", layer(1, 10))
B = image("b", layer(2, 10))
C = image("c", layer(3, 10))


def at(day: float, images, name="web"):
    [request] = pods(name, images)
    return TimedPod(T0 + timedelta(days=day), request)


def rates(days):
    return [(d.day.isoformat()[-5:], d.pods, d.hits, d.created) for d in days if d.pods]


def test_a_cache_created_used_on_day_5_expires_30_days_after_that_use():
    # Day 0: a miss creates the cache (Ready 10 minutes later).  Day 5: a hit, which
    # moves its expiry to day 35.  Day 34.9: still a hit (expiry now day 64.9)...
    history = [at(0, [A]), at(5, [A]), at(34.9, [A])]
    days = simulate(history)
    assert len(days) == 35  # every day from the first pod's to the last's
    assert rates(days) == [("12-01", 1, 0, 1), ("12-06", 1, 1, 0), ("01-04", 1, 1, 0)]
    # ... while without the day-34.9 pod, a pod on day 35.1 finds it expired at day 35.
    days = simulate([at(0, [A]), at(5, [A]), at(35.1, [A])])
    assert rates(days)[-1] == ("01-05", 1, 0, 1)
    assert days[-1].hit_rate == 0.0 and days[1].hit_rate is None


def test_a_cache_never_matched_expires_after_7_days():
    days = simulate([at(0, [A]), at(6.9, [A]), at(0.5, [B]), at(7.6, [B])])
    assert rates(days) == [("12-01", 2, 0, 2), ("12-07", 1, 1, 0), ("12-08", 1, 0, 1)]


def test_a_pod_inside_the_creation_delay_misses_and_proposes_nothing_more():
    history = [at(0, [A], "p1"), at(0.001, [A], "p2"), at(0.01, [A], "p3")]  # 1.4, 14 min
    [day] = simulate(history, creation_delay=timedelta(minutes=10))
    assert (day.pods, day.hits, day.created) == (3, 1, 1)
    [day] = simulate(history, creation_delay=timedelta(0))
    assert (day.pods, day.hits, day.created) == (3, 2, 1)


def test_a_quota_of_2_with_three_alternating_image_sets_never_hits():
    # A, B, C, A, B, C...: each new cache evicts the least recently matched, which is
    # always the one needed next (the classic LRU thrash).
    history = [at(day, [(A, B, C)[day % 3]]) for day in range(9)]
    days = simulate(history, quota=2)
    assert [d.hits for d in days] == [0] * 9
    assert [d.created for d in days] == [1] * 9
    # Without a quota, from the fourth day on every pod hits.
    assert [d.hits for d in simulate(history)] == [0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_a_quota_evicts_the_least_recently_matched():
    # A, B, A (hit: A matched on day 2), then C evicts B (matched never, created day 1),
    # so A hits on day 4 and B misses on day 5.
    history = [at(0, [A]), at(1, [B]), at(2, [A]), at(3, [C]), at(4, [A]), at(5, [B])]
    assert [d.hits for d in simulate(history, quota=2)] == [0, 0, 1, 0, 1, 0]


def test_the_history_starts_from_the_caches_given_and_is_sorted_by_time():
    ready = fm.ImageCache("imc-a", [A], created=T0 - timedelta(days=1))
    days = simulate([at(1, [A]), at(0, [A])], [ready])
    assert [(d.pods, d.hits, d.created) for d in days] == [(1, 1, 0), (1, 1, 0)]
    assert simulate([]) == []


def test_bad_options_are_named():
    with pytest.raises(fm.FastmatchError, match="quota"):
        simulate([at(0, [A])], quota=-1)
    with pytest.raises(fm.FastmatchError, match="creation delay"):
        simulate([at(0, [A])], creation_delay=timedelta(minutes=-1))


def _pod(name, image_ref, created):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "c", "image": image_ref}]}}


def test_a_history_reads_pods_with_their_creation_times_and_time_wrapped_lines(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "creationTimestamp": "2026-12-02T00:00:00Z"},
                  "spec": {"replicas": 2, "template": {"spec": {"containers": [
                      {"name": "c", "image": "nginx:1"}]}}}}
    lines = [_pod("a", "nginx:1", "2026-12-01T00:00:00Z"), deployment,
             {"time": "2026-12-03T00:00:00Z", "pod": _pod("b", "nginx:1", None)},
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "skipped"}}]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    history = read_history([path])
    assert [(p.request.name, p.at.day) for p in history] == [
        ("a", 1), ("web-0", 2), ("web-1", 2), ("b", 3)]
    days = simulate(history)
    assert [(d.pods, d.hits) for d in days] == [(1, 0), (2, 2), (1, 1)]


def test_a_history_pod_without_a_time_is_bad_input_naming_the_file(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(_pod("a", "nginx:1", None)) + "\n")
    with pytest.raises(fm.InputFileError, match=r"history.jsonl.*creationTimestamp: missing"):
        read_history([path])
    path.write_text(json.dumps(_pod("a", "nginx:1", "yesterday")) + "\n")
    with pytest.raises(fm.InputFileError, match=r"history.jsonl.*not an ISO-8601 time"):
        read_history([path])
