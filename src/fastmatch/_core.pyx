# cython: language_level=3
"""Storage and scoring kernels of fastmatch.

The core knows layers only as *keys* (digest strings, or pseudo-layer keys)
interned to dense ``uint32`` *layer ids*, and caches only as *slots* carrying
an opaque Python object.  It knows nothing of files, HTTP or Kubernetes, nor
of the model classes: ``fastmatch.index`` feeds it plain data.

Storage: every live slot's distinct layer ids, sorted, in one CSR array
(``_off``/``_len`` into ``_pair_layer``); an inverted index ``_post`` from
layer id to the slots that hold it; for every (slot, layer) pair its position
in that posting list (``_pair_pos``), so removing a slot costs O(its layers).

Held images: every image some cache *lists* (its sorted run of layer ids,
found by a 64-bit fingerprint) keeps the sorted list of live slots that hold
all of its layers, by whichever images they list (SPEC §3.4 counts an image
held inside another).  Each is *anchored* at its rarest layer when it is
first listed: a slot can hold it only if it holds that layer, so a write
checks just the images anchored at the written slot's layers.  Writes keep
the lists exact; an image is dropped when no slot lists it any more.

Scoring (SPEC §3.4-3.6): a cache can be eligible only if it holds some pod
image fully.  A pod image that some cache lists (the common case: pods run
the images their caches were made for) has its holders ready; a pod whose
images all have them intersects those lists.  Any other image's candidates
are the slots in the posting list of its *rarest* layer that hold its other
layers too, or the slots counted over all its posting lists, whichever reads
less (the costs are in ``_strategy.pxi``); the cost grows with the shortest
postings, not with the number of caches.  With no bar at all
(``allow_partial``) every posting of every pod layer is walked instead, and
a cache is eligible if it holds a pod image fully or shares bytes with it.

Concurrency: a readers-writer lock; matches read under it, upserts and
removes write under it (a batch, ``apply``, under one acquisition), so a
match sees a cache either before or after an upsert, never torn.  A lock is
never *waited* for holding the GIL: it is first tried holding it (a try
never waits), and only when busy waited for with the GIL released.  A
thread that releases the GIL gets it back only when the holder gives it up,
every switch interval (5 ms) for a match in Python code, so a writer that
released it on every write was starved (about 1.5k writes/s beside one
flat-out matcher); uncontended writes and matches now keep it.

The parts, included below as one module (so that the C compiler sees every
kernel and inlines the hot ones): the types in ``_core.pxd``; merge kernels
(``_kernels.pxi``); held images (``_held.pxi``); writes (``_writes.pxi``);
encoding of pods (``_encoding.pxi``); the strategies' costs
(``_strategy.pxi``); scoring (``_scoring.pxi``); other reads
(``_reads.pxi``); persistence (``_persistence.pxi``).  Their functions take
the core as their first argument; the ``Core`` class here is the Python face
over them.
"""

cimport cython
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython.dict cimport PyDict_GetItemWithError, PyDict_Next, PyDict_SetDefault
from cpython.long cimport PyLong_FromVoidPtr
from cpython.ref cimport PyObject
from cython.operator cimport dereference as deref
from libcpp.algorithm cimport is_sorted, merge, sort, stable_sort, unique
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

import numpy as np

cdef uint16_t UNUSABLE = 0xFFFF
cdef uint32_t NOWHERE = 0xFFFFFFFF
# Pod images whose encoding is remembered, at most (then the memo starts afresh).
cdef Py_ssize_t ENCODED_MAX = 1 << 16
cdef tuple STRATEGY_NAMES = ("auto", "probe", "count")  # Core.strategy, by Strategy value

__all__ = ["NEVER", "Core", "replicas"]

NEVER = INT64_MAX

include "_kernels.pxi"
include "_held.pxi"
include "_writes.pxi"
include "_encoding.pxi"
include "_strategy.pxi"
include "_scoring.pxi"
include "_reads.pxi"
include "_persistence.pxi"


@cython.final
cdef class Core:
    """Caches as slots of sorted layer ids, an inverted index, and the scoring kernels."""

    def __cinit__(self):
        pthread_rwlock_init(&self._lock, NULL)
        pthread_mutex_init(&self._writer, NULL)
        self._ids = {}
        self._encoded = {}
        self._keys = []
        self._objs = []
        self._platforms = {}
        self._pool = []
        self._live = 0
        self._strategy = AUTO
        self._garbage = 0
        self._unlisted = 0
        self._pairs = 0

    def __dealloc__(self):
        pthread_rwlock_destroy(&self._lock)
        pthread_mutex_destroy(&self._writer)

    # -- locking --------------------------------------------------------------

    cdef void _rdlock(self) noexcept nogil:
        pthread_rwlock_rdlock(&self._lock)

    cdef void _wrlock(self) noexcept nogil:
        pthread_rwlock_wrlock(&self._lock)

    cdef void _unlock(self) noexcept nogil:
        pthread_rwlock_unlock(&self._lock)

    # -- sizes ----------------------------------------------------------------

    def __len__(self):
        return self._live

    @property
    def pairs(self):
        """How many (cache, layer) pairs the index holds."""
        return self._pairs

    def nbytes(self):
        """Bytes of the index's arrays (pairs, postings, slot fields)."""
        return _nbytes(self)

    @property
    def strategy(self):
        """How candidates are found: "auto" (by cost), "probe" or "count" (for tests)."""
        return STRATEGY_NAMES[self._strategy]

    @strategy.setter
    def strategy(self, str value):
        self._strategy = <Strategy>STRATEGY_NAMES.index(value)

    # -- writing (_writes.pxi) ------------------------------------------------

    def replace(self, int64_t slot, obj, keys, images, int64_t nbytes, int64_t created,
                int64_t expires, int32_t size_gib, arch=None, os=None):
        """Swap the slot ``slot`` (or nothing, when -1) for a new one, atomically.

        ``images`` is an iterable of the images the cache lists, each an
        iterable of the distinct keys a pod's copy of that image encodes to
        (its ``{key: size}`` dict): the core holds those images (see above).
        The slot holds their keys and any further ``keys`` (an iterable).
        Returns the new slot.
        """
        return _replace(self, slot, obj, keys, images, nbytes, created, expires, size_gib,
                        arch, os)

    def apply(self, list ops):
        """Many writes at once: each op a ``(slot, obj, row)`` tuple, done in order.

        ``slot`` is the slot to free (or -1); ``row`` is None (a remove) or
        the ``(keys, images, nbytes, created, expires, size_gib, arch, os)``
        of :meth:`replace`, whose new slot takes ``obj``.  Every slot is
        checked (KeyError) before anything changes; the caches are prepared
        before the write lock, which is then taken once for the whole batch,
        so a match sees each slot before or after, never torn.  Returns the
        new slot of each op (-1 for a remove).
        """
        return _apply(self, ops)

    def build(self, list objs, list keys, list images, list nbytes, list created,
              list expires, list size_gib, list arch, list os):
        """Fill an empty core with many slots at once: slot ``i`` as :meth:`replace` makes it.

        The bulk load of a new index, far cheaper than adding one by one: an
        image's keys are interned once per image object, every posting list
        is sized before it is filled, and each held image finds its holders
        once, when every row is in.  Returns nothing; the slots are 0..n-1.
        """
        _build(self, objs, keys, images, nbytes, created, expires, size_gib, arch, os)

    def remove(self, int64_t slot):
        """Free ``slot``."""
        _remove(self, slot)

    def compact(self):
        """Give back spare capacity: after a bulk build, or a wave of removes."""
        _compact(self)

    def check(self):
        """Verify the held images against a brute-force recount; raise AssertionError if off.

        For tests: every listed image's holders are exactly the live slots
        holding its whole run, sorted; its listing count is right; it is
        reachable from its fingerprint and its anchor, once.
        """
        _check(self)

    # -- reading (_encoding.pxi, _scoring.pxi, _reads.pxi) --------------------

    def new_batch(self):
        """An empty batch of pods to :meth:`encode` into."""
        return _Batch()

    def encode(self, _Batch batch, list images, int32_t bar, storage, arch, os):
        """Append one pod to ``batch``: ``images`` is a list of {key: size} dicts.

        Returns the pod's bytes: the sum of its distinct layers' sizes (where
        two images list one layer, the later size counts, as in a dict update).
        """
        return _encode(self, batch, images, bar, storage, arch, os)

    def score_batch(self, _Batch batch, int64_t now, int threads=1):
        """Score every pod of ``batch``; return one ``(objs, full, covered, distance)`` each.

        ``objs`` is the list of best caches' objects (more than one on an exact
        tie, for the caller to break by id), empty when no cache is eligible.
        Pods are spread over ``threads`` threads with the GIL released.
        """
        return _score_batch(self, batch, now, threads)

    def score_one(self, list images, int32_t bar, storage, arch, os, int64_t now):
        """Score one pod (see :meth:`score_batch`), reusing pooled scratch space.

        Returns ``(objs, full, covered, distance, pod_bytes)``.
        """
        return _score_one(self, images, bar, storage, arch, os, now)

    # -- persistence (_persistence.pxi) ---------------------------------------

    def to_arrays(self):
        """The live state as NumPy arrays and a key list, slots renumbered densely.

        Only keys some live slot holds are kept.  The objects come back in
        the order of the rows.  Writers are held off: no key is half-published.
        """
        return _to_arrays(self)

    @staticmethod
    def from_arrays(dict arrays, list keys, list platforms, list objs):
        """Rebuild a core from :meth:`to_arrays` output; the postings are rebuilt in C.

        Raises ValueError when the arrays disagree with each other or with
        ``keys``.
        """
        return _from_arrays(arrays, keys, platforms, objs)
