"""Core.holding: the caches whose rows hold any of some keys (pseudo-keys included)."""

from __future__ import annotations

import threading


def test_holding_lists_each_cache_once_in_slot_order(make_core, key):
    core = make_core([
        ("a", [{key(1): 10, key(2): 20}]),
        ("b", [{key(2): 20}]),
        ("c", [{key(3): 30}]),
        ("d", [{key(1): 10}, {key(3): 30}]),
    ])
    assert core.holding([key(1)]) == ["a", "d"]
    assert core.holding([key(3), key(1), key(2)]) == ["a", "b", "c", "d"]
    assert core.holding(k for k in [key(2), key(2)]) == ["a", "b"]  # any iterable


def test_holding_ignores_keys_never_interned(make_core, key):
    core = make_core([("a", [{key(1): 10}])])
    assert core.holding([]) == []
    assert core.holding([key(99)]) == []
    assert core.holding([key(99), key(1)]) == ["a"]


def test_holding_sees_extra_keys_and_writes(make_core, key):
    core = make_core([("a", [{key(1): 10}]), ("b", [{key(1): 10}])])
    # A pseudo-key the cache holds beside its images' layers.
    slot = core.replace(-1, "c", ["pseudo:web"], [{key(2): 5}], 5, 0, 0, 20)
    assert core.holding(["pseudo:web"]) == ["c"]
    core.remove(0)
    assert core.holding([key(1)]) == ["b"]
    core.replace(slot, "c2", [], [{key(1): 10}], 10, 0, 0, 20)
    assert core.holding(["pseudo:web"]) == []  # interned once, held by no live slot now
    assert sorted(core.holding([key(1)])) == ["b", "c2"]
    core.check()


def test_holding_while_another_thread_writes(make_core, key):
    core = make_core([("a", [{key(1): 10}])])
    done = threading.Event()

    def churn() -> None:
        slot = -1
        for i in range(300):
            slot = core.replace(slot, f"w{i}", [], [{key(1): 10, key(2 + i): 1}], 11, 0, 0, 20)
        done.set()

    writer = threading.Thread(target=churn)
    writer.start()
    while not done.is_set():
        held = core.holding([key(1)])
        assert held[0] == "a" and len(held) <= 2  # never torn: "a" and at most one writer's
    writer.join()
    assert core.holding([key(1)]) == ["a", "w299"]
