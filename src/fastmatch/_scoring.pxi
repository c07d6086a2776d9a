# Scoring (SPEC §3.4-3.6): the kernel that finds a pod's best caches, run
# under the read lock without the GIL, and the readers that call it for a
# batch of pods, for one pod, or for one slot.  Included by _core.pyx; the
# functions take the core as their first argument.


cdef inline void _prepare(ScoreScratch* sc, size_t capacity) noexcept nogil:
    # Ready the scratch for a new pod: room for every slot, a fresh epoch.
    if sc.stamp.size() < capacity:
        sc.stamp.resize(capacity, 0)
        sc.full.resize(capacity, 0)
        sc.cov.resize(capacity, 0)
        sc.istamp.resize(capacity, 0)
        sc.icount.resize(capacity, 0)
    sc.epoch += 1
    if sc.epoch == 0:  # wrapped: forget every old stamp
        for i in range(sc.stamp.size()):
            sc.stamp[i] = 0
        sc.epoch = 1
    sc.touched.clear()
    sc.ties.clear()


cdef inline bint _usable(Core core, uint32_t s, const Pod* q) noexcept nogil:
    # May the pod use slot s at all: live, unexpired, small enough, its platform?
    if not core._alive[s] or core._expires[s] <= q.now:
        return False
    if q.storage >= 0 and core._size_gib[s] > q.storage:
        return False
    if q.arch != 0 and core._arch[s] != 0 and q.arch != core._arch[s]:
        return False
    return not (q.os != 0 and core._os[s] != 0 and q.os != core._os[s])


cdef void _consider(Core core, uint32_t s, int32_t f, int64_t cov, const Pod* q,
                    ScoreScratch* sc, Best* best) noexcept nogil:
    # SPEC §3.6: full desc, covered desc, distance asc, created desc; exact
    # ties (left to the id) are collected for the caller.
    cdef int64_t dist = core._bytes[s] - q.pod_bytes
    cdef int c
    if dist < 0:
        dist = -dist
    if best.slot < 0:
        c = 1
    elif f != best.full:
        c = 1 if f > best.full else -1
    elif cov != best.covered:
        c = 1 if cov > best.covered else -1
    elif dist != best.distance:
        c = 1 if dist < best.distance else -1
    elif core._created[s] != core._created[best.slot]:
        c = 1 if core._created[s] > core._created[best.slot] else -1
    else:
        c = 0
    if c > 0:
        best.slot = s
        best.full = f
        best.covered = cov
        best.distance = dist
        sc.ties.clear()
        sc.ties.push_back(s)
    elif c == 0:
        sc.ties.push_back(s)


cdef inline bint _touch(Core core, uint32_t s, const Pod* q, ScoreScratch* sc) noexcept nogil:
    # First sight of slot s for this pod: note it, and whether it is usable.
    if sc.stamp[s] != sc.epoch:
        sc.stamp[s] = sc.epoch
        sc.touched.push_back(s)
        sc.full[s] = 0 if _usable(core, s, q) else UNUSABLE
    return sc.full[s] != UNUSABLE


cdef void _full_by_probing(Core core, const Pod* q, int32_t i, uint32_t r,
                           ScoreScratch* sc) noexcept nogil:
    # Slots holding image i all lie in the posting list of its rarest layer
    # r: probe each of them for the image's other layers.
    cdef int64_t k0 = q.img_off[i], k1 = q.img_off[i + 1]
    cdef uint32_t s
    cdef size_t t
    cdef const vector[uint32_t]* post = &core._post[r]
    cdef const uint32_t* pl = core._pair_layer.data()
    for t in range(post.size()):
        s = post[0][t]
        if _touch(core, s, q, sc) and _contains_all(
                q.img_layers + k0, k1 - k0, pl + core._off[s], core._len[s]):
            sc.full[s] += 1


cdef void _full_by_counting(Core core, const Pod* q, int32_t i, ScoreScratch* sc) noexcept nogil:
    # Count, per slot, the layers of image i it holds by reading their
    # posting lists; a slot holding all of them holds the image.
    cdef int64_t k, k0 = q.img_off[i], k1 = q.img_off[i + 1]
    cdef uint16_t need = <uint16_t>(k1 - k0)
    cdef uint32_t s
    cdef size_t t
    cdef const vector[uint32_t]* post
    sc.iepoch += 1
    if sc.iepoch == 0:
        for t in range(sc.istamp.size()):
            sc.istamp[t] = 0
        sc.iepoch = 1
    for k in range(k0, k1):
        post = &core._post[q.img_layers[k]]
        for t in range(post.size()):
            s = post[0][t]
            if sc.istamp[s] != sc.iepoch:
                sc.istamp[s] = sc.iepoch
                sc.icount[s] = 0
            sc.icount[s] += 1
            if sc.icount[s] == need and _touch(core, s, q, sc):
                sc.full[s] += 1


cdef void _full_by_holders(Core core, const Pod* q, uint32_t e, ScoreScratch* sc) noexcept nogil:
    # A listed image: its holders are known.
    cdef const vector[uint32_t]* holders = &core._held[e].holders
    cdef size_t t
    cdef uint32_t s
    for t in range(holders.size()):
        s = holders[0][t]
        if _touch(core, s, q, sc):
            sc.full[s] += 1


cdef bint _all_full(Core core, const Pod* q, const uint32_t* held, int64_t known,
                    ScoreScratch* sc, Best* best) noexcept nogil:
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
        if core._held[held[i]].holders.size() < core._held[held[d]].holders.size():
            d = i
    if sc.cursor.size() < <size_t>q.n_img:
        sc.cursor.resize(q.n_img)
    for i in range(q.n_img):
        sc.cursor[i] = 0
    h = &core._held[held[d]].holders
    for t in range(h.size()):
        s = h[0][t]
        everywhere = True
        for i in range(q.n_img):
            if i == d:
                continue
            j = _gallop(core._held[held[i]].holders.data(), sc.cursor[i],
                        core._held[held[i]].holders.size(), s)
            sc.cursor[i] = j
            if j == core._held[held[i]].holders.size():
                return best.slot >= 0  # a list ran out: no later slot holds them all
            if core._held[held[i]].holders[j] != s:
                everywhere = False
                break
        if everywhere and _usable(core, s, q):
            _consider(core, s, q.n_img, known, q, sc, best)
    return best.slot >= 0


cdef void _score(Core core, const Pod* q, ScoreScratch* sc, Best* best) noexcept nogil:
    # The kernel: the pod's best caches into ``best`` and ``sc.ties``.
    cdef int64_t known = 0
    cdef int32_t j
    best.slot = -1
    best.full = 0
    best.covered = 0
    best.distance = 0
    _prepare(sc, core._alive.size())
    for j in range(q.n_layers):
        known += q.sizes[j]
    if q.bar > 0:
        _score_by_bar(core, q, known, sc, best)
    else:
        _score_partial(core, q, sc, best)


cdef void _score_by_bar(Core core, const Pod* q, int64_t known, ScoreScratch* sc,
                        Best* best) noexcept nogil:
    # A bar of images to hold fully: find each image's holders (held lists,
    # probing or counting), then rank the slots holding the most images.
    cdef int32_t i, possible = 0, listed = 0
    cdef int64_t k0, k1, count_cost
    cdef uint32_t s, r
    cdef size_t t
    cdef uint32_t log_seg = _log_segment(core)
    cdef const vector[uint32_t]* post
    cdef const uint32_t* pl = core._pair_layer.data()
    for i in range(q.n_img):
        possible += q.img_ok[i]
    if possible < q.bar or possible == 0:
        return
    if sc.held.size() < <size_t>q.n_img:
        sc.held.resize(q.n_img)
    for i in range(q.n_img):
        sc.held[i] = NOWHERE
        if q.img_ok[i] and core._strategy == AUTO:
            sc.held[i] = _find_held(core, q.img_layers + q.img_off[i],
                                    q.img_off[i + 1] - q.img_off[i], q.img_hash[i])
            listed += sc.held[i] != NOWHERE
    if listed == q.n_img:
        if q.n_img == 1:
            # One listed image (most pods): its usable holders are the
            # eligible caches, each with every byte of the pod.
            post = &core._held[sc.held[0]].holders
            for t in range(post.size()):
                s = post[0][t]
                if _usable(core, s, q):
                    _consider(core, s, 1, known, q, sc, best)
            return
        # SPEC 3.6 orders by full first: any slot holding every image wins.
        if _all_full(core, q, sc.held.data(), known, sc, best) or q.bar == q.n_img:
            return
    if q.n_img == 1:
        # One image (most pods): the slots holding it are the eligible
        # ones, each with every byte of the pod; when probing its rarest
        # layer is the cheaper way, no accumulators are needed at all.
        k0 = q.img_off[0]
        k1 = q.img_off[1]
        r = _rarest_layer(core, q.img_layers + k0, k1 - k0, &count_cost)
        if _prefer_probing(core._strategy, _probe_cost(core._post[r].size(), k1 - k0, log_seg),
                           count_cost):
            post = &core._post[r]
            for t in range(post.size()):
                s = post[0][t]
                if _usable(core, s, q) and _contains_all(
                        q.img_layers + k0, k1 - k0, pl + core._off[s], core._len[s]):
                    _consider(core, s, 1, known, q, sc, best)
            return
    for i in range(q.n_img):
        if not q.img_ok[i]:
            continue
        if sc.held[i] != NOWHERE:
            _full_by_holders(core, q, sc.held[i], sc)
            continue
        k0 = q.img_off[i]
        k1 = q.img_off[i + 1]
        r = _rarest_layer(core, q.img_layers + k0, k1 - k0, &count_cost)
        if _prefer_probing(core._strategy, _probe_cost(core._post[r].size(), k1 - k0, log_seg),
                           count_cost):
            _full_by_probing(core, q, i, r, sc)
        else:
            _full_by_counting(core, q, i, sc)
    _rank_most_full(core, q, known, log_seg, sc, best)


cdef void _rank_most_full(Core core, const Pod* q, int64_t known, uint32_t log_seg,
                          ScoreScratch* sc, Best* best) noexcept nogil:
    # SPEC 3.6 orders by full first: only the touched slots with the most
    # full images (if they clear the bar) can be chosen, so only they are
    # scored further, by the bytes they cover.
    cdef int32_t j, f, best_f = 0
    cdef int64_t cov, eligible = 0
    cdef uint32_t s
    cdef size_t t
    cdef const vector[uint32_t]* post
    cdef const uint32_t* pl = core._pair_layer.data()
    for t in range(sc.touched.size()):
        f = sc.full[sc.touched[t]]
        if f != UNUSABLE and f > best_f:
            best_f = f
    if best_f < q.bar or best_f == 0:
        return
    if best_f == q.n_img:
        # Every image full: every layer of the pod is held.
        for t in range(sc.touched.size()):
            s = sc.touched[t]
            if sc.full[s] == best_f:
                _consider(core, s, best_f, known, q, sc, best)
        return
    for t in range(sc.touched.size()):
        if sc.full[sc.touched[t]] == best_f:
            eligible += 1
    if _prefer_walking(core._strategy, _walk_cost(core, q),
                       _merge_cost(eligible, q.n_layers, log_seg)):
        for t in range(sc.touched.size()):
            sc.cov[sc.touched[t]] = 0
        for j in range(q.n_layers):
            post = &core._post[q.layers[j]]
            for t in range(post.size()):
                s = post[0][t]
                if sc.stamp[s] == sc.epoch:
                    sc.cov[s] += q.sizes[j]
        for t in range(sc.touched.size()):
            s = sc.touched[t]
            if sc.full[s] == best_f:
                _consider(core, s, best_f, sc.cov[s], q, sc, best)
    else:
        for t in range(sc.touched.size()):
            s = sc.touched[t]
            if sc.full[s] == best_f:
                cov = _covered(q.layers, q.sizes, q.n_layers, pl + core._off[s],
                               core._len[s])
                _consider(core, s, best_f, cov, q, sc, best)


cdef void _score_partial(Core core, const Pod* q, ScoreScratch* sc, Best* best) noexcept nogil:
    # allow_partial with no bar: every cache that holds a pod image fully or
    # shares bytes with the pod is eligible; those sharing a layer are found
    # by walking the pod's posting lists, summing the bytes they cover.
    cdef int32_t i, j, f
    cdef uint32_t s
    cdef size_t t
    cdef const vector[uint32_t]* post
    cdef const uint32_t* pl = core._pair_layer.data()
    for j in range(q.n_layers):
        post = &core._post[q.layers[j]]
        for t in range(post.size()):
            s = post[0][t]
            if sc.stamp[s] != sc.epoch:
                sc.stamp[s] = sc.epoch
                sc.touched.push_back(s)
                sc.cov[s] = 0
                sc.full[s] = 0 if _usable(core, s, q) else UNUSABLE
            sc.cov[s] += q.sizes[j]
    for t in range(sc.touched.size()):
        s = sc.touched[t]
        if sc.full[s] == UNUSABLE:
            continue
        f = 0
        for i in range(q.n_img):
            if q.img_ok[i] and _contains_all(
                    q.img_layers + q.img_off[i], q.img_off[i + 1] - q.img_off[i],
                    pl + core._off[s], core._len[s]):
                f += 1
        if f == 0 and sc.cov[s] == 0:
            continue  # shares only zero-byte layers and holds no image: no partial hit
        _consider(core, s, f, sc.cov[s], q, sc, best)


cdef list _score_batch(Core core, _Batch batch, int64_t now, int threads):
    # See Core.score_batch.
    cdef Py_ssize_t n = len(batch)
    cdef Py_ssize_t p
    cdef int tid
    cdef vector[ScoreScratch] scratch
    cdef vector[Best] bests
    cdef vector[vector[uint32_t]] ties
    if threads < 1:
        threads = 1
    if threads > n:
        threads = max(<int>n, 1)
    batch._seal(now)
    scratch.resize(threads)
    bests.resize(n)
    ties.resize(n)
    with nogil:
        core._rdlock()
    try:
        if threads == 1:
            with nogil:
                for p in range(n):
                    _score(core, &batch.pods[p], &scratch[0], &bests[p])
                    ties[p].swap(scratch[0].ties)
        else:
            for p in prange(n, nogil=True, num_threads=threads, schedule="dynamic",
                            chunksize=16):
                tid = threadid()
                _score(core, &batch.pods[p], &scratch[tid], &bests[p])
                ties[p].swap(scratch[tid].ties)
        # Still under the read lock: the slots cannot have been reused yet.
        result = []
        for p in range(n):
            if bests[p].slot < 0:
                result.append(([], 0, 0, 0))
            else:
                result.append(([core._objs[s] for s in ties[p]], bests[p].full,
                               bests[p].covered, bests[p].distance))
        return result
    finally:
        core._unlock()


cdef tuple _score_one(Core core, list images, int32_t bar, object storage, object arch,
                      object os, int64_t now):
    # See Core.score_one.
    cdef _Batch batch
    cdef _MatchScratch pooled
    cdef Best best
    cdef int64_t pod_bytes
    try:
        pooled = core._pool.pop()
    except IndexError:
        pooled = _MatchScratch()
    try:
        batch = pooled.batch
        batch._clear()
        pod_bytes = _encode(core, batch, images, bar, storage, arch, os)
        batch._seal(now)
        if pthread_rwlock_tryrdlock(&core._lock) == 0:
            # Uncontended: score holding the GIL.  Releasing it for a few
            # microseconds would hand it to any thread waiting for it (a
            # cache watcher applying upserts) and this match would then
            # wait for that thread's next release.
            _score(core, &batch.pods[0], &pooled.kernel, &best)
        else:
            with nogil:
                core._rdlock()
                _score(core, &batch.pods[0], &pooled.kernel, &best)
        try:
            if best.slot < 0:
                return ([], 0, 0, 0, pod_bytes)
            return ([core._objs[s] for s in pooled.kernel.ties], best.full, best.covered,
                    best.distance, pod_bytes)
        finally:
            core._unlock()
    finally:
        core._pool.append(pooled)


cdef class _MatchScratch:
    """Pooled scratch space for one-pod matches from Python threads."""

    cdef ScoreScratch kernel  # the scoring kernel's
    cdef _Batch batch  # the pod, encoded

    def __cinit__(self):
        self.batch = _Batch()
