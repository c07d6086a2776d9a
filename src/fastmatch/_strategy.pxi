# How the scoring kernel finds candidates: the cost of each way, in the
# number of entries it reads, and the choice between them (Strategy, in
# _core.pxd).  Included by _core.pyx, before the kernel that uses them.
#
# The slots holding a pod image fully, when no held list has them ready:
#
# - probe: read the posting list of the image's rarest layer and look for
#   the image's k layers in each of those slots' rows, by galloping searches
#   that start with a binary search over the row (log_seg steps, the log of
#   the mean row length): about rarest * (k + log_seg) reads.  The way when
#   one layer is rare, however common the others are.
# - count: read the posting list of every layer of the image, counting hits
#   per slot; a slot with k hits holds the image: the sum of those lists'
#   lengths.  The way when every layer is common, as probing would then
#   search nearly as many rows as counting reads entries, each search many
#   reads.
#
# The bytes each candidate covers, when no candidate holds every image:
#
# - merge: walk each eligible slot's row against the pod's sorted layers:
#   about eligible * (n_layers + log_seg) reads.
# - walk: read the posting list of every layer of the pod once, adding its
#   size to the slots touched: the sum of those lists' lengths.  The way when
#   many slots are eligible and the pod's layers are rare.
#
# The held lists (AUTO only) cost nothing to find: a fingerprint lookup.
# PROBE and COUNT force one way throughout, so that tests compare them.


cdef uint32_t _log_segment(Core core) noexcept nogil:
    # log2 of the mean layers per slot: the cost of one binary search.
    cdef int64_t mean = core._pairs // core._live if core._live > 0 else 1
    cdef uint32_t bits = 1
    while mean > 1:
        mean >>= 1
        bits += 1
    return bits


cdef inline uint32_t _rarest_layer(Core core, const uint32_t* run, int64_t k,
                                   int64_t* count_cost) noexcept nogil:
    # The layer of ``run`` (k >= 1 ids) with the shortest posting list, the
    # first one on a tie; ``count_cost`` gets the cost of counting: the sum
    # of the lengths of every layer's posting list.
    cdef uint32_t r = run[0]
    cdef int64_t i, total = 0
    cdef size_t n
    for i in range(k):
        n = core._post[run[i]].size()
        total += n
        if n < core._post[r].size():
            r = run[i]
    count_cost[0] = total
    return r


cdef inline int64_t _probe_cost(size_t rarest, int64_t k, uint32_t log_seg) noexcept nogil:
    # Probing ``rarest`` slots' rows for an image of k layers.
    return <int64_t>rarest * (k + log_seg)


cdef inline int64_t _merge_cost(int64_t eligible, int32_t n_layers,
                                uint32_t log_seg) noexcept nogil:
    # Merging ``eligible`` slots' rows with a pod of n_layers known layers.
    return eligible * (n_layers + log_seg)


cdef inline int64_t _walk_cost(Core core, const Pod* q) noexcept nogil:
    # Walking the posting list of every known layer of the pod.
    cdef int64_t total = 0
    cdef int32_t j
    for j in range(q.n_layers):
        total += core._post[q.layers[j]].size()
    return total


cdef inline bint _prefer_probing(Strategy strategy, int64_t probe_cost,
                                 int64_t count_cost) noexcept nogil:
    # Probe (True) or count (False) for one image's holders.
    if strategy == PROBE:
        return True
    if strategy == COUNT:
        return False
    return probe_cost <= count_cost


cdef inline bint _prefer_walking(Strategy strategy, int64_t walk_cost,
                                 int64_t merge_cost) noexcept nogil:
    # Walk the pod's posting lists (True) or merge rows (False) for covered.
    if strategy == COUNT:
        return True
    if strategy == PROBE:
        return False
    return walk_cost < merge_cost
