"""The three ways of finding candidates agree, with each other and with a brute-force count.

``Core.strategy`` forces one way ("probe" the rarest layer's slots and merge
rows, "count" over the posting lists and walk them) where "auto" picks by
cost and reads the held images' lists first.  Whichever it takes, a pod's
best caches and their scores must not change.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import pytest

from fastmatch import _core

STRATEGIES = ("auto", "probe", "count")

Pod = Sequence[Mapping[str, int]]


def brute_force(caches: Sequence[tuple[str, Pod]], pod: Pod, bar: int) -> tuple:
    """SPEC §3.4-3.6 by counting every cache: (sorted best names, full, covered, distance)."""
    sizes = {k: v for image in pod for k, v in image.items()}
    pod_bytes = sum(sizes.values())
    scored = []
    for name, images in caches:
        row = {k for image in images for k in image}
        full = sum(1 for image in pod if image and set(image) <= row)
        covered = sum(v for k, v in sizes.items() if k in row)
        nbytes = sum({k: v for image in images for k, v in image.items()}.values())
        eligible = full >= bar and full > 0 if bar > 0 else full > 0 or covered > 0
        if eligible:
            scored.append(((full, covered, -abs(nbytes - pod_bytes)), name))
    if bar > 0 and scored:
        most = max(s[0][0] for s in scored)
        scored = [s for s in scored if s[0][0] == most]  # only the most full are ranked
    if not scored:
        return ([], 0, 0, 0)
    top = max(s[0] for s in scored)
    return (sorted(n for s, n in scored if s == top), top[0], top[1], -top[2])


def score(core: _core.Core, pod: Pod, bar: int, strategy: str) -> tuple:
    """The core's answer for ``pod`` under ``strategy``, ties sorted."""
    core.strategy = strategy
    objs, full, covered, distance, _ = core.score_one([dict(i) for i in pod], bar, None,
                                                      None, None, 0)
    return (sorted(objs), full, covered, distance)


def agree(core: _core.Core, caches: Sequence[tuple[str, Pod]], pod: Pod, bar: int,
          threads: int = 1) -> tuple:
    """Assert that every strategy gives the brute-force answer; return it."""
    want = brute_force(caches, pod, bar)
    for strategy in STRATEGIES:
        assert score(core, pod, bar, strategy) == want, (strategy, pod, bar)
    # score_batch runs the same kernel over many pods.
    for strategy in STRATEGIES:
        core.strategy = strategy
        batch = core.new_batch()
        for _ in range(3):
            core.encode(batch, [dict(i) for i in pod], bar, None, None, None)
        for objs, full, covered, distance in core.score_batch(batch, 0, threads):
            assert (sorted(objs), full, covered, distance) == want, (strategy, threads)
    return want


def test_strategy_names(make_core):
    core = make_core([])
    assert core.strategy == "auto"
    for name in STRATEGIES:
        core.strategy = name
        assert core.strategy == name
    with pytest.raises(ValueError):
        core.strategy = "walk"


def test_an_image_held_inside_a_bigger_one(make_core, key):
    # No cache lists [1, 2]: its holders come from probing or counting, not a held list.
    big = {key(1): 10, key(2): 20, key(3): 30}
    caches = [("big", [big]), ("other", [{key(1): 10, key(4): 40}])]
    core = make_core(caches)
    pod = [{key(1): 10, key(2): 20}]
    assert agree(core, caches, pod, 1) == (["big"], 1, 30, 30)


def test_a_listed_image_and_an_unlisted_one(make_core, key):
    web = {key(1): 100, key(2): 50}
    sidecar = {key(9): 5}
    caches = [("web", [web]), ("both", [web, sidecar]), ("side", [sidecar]),
              ("part", [{key(1): 100, key(7): 1}])]
    core = make_core(caches)
    assert agree(core, caches, [web, sidecar], 2) == (["both"], 2, 155, 0)
    assert agree(core, caches, [web, sidecar], 1, threads=2) == (["both"], 2, 155, 0)
    # An image no cache holds fully: the bar of one is met by the other image.
    assert agree(core, caches, [web, {key(7): 1, key(8): 2}], 1) == (["both"], 1, 150, 2)


def test_common_layers_and_a_rare_one(make_core, key):
    # Layer 0 is in every cache (counting reads it all), layer 5 in one (probing wins).
    base = {key(0): 1000}
    caches = [(f"c{i}", [base, {key(100 + i): i + 1}]) for i in range(40)]
    caches.append(("rare", [{key(0): 1000, key(5): 7}]))
    core = make_core(caches)
    assert agree(core, caches, [base], 1)[1:] == (1, 1000, 1)
    assert agree(core, caches, [{key(0): 1000, key(5): 7}], 1) == (["rare"], 1, 1007, 0)
    assert agree(core, caches, [base, {key(5): 7, key(6): 1}], 1)[:3] == (["rare"], 1, 1007)


def test_ties_are_all_returned(make_core, key):
    image = {key(1): 10}
    caches = [("a", [image]), ("b", [image]), ("c", [{key(1): 10, key(2): 0}])]
    core = make_core(caches)
    assert agree(core, caches, [image], 1) == (["a", "b", "c"], 1, 10, 0)


def test_random_indexes(make_core, key):
    rng = random.Random(7)
    sizes = [0, 1, 10, 100, 1000, 7, 3, 65536]
    layers = {key(i): sizes[i % len(sizes)] for i in range(30)}
    pool = list(layers)

    def image() -> dict[str, int]:
        return {k: layers[k] for k in rng.sample(pool[: rng.choice([8, 30])], rng.randint(1, 5))}

    images = [image() for _ in range(25)]
    caches = [(f"c{i}", rng.sample(images, rng.randint(1, 4))) for i in range(120)]
    core = make_core(caches)
    for _ in range(60):
        pod = rng.sample(images, rng.randint(1, 3))
        if rng.random() < 0.3:
            pod.append(image())  # an image no cache may list
        for bar in range(len(pod) + 1):
            agree(core, caches, pod, bar)


def test_agreement_survives_writes(make_core, key: Callable[[int], str]):
    image = {key(1): 10, key(2): 20}
    caches = [("a", [image]), ("b", [{key(1): 10}]), ("c", [image, {key(3): 3}])]
    core = make_core(caches)
    core.remove(0)
    core.check()
    live = caches[1:]
    assert agree(core, live, [image], 1) == (["c"], 1, 30, 3)
    assert agree(core, live, [image, {key(3): 3}], 0) == (["c"], 2, 33, 0)
