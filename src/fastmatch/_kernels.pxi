# The merge kernels of the core: searches and walks over sorted runs of
# layer ids, and the fingerprint that finds a run among the held images.
# Included by _core.pyx; every function here is inline.


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
