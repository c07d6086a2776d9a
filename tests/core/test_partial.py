"""allow_partial with no bar: a cache is a partial hit only if it holds an image or real bytes.

Sharing a zero-byte layer (an empty layer many images have) is no reason to
start a pod from a cache.
"""

from __future__ import annotations

import fastmatch as fm

EMPTY = "sha256:" + "0" * 64
REAL = "sha256:" + "1" * 64


def partial(core, images):
    """The core's answer for a pod under bar 0 (allow_partial with no count)."""
    objs, full, covered, distance, _ = core.score_one(images, 0, None, None, None, 0)
    return (sorted(objs), full, covered, distance)


def test_a_cache_sharing_only_a_zero_byte_layer_is_not_chosen(make_core):
    core = make_core([("c", [{EMPTY: 0}])])
    for strategy in ("auto", "probe", "count"):
        core.strategy = strategy
        assert partial(core, [{EMPTY: 0, REAL: 5}]) == ([], 0, 0, 0)


def test_real_bytes_or_a_whole_image_make_a_partial_hit(make_core, key):
    core = make_core([("zero", [{EMPTY: 0}]), ("bytes", [{EMPTY: 0, key(7): 3}])])
    # "bytes" shares 3 real bytes with the pod.
    assert partial(core, [{EMPTY: 0, key(7): 3, REAL: 5}]) == (["bytes"], 0, 3, 5)
    # A pod image that is just the empty layer is held fully: that cache is eligible.
    assert partial(make_core([("zero", [{EMPTY: 0}])]), [{EMPTY: 0}, {REAL: 5}]) == (
        ["zero"], 1, 0, 5)


def test_public_face_sharing_only_a_zero_byte_layer_is_no_partial_hit():
    index = fm.CacheIndex([fm.ImageCache("c", [fm.Image("a:1", [fm.Layer(EMPTY, 0)])])])
    pod = [fm.Image("b:1", [fm.Layer(EMPTY, 0), fm.Layer(REAL, 5)])]
    assert index.match(pod, fm.MatchPolicy(allow_partial=True)).outcome == "none"
