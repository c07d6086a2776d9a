"""Core.to_arrays / Core.from_arrays: a round trip, and the refusal of inconsistent arrays."""

from __future__ import annotations

import numpy as np
import pytest

from fastmatch import _core


def snapshot(make_core, key):
    """A small core's arrays, key list, platforms and objects."""
    core = make_core([
        ("a", [{key(1): 10, key(2): 20}]),
        ("b", [{key(2): 20}, {key(3): 30}]),
        ("c", [{key(4): 40}]),
    ])
    core.remove(2)  # a free slot: the arrays renumber the live ones densely
    return core.to_arrays()


def test_round_trip(make_core, key):
    arrays, keys, platforms, objs = snapshot(make_core, key)
    assert objs == ["a", "b"] and len(keys) == 3  # key 4 is held by no live slot
    loaded = _core.Core.from_arrays(arrays, keys, platforms, objs)
    loaded.check()
    assert len(loaded) == 2 and loaded.pairs == 4
    pod = [{key(2): 20}, {key(3): 30}]
    assert loaded.score_one(pod, 2, None, None, None, 0)[:4] == (["b"], 2, 50, 0)
    again = loaded.to_arrays()
    assert again[1:] == (keys, platforms, objs)
    for name, array in arrays.items():
        assert np.array_equal(again[0][name], array), name


def _changed(arrays, **new):
    return {**arrays, **{k: np.asarray(v, dtype=arrays[k].dtype) for k, v in new.items()}}


@pytest.mark.parametrize(("change", "message"), [
    (lambda a, k, o: (_changed(a, lens=[3, 2]), k, o), "disagree in length"),
    (lambda a, k, o: (a, k, o[:1]), "disagree in length"),
    (lambda a, k, o: (_changed(a, layer_ids=[0, 1, 1, 7]), k, o), "past its key table"),
    (lambda a, k, o: (a, [k[0], k[0], k[2]], o), "duplicates"),
    (lambda a, k, o: (_changed(a, layer_ids=[0, 0, 1, 2]), k, o), "lists a layer twice"),
    (lambda a, k, o: (_changed(a, img_count=[1, 1]), k, o), "image runs disagree"),
    (lambda a, k, o: (_changed(a, img_lens=[2, 1, 2]), k, o), "image runs disagree"),
    (lambda a, k, o: (_changed(a, img_ids=[0, 1, 1, 9]), k, o), "image run names a layer id"),
])
def test_inconsistent_arrays_are_refused(make_core, key, change, message):
    arrays, keys, platforms, objs = snapshot(make_core, key)
    arrays, keys, objs = change(arrays, keys, objs)
    with pytest.raises(ValueError, match=message):
        _core.Core.from_arrays(arrays, keys, platforms, objs)


def test_a_missing_array_is_refused(make_core, key):
    arrays, keys, platforms, objs = snapshot(make_core, key)
    del arrays["img_ids"]
    with pytest.raises(KeyError):
        _core.Core.from_arrays(arrays, keys, platforms, objs)
