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
layers too; the cost grows with the shortest postings, not with the number
of caches.  With no bar at all (``allow_partial``) every posting of every
pod layer is walked instead.

Concurrency: a readers-writer lock; matches read under it, upserts and
removes write under it, so a match sees a cache either before or after an
upsert, never torn.  Locks are always taken with the GIL released.
"""

cimport cython
from cython.parallel cimport prange, threadid
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_FromVoidPtr
from cpython.ref cimport PyObject
from cython.operator cimport dereference as deref
from libcpp.algorithm cimport merge, sort, stable_sort, unique
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

import numpy as np

cdef uint16_t UNUSABLE = 0xFFFF
cdef uint32_t NOWHERE = 0xFFFFFFFF
# Pod images whose encoding is remembered, at most (then the memo starts afresh).
cdef Py_ssize_t ENCODED_MAX = 1 << 16

__all__ = ["NEVER", "Core", "replicas"]

NEVER = INT64_MAX


cdef inline uint64_t _fingerprint(const uint32_t* run, int64_t k) noexcept nogil:
    # A 64-bit fingerprint of a sorted run of layer ids (splitmix64 rounds).
    # Equal fingerprints are confirmed by comparing the runs themselves.
    cdef uint64_t h = <uint64_t>0x9E3779B97F4A7C15 + <uint64_t>k
    cdef int64_t i
    for i in range(k):
        h ^= run[i]
        h *= <uint64_t>0xBF58476D1CE4E5B9
        h ^= h >> 31
    return h


cdef inline tuple _seq(object items):
    # A tuple to loop over by index: looping over anything else allocates an
    # iterator object, and a bulk load that allocates per cache pays for
    # garbage collections over the whole heap.
    return items if type(items) is tuple else tuple(items)


cdef inline uint32_t _lower_bound(const uint32_t* seg, uint32_t lo, uint32_t hi,
                                  uint32_t x) noexcept nogil:
    # The first index in [lo, hi) whose id is >= x (hi if none): binary search.
    cdef uint32_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if seg[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline uint32_t _gallop(const uint32_t* seg, uint32_t j, uint32_t n,
                             uint32_t x) noexcept nogil:
    # The first index >= j whose id is >= x (n if none): exponential, then binary search.
    cdef uint32_t step = 1, lo, hi
    if j >= n or seg[j] >= x:
        return j
    lo = j
    while j + step < n and seg[j + step] < x:
        lo = j + step
        step <<= 1
    hi = j + step if j + step < n else n
    return _lower_bound(seg, lo + 1, hi, x)


cdef inline bint _contains_all(const uint32_t* want, int64_t k, const uint32_t* seg,
                               uint32_t n) noexcept nogil:
    # Is every id of the sorted run ``want`` in the sorted segment ``seg``?
    cdef int64_t i
    cdef uint32_t j = 0, x
    for i in range(k):
        x = want[i]
        j = _gallop(seg, j, n, x)
        if j == n or seg[j] != x:
            return False
        j += 1
    return True


cdef inline int64_t _covered(const uint32_t* layers, const int64_t* sizes, int32_t k,
                             const uint32_t* seg, uint32_t n) noexcept nogil:
    # Bytes of the sorted run ``layers`` that the sorted segment ``seg`` holds.
    cdef int32_t i
    cdef uint32_t j = 0, x
    cdef int64_t total = 0
    for i in range(k):
        x = layers[i]
        j = _gallop(seg, j, n, x)
        if j == n:
            break
        if seg[j] == x:
            total += sizes[i]
            j += 1
    return total


cdef inline void _prepare(Acc* a, size_t capacity) noexcept nogil:
    if a.stamp.size() < capacity:
        a.stamp.resize(capacity, 0)
        a.full.resize(capacity, 0)
        a.cov.resize(capacity, 0)
        a.istamp.resize(capacity, 0)
        a.icount.resize(capacity, 0)
    a.epoch += 1
    if a.epoch == 0:  # wrapped: forget every old stamp
        for i in range(a.stamp.size()):
            a.stamp[i] = 0
        a.epoch = 1
    a.touched.clear()
    a.ties.clear()


cdef bint _known_before(const Known& a, const Known& b) noexcept nogil:
    return a.lid < b.lid


cdef class _Encoded:
    """A pod image whose every key is interned, encoded: its (id, size) pairs by id."""

    cdef object source  # its {key: size} dict, kept alive so that its id stays its own
    cdef vector[Known] known
    cdef uint64_t hash


cdef class _Batch:
    """Pods encoded for the kernels: flat arrays plus per-pod offsets."""

    cdef vector[Known] known  # scratch for encode

    cdef vector[uint32_t] layers
    cdef vector[int64_t] sizes
    cdef vector[int64_t] layer_off
    cdef vector[uint32_t] img_layers
    cdef vector[int64_t] img_off
    cdef vector[uint8_t] img_ok
    cdef vector[uint64_t] img_hash
    cdef vector[int64_t] img_start
    cdef vector[int32_t] n_img
    cdef vector[int64_t] pod_bytes
    cdef vector[int32_t] bar
    cdef vector[double] storage
    cdef vector[int32_t] arch
    cdef vector[int32_t] os
    cdef vector[Pod] pods

    def __cinit__(self):
        self.layer_off.push_back(0)
        self.img_off.push_back(0)

    def __len__(self):
        return self.bar.size()

    cdef void _clear(self) noexcept:
        # Empty, keeping the capacity: a pooled batch allocates nothing.
        self.layers.clear()
        self.sizes.clear()
        self.layer_off.resize(1)
        self.img_layers.clear()
        self.img_off.resize(1)
        self.img_ok.clear()
        self.img_hash.clear()
        self.img_start.clear()
        self.n_img.clear()
        self.pod_bytes.clear()
        self.bar.clear()
        self.storage.clear()
        self.arch.clear()
        self.os.clear()
        self.pods.clear()

    cdef void _seal(self, int64_t now):
        cdef size_t p
        cdef Pod q
        self.pods.resize(self.bar.size())
        for p in range(self.bar.size()):
            q.layers = self.layers.data() + self.layer_off[p]
            q.sizes = self.sizes.data() + self.layer_off[p]
            q.n_layers = <int32_t>(self.layer_off[p + 1] - self.layer_off[p])
            q.img_layers = self.img_layers.data()
            q.img_off = self.img_off.data() + self.img_start[p]
            q.img_ok = self.img_ok.data() + self.img_start[p]
            q.img_hash = self.img_hash.data() + self.img_start[p]
            q.n_img = self.n_img[p]
            q.pod_bytes = self.pod_bytes[p]
            q.bar = self.bar[p]
            q.storage = self.storage[p]
            q.arch = self.arch[p]
            q.os = self.os[p]
            q.now = now
            self.pods[p] = q


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
        self._strategy = 0
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
    def layers(self):
        """How many distinct layer keys have been interned."""
        return len(self._keys)

    @property
    def pairs(self):
        """How many (cache, layer) pairs the index holds."""
        return self._pairs

    def nbytes(self):
        """Bytes of the index's arrays (pairs, postings, slot fields)."""
        cdef size_t total = 0
        cdef size_t layer
        total += self._pair_layer.capacity() * 4 + self._pair_pos.capacity() * 4
        total += self._off.capacity() * 8 + self._len.capacity() * 4
        total += self._alive.capacity() * (1 + 8 * 3 + 4 * 3) + self._free.capacity() * 4
        total += self._post.capacity() * sizeof(vector[uint32_t])
        for layer in range(self._post.size()):
            total += self._post[layer].capacity() * 4
        # Held images: their runs and holders, the fingerprint table (a node
        # of two words and a bucket pointer each), anchors and slot lists.
        total += self._held.capacity() * sizeof(Held) + self._held_free.capacity() * 4
        for layer in range(self._held.size()):
            total += (self._held[layer].run.capacity()
                      + self._held[layer].holders.capacity()) * 4
        total += self._held_by_hash.size() * 32 + self._held_by_hash.bucket_count() * 8
        total += self._anchored.capacity() * 4 + self._lists.capacity() * 4
        total += self._lists_off.capacity() * 8 + self._lists_len.capacity() * 4
        return total

    @property
    def strategy(self):
        """How candidates are found: "auto" (by cost), "probe" or "count" (for tests)."""
        return ("auto", "probe", "count")[self._strategy]

    @strategy.setter
    def strategy(self, str value):
        self._strategy = ("auto", "probe", "count").index(value)

    # -- writing --------------------------------------------------------------

    cdef int32_t _platform(self, object name, bint create):
        if name is None:
            return 0
        code = self._platforms.get(name)
        if code is None:
            if not create:
                return -1  # known to the pod, held by no cache: mismatches every known one
            code = len(self._platforms) + 1
            self._platforms[name] = code
        return code

    cdef uint32_t _intern(self, object key, list new_keys, dict fresh, uint32_t next_id):
        # The id of a layer key: known, new in this write, or the next one.
        cdef PyObject* found = PyDict_GetItemWithError(self._ids, key)
        cdef uint32_t lid
        if found == NULL:
            found = PyDict_GetItemWithError(fresh, key)
        if found != NULL:
            return <uint32_t>(<object>found)
        lid = next_id + len(new_keys)
        fresh[key] = lid
        new_keys.append(key)
        return lid

    cdef int64_t _stage(self, object obj, object keys, object images, object arch, object os,
                        list new_keys, Staged* st) except -1:
        # The Python half of an add, done before the write lock is taken so
        # that matches never wait on a writer that waits for the GIL: the row
        # of the cache's distinct layer ids, the images it lists as sorted
        # runs with their fingerprints (new keys get the next ids, published
        # only once their posting lists exist), its platforms, its slot.
        cdef uint32_t next_id = len(self._keys)
        cdef size_t run, i
        cdef PyObject* found
        cdef _Encoded enc
        cdef vector[Known] known
        cdef bint everything
        cdef dict fresh = {}  # keys first seen in this write
        st.row.clear()
        st.img_layers.clear()
        st.img_off.clear()
        st.img_hash.clear()
        st.img_off.push_back(0)
        for key in _seq(keys):
            st.row.push_back(self._intern(key, new_keys, fresh, next_id))
        sort(st.row.begin(), st.row.end())
        for image in _seq(images):
            run = st.img_layers.size()
            found = PyDict_GetItemWithError(self._encoded, PyLong_FromVoidPtr(<void*>image))
            if found != NULL and (<_Encoded>found).source is image:
                # An image met before with every key known (see _encode).
                enc = <_Encoded>found
                for i in range(enc.known.size()):
                    st.img_layers.push_back(enc.known[i].lid)
                st.img_hash.push_back(enc.hash)
            else:
                known.clear()
                everything = isinstance(image, dict)
                if everything:
                    for key, value in (<dict>image).items():
                        found = PyDict_GetItemWithError(self._ids, key)
                        if found != NULL:
                            known.push_back(Known(<uint32_t>(<object>found), value))
                            st.img_layers.push_back(known.back().lid)
                        else:
                            everything = False
                            st.img_layers.push_back(self._intern(key, new_keys, fresh, next_id))
                else:
                    for key in image:
                        st.img_layers.push_back(self._intern(key, new_keys, fresh, next_id))
                if st.img_layers.size() == run:
                    continue  # no layers at all: nothing to hold
                sort(st.img_layers.begin() + run, st.img_layers.end())
                st.img_hash.push_back(_fingerprint(st.img_layers.data() + run,
                                                   st.img_layers.size() - run))
                if everything:
                    self._remember(image, &known, st.img_hash.back())
            st.img_off.push_back(st.img_layers.size())
            # A listed image lies inside its cache, whatever ``keys`` said:
            # the row is the merge of the sorted runs.
            st.merged.resize(st.row.size() + st.img_layers.size() - run)
            merge(st.row.begin(), st.row.end(), st.img_layers.begin() + run,
                  st.img_layers.end(), st.merged.begin())
            st.row.swap(st.merged)
        st.row.erase(unique(st.row.begin(), st.row.end()), st.row.end())
        st.arch = self._platform(arch, True)
        st.os = self._platform(os, True)
        if self._free.size():
            st.slot = self._free.back()
            self._free.pop_back()
            self._objs[st.slot] = obj  # not reachable until the slot is live
        else:
            st.slot = self._alive.size()
            self._objs.append(obj)
        st.n_keys = next_id + len(new_keys)
        return st.slot

    # -- held images ----------------------------------------------------------

    cdef uint32_t _find_held(self, const uint32_t* run, int64_t k, uint64_t h) noexcept nogil:
        # The listed image whose layers are exactly ``run``, or NOWHERE.
        cdef unordered_map[uint64_t, uint32_t].iterator it = self._held_by_hash.find(h)
        cdef const Held* img
        cdef int64_t i
        if it == self._held_by_hash.end():
            return NOWHERE
        img = &self._held[deref(it).second]
        if <int64_t>img.run.size() != k:
            return NOWHERE
        for i in range(k):
            if img.run[i] != run[i]:
                return NOWHERE
        return deref(it).second

    cdef uint32_t _new_held(self, const uint32_t* run, int64_t k, uint64_t h,
                            bint place) noexcept nogil:
        # Start holding a newly listed image (placed at once, or by the caller
        # once every row is in).  NOWHERE when another run has this
        # fingerprint: that image is not held (pods probe for it instead).
        cdef uint32_t e
        cdef Held* img
        if k == 0 or self._held_by_hash.count(h):
            return NOWHERE
        if self._held_free.size():
            e = self._held_free.back()
            self._held_free.pop_back()
        else:
            e = self._held.size()
            self._held.resize(e + 1)
        img = &self._held[e]
        img.run.assign(run, run + k)
        img.holders.clear()
        img.hash = h
        img.listed = 0
        self._held_by_hash[h] = e
        if place:
            self._place_held(e)
        return e

    cdef void _place_held(self, uint32_t e) noexcept nogil:
        # Anchor image e at its rarest layer and find its holders among the
        # live slots: they all lie in that layer's posting list.
        cdef Held* img = &self._held[e]
        cdef const uint32_t* run = img.run.data()
        cdef int64_t i, k = img.run.size()
        cdef uint32_t r = run[0], s
        cdef size_t t
        cdef const vector[uint32_t]* post
        cdef const uint32_t* pl = self._pair_layer.data()
        for i in range(1, k):
            if self._post[run[i]].size() < self._post[r].size():
                r = run[i]
        img.anchor = r
        img.next = self._anchored[r]
        self._anchored[r] = e
        post = &self._post[r]
        for t in range(post.size()):
            s = post[0][t]
            if _contains_all(run, k, pl + self._off[s], self._len[s]):
                img.holders.push_back(s)
        sort(img.holders.begin(), img.holders.end())

    cdef void _drop_held(self, uint32_t e) noexcept nogil:
        # No slot lists the image any more: forget it.
        cdef Held* img = &self._held[e]
        cdef uint32_t p = self._anchored[img.anchor]
        if p == e:
            self._anchored[img.anchor] = img.next
        else:
            while self._held[p].next != e:
                p = self._held[p].next
            self._held[p].next = img.next
        self._held_by_hash.erase(img.hash)
        img.run.clear()
        img.run.shrink_to_fit()
        img.holders.clear()
        img.holders.shrink_to_fit()
        self._held_free.push_back(e)

    cdef void _list_run(self, const uint32_t* run, int64_t k, uint64_t h,
                        bint place) noexcept nogil:
        # The slot being filled lists this run: find (or start holding) its
        # image, count the listing and record it in the slot's list.
        cdef uint32_t e = self._find_held(run, k, h)
        if e == NOWHERE:
            e = self._new_held(run, k, h, place)
            if e == NOWHERE:
                return
        elif self._held[e].listed == 0:
            self._unlisted -= 1  # listed again before it was swept
        self._held[e].listed += 1
        self._lists.push_back(e)

    cdef void _list_images(self, Staged* st) noexcept nogil:
        # Record the images slot st.slot lists, holding the new ones.  Runs
        # before the slot's own pairs exist, so new images' holders are the
        # other slots; :meth:`_hold` then adds this one.
        cdef uint32_t slot = st.slot
        cdef size_t j
        self._lists_off[slot] = self._lists.size()
        for j in range(st.img_hash.size()):
            self._list_run(st.img_layers.data() + st.img_off[j],
                           st.img_off[j + 1] - st.img_off[j], st.img_hash[j], True)
        self._lists_len[slot] = self._lists.size() - self._lists_off[slot]

    cdef inline bint _lists_it(self, uint32_t slot, uint32_t e) noexcept nogil:
        # Does the slot list image e (so it holds it, no merge needed)?
        cdef int64_t j
        for j in range(self._lists_off[slot], self._lists_off[slot] + self._lists_len[slot]):
            if self._lists[j] == e:
                return True
        return False

    cdef void _hold(self, uint32_t slot) noexcept nogil:
        # Add a new slot to the holders of every image it holds: those are
        # anchored at some layer of its row.
        cdef const uint32_t* row = self._pair_layer.data() + self._off[slot]
        cdef uint32_t n = self._len[slot], i, e, pos
        cdef Held* img
        for i in range(n):
            e = self._anchored[row[i]]
            while e != NOWHERE:
                img = &self._held[e]
                if self._lists_it(slot, e) or _contains_all(
                        img.run.data(), img.run.size(), row, n):
                    pos = _lower_bound(img.holders.data(), 0, img.holders.size(), slot)
                    img.holders.insert(img.holders.begin() + pos, slot)
                e = img.next

    cdef void _unhold(self, uint32_t slot) noexcept nogil:
        # Take a slot out of every holder list and drop the images only it listed.
        cdef const uint32_t* row = self._pair_layer.data() + self._off[slot]
        cdef uint32_t n = self._len[slot], i, e, pos
        cdef int64_t j
        cdef Held* img
        for i in range(n):
            e = self._anchored[row[i]]
            while e != NOWHERE:
                img = &self._held[e]
                pos = _lower_bound(img.holders.data(), 0, img.holders.size(), slot)
                if pos < img.holders.size() and img.holders[pos] == slot:
                    img.holders.erase(img.holders.begin() + pos)
                e = img.next
        for j in range(self._lists_off[slot], self._lists_off[slot] + self._lists_len[slot]):
            e = self._lists[j]
            self._held[e].listed -= 1
            if self._held[e].listed == 0:
                self._unlisted += 1
        self._lists_len[slot] = 0
        if self._unlisted > 1024 and self._unlisted * 2 > <int64_t>self._held_by_hash.size():
            # Images no slot lists any more stay held (a cache for them often
            # comes back, as churn recreates caches) until they are half of all.
            for e in range(self._held.size()):
                if self._held[e].listed == 0 and self._held[e].run.size():
                    self._drop_held(e)
            self._unlisted = 0

    cdef void _insert_locked(self, Staged* st, int64_t nbytes, int64_t created,
                             int64_t expires, int32_t size_gib) noexcept nogil:
        # The C half of an add, under the write lock, without the GIL.
        cdef uint32_t slot = st.slot
        cdef int64_t off = self._pair_layer.size()
        cdef uint32_t n = st.row.size()
        cdef uint32_t i, lid
        if self._post.size() < st.n_keys:
            self._post.resize(st.n_keys)
            self._anchored.resize(st.n_keys, NOWHERE)
        if slot == self._alive.size():
            self._alive.push_back(0)
            self._bytes.push_back(0)
            self._created.push_back(0)
            self._expires.push_back(0)
            self._size_gib.push_back(0)
            self._arch.push_back(0)
            self._os.push_back(0)
            self._off.push_back(0)
            self._len.push_back(0)
            self._lists_off.push_back(0)
            self._lists_len.push_back(0)
        self._list_images(st)
        self._pair_layer.insert(self._pair_layer.end(), st.row.begin(), st.row.end())
        self._pair_pos.resize(self._pair_layer.size())
        self._off[slot] = off
        self._len[slot] = n
        for i in range(n):
            lid = self._pair_layer[off + i]
            self._pair_pos[off + i] = self._post[lid].size()
            self._post[lid].push_back(slot)
        self._hold(slot)
        self._bytes[slot] = nbytes
        self._created[slot] = created
        self._expires[slot] = expires
        self._size_gib[slot] = size_gib
        self._arch[slot] = st.arch
        self._os[slot] = st.os
        self._alive[slot] = 1
        self._live += 1
        self._pairs += n

    cdef void _publish(self, list new_keys):
        # After the write lock: the new keys become known to pods.
        cdef uint32_t lid = len(self._keys)
        for key in new_keys:
            self._ids[key] = lid
            self._keys.append(key)
            lid += 1

    cdef void _remove_locked(self, uint32_t slot) noexcept nogil:
        cdef int64_t off = self._off[slot]
        cdef uint32_t n = self._len[slot]
        cdef uint32_t i, lid, pos, moved, where
        self._unhold(slot)
        for i in range(n):
            lid = self._pair_layer[off + i]
            pos = self._pair_pos[off + i]
            moved = self._post[lid].back()
            self._post[lid].pop_back()
            if pos < self._post[lid].size():
                # Swap-remove: the slot that was last now sits where ours was.
                self._post[lid][pos] = moved
                where = _lower_bound(self._pair_layer.data() + self._off[moved], 0,
                                     self._len[moved], lid)
                self._pair_pos[self._off[moved] + where] = pos
        self._alive[slot] = 0
        self._len[slot] = 0
        self._free.push_back(slot)
        self._garbage += n
        self._pairs -= n
        self._live -= 1
        if self._garbage > 65536 and self._garbage > self._pairs:
            self._compact_locked()

    cdef void _compact_locked(self) noexcept nogil:
        # Pairs of removed slots are garbage at the front of the arrays; copy
        # the live segments down.  Posting positions do not change.
        cdef vector[uint32_t] layer
        cdef vector[uint32_t] pos
        cdef size_t s
        cdef int64_t i, off
        layer.reserve(self._pairs)
        pos.reserve(self._pairs)
        for s in range(self._alive.size()):
            if not self._alive[s]:
                continue
            off = self._off[s]
            self._off[s] = layer.size()
            for i in range(off, off + self._len[s]):
                layer.push_back(self._pair_layer[i])
                pos.push_back(self._pair_pos[i])
        self._pair_layer.swap(layer)
        self._pair_pos.swap(pos)
        layer.clear()
        for s in range(self._alive.size()):
            off = self._lists_off[s]
            self._lists_off[s] = layer.size()
            for i in range(off, off + self._lists_len[s]):
                layer.push_back(self._lists[i])
        self._lists.swap(layer)
        self._garbage = 0

    def replace(self, int64_t slot, obj, keys, images, int64_t nbytes, int64_t created,
                int64_t expires, int32_t size_gib, arch=None, os=None):
        """Swap the slot ``slot`` (or nothing, when -1) for a new one, atomically.

        ``images`` is an iterable of the images the cache lists, each an
        iterable of the distinct keys a pod's copy of that image encodes to
        (its ``{key: size}`` dict): the core holds those images (see above).
        The slot holds their keys and any further ``keys`` (an iterable).
        """
        cdef Staged* st = &self._staged  # writers take turns: one will do
        cdef list new_keys = []
        cdef uint32_t old = <uint32_t>slot
        with nogil:
            pthread_mutex_lock(&self._writer)
        try:
            if slot >= 0:
                self._check_slot(slot)
            self._stage(obj, keys, images, arch, os, new_keys, st)
            with nogil:
                self._wrlock()
                if slot >= 0:
                    self._remove_locked(old)
                self._insert_locked(st, nbytes, created, expires, size_gib)
                self._unlock()
            self._publish(new_keys)
            if slot >= 0:
                self._objs[slot] = None  # unreachable since the write
            return st.slot
        finally:
            pthread_mutex_unlock(&self._writer)

    def build(self, list objs, list keys, list images, list nbytes, list created,
              list expires, list size_gib, list arch, list os):
        """Fill an empty core with many slots at once: slot ``i`` as :meth:`add` would make it.

        The bulk load of a new index, far cheaper than adding one by one: an
        image's keys are interned once per image object, every posting list
        is sized before it is filled, and each held image finds its holders
        once, when every row is in.  Returns nothing; the slots are 0..n-1.
        """
        cdef Py_ssize_t n = len(objs), c
        cdef vector[uint32_t] runs  # every distinct image object's run, back to back
        cdef vector[int64_t] run_off
        cdef vector[uint64_t] run_hash
        cdef vector[uint32_t] slot_runs  # by slot (CSR): the runs it lists
        cdef vector[int64_t] slot_runs_off
        cdef vector[uint32_t] row
        cdef vector[uint32_t] counts, cursor, order
        cdef dict sizes
        cdef dict memo = {}  # id(image object) -> its run, or -1 (no keys)
        cdef dict fresh = {}
        cdef list new_keys = []
        cdef size_t start, i, nk
        cdef int64_t r, off, j
        cdef uint32_t lid, e, slot
        for column in (keys, images, nbytes, created, expires, size_gib, arch, os):
            if len(column) != n:
                raise ValueError("build: columns disagree in length")
        if self._alive.size() or len(self._keys):
            raise ValueError("build fills an empty core only")
        with nogil:
            pthread_mutex_lock(&self._writer)
            self._wrlock()
        try:
            run_off.push_back(0)
            slot_runs_off.push_back(0)
            for c in range(n):
                row.clear()
                for key in _seq(keys[c]):
                    row.push_back(self._intern(key, new_keys, fresh, 0))
                for image in _seq(images[c]):
                    found = memo.get(PyLong_FromVoidPtr(<void*>image))
                    if found is None:
                        start = runs.size()
                        if type(image) is dict:
                            sizes = <dict>image
                            for key in sizes:
                                runs.push_back(self._intern(key, new_keys, fresh, 0))
                        else:
                            for key in image:
                                runs.push_back(self._intern(key, new_keys, fresh, 0))
                        if runs.size() == start:
                            found = memo[PyLong_FromVoidPtr(<void*>image)] = -1
                        else:
                            sort(runs.begin() + start, runs.end())
                            run_off.push_back(runs.size())
                            run_hash.push_back(_fingerprint(runs.data() + start,
                                                            runs.size() - start))
                            found = memo[PyLong_FromVoidPtr(<void*>image)] = run_off.size() - 2
                    r = found
                    if r < 0:
                        continue
                    slot_runs.push_back(r)
                    row.insert(row.end(), runs.begin() + run_off[r], runs.begin() + run_off[r + 1])
                slot_runs_off.push_back(slot_runs.size())
                sort(row.begin(), row.end())
                row.erase(unique(row.begin(), row.end()), row.end())
                self._off.push_back(self._pair_layer.size())
                self._len.push_back(row.size())
                self._pair_layer.insert(self._pair_layer.end(), row.begin(), row.end())
                self._alive.push_back(1)
                self._bytes.push_back(nbytes[c])
                self._created.push_back(created[c])
                self._expires.push_back(expires[c])
                self._size_gib.push_back(size_gib[c])
                self._arch.push_back(self._platform(arch[c], True))
                self._os.push_back(self._platform(os[c], True))
            self._keys.extend(new_keys)
            self._ids.update(fresh)
            self._objs.extend(objs)
            nk = len(self._keys)
            with nogil:
                self._post.resize(nk)
                self._anchored.assign(nk, NOWHERE)
                # The posting lists by a counting sort of the pairs on their
                # layer: one scattered write per pair into a flat array, then
                # each list copied out in one piece (pushing onto 100k lists
                # at random would miss the cache twice a pair).
                counts.assign(nk + 1, 0)
                for i in range(self._pair_layer.size()):
                    counts[self._pair_layer[i] + 1] += 1
                for i in range(nk):
                    counts[i + 1] += counts[i]
                cursor.assign(counts.begin(), counts.end() - 1)
                order.resize(self._pair_layer.size())
                self._pair_pos.resize(self._pair_layer.size())
                for slot in range(n):
                    for i in range(self._off[slot], self._off[slot] + self._len[slot]):
                        lid = self._pair_layer[i]
                        order[cursor[lid]] = slot
                        self._pair_pos[i] = cursor[lid] - counts[lid]
                        cursor[lid] += 1
                for i in range(nk):
                    self._post[i].assign(order.begin() + counts[i], order.begin() + counts[i + 1])
                self._lists_off.resize(n)
                self._lists_len.resize(n)
                for slot in range(n):
                    self._lists_off[slot] = self._lists.size()
                    for j in range(slot_runs_off[slot], slot_runs_off[slot + 1]):
                        r = slot_runs[j]
                        off = run_off[r]
                        self._list_run(runs.data() + off, run_off[r + 1] - off, run_hash[r],
                                       False)
                    self._lists_len[slot] = self._lists.size() - self._lists_off[slot]
                # Every row is in: anchor each image at its rarest layer now.
                for e in range(self._held.size()):
                    self._place_held(e)
                self._live = n
                self._pairs = self._pair_layer.size()
        finally:
            self._unlock()
            pthread_mutex_unlock(&self._writer)

    def remove(self, int64_t slot):
        """Free ``slot``."""
        with nogil:
            pthread_mutex_lock(&self._writer)
        try:
            self._check_slot(slot)
            with nogil:
                self._wrlock()
                self._remove_locked(<uint32_t>slot)
                self._unlock()
            self._objs[slot] = None
        finally:
            pthread_mutex_unlock(&self._writer)

    def compact(self):
        """Give back spare capacity: after a bulk build, or a wave of removes."""
        cdef size_t layer
        with nogil:
            pthread_mutex_lock(&self._writer)
            self._wrlock()
            if self._garbage:
                self._compact_locked()
            self._pair_layer.shrink_to_fit()
            self._pair_pos.shrink_to_fit()
            self._lists.shrink_to_fit()
            for layer in range(self._post.size()):
                self._post[layer].shrink_to_fit()
            self._post.shrink_to_fit()
            for layer in range(self._held.size()):
                self._held[layer].holders.shrink_to_fit()
            self._unlock()
            pthread_mutex_unlock(&self._writer)

    def _check_slot(self, int64_t slot):
        if slot < 0 or <size_t>slot >= self._alive.size() or not self._alive[slot]:
            raise KeyError(f"slot {slot} is not live")

    def check(self):
        """Verify the held images against a brute-force recount; raise AssertionError if off.

        For tests: every listed image's holders are exactly the live slots
        holding its whole run, sorted; its listing count is right; it is
        reachable from its fingerprint and its anchor, once.
        """
        cdef size_t e, s
        cdef int64_t j
        with nogil:
            self._rdlock()
        try:
            listed = {}
            for s in range(self._alive.size()):
                if self._alive[s]:
                    for j in range(self._lists_off[s], self._lists_off[s] + self._lists_len[s]):
                        listed[self._lists[j]] = listed.get(self._lists[j], 0) + 1
            free = {self._held_free[j] for j in range(self._held_free.size())}
            unlisted = 0
            for e in range(self._held.size()):
                if e in free:
                    assert e not in listed, f"dropped image {e} is still listed"
                    continue
                run = list(self._held[e].run)
                want = [s for s in range(self._alive.size()) if self._alive[s] and set(run)
                        <= {self._pair_layer[j] for j in range(
                            self._off[s], self._off[s] + self._len[s])}]
                got = list(self._held[e].holders)
                assert got == want, f"image {e} {run}: holders {got}, want {want}"
                assert self._held[e].listed == listed.get(e, 0), (
                    f"image {e}: listed {self._held[e].listed}, want {listed.get(e, 0)}")
                unlisted += self._held[e].listed == 0
                assert self._find_held(self._held[e].run.data(), len(run),
                                       _fingerprint(self._held[e].run.data(), len(run))) == e
                assert self._held[e].anchor in run
                chain = []
                j = self._anchored[self._held[e].anchor]
                while j != NOWHERE:
                    chain.append(j)
                    j = self._held[j].next
                assert chain.count(e) == 1, f"image {e} is {chain.count(e)} times on its anchor"
            assert <size_t>self._held_by_hash.size() == self._held.size() - len(free)
            assert unlisted == self._unlisted, (
                f"{unlisted} images unlisted, counted {self._unlisted}")
        finally:
            self._unlock()

    # -- scoring --------------------------------------------------------------

    cdef bint _usable(self, uint32_t s, const Pod* q) noexcept nogil:
        if not self._alive[s] or self._expires[s] <= q.now:
            return False
        if q.storage >= 0 and self._size_gib[s] > q.storage:
            return False
        if q.arch != 0 and self._arch[s] != 0 and q.arch != self._arch[s]:
            return False
        return not (q.os != 0 and self._os[s] != 0 and q.os != self._os[s])

    cdef void _consider(self, uint32_t s, int32_t f, int64_t cov, const Pod* q, Acc* a,
                        Out* o) noexcept nogil:
        # SPEC §3.6: full desc, covered desc, distance asc, created desc; exact
        # ties (left to the id) are collected for the caller.
        cdef int64_t dist = self._bytes[s] - q.pod_bytes
        cdef int c
        if dist < 0:
            dist = -dist
        if o.best < 0:
            c = 1
        elif f != o.full:
            c = 1 if f > o.full else -1
        elif cov != o.covered:
            c = 1 if cov > o.covered else -1
        elif dist != o.distance:
            c = 1 if dist < o.distance else -1
        elif self._created[s] != self._created[o.best]:
            c = 1 if self._created[s] > self._created[o.best] else -1
        else:
            c = 0
        if c > 0:
            o.best = s
            o.full = f
            o.covered = cov
            o.distance = dist
            a.ties.clear()
            a.ties.push_back(s)
        elif c == 0:
            a.ties.push_back(s)

    cdef inline bint _touch(self, uint32_t s, const Pod* q, Acc* a) noexcept nogil:
        # First sight of slot s for this pod: note it, and whether it is usable.
        if a.stamp[s] != a.epoch:
            a.stamp[s] = a.epoch
            a.touched.push_back(s)
            a.full[s] = 0 if self._usable(s, q) else UNUSABLE
        return a.full[s] != UNUSABLE

    cdef uint32_t _log_segment(self) noexcept nogil:
        # log2 of the mean layers per slot: the cost of one binary search.
        cdef int64_t mean = self._pairs // self._live if self._live > 0 else 1
        cdef uint32_t bits = 1
        while mean > 1:
            mean >>= 1
            bits += 1
        return bits

    cdef void _full_by_probing(self, const Pod* q, int32_t i, Acc* a) noexcept nogil:
        # Slots holding image i all lie in the posting list of its rarest
        # layer: probe each of them for the image's other layers.
        cdef int64_t k, k0 = q.img_off[i], k1 = q.img_off[i + 1]
        cdef uint32_t r = q.img_layers[k0], s
        cdef size_t t
        for k in range(k0 + 1, k1):
            if self._post[q.img_layers[k]].size() < self._post[r].size():
                r = q.img_layers[k]
        cdef const vector[uint32_t]* post = &self._post[r]
        cdef const uint32_t* pl = self._pair_layer.data()
        for t in range(post.size()):
            s = post[0][t]
            if self._touch(s, q, a) and _contains_all(
                    q.img_layers + k0, k1 - k0, pl + self._off[s], self._len[s]):
                a.full[s] += 1

    cdef void _full_by_counting(self, const Pod* q, int32_t i, Acc* a) noexcept nogil:
        # When every layer of image i is common, reading its posting lists
        # and counting hits per slot is cheaper than probing.
        cdef int64_t k, k0 = q.img_off[i], k1 = q.img_off[i + 1]
        cdef uint16_t need = <uint16_t>(k1 - k0)
        cdef uint32_t s
        cdef size_t t
        cdef const vector[uint32_t]* post
        a.iepoch += 1
        if a.iepoch == 0:
            for t in range(a.istamp.size()):
                a.istamp[t] = 0
            a.iepoch = 1
        for k in range(k0, k1):
            post = &self._post[q.img_layers[k]]
            for t in range(post.size()):
                s = post[0][t]
                if a.istamp[s] != a.iepoch:
                    a.istamp[s] = a.iepoch
                    a.icount[s] = 0
                a.icount[s] += 1
                if a.icount[s] == need and self._touch(s, q, a):
                    a.full[s] += 1

    cdef void _full_by_holders(self, const Pod* q, uint32_t e, Acc* a) noexcept nogil:
        # A listed image: its holders are known.
        cdef const vector[uint32_t]* holders = &self._held[e].holders
        cdef size_t t
        cdef uint32_t s
        for t in range(holders.size()):
            s = holders[0][t]
            if self._touch(s, q, a):
                a.full[s] += 1

    cdef bint _all_full(self, const Pod* q, const uint32_t* held, int64_t known, Acc* a,
                        Out* o) noexcept nogil:
        # Every image of the pod is a listed one: the slots holding them all
        # are the intersection of their sorted holder lists, walked from the
        # shortest with galloping searches in the others.  Ranks the usable
        # ones; tells whether there was any.
        cdef int32_t i, d = 0
        cdef size_t t
        cdef uint32_t s, j
        cdef bint everywhere
        cdef const vector[uint32_t]* h
        for i in range(1, q.n_img):
            if self._held[held[i]].holders.size() < self._held[held[d]].holders.size():
                d = i
        if a.cursor.size() < <size_t>q.n_img:
            a.cursor.resize(q.n_img)
        for i in range(q.n_img):
            a.cursor[i] = 0
        h = &self._held[held[d]].holders
        for t in range(h.size()):
            s = h[0][t]
            everywhere = True
            for i in range(q.n_img):
                if i == d:
                    continue
                j = _gallop(self._held[held[i]].holders.data(), a.cursor[i],
                            self._held[held[i]].holders.size(), s)
                a.cursor[i] = j
                if j == self._held[held[i]].holders.size():
                    return o.best >= 0  # a list ran out: no later slot holds them all
                if self._held[held[i]].holders[j] != s:
                    everywhere = False
                    break
            if everywhere and self._usable(s, q):
                self._consider(s, q.n_img, known, q, a, o)
        return o.best >= 0

    cdef void _score(self, const Pod* q, Acc* a, Out* o) noexcept nogil:
        cdef int32_t i, j, possible = 0, f, best_f = 0
        cdef int64_t k, k0, k1, cov, probe_cost, count_cost, eligible = 0, walk_cost = 0
        cdef int64_t known = 0
        cdef int32_t listed
        cdef uint32_t s, r
        cdef size_t t, rarest
        cdef uint32_t log_seg = self._log_segment()
        cdef const vector[uint32_t]* post
        cdef const uint32_t* pl = self._pair_layer.data()
        o.best = -1
        o.full = 0
        o.covered = 0
        o.distance = 0
        _prepare(a, self._alive.size())
        for j in range(q.n_layers):
            known += q.sizes[j]
        if q.bar > 0:
            for i in range(q.n_img):
                possible += q.img_ok[i]
            if possible < q.bar or possible == 0:
                return
            if a.held.size() < <size_t>q.n_img:
                a.held.resize(q.n_img)
            listed = 0
            for i in range(q.n_img):
                a.held[i] = NOWHERE
                if q.img_ok[i] and self._strategy == 0:
                    a.held[i] = self._find_held(q.img_layers + q.img_off[i],
                                                q.img_off[i + 1] - q.img_off[i], q.img_hash[i])
                    listed += a.held[i] != NOWHERE
            if listed == q.n_img:
                if q.n_img == 1:
                    # One listed image (most pods): its usable holders are the
                    # eligible caches, each with every byte of the pod.
                    post = &self._held[a.held[0]].holders
                    for t in range(post.size()):
                        s = post[0][t]
                        if self._usable(s, q):
                            self._consider(s, 1, known, q, a, o)
                    return
                # SPEC 3.6 orders by full first: any slot holding every image wins.
                if self._all_full(q, a.held.data(), known, a, o) or q.bar == q.n_img:
                    return
            if q.n_img == 1 and self._strategy != 2:
                # One image (most pods): the slots holding it are the eligible
                # ones, each with every byte of the pod; when probing its rarest
                # layer is the cheaper way, no accumulators are needed at all.
                k0 = q.img_off[0]
                k1 = q.img_off[1]
                r = q.img_layers[k0]
                count_cost = 0
                for k in range(k0, k1):
                    t = self._post[q.img_layers[k]].size()
                    count_cost += t
                    if t < self._post[r].size():
                        r = q.img_layers[k]
                rarest = self._post[r].size()
                if self._strategy == 1 or <int64_t>rarest * (k1 - k0 + log_seg) <= count_cost:
                    post = &self._post[r]
                    for t in range(rarest):
                        s = post[0][t]
                        if self._usable(s, q) and _contains_all(
                                q.img_layers + k0, k1 - k0, pl + self._off[s], self._len[s]):
                            self._consider(s, 1, known, q, a, o)
                    return
            for i in range(q.n_img):
                if not q.img_ok[i]:
                    continue
                if a.held[i] != NOWHERE:
                    self._full_by_holders(q, a.held[i], a)
                    continue
                rarest = self._post[q.img_layers[q.img_off[i]]].size()
                count_cost = 0
                for k in range(q.img_off[i], q.img_off[i + 1]):
                    t = self._post[q.img_layers[k]].size()
                    count_cost += t
                    if t < rarest:
                        rarest = t
                probe_cost = <int64_t>rarest * (q.img_off[i + 1] - q.img_off[i] + log_seg)
                if self._strategy:
                    probe_cost = 0 if self._strategy == 1 else count_cost + 1
                if probe_cost <= count_cost:
                    self._full_by_probing(q, i, a)
                else:
                    self._full_by_counting(q, i, a)
            # SPEC 3.6 orders by full first: only the slots with the most full
            # images can be chosen, so only they are scored further.
            for t in range(a.touched.size()):
                f = a.full[a.touched[t]]
                if f != UNUSABLE and f > best_f:
                    best_f = f
            if best_f < q.bar or best_f == 0:
                return
            if best_f == q.n_img:
                # Every image full: every layer of the pod is held.
                for t in range(a.touched.size()):
                    s = a.touched[t]
                    if a.full[s] == best_f:
                        self._consider(s, best_f, known, q, a, o)
                return
            for t in range(a.touched.size()):
                if a.full[a.touched[t]] == best_f:
                    eligible += 1
            # covered: merge each chosen slot's row with the pod's layers, or
            # read every posting list of the pod once, whichever reads less.
            for j in range(q.n_layers):
                walk_cost += self._post[q.layers[j]].size()
            if self._strategy:
                walk_cost = 0 if self._strategy == 2 else eligible * (q.n_layers + log_seg)
            if walk_cost < eligible * (q.n_layers + log_seg):
                for t in range(a.touched.size()):
                    a.cov[a.touched[t]] = 0
                for j in range(q.n_layers):
                    post = &self._post[q.layers[j]]
                    for t in range(post.size()):
                        s = post[0][t]
                        if a.stamp[s] == a.epoch:
                            a.cov[s] += q.sizes[j]
                for t in range(a.touched.size()):
                    s = a.touched[t]
                    if a.full[s] == best_f:
                        self._consider(s, best_f, a.cov[s], q, a, o)
            else:
                for t in range(a.touched.size()):
                    s = a.touched[t]
                    if a.full[s] == best_f:
                        cov = _covered(q.layers, q.sizes, q.n_layers, pl + self._off[s],
                                       self._len[s])
                        self._consider(s, best_f, cov, q, a, o)
        else:
            # allow_partial with no bar: every cache sharing a layer is eligible.
            for j in range(q.n_layers):
                post = &self._post[q.layers[j]]
                for t in range(post.size()):
                    s = post[0][t]
                    if a.stamp[s] != a.epoch:
                        a.stamp[s] = a.epoch
                        a.touched.push_back(s)
                        a.cov[s] = 0
                        a.full[s] = 0 if self._usable(s, q) else UNUSABLE
                    a.cov[s] += q.sizes[j]
            for t in range(a.touched.size()):
                s = a.touched[t]
                if a.full[s] == UNUSABLE:
                    continue
                f = 0
                for i in range(q.n_img):
                    if q.img_ok[i] and _contains_all(
                            q.img_layers + q.img_off[i], q.img_off[i + 1] - q.img_off[i],
                            pl + self._off[s], self._len[s]):
                        f += 1
                self._consider(s, f, a.cov[s], q, a, o)

    def encode(self, _Batch batch, list images, int32_t bar, storage, arch, os):
        """Append one pod to ``batch``: ``images`` is a list of {key: size} dicts.

        Returns the pod's bytes: the sum of its distinct layers' sizes (where
        two images list one layer, the later size counts, as in a dict update).
        """
        return self._encode(batch, images, bar, storage, arch, os)

    cdef void _remember(self, object image, vector[Known]* known, uint64_t h):
        # Remember an image whose every key is interned (ids never change, so
        # neither does its encoding): its (id, size) pairs by id, its fingerprint.
        cdef _Encoded enc = _Encoded.__new__(_Encoded)
        enc.source = image
        enc.known.swap(known[0])
        sort(enc.known.begin(), enc.known.end(), _known_before)
        enc.hash = h
        if len(self._encoded) >= ENCODED_MAX:
            self._encoded.clear()  # a bounded memo: start afresh
        self._encoded[PyLong_FromVoidPtr(<void*>image)] = enc

    cdef int64_t _encode(self, object into, list images, int32_t bar, object storage,
                         object arch, object os) except? -1:
        cdef _Batch batch = <_Batch>into
        cdef object sizes  # a {key: size} dict, or a read-only subclass of dict
        cdef dict unknown = None
        cdef int64_t pod_bytes = 0
        cdef int64_t size
        cdef PyObject* found
        cdef uint32_t lid
        cdef size_t i, run, mine, first = batch.known.size()
        cdef bint ok
        cdef _Encoded enc
        cdef vector[Known] known
        batch.img_start.push_back(batch.img_off.size() - 1)
        for sizes in images:
            run = batch.img_layers.size()
            found = PyDict_GetItemWithError(self._encoded, PyLong_FromVoidPtr(<void*>sizes))
            if found != NULL and (<_Encoded>found).source is sizes:
                # Seen before with every key known: ids never change, so
                # neither does its encoding.
                enc = <_Encoded>found
                for i in range(enc.known.size()):
                    batch.known.push_back(enc.known[i])
                    batch.img_layers.push_back(enc.known[i].lid)
                batch.img_hash.push_back(enc.hash)
                batch.img_off.push_back(batch.img_layers.size())
                batch.img_ok.push_back(1)
                continue
            ok = len(sizes) > 0
            mine = batch.known.size()
            for key, value in sizes.items():
                size = value
                found = PyDict_GetItemWithError(self._ids, key)
                if found == NULL:
                    ok = False  # a layer no cache holds: the image is never full
                    if unknown is None:
                        unknown = {}
                    unknown[key] = value
                    continue
                lid = <uint32_t>(<object>found)
                batch.known.push_back(Known(lid, size))
                if ok:
                    batch.img_layers.push_back(lid)
            if not ok:
                batch.img_layers.resize(run)
                batch.img_hash.push_back(0)
            else:
                # Sorted like the slots' rows, so that containment is one merge walk.
                sort(batch.img_layers.begin() + run, batch.img_layers.end())
                batch.img_hash.push_back(_fingerprint(batch.img_layers.data() + run,
                                                      batch.img_layers.size() - run))
                known.assign(batch.known.begin() + mine, batch.known.end())
                self._remember(sizes, &known, batch.img_hash.back())
            batch.img_off.push_back(batch.img_layers.size())
            batch.img_ok.push_back(<uint8_t>ok)
        # The pod's distinct known layers, sorted; the last size of a layer wins.
        stable_sort(batch.known.begin() + first, batch.known.end(), _known_before)
        for i in range(first, batch.known.size()):
            if i + 1 < batch.known.size() and batch.known[i + 1].lid == batch.known[i].lid:
                continue
            batch.layers.push_back(batch.known[i].lid)
            batch.sizes.push_back(batch.known[i].size)
            pod_bytes += batch.known[i].size
        batch.known.resize(first)
        if unknown is not None:
            for value in unknown.values():
                pod_bytes += <int64_t>value
        batch.layer_off.push_back(batch.layers.size())
        batch.n_img.push_back(len(images))
        batch.pod_bytes.push_back(pod_bytes)
        batch.bar.push_back(bar)
        batch.storage.push_back(-1.0 if storage is None else float(storage))
        batch.arch.push_back(self._platform(arch, False))
        batch.os.push_back(self._platform(os, False))
        return pod_bytes

    def new_batch(self):
        """An empty batch of pods to :meth:`encode` into."""
        return _Batch()

    def score_batch(self, _Batch batch, int64_t now, int threads=1):
        """Score every pod of ``batch``; return one ``(objs, full, covered, distance)`` each.

        ``objs`` is the list of best caches' objects (more than one on an exact
        tie, for the caller to break by id), empty when no cache is eligible.
        Pods are spread over ``threads`` threads with the GIL released.
        """
        cdef Py_ssize_t n = len(batch)
        cdef Py_ssize_t p
        cdef int tid
        cdef vector[Acc] accs
        cdef vector[Out] outs
        cdef vector[vector[uint32_t]] ties
        if threads < 1:
            threads = 1
        if threads > n:
            threads = max(<int>n, 1)
        batch._seal(now)
        accs.resize(threads)
        outs.resize(n)
        ties.resize(n)
        with nogil:
            self._rdlock()
        try:
            if threads == 1:
                with nogil:
                    for p in range(n):
                        self._score(&batch.pods[p], &accs[0], &outs[p])
                        ties[p].swap(accs[0].ties)
            else:
                for p in prange(n, nogil=True, num_threads=threads, schedule="dynamic",
                                chunksize=16):
                    tid = threadid()
                    self._score(&batch.pods[p], &accs[tid], &outs[p])
                    ties[p].swap(accs[tid].ties)
            # Still under the read lock: the slots cannot have been reused yet.
            result = []
            for p in range(n):
                if outs[p].best < 0:
                    result.append(([], 0, 0, 0))
                else:
                    result.append(([self._objs[s] for s in ties[p]], outs[p].full,
                                   outs[p].covered, outs[p].distance))
            return result
        finally:
            self._unlock()

    def score_one(self, list images, int32_t bar, storage, arch, os, int64_t now):
        """Score one pod (see :meth:`score_batch`), reusing pooled scratch space.

        Returns ``(objs, full, covered, distance, pod_bytes)``.
        """
        cdef _Batch batch
        cdef _Scratch scratch
        cdef Out out
        cdef int64_t pod_bytes
        try:
            scratch = self._pool.pop()
        except IndexError:
            scratch = _Scratch()
        try:
            batch = scratch.batch
            batch._clear()
            pod_bytes = self._encode(batch, images, bar, storage, arch, os)
            batch._seal(now)
            if pthread_rwlock_tryrdlock(&self._lock) == 0:
                # Uncontended: score holding the GIL.  Releasing it for a few
                # microseconds would hand it to any thread waiting for it (a
                # cache watcher applying upserts) and this match would then
                # wait for that thread's next release.
                self._score(&batch.pods[0], &scratch.acc, &out)
            else:
                with nogil:
                    self._rdlock()
                    self._score(&batch.pods[0], &scratch.acc, &out)
            try:
                if out.best < 0:
                    return ([], 0, 0, 0, pod_bytes)
                return ([self._objs[s] for s in scratch.acc.ties], out.full, out.covered,
                        out.distance, pod_bytes)
            finally:
                self._unlock()
        finally:
            self._pool.append(scratch)

    def score_slot(self, int64_t slot, obj, list images):
        """``(full, covered, distance, pod_bytes)`` of the slot holding ``obj``.

        ``None`` when that slot no longer holds ``obj`` (it was replaced).
        """
        cdef _Batch batch = _Batch()
        cdef const Pod* q
        cdef const uint32_t* row
        cdef int32_t i, f = 0
        cdef int64_t cov, dist
        cdef int64_t pod_bytes = self.encode(batch, images, 0, None, None, None)
        batch._seal(0)
        q = &batch.pods[0]
        with nogil:
            self._rdlock()
        try:
            if (slot < 0 or <size_t>slot >= self._alive.size() or not self._alive[slot]
                    or not (self._objs[slot] is obj or self._objs[slot] == obj)):
                return None
            row = self._pair_layer.data() + self._off[slot]
            for i in range(q.n_img):
                if q.img_ok[i] and _contains_all(q.img_layers + q.img_off[i],
                                                 q.img_off[i + 1] - q.img_off[i], row,
                                                 self._len[slot]):
                    f += 1
            cov = _covered(q.layers, q.sizes, q.n_layers, row, self._len[slot])
            dist = self._bytes[slot] - q.pod_bytes
            return (f, cov, dist if dist >= 0 else -dist, pod_bytes)
        finally:
            self._unlock()

    # -- persistence ----------------------------------------------------------

    def to_arrays(self):
        """The live state as NumPy arrays and a key list, slots renumbered densely.

        Only keys some live slot holds are kept.  The objects come back in
        the order of the rows.  Writers are held off: no key is half-published.
        """
        with nogil:
            pthread_mutex_lock(&self._writer)
            self._rdlock()
        try:
            rows = [s for s in range(self._alive.size()) if self._alive[s]]
            used = {}
            keys = []
            lens = np.empty(len(rows), dtype=np.uint32)
            layer_ids = np.empty(self._pairs, dtype=np.uint32)
            at = 0
            for r, s in enumerate(rows):
                off = self._off[s]
                n = self._len[s]
                lens[r] = n
                for i in range(n):
                    old = self._pair_layer[off + i]
                    new = used.get(old)
                    if new is None:
                        new = used[old] = len(keys)
                        keys.append(self._keys[old])
                    layer_ids[at] = new
                    at += 1
            # The images each row lists, as runs of the new layer ids (a run
            # lies inside its row, so every id was renumbered above).
            img_count = np.empty(len(rows), dtype=np.uint32)
            img_lens = []
            img_ids = []
            for r, s in enumerate(rows):
                img_count[r] = self._lists_len[s]
                for j in range(self._lists_off[s], self._lists_off[s] + self._lists_len[s]):
                    run = self._held[self._lists[j]].run
                    img_lens.append(len(run))
                    img_ids.extend(used[lid] for lid in run)
            platforms = sorted(self._platforms, key=self._platforms.get)
            arrays = {
                "img_count": img_count,
                "img_lens": np.array(img_lens, dtype=np.uint32),
                "img_ids": np.array(img_ids, dtype=np.uint32),
                "lens": lens,
                "layer_ids": layer_ids,
                "bytes": np.array([self._bytes[s] for s in rows], dtype=np.int64),
                "created": np.array([self._created[s] for s in rows], dtype=np.int64),
                "expires": np.array([self._expires[s] for s in rows], dtype=np.int64),
                "size_gib": np.array([self._size_gib[s] for s in rows], dtype=np.int32),
                "arch": np.array([self._arch[s] for s in rows], dtype=np.int32),
                "os": np.array([self._os[s] for s in rows], dtype=np.int32),
            }
            return arrays, keys, platforms, [self._objs[s] for s in rows]
        finally:
            self._unlock()
            pthread_mutex_unlock(&self._writer)

    @staticmethod
    def from_arrays(dict arrays, list keys, list platforms, list objs):
        """Rebuild a core from :meth:`to_arrays` output; the postings are rebuilt in C."""
        cdef Core core = Core()
        cdef const uint32_t[::1] lens = arrays["lens"]
        cdef const uint32_t[::1] layer_ids = arrays["layer_ids"]
        cdef const int64_t[::1] nbytes = arrays["bytes"]
        cdef const int64_t[::1] created = arrays["created"]
        cdef const int64_t[::1] expires = arrays["expires"]
        cdef const int32_t[::1] size_gib = arrays["size_gib"]
        cdef const int32_t[::1] arch = arrays["arch"]
        cdef const int32_t[::1] os = arrays["os"]
        cdef Py_ssize_t n = lens.shape[0]
        cdef Py_ssize_t s
        cdef int64_t off = 0, i
        cdef uint32_t lid
        if len(objs) != n or layer_ids.shape[0] != int(np.sum(lens, dtype=np.int64)):
            raise ValueError("snapshot arrays disagree in length")
        if n and layer_ids.shape[0] and int(np.max(layer_ids)) >= len(keys):
            raise ValueError("snapshot names a layer id past its key table")
        core._keys = list(keys)
        core._ids = {k: i for i, k in enumerate(keys)}
        if len(core._ids) != len(keys):
            raise ValueError("snapshot key table has duplicates")
        core._platforms = {p: i + 1 for i, p in enumerate(platforms)}
        core._objs = list(objs)
        core._post.resize(len(keys))
        core._pair_layer.assign(&layer_ids[0] if layer_ids.shape[0] else NULL,
                                (&layer_ids[0] if layer_ids.shape[0] else NULL)
                                + layer_ids.shape[0])
        core._pair_pos.resize(layer_ids.shape[0])
        core._alive.assign(n, 1)
        core._off.resize(n)
        core._len.resize(n)
        core._bytes.resize(n)
        core._created.resize(n)
        core._expires.resize(n)
        core._size_gib.resize(n)
        core._arch.resize(n)
        core._os.resize(n)
        cdef vector[uint32_t] counts
        cdef bint duplicate = False
        counts.resize(len(keys), 0)
        with nogil:
            # Rows must be sorted sets of layer ids, whatever order the file gave.
            for s in range(n):
                sort(core._pair_layer.begin() + off, core._pair_layer.begin() + off + lens[s])
                for i in range(off + 1, off + lens[s]):
                    if core._pair_layer[i] == core._pair_layer[i - 1]:
                        duplicate = True
                off += lens[s]
            off = 0
        if duplicate:
            raise ValueError("a snapshot row lists a layer twice")
        with nogil:
            # Size every posting list first: one allocation each, no regrowth.
            for i in range(layer_ids.shape[0]):
                counts[layer_ids[i]] += 1
            for i in range(<int64_t>counts.size()):
                core._post[i].reserve(counts[i])
            for s in range(n):
                core._off[s] = off
                core._len[s] = lens[s]
                core._bytes[s] = nbytes[s]
                core._created[s] = created[s]
                core._expires[s] = expires[s]
                core._size_gib[s] = size_gib[s]
                core._arch[s] = arch[s]
                core._os[s] = os[s]
                for i in range(off, off + lens[s]):
                    lid = core._pair_layer[i]
                    core._pair_pos[i] = core._post[lid].size()
                    core._post[lid].push_back(<uint32_t>s)
                off += lens[s]
        core._live = n
        core._pairs = off
        core._anchored.assign(len(keys), NOWHERE)
        core._lists_off.resize(n)
        core._lists_len.resize(n)
        cdef const uint32_t[::1] img_count = arrays["img_count"]
        cdef const uint32_t[::1] img_lens = arrays["img_lens"]
        cdef const uint32_t[::1] img_ids = arrays["img_ids"]
        cdef vector[uint32_t] run
        cdef int64_t listed, at = 0, lens_at = 0
        if (img_count.shape[0] != n
                or img_lens.shape[0] != int(np.sum(img_count, dtype=np.int64))
                or img_ids.shape[0] != int(np.sum(img_lens, dtype=np.int64))):
            raise ValueError("snapshot image runs disagree in length")
        if img_ids.shape[0] and int(np.max(img_ids)) >= len(keys):
            raise ValueError("snapshot image run names a layer id past its key table")
        with nogil:
            # Every row is in place, so each image's holders are found at once.
            for s in range(n):
                core._lists_off[s] = core._lists.size()
                for listed in range(lens_at, lens_at + img_count[s]):
                    run.assign(&img_ids[at], &img_ids[at] + img_lens[listed])
                    at += img_lens[listed]
                    sort(run.begin(), run.end())
                    run.erase(unique(run.begin(), run.end()), run.end())
                    core._list_run(run.data(), run.size(),
                                   _fingerprint(run.data(), run.size()), True)
                core._lists_len[s] = core._lists.size() - core._lists_off[s]
                lens_at += img_count[s]
        return core


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= <uint64_t>0xFF51AFD7ED558CCD
    h ^= h >> 33
    return h


cdef inline bint _same_items(list a, list b):
    cdef Py_ssize_t k
    if len(a) != len(b):
        return False
    for k in range(len(a)):
        if a[k] is not b[k]:
            return False
    return True


def replicas(list pods, list policies):
    """Group replicas: pods whose policy and images are the same objects, in order.

    ``pods`` is a list of lists, ``policies`` a list as long.  Returns
    ``(owner, firsts)``: pod ``i`` is in group ``owner[i]``, whose first pod
    is ``firsts[owner[i]]``.  A Deployment's replicas share their image and
    policy objects, so a caller matches each group once.
    """
    cdef Py_ssize_t n = len(pods), i, k
    cdef unordered_map[uint64_t, uint32_t] table
    cdef unordered_map[uint64_t, uint32_t].iterator it
    cdef uint64_t h
    cdef uint32_t g
    cdef list pod, owner = [], firsts = []
    if len(policies) != n:
        raise ValueError("replicas: pods and policies differ in length")
    for i in range(n):
        pod = <list>pods[i]
        policy = policies[i]
        h = _mix(<uint64_t><size_t><void*>policy)
        for k in range(len(pod)):
            h = _mix(h ^ <uint64_t><size_t><void*>pod[k])
        while True:
            it = table.find(h)
            if it == table.end():
                g = len(firsts)
                table[h] = g
                firsts.append(i)
                break
            g = deref(it).second
            if policies[firsts[g]] is policy and _same_items(pods[firsts[g]], pod):
                break
            h += 1  # another group has this fingerprint: look on
        owner.append(g)
    return owner, firsts


cdef class _Scratch:
    """Pooled scratch space for one-pod matches from Python threads."""

    cdef Acc acc
    cdef _Batch batch

    def __cinit__(self):
        self.batch = _Batch()
