# Declarations of the compiled core, apart from its implementation, so that
# another Cython module can ``cimport fastmatch._core`` without reading it.

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_rwlock_t:
        pass
    int pthread_rwlock_init(pthread_rwlock_t* lock, const void* attr)
    int pthread_rwlock_destroy(pthread_rwlock_t* lock)
    int pthread_rwlock_rdlock(pthread_rwlock_t* lock)
    int pthread_rwlock_tryrdlock(pthread_rwlock_t* lock)
    int pthread_rwlock_wrlock(pthread_rwlock_t* lock)
    int pthread_rwlock_unlock(pthread_rwlock_t* lock)
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)


cdef struct Acc:
    # Per-thread scratch space, indexed by slot; ``stamp[s] == epoch`` marks
    # the slots touched by the current pod, so nothing is cleared between pods.
    vector[uint32_t] stamp
    vector[uint16_t] full
    vector[int64_t] cov
    vector[uint32_t] touched
    vector[uint32_t] ties
    uint32_t epoch
    # A second stamp for counting one image's layers per slot.
    vector[uint32_t] istamp
    vector[uint16_t] icount
    uint32_t iepoch
    # Per pod image: the listed image with its layers (or NOWHERE), a cursor.
    vector[uint32_t] held
    vector[uint32_t] cursor


cdef struct Pod:
    # One pod, encoded: its distinct known layer ids (sorted) with their sizes,
    # and its images as runs of layer ids (``img_ok[i]`` is 0 when image i has
    # a layer no cache holds, so it can never be fully cached).
    const uint32_t* layers
    const int64_t* sizes
    int32_t n_layers
    const uint32_t* img_layers
    const int64_t* img_off
    const uint8_t* img_ok
    const uint64_t* img_hash
    int32_t n_img
    int64_t pod_bytes
    int32_t bar
    double storage
    int32_t arch
    int32_t os
    int64_t now


cdef struct Known:
    # A layer id with its size, as a pod's image gives it.
    uint32_t lid
    int64_t size


cdef struct Staged:
    # A cache being added: what the Python half prepared for the C half: its
    # distinct layer ids (sorted), and the images it lists as sorted runs.
    vector[uint32_t] row
    vector[uint32_t] merged  # scratch for building the row
    vector[uint32_t] img_layers
    vector[uint32_t] img_off
    vector[uint64_t] img_hash
    uint32_t slot
    uint32_t n_keys
    int32_t arch
    int32_t os


cdef struct Held:
    # An image some cache lists: its sorted layer ids, and every live slot
    # that holds all of them (sorted), kept exact through every write.
    vector[uint32_t] run
    vector[uint32_t] holders
    uint64_t hash
    uint32_t listed  # how many slots list it (unlisted images are dropped in sweeps)
    uint32_t anchor  # a layer of the run: a slot holds it only if it holds that layer
    uint32_t next  # the next image anchored at the same layer, or NOWHERE


cdef struct Out:
    int64_t best
    int32_t full
    int64_t covered
    int64_t distance


@cython.final
cdef class Core:
    cdef pthread_rwlock_t _lock
    cdef pthread_mutex_t _writer  # serializes writers; readers never take it
    cdef dict _ids
    cdef dict _encoded  # id(pod image's dict) -> _Encoded, for images seen before
    cdef list _keys
    cdef vector[vector[uint32_t]] _post
    cdef vector[uint32_t] _pair_layer
    cdef vector[uint32_t] _pair_pos
    cdef vector[int64_t] _off
    cdef vector[uint32_t] _len
    cdef int64_t _garbage
    cdef int64_t _pairs
    cdef vector[uint8_t] _alive
    cdef vector[int64_t] _bytes
    cdef vector[int64_t] _created
    cdef vector[int64_t] _expires
    cdef vector[int32_t] _size_gib
    cdef vector[int32_t] _arch
    cdef vector[int32_t] _os
    cdef vector[uint32_t] _free
    cdef Staged _staged  # a writer's scratch, reused (writers hold _writer)
    cdef vector[Held] _held
    cdef vector[uint32_t] _held_free
    cdef int64_t _unlisted  # held images no slot lists (kept until they are many)
    cdef unordered_map[uint64_t, uint32_t] _held_by_hash
    cdef vector[uint32_t] _anchored  # by layer id: the first image anchored there
    cdef vector[uint32_t] _lists  # by slot (CSR): the images the slot lists
    cdef vector[int64_t] _lists_off
    cdef vector[uint32_t] _lists_len
    cdef list _objs
    cdef dict _platforms
    cdef list _pool
    cdef Py_ssize_t _live
    cdef int _strategy

    cdef void _rdlock(self) noexcept nogil
    cdef void _wrlock(self) noexcept nogil
    cdef void _unlock(self) noexcept nogil
    cdef int32_t _platform(self, object name, bint create)
    cdef uint32_t _intern(self, object key, list new_keys, dict fresh, uint32_t next_id)
    cdef int64_t _stage(self, object obj, object keys, object images, object arch,
                        object os, list new_keys, Staged* st) except -1
    cdef void _insert_locked(self, Staged* st, int64_t nbytes, int64_t created,
                             int64_t expires, int32_t size_gib) noexcept nogil
    cdef void _publish(self, list new_keys)
    cdef void _remove_locked(self, uint32_t slot) noexcept nogil
    cdef void _compact_locked(self) noexcept nogil
    cdef uint32_t _find_held(self, const uint32_t* run, int64_t k, uint64_t h) noexcept nogil
    cdef uint32_t _new_held(self, const uint32_t* run, int64_t k, uint64_t h,
                            bint place) noexcept nogil
    cdef void _place_held(self, uint32_t e) noexcept nogil
    cdef void _drop_held(self, uint32_t e) noexcept nogil
    cdef void _list_run(self, const uint32_t* run, int64_t k, uint64_t h,
                        bint place) noexcept nogil
    cdef void _list_images(self, Staged* st) noexcept nogil
    cdef inline bint _lists_it(self, uint32_t slot, uint32_t e) noexcept nogil
    cdef void _hold(self, uint32_t slot) noexcept nogil
    cdef void _unhold(self, uint32_t slot) noexcept nogil
    cdef void _remember(self, object image, vector[Known]* known, uint64_t h)
    cdef int64_t _encode(self, object into, list images, int32_t bar, object storage,
                         object arch, object os) except? -1
    cdef bint _usable(self, uint32_t slot, const Pod* q) noexcept nogil
    cdef void _score(self, const Pod* q, Acc* a, Out* o) noexcept nogil
    cdef void _consider(self, uint32_t s, int32_t f, int64_t cov, const Pod* q, Acc* a,
                        Out* o) noexcept nogil
    cdef void _full_by_probing(self, const Pod* q, int32_t i, Acc* a) noexcept nogil
    cdef void _full_by_counting(self, const Pod* q, int32_t i, Acc* a) noexcept nogil
    cdef void _full_by_holders(self, const Pod* q, uint32_t e, Acc* a) noexcept nogil
    cdef bint _all_full(self, const Pod* q, const uint32_t* held, int64_t known, Acc* a,
                        Out* o) noexcept nogil
    cdef inline bint _touch(self, uint32_t s, const Pod* q, Acc* a) noexcept nogil
    cdef uint32_t _log_segment(self) noexcept nogil
