"""``CacheIndex.match_many``'s pipeline: many pods scored by the core in chunks.

Replicas (pods whose policy and images are the same objects, as a workload's
are) are matched once: ``_core.replicas`` groups them in C, and each group is
decided by its first pod.  Groups are encoded in chunks of :data:`CHUNK`; with
more than one thread, a pool thread scores each chunk without the GIL while
this one encodes the next chunk and decides the last, so Python's serial share
overlaps the scoring instead of adding to it.

The index hands in its core and two callbacks: ``direct`` decides a pod that
needs no scoring (a named cache, matching off), ``conclude`` turns what the
core scored into a result.  Proposals are made once per image set for the
whole call (SPEC §3.7): the first pod of an image set proposes, later ones
(replicas or not) say that it did.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fastmatch._core import Core
from fastmatch._core import replicas as replica_groups
from fastmatch.decision import Batch, proposed_before
from fastmatch.encoding import pod_images, pod_keys
from fastmatch.errors import ValidationError
from fastmatch.model import Image, ImageLike
from fastmatch.policy import MatchPolicy
from fastmatch.result import MatchResult

__all__ = ["CHUNK", "default_threads", "match_many"]

CHUNK = 1024  # pods encoded, scored and decided together

Scored = tuple[list[Any], int, int, int]
Direct = Callable[[tuple[Image, ...], MatchPolicy, int], MatchResult | None]
# conclude(pod, policy, pod name, tied, full, covered, distance, pod bytes, now, proposals)
Conclude = Callable[..., MatchResult]
# A chunk's groups the core scores: group, the pod's distinct images, its policy, its bytes.
Chunk = list[tuple[int, tuple[Image, ...], MatchPolicy, int]]


def default_threads() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _done(job: Future[list[Scored]] | list[Scored]) -> list[Scored]:
    return job if isinstance(job, list) else job.result()


def _pods(pods: object) -> list[list[Any]]:
    if isinstance(pods, (str, bytes, Image)) or not isinstance(pods, Iterable):
        raise ValidationError(
            "match_many: pods must be a list of pods, each a list of images, "
            f"got {type(pods).__name__}"
        )
    if type(pods) is list and set(map(type, pods)) <= {list}:
        return pods.copy()  # the common call: a list of lists, checked in one pass
    return [pod if type(pod) is list else _pod(pod) for pod in pods]


def _pod(pod: object) -> list[Any]:
    if isinstance(pod, (str, Image)):
        return [pod]
    if isinstance(pod, bytes) or not isinstance(pod, Iterable):
        raise ValidationError(f"match_many: a pod must be a list of images, got {pod!r}")
    return list(pod)


def match_many(
    core: Core,
    pods: Iterable[Iterable[ImageLike]],
    policies: Iterable[MatchPolicy | None] | MatchPolicy | None,
    *,
    now_us: int,
    threads: int | None,
    pod_names: Iterable[str] | None,
    replicas: Iterable[int] | None = None,
    default_policy: MatchPolicy,
    check_policy: Callable[[object], MatchPolicy],
    direct: Direct,
    conclude: Conclude,
) -> list[MatchResult]:
    """Decide every pod of ``pods`` (see :meth:`fastmatch.CacheIndex.match_many`)."""
    pod_list = _pods(pods)
    n = len(pod_list)
    if policies is None or isinstance(policies, MatchPolicy):
        policy_list: list[Any] = [policies] * n
    elif isinstance(policies, Iterable) and not isinstance(policies, (str, bytes, dict)):
        policy_list = list(policies)
        if len(policy_list) != n:
            raise ValidationError(f"match_many: {n} pods but {len(policy_list)} policies")
    else:
        check_policy(policies)  # raises, naming what it got
        raise AssertionError("unreachable")
    if pod_names is None:
        names = [""] * n
    elif isinstance(pod_names, str) or not isinstance(pod_names, Iterable):
        raise ValidationError(
            f"match_many: pod_names must be a list of names, got {type(pod_names).__name__}"
        )
    else:
        names = list(pod_names)
        if len(names) != n:
            raise ValidationError(f"match_many: {n} pods but {len(names)} pod names")
        if not set(map(type, names)) <= {str}:  # one pass in C; the loop says which
            for i, name in enumerate(names):
                if not isinstance(name, str):
                    raise ValidationError(
                        f"match_many: pod name {i} must be a string, got {name!r}")
    counts = None if replicas is None else _counts(replicas, n)
    if threads is None:
        threads = default_threads()
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValidationError(f"match_many: threads must be a positive integer, got {threads!r}")

    owner, firsts = replica_groups(pod_list, policy_list)
    decided: list[MatchResult | None] = [None] * len(firsts)
    proposals = Batch()
    # Groups whose first pod proposed a cache, with what the decision was made of:
    # the group's other pods say that it was proposed (one proposal per image set).
    proposing: dict[int, tuple[MatchPolicy, int]] = {}

    def decide(chunk: Chunk, scores: list[Scored]) -> None:
        for (g, pod, policy, nbytes), score in zip(chunk, scores):
            filed = proposals.filed
            decided[g] = conclude(pod, policy, names[firsts[g]], *score, nbytes, now_us, proposals)
            if proposals.filed > filed:  # this group's first pod proposed a cache
                proposing[g] = (policy, nbytes)

    encode = core.encode
    pipelined = threads > 1 and len(firsts) > CHUNK
    score_threads = threads - 1 if pipelined else threads
    with ThreadPoolExecutor(1) if pipelined else contextlib.nullcontext() as pool:
        pending: tuple[Chunk, Future[list[Scored]] | list[Scored]] | None = None
        for start in range(0, len(firsts), CHUNK):
            scoring = core.new_batch()
            chunk: Chunk = []
            for g in range(start, min(start + CHUNK, len(firsts))):
                i = firsts[g]
                policy = policy_list[i]
                if policy is None:
                    policy = default_policy
                elif type(policy) is not MatchPolicy:
                    policy = check_policy(policy)
                images = pod_list[i]
                if len(images) == 1 and type(images[0]) is Image:  # the common pod
                    pod: tuple[Image, ...] = (images[0],)
                    keys: list[Any] = [images[0].layer_sizes()]
                else:
                    pod = pod_images(images, f"pod {names[i] or i}")
                    keys = pod_keys(pod)
                if policy.cache_id is not None or not policy.auto:
                    decided[g] = direct(pod, policy, now_us)
                    continue
                nbytes = encode(
                    scoring,
                    keys,
                    policy.min_full(len(pod)),
                    policy.storage_gib,
                    policy.arch,
                    policy.os,
                )
                chunk.append((g, pod, policy, nbytes))
            job: Future[list[Scored]] | list[Scored]
            if pool is not None:
                job = pool.submit(core.score_batch, scoring, now_us, score_threads)
                # Let the pool thread take the GIL now, for the moment it
                # needs before its scoring lets go of it, rather than after
                # this thread's next switch interval (5 ms: a chunk's worth).
                time.sleep(0)
            else:
                job = core.score_batch(scoring, now_us, threads)
            if pending is not None:
                decide(pending[0], _done(pending[1]))
            pending = (chunk, job)
        if pending is not None:
            decide(pending[0], _done(pending[1]))
    if not proposing:
        if counts is None:
            return [decided[g] for g in owner]  # type: ignore[misc]
        return _expanded(decided, decided, owner, counts, set())  # type: ignore[arg-type]
    # The first pod of a proposing group keeps the proposal; the group's other
    # pods share one result saying it was made (one proposal per image set).
    later: list[MatchResult | None] = decided.copy()
    for g, (policy, nbytes) in proposing.items():
        first = decided[g]
        assert first is not None
        later[g] = proposed_before(first, policy, nbytes, names[firsts[g]])
    proposers = {firsts[g] for g in proposing}
    if counts is not None:
        return _expanded(decided, later, owner, counts, proposers)  # type: ignore[arg-type]
    results: list[MatchResult] = [later[g] for g in owner]  # type: ignore[misc]
    for i in proposers:
        results[i] = decided[owner[i]]  # type: ignore[assignment]
    return results


def _counts(replicas: object, n: int) -> list[int]:
    """``replicas`` checked: one positive integer per pod."""
    if isinstance(replicas, (str, bytes)) or not isinstance(replicas, Iterable):
        raise ValidationError(
            f"match_many: replicas must be a list of counts, got {type(replicas).__name__}")
    counts = list(replicas)
    if len(counts) != n:
        raise ValidationError(f"match_many: {n} pods but {len(counts)} replica counts")
    if not set(map(type, counts)) <= {int}:  # one pass in C; the loop says which
        for i, count in enumerate(counts):
            if type(count) is not int:
                raise ValidationError(
                    f"match_many: replica count {i} must be an integer, got {count!r}")
    if counts and min(counts) < 1:
        i = next(i for i, count in enumerate(counts) if count < 1)
        raise ValidationError(f"match_many: replica count {i} must be at least 1, "
                              f"got {counts[i]}")
    return counts


def _expanded(
    decided: list[MatchResult],
    later: list[MatchResult],
    owner: list[int],
    counts: list[int],
    proposers: set[int],
) -> list[MatchResult]:
    """One result per pod, each entry ``i`` standing for ``counts[i]`` of them: the pods
    of a group share its result, but for the pod that proposed a cache (the first of
    its entry), which keeps the proposal."""
    results: list[MatchResult] = []
    for i, (g, count) in enumerate(zip(owner, counts)):
        if i in proposers:
            results.append(decided[g])
            results += [later[g]] * (count - 1)
        else:
            results += [later[g]] * count
    return results
