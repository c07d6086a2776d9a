# Prototypes for sharing: the types and the layout of the compiled core
# (``_core.pyx`` and its ``.pxi`` parts), apart from its implementation, so
# that another Cython module can ``cimport fastmatch._core`` without reading it.

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
    int pthread_rwlock_trywrlock(pthread_rwlock_t* lock)
    int pthread_rwlock_unlock(pthread_rwlock_t* lock)
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_trylock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)


cdef enum Strategy:
    # How the scoring kernel finds a pod image's holders (see _strategy.pxi).
    AUTO  # by cost: held lists, then probing or counting, whichever reads less
    PROBE  # always probe the rarest layer's slots; covered by merging rows (tests)
    COUNT  # always count over the posting lists, walking them for covered (tests)


cdef struct ScoreScratch:
    # Per-thread scratch space of the scoring kernel, indexed by slot;
    # ``stamp[s] == epoch`` marks the slots touched by the current pod, so
    # nothing is cleared between pods.
    vector[uint32_t] stamp  # by slot: the epoch of the pod that last touched it
    vector[uint16_t] full  # by slot: pod images it holds fully, or UNUSABLE
    vector[int64_t] cov  # by slot: bytes of the pod's layers it holds
    vector[uint32_t] touched  # the slots touched by this pod, in order of first touch
    vector[uint32_t] ties  # the slots tied for best so far (the caller breaks the tie)
    uint32_t epoch  # the current pod's stamp
    vector[uint32_t] istamp  # by slot: the image epoch that last counted it
    vector[uint16_t] icount  # by slot: layers of the current image it holds
    uint32_t iepoch  # the current image's stamp (counting one image's layers)
    vector[uint32_t] held  # by pod image: the held image with its layers, or NOWHERE
    vector[uint32_t] cursor  # by pod image: the position reached in its holder list


cdef struct Best:
    # The best candidate of a pod so far (SPEC §3.6).
    int64_t slot  # its slot, or -1 when no cache is eligible yet
    int32_t full  # pod images it holds fully
    int64_t covered  # bytes of the pod's known layers it holds
    int64_t distance  # |its bytes - the pod's bytes|


cdef struct Pod:
    # One pod, encoded: pointers into its _Batch's flat arrays.
    const uint32_t* layers  # its distinct known layer ids, sorted
    const int64_t* sizes  # their sizes, in the order of ``layers``
    int32_t n_layers  # how many known layers
    const uint32_t* img_layers  # every image's sorted layer ids, back to back
    const int64_t* img_off  # image i's run is img_layers[img_off[i]:img_off[i + 1]]
    const uint8_t* img_ok  # 0 when image i has a layer no cache holds (never full)
    const uint64_t* img_hash  # image i's fingerprint (0 when not ok)
    int32_t n_img  # how many images
    int64_t pod_bytes  # bytes of all its distinct layers, known or not
    int32_t bar  # images a cache must hold fully to be eligible (0: any shared bytes)
    double storage  # the largest cache size allowed in GiB, or -1 for any
    int32_t arch  # platform code of its architecture: 0 any, -1 one no cache has
    int32_t os  # platform code of its OS, likewise
    int64_t now  # the time of the match, in microseconds


cdef struct Known:
    # A layer id with its size, as a pod's image gives it.
    uint32_t lid  # the interned layer id
    int64_t size  # its size in bytes


cdef struct Staged:
    # A cache being added: what the Python half prepared for the C half.
    vector[uint32_t] row  # its distinct layer ids, sorted
    vector[uint32_t] merged  # scratch for building the row
    vector[uint32_t] img_layers  # the images it lists, as sorted runs back to back
    vector[uint32_t] img_off  # run j is img_layers[img_off[j]:img_off[j + 1]]
    vector[uint64_t] img_hash  # run j's fingerprint
    uint32_t slot  # the slot it goes into
    uint32_t n_keys  # how many keys are interned once its new ones are
    int32_t arch  # platform code of its architecture (0 any)
    int32_t os  # platform code of its OS (0 any)


cdef extern from *:
    """
    #include <stdint.h>
    #include <vector>

    /* Numbers by the address of a Python object (its identity while it is alive): an
       open-addressing table, one probe for most lookups and no allocation per entry. */
    struct fastmatch_address_map {
        std::vector<const void *> keys;  /* NULL: an empty spot */
        std::vector<int64_t> values;
        size_t used = 0;
        int shift = 64;  /* 64 - log2 of the capacity */

        size_t spot(const void *key) const {
            return (size_t)(((uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull) >> shift);
        }
        /* The number of key, or NULL when it has none. */
        int64_t *find(const void *key) {
            if (!used) return NULL;
            size_t mask = keys.size() - 1;
            for (size_t i = spot(key);; i = (i + 1) & mask) {
                if (keys[i] == key) return &values[i];
                if (keys[i] == NULL) return NULL;
            }
        }
        /* Give key (not NULL, not in the map) its number. */
        void put(const void *key, int64_t value) {
            if (2 * (used + 1) > keys.size()) grow();
            size_t mask = keys.size() - 1, i = spot(key);
            while (keys[i] != NULL) i = (i + 1) & mask;
            keys[i] = key;
            values[i] = value;
            used++;
        }
        void grow() {
            std::vector<const void *> old_keys(keys.empty() ? 64 : 2 * keys.size(), NULL);
            std::vector<int64_t> old_values(old_keys.size());
            old_keys.swap(keys);
            old_values.swap(values);
            shift = 64 - __builtin_ctzll(keys.size());
            used = 0;
            for (size_t i = 0; i < old_keys.size(); i++)
                if (old_keys[i] != NULL) put(old_keys[i], old_values[i]);
        }
    };
    """
    cppclass AddressMap "fastmatch_address_map":
        # Numbers by the address of a Python object: its identity while it is alive.
        int64_t* find(const void* key)  # NULL when it has none
        void put(const void* key, int64_t value)  # a key not in the map yet


ctypedef void* Address  # a Python object's address: its identity while it is alive


cdef struct Bulk:
    # A bulk build's scratch (_build).  Slots whose keys and images are the same
    # tuples (caches listing one image set) form a *group*, made at its first slot:
    # they share one row, its runs and its held images.
    AddressMap lid_of  # key object -> its layer id (kept alive)
    vector[uint32_t] runs  # every distinct image object's sorted run, back to back
    vector[int64_t] run_off  # run r is runs[run_off[r]:run_off[r + 1]]
    vector[uint64_t] run_hash  # run r's fingerprint
    AddressMap run_of  # image object -> its run, or -1 (no keys)
    AddressMap by_images  # images tuple -> its first group
    vector[Address] keys  # by group: its keys tuple (NULL when not one)
    vector[uint32_t] rows  # every group's row, back to back
    vector[int64_t] row_off  # group g's row is rows[row_off[g]:row_off[g + 1]]
    vector[uint32_t] lists  # every group's runs, in listing order (CSR, list_off)
    vector[int64_t] list_off  # group g lists lists[list_off[g]:list_off[g + 1]]
    vector[uint32_t] held  # every group's held images, by listing (CSR, held_off)
    vector[int64_t] held_off  # by group: where its held images start (-1: not yet)
    vector[uint32_t] held_len  # by group: how many images it holds by listing
    vector[uint32_t] group  # by slot: its group
    vector[uint32_t] stamp  # by group: 1 + the held image last checked against its row
    vector[uint8_t] holds  # by group: whether its row holds that image
    vector[uint32_t] scratch  # a row being merged, or an image's holders being found


cdef struct Held:
    # An image some cache lists, kept exact through every write.
    vector[uint32_t] run  # its sorted layer ids
    vector[uint32_t] holders  # every live slot that holds all of them, sorted
    uint64_t hash  # the fingerprint of ``run``
    uint32_t listed  # how many slots list it (unlisted images are dropped in sweeps)
    uint32_t anchor  # a layer of the run: a slot holds it only if it holds that layer
    uint32_t next  # the next image anchored at the same layer, or NOWHERE


@cython.final
cdef class Core:
    cdef pthread_rwlock_t _lock  # readers (matches) share it; writes take it alone
    cdef pthread_mutex_t _writer  # serializes writers; readers never take it
    cdef dict _ids  # key -> layer id, for the published keys
    cdef dict _encoded  # id(pod image's dict) -> _Encoded, for images seen before
    cdef list _keys  # layer id -> key
    cdef vector[vector[uint32_t]] _post  # by layer id: the live slots holding it
    cdef vector[uint32_t] _pair_layer  # every slot's sorted layer ids (CSR, _off/_len)
    cdef vector[uint32_t] _pair_pos  # by pair: its position in its layer's posting list
    cdef vector[int64_t] _off  # by slot: where its row starts in _pair_layer
    cdef vector[uint32_t] _len  # by slot: its row's length (0 when free)
    cdef int64_t _garbage  # pairs of removed slots still in _pair_layer
    cdef int64_t _pairs  # live (slot, layer) pairs
    cdef vector[uint8_t] _alive  # by slot: 1 when it holds a cache
    cdef vector[int64_t] _bytes  # by slot: the cache's bytes
    cdef vector[int64_t] _created  # by slot: its creation time, in microseconds
    cdef vector[int64_t] _expires  # by slot: its expiry in microseconds, or NEVER
    cdef vector[int32_t] _size_gib  # by slot: its size in GiB
    cdef vector[int32_t] _arch  # by slot: its architecture's platform code (0 any)
    cdef vector[int32_t] _os  # by slot: its OS's platform code (0 any)
    cdef vector[uint32_t] _free  # free slots, reused last freed first
    cdef Staged _staged  # a writer's scratch, reused (writers hold _writer)
    cdef vector[Held] _held  # held images, by image number
    cdef vector[uint32_t] _held_free  # free image numbers
    cdef int64_t _unlisted  # held images no slot lists (kept until they are many)
    cdef unordered_map[uint64_t, uint32_t] _held_by_hash  # fingerprint -> image number
    cdef vector[uint32_t] _anchored  # by layer id: the first image anchored there
    cdef vector[uint32_t] _lists  # by slot (CSR): the images the slot lists
    cdef vector[int64_t] _lists_off  # by slot: where its images start in _lists
    cdef vector[uint32_t] _lists_len  # by slot: how many images it lists
    cdef list _objs  # by slot: the caller's object (None when free)
    cdef dict _platforms  # platform name -> code (from 1)
    cdef list _pool  # _MatchScratch objects for one-pod matches, reused
    cdef Py_ssize_t _live  # live slots
    cdef Strategy _strategy  # how candidates are found (AUTO but in tests)

    cdef void _rdlock(self) noexcept nogil
    cdef void _wrlock(self) noexcept nogil
    cdef void _unlock(self) noexcept nogil
