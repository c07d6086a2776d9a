"""CacheIndex as a user drives it: the set of caches, bad input, snapshots, lifecycle."""

from __future__ import annotations

import itertools
import pickle
import zipfile
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.model import same_image_set
from fastmatch.reference import ReferenceIndex

from strategies import cache_sets, caches, pods, policies, times

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
NGINX = fm.Image("nginx:1.25", [fm.Layer("sha256:" + "a" * 64, 100),
                                fm.Layer("sha256:" + "b" * 64, 50)])
BUSYBOX = fm.Image("busybox", [fm.Layer("sha256:" + "c" * 64, 10)])


def choice(result: fm.MatchResult) -> tuple:
    """A result's choice of cache and scores, without what it says about proposals."""
    return (result.outcome, result.cache_id, result.named, result.full, result.covered,
            result.images, result.perfect, result.distance)


def state(index: fm.CacheIndex) -> tuple:
    """Everything a user can observe of an index."""
    probes = [[NGINX], [BUSYBOX], [NGINX, BUSYBOX], ["nginx:1.25"]]
    return (
        len(index),
        index.ready,
        sorted((c.id, c) for c in index),
        index.match_many(probes, now=NOW, pod_names=["a", "b", "c", "d"]),
    )


def test_set_of_caches():
    index = fm.CacheIndex()
    assert len(index) == 0 and "imc-1" not in index and index.get("imc-1") is None
    first = fm.ImageCache("imc-1", [NGINX], created=NOW)
    index.upsert(first)
    assert len(index) == 1 and "imc-1" in index and index.get("imc-1") is first
    second = first.replace(images=(BUSYBOX,))
    index.upsert(second)
    assert len(index) == 1 and index["imc-1"] is second
    assert index.match([NGINX], now=NOW).outcome == "none"
    assert index.match([BUSYBOX], now=NOW).cache_id == "imc-1"
    assert index.remove("imc-1") is second
    assert len(index) == 0 and index.match([BUSYBOX], now=NOW).outcome == "none"


def test_remove_unknown_cache_names_it():
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX])])
    with pytest.raises(fm.UnknownCacheError, match="imc-404") as info:
        index.remove("imc-404")
    assert isinstance(info.value, KeyError) and isinstance(info.value, fm.FastmatchError)
    assert index.discard("imc-404") is False and index.discard("imc-1") is True
    with pytest.raises(KeyError, match="imc-1"):
        index["imc-1"]


def test_rejected_upsert_leaves_the_index_exactly_as_it_was():
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX], created=NOW)])
    before = state(index)
    with pytest.raises(fm.ValidationError, match="ImageCache"):
        index.upsert({"id": "imc-2", "images": ["nginx"]})  # type: ignore[arg-type]
    with pytest.raises(fm.ValidationError, match="imc-1"):
        index.upsert(fm.ImageCache("imc-1", [NGINX, fm.Image(
            "nginx:other", [fm.Layer("sha256:" + "a" * 64, 999)])]))
    assert state(index) == before


@given(st.lists(caches(), max_size=10), st.lists(st.tuples(pods, policies()), max_size=4), times)
def test_building_from_a_list_equals_upserting_it_in_order(caches_, batch, now):
    built = fm.CacheIndex(caches_)
    upserted = fm.CacheIndex()
    for cache in caches_:  # ids repeat: a later cache replaces an earlier one
        upserted.upsert(cache)
    built.verify()
    upserted.verify()
    assert sorted((c.id, c) for c in built) == sorted((c.id, c) for c in upserted)
    assert len(built) == len(upserted) and built.ready == upserted.ready
    pod_list = [p for p, _ in batch]
    policy_list = [pol for _, pol in batch]
    assert built.match_many(pod_list, policy_list, now=now) == upserted.match_many(
        pod_list, policy_list, now=now)


def test_images_no_cache_lists_are_forgotten_in_sweeps():
    # Each cache lists an image of its own; once they are all removed, the
    # core sweeps the images no cache lists any more, and matches still work.
    def image(i: int) -> fm.Image:
        return fm.Image(f"app/svc-{i}:1", [fm.Layer(f"sha256:{i + 1:064x}", 100 + i)])

    index = fm.CacheIndex([fm.ImageCache("imc-keep", [NGINX], created=NOW)])
    many = [fm.ImageCache(f"imc-{i}", [image(i)], created=NOW) for i in range(1100)]
    for cache in many:
        index.upsert(cache)
    index.verify()
    assert index.match([image(7)], now=NOW).cache_id == "imc-7"
    for cache in many[:-1]:
        index.remove(cache.id)
    index.verify()  # the sweep ran: counts and holder lists still exact
    assert index.match([image(7)], now=NOW).outcome == "none"
    assert index.match([image(1099)], now=NOW).cache_id == "imc-1099"
    index.upsert(many[7])  # listed again after its image was swept
    index.verify()
    assert index.match([image(7)], now=NOW).cache_id == "imc-7"
    assert index.match([NGINX], now=NOW).cache_id == "imc-keep"


def test_building_from_a_bad_list_names_the_culprit():
    with pytest.raises(fm.ValidationError, match="ImageCache, got dict"):
        fm.CacheIndex([fm.ImageCache("imc-1", [NGINX]), {"id": "imc-2"}])  # type: ignore[list-item]


def test_bad_match_input_is_named():
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX])])
    with pytest.raises(fm.ValidationError, match="pod web: a pod needs at least one image"):
        index.match([], pod_name="web")
    with pytest.raises(fm.InvalidReferenceError, match="'Nginx:1'"):
        index.match(["Nginx:1"])
    with pytest.raises(fm.ValidationError, match="now"):
        index.match([NGINX], now="yesterday")
    with pytest.raises(fm.ValidationError, match="2 pods but 1 policies"):
        index.match_many([[NGINX], [BUSYBOX]], [fm.MatchPolicy()])
    with pytest.raises(fm.ValidationError, match="threads"):
        index.match_many([[NGINX]], threads=0)
    with pytest.raises(fm.FastmatchError, match="pod 1"):
        index.match_many([[NGINX], []])


def test_match_many_agrees_with_match_on_any_thread_count():
    index = fm.CacheIndex([fm.ImageCache(f"imc-{i}", [NGINX] if i % 2 else [BUSYBOX],
                                         created=NOW - timedelta(minutes=i)) for i in range(50)])
    pod_list = [[NGINX], [BUSYBOX], [NGINX, BUSYBOX], ["redis"]] * 25
    one = ReferenceIndex(index).match_many(pod_list, now=NOW)
    # one proposal per image set in a call: the first pod of each proposes
    assert sum(r.create is not None for r in one) == 2
    assert [choice(index.match(p, now=NOW)) for p in pod_list] == [choice(r) for r in one]
    assert index.match_many(pod_list, now=NOW, threads=1) == one
    assert index.match_many(pod_list, now=NOW, threads=2) == one
    assert index.match_many(pod_list, now=NOW) == one
    assert index.match_many([], now=NOW) == []


def test_record_match_extends_an_auto_created_cache():
    created = NOW - timedelta(days=6)
    index = fm.CacheIndex([fm.ImageCache("imc-auto", [NGINX], auto_created=True,
                                         created=created)])
    later = NOW + timedelta(days=3)
    assert index.match([NGINX], now=later).outcome == "none"  # expired after 7 days
    assert [c.id for c in index.expired(later)] == ["imc-auto"]
    updated = index.record_match("imc-auto", NOW)
    assert updated.last_matched == NOW and index["imc-auto"] is updated
    assert index.match([NGINX], now=later).cache_id == "imc-auto"
    assert index.expired(later) == []
    assert index.match([NGINX], now=NOW + timedelta(days=31)).outcome == "none"


# -- snapshots ----------------------------------------------------------------------


@given(cache_sets(), st.lists(st.tuples(pods, policies()), min_size=1, max_size=6), times)
def test_snapshot_round_trip_decides_alike(tmp_path_factory, caches_, batch, now):
    index = fm.CacheIndex(caches_)
    path = tmp_path_factory.mktemp("snap") / "index.npz"
    index.save(path)
    loaded = fm.CacheIndex.load(path)
    pickled = pickle.loads(pickle.dumps(index))
    pod_list = [p for p, _ in batch]
    policy_list = [pol for _, pol in batch]
    want = index.match_many(pod_list, policy_list, now=now)
    assert loaded.match_many(pod_list, policy_list, now=now) == want
    assert pickled.match_many(pod_list, policy_list, now=now) == want
    assert sorted((c.id, c) for c in loaded) == sorted((c.id, c) for c in index)
    assert len(loaded) == len(index) and loaded.ready == index.ready


@given(cache_sets(), st.lists(st.tuples(st.booleans(), caches()), max_size=8), pods,
       policies(), times)
def test_loaded_index_keeps_working_under_churn(tmp_path_factory, caches_, ops, pod, policy,
                                                now):
    path = tmp_path_factory.mktemp("snap") / "index.npz"
    fm.CacheIndex(caches_).save(path)
    loaded = fm.CacheIndex.load(path)
    loaded.verify()  # the held images were rebuilt from the saved runs
    reference = ReferenceIndex(caches_)
    for remove, cache in ops:
        if remove:
            loaded.discard(cache.id)
            reference.remove(cache.id)
        else:
            loaded.upsert(cache)
            reference.upsert(cache)
    loaded.verify()
    assert loaded.match(pod, policy, pod_name="x", now=now) == reference.match(
        pod, policy, pod_name="x", now=now)
    loaded.save(path)  # a loaded, changed index saves again
    again = fm.CacheIndex.load(path)
    assert again.match(pod, policy, pod_name="x", now=now) == reference.match(
        pod, policy, pod_name="x", now=now)


def test_loading_something_that_is_not_a_snapshot_names_the_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(fm.InputFileError, match=r"nope\.npz: no such file"):
        fm.CacheIndex.load(missing)
    junk = tmp_path / "junk.npz"
    junk.write_text("this is not an index\n")
    with pytest.raises(fm.InputFileError, match=r"junk\.npz: not a fastmatch index snapshot"):
        fm.CacheIndex.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(fm.InputFileError, match=r"other\.npz: snapshot field 'format' is missing"):
        fm.CacheIndex.load(other)


def test_corrupt_snapshot_field_is_named(tmp_path):
    path = tmp_path / "index.npz"
    fm.CacheIndex([fm.ImageCache("imc-1", [NGINX]), fm.ImageCache("imc-2", [BUSYBOX])]).save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["core.layer_ids"] = arrays["core.layer_ids"] + 1000
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(fm.InputFileError, match=r"bad\.npz: snapshot field 'core.layer_ids'"):
        fm.CacheIndex.load(bad)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(fm.InputFileError, match=r"truncated\.npz"):
        fm.CacheIndex.load(truncated)
    assert "format.npy" in names


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "index.npz"
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX])])
    index.save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        fm.CacheIndex([fm.ImageCache("imc-2", [BUSYBOX])]).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["index.npz"]


def test_match_many_over_many_chunks_agrees_with_one_pod_at_a_time():
    """Thousands of pods, replicas among them: pipelined, deduplicated, still pod by pod."""
    from fastmatch.synthetic import synthetic_cluster

    cluster = synthetic_cluster(300, 9000, seed=3)
    index = fm.CacheIndex(cluster.caches)
    pods_ = cluster.pods
    names = cluster.pod_names
    two = index.match_many(pods_, cluster.policies, now=cluster.now, threads=2, pod_names=names)
    one = index.match_many(pods_, cluster.policies, now=cluster.now, threads=1, pod_names=names)
    assert two == one
    for i in range(0, len(pods_), 97):
        assert choice(two[i]) == choice(
            index.match(pods_[i], cluster.policies[i], pod_name=names[i], now=cluster.now)
        )
    reference = ReferenceIndex(cluster.caches)
    for i in range(0, len(pods_), 613):
        assert choice(two[i]) == choice(
            reference.match(pods_[i], cluster.policies[i], pod_name=names[i], now=cluster.now)
        )
    # Every image set is proposed once, by its first pod; later pods name that proposal.
    proposed = [r.create for r in two if r.create is not None]
    for a, b in itertools.combinations(proposed, 2):
        assert not same_image_set(a.images, b.images)
    assert sum(" is proposed once for these images" in r.reason for r in two) > len(proposed)
    assert len({r.outcome for r in two}) == 3  # uses, misses and rejections all occur


def test_record_match_never_moves_last_matched_back():
    index = fm.CacheIndex([fm.ImageCache("imc-auto", [NGINX], auto_created=True,
                                         created=NOW - timedelta(days=3))])
    index.record_match("imc-auto", NOW)
    assert index["imc-auto"].last_matched == NOW
    kept = index.record_match("imc-auto", NOW - timedelta(days=1))  # arrives out of order
    assert kept.last_matched == NOW and index["imc-auto"].last_matched == NOW


def test_bad_arguments_to_match_are_fastmatch_errors():
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX])])
    with pytest.raises(fm.ValidationError, match=r"policy must be a MatchPolicy.*from_annotations"):
        index.match([NGINX], {"k8s.aliyun.com/imc-perfect-match": "true"})
    with pytest.raises(fm.ValidationError, match="pods must be a list of pods"):
        index.match_many("nginx")
    with pytest.raises(fm.ValidationError, match="a pod must be a list of images, got 42"):
        index.match_many([42])
    with pytest.raises(fm.ValidationError, match="policy must be a MatchPolicy"):
        index.match_many([[NGINX]], [{"a": "b"}])
    with pytest.raises(fm.ValidationError, match="pod_names must be a list"):
        index.match_many([[NGINX]], pod_names="web-0")
    with pytest.raises(fm.ValidationError, match="images must be a list"):
        index.match(42)
    with pytest.raises(fm.ValidationError, match="CacheIndex takes a list"):
        fm.CacheIndex(fm.ImageCache("imc-1", [NGINX]))


def test_layer_sizes_must_fit_the_index():
    with pytest.raises(fm.ValidationError, match=r"larger than any layer"):
        fm.Layer("sha256:" + "a" * 64, 2**70)
    fm.Layer("sha256:" + "a" * 64, 2**50)  # 1 PiB is still a size


def test_save_to_a_folder_or_a_missing_folder_is_a_clean_error(tmp_path):
    index = fm.CacheIndex([fm.ImageCache("imc-1", [NGINX])])
    with pytest.raises(fm.OutputFileError, match="is a directory"):
        index.save(tmp_path)
    with pytest.raises(fm.OutputFileError, match="no folder"):
        index.save(tmp_path / "missing" / "index.npz")
    assert list(tmp_path.iterdir()) == []  # no stray temporary file


def test_load_of_other_files_is_an_input_file_error(tmp_path):
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(fm.InputFileError, match=r"array\.npy: not a fastmatch index snapshot"):
        fm.CacheIndex.load(tmp_path / "array.npy")
    with pytest.raises(fm.InputFileError, match="is a directory"):
        fm.CacheIndex.load(tmp_path)
    (tmp_path / "data.json").write_text('{"ImageCaches": []}')
    with pytest.raises(fm.InputFileError, match=r"data\.json"):
        fm.CacheIndex.load(tmp_path / "data.json")


def _resaved(tmp_path, change):
    path = tmp_path / "index.npz"
    fm.CacheIndex([fm.ImageCache("imc-1", [NGINX]), fm.ImageCache("imc-2", [BUSYBOX])]).save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    return bad


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.__setitem__("image.layer_size", -a["image.layer_size"]), "negative size"),
        (lambda a: a.__setitem__("core.bytes", -a["core.bytes"]), "negative size"),
        (lambda a: a.__setitem__("image.layer_off", a["image.layer_off"][::-1].copy()),
         "not a valid offsets array"),
        (lambda a: a.__setitem__("core.row", np.zeros_like(a["core.row"])), "a cache twice"),
        (lambda a: a.__setitem__("core.layer_ids", np.zeros_like(a["core.layer_ids"])),
         "inconsistent snapshot"),
    ],
)
def test_a_corrupt_snapshot_is_refused_naming_what_is_wrong(tmp_path, change, message):
    with pytest.raises(fm.InputFileError, match=message):
        fm.CacheIndex.load(_resaved(tmp_path, change))


def test_a_loaded_index_keeps_by_reference_caches_and_caches_being_built(tmp_path):
    building = fm.ImageCache("imc-new", [BUSYBOX], phase="Creating",
                             created=NOW - timedelta(minutes=5))
    by_ref = fm.ImageCache("imc-ref", ["nginx:1.25"], created=NOW - timedelta(days=1))
    path = tmp_path / "index.npz"
    fm.CacheIndex([building, by_ref]).save(path)
    loaded = fm.CacheIndex.load(path)
    hit = loaded.match([NGINX], now=NOW)
    assert (hit.cache_id, hit.full, hit.covered) == ("imc-ref", 1, 150)
    assert loaded.match([BUSYBOX], now=NOW).create is None  # still being built
    loaded.remove("imc-ref")
    assert loaded.match([NGINX], now=NOW).outcome == "none"
    loaded.verify()
