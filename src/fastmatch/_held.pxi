# Held images: every image some cache lists, with the sorted list of the
# live slots holding all of its layers, kept exact through every write (see
# the module docstring).  Included by _core.pyx; the functions take the core
# as their first argument.  Writes call them under the write lock; the
# scorer reads _find_held, and _check reads all, under the read lock.


cdef uint32_t _find_held(Core core, const uint32_t* run, int64_t k, uint64_t h) noexcept nogil:
    # The listed image whose layers are exactly ``run``, or NOWHERE.
    cdef unordered_map[uint64_t, uint32_t].iterator it = core._held_by_hash.find(h)
    cdef const Held* img
    cdef int64_t i
    if it == core._held_by_hash.end():
        return NOWHERE
    img = &core._held[deref(it).second]
    if <int64_t>img.run.size() != k:
        return NOWHERE
    for i in range(k):
        if img.run[i] != run[i]:
            return NOWHERE
    return deref(it).second


cdef uint32_t _new_held(Core core, const uint32_t* run, int64_t k, uint64_t h,
                        bint place) noexcept nogil:
    # Start holding a newly listed image (placed at once, or by the caller
    # once every row is in).  NOWHERE when another run has this
    # fingerprint: that image is not held (pods probe for it instead).
    cdef uint32_t e
    cdef Held* img
    if k == 0 or core._held_by_hash.count(h):
        return NOWHERE
    if core._held_free.size():
        e = core._held_free.back()
        core._held_free.pop_back()
    else:
        e = core._held.size()
        core._held.resize(e + 1)
    img = &core._held[e]
    img.run.assign(run, run + k)
    img.holders.clear()
    img.hash = h
    img.listed = 0
    core._held_by_hash[h] = e
    if place:
        _place_held(core, e)
    return e


cdef uint32_t _anchor(Core core, uint32_t e) noexcept nogil:
    # Anchor image e at its rarest layer and return it: a slot holds the
    # image only if it holds that layer, so its holders all lie in that
    # layer's posting list.
    cdef Held* img = &core._held[e]
    cdef const uint32_t* run = img.run.data()
    cdef int64_t i
    cdef uint32_t r = run[0]
    for i in range(1, <int64_t>img.run.size()):
        if core._post[run[i]].size() < core._post[r].size():
            r = run[i]
    img.anchor = r
    img.next = core._anchored[r]
    core._anchored[r] = e
    return r


cdef void _place_held(Core core, uint32_t e) noexcept nogil:
    # Anchor image e and find its holders among the live slots.
    cdef const vector[uint32_t]* post = &core._post[_anchor(core, e)]
    cdef Held* img = &core._held[e]
    cdef const uint32_t* run = img.run.data()
    cdef int64_t k = img.run.size()
    cdef uint32_t s
    cdef size_t t
    cdef const uint32_t* pl = core._pair_layer.data()
    for t in range(post.size()):
        s = post[0][t]
        if _contains_all(run, k, pl + core._off[s], core._len[s]):
            img.holders.push_back(s)
    sort(img.holders.begin(), img.holders.end())


cdef void _place_held_built(Core core, uint32_t e, Bulk* b) noexcept nogil:
    # _place_held after a bulk build: a group's slots share its row, so the
    # row is checked once per group; and the posting lists are in slot
    # order, so the holders come out sorted.
    cdef const vector[uint32_t]* post = &core._post[_anchor(core, e)]
    cdef Held* img = &core._held[e]
    cdef const uint32_t* run = img.run.data()
    cdef int64_t k = img.run.size()
    cdef uint32_t s, g
    cdef size_t t
    for t in range(post.size()):
        s = post[0][t]
        g = b.group[s]
        if b.stamp[g] != e + 1:
            b.stamp[g] = e + 1
            b.holds[g] = _contains_all(run, k, b.rows.data() + b.row_off[g],
                                       b.row_off[g + 1] - b.row_off[g])
        if b.holds[g]:
            b.scratch.push_back(s)
    img.holders.assign(b.scratch.begin(), b.scratch.end())  # one allocation, exact
    b.scratch.clear()


cdef void _drop_held(Core core, uint32_t e) noexcept nogil:
    # No slot lists the image any more: forget it.
    cdef Held* img = &core._held[e]
    cdef uint32_t p = core._anchored[img.anchor]
    if p == e:
        core._anchored[img.anchor] = img.next
    else:
        while core._held[p].next != e:
            p = core._held[p].next
        core._held[p].next = img.next
    core._held_by_hash.erase(img.hash)
    img.run.clear()
    img.run.shrink_to_fit()
    img.holders.clear()
    img.holders.shrink_to_fit()
    core._held_free.push_back(e)


cdef void _list_run(Core core, const uint32_t* run, int64_t k, uint64_t h,
                    bint place) noexcept nogil:
    # The slot being filled lists this run: find (or start holding) its
    # image, count the listing and record it in the slot's list.
    cdef uint32_t e = _find_held(core, run, k, h)
    if e == NOWHERE:
        e = _new_held(core, run, k, h, place)
        if e == NOWHERE:
            return
    elif core._held[e].listed == 0:
        core._unlisted -= 1  # listed again before it was swept
    core._held[e].listed += 1
    core._lists.push_back(e)


cdef void _list_images(Core core, Staged* st) noexcept nogil:
    # Record the images slot st.slot lists, holding the new ones.  Runs
    # before the slot's own pairs exist, so new images' holders are the
    # other slots; :func:`_hold` then adds this one.
    cdef uint32_t slot = st.slot
    cdef size_t j
    core._lists_off[slot] = core._lists.size()
    for j in range(st.img_hash.size()):
        _list_run(core, st.img_layers.data() + st.img_off[j],
                  st.img_off[j + 1] - st.img_off[j], st.img_hash[j], True)
    core._lists_len[slot] = core._lists.size() - core._lists_off[slot]


cdef inline bint _lists_it(Core core, uint32_t slot, uint32_t e) noexcept nogil:
    # Does the slot list image e (so it holds it, no merge needed)?
    cdef int64_t j
    for j in range(core._lists_off[slot], core._lists_off[slot] + core._lists_len[slot]):
        if core._lists[j] == e:
            return True
    return False


cdef void _hold(Core core, uint32_t slot) noexcept nogil:
    # Add a new slot to the holders of every image it holds: those are
    # anchored at some layer of its row.
    cdef const uint32_t* row = core._pair_layer.data() + core._off[slot]
    cdef uint32_t n = core._len[slot], i, e, pos
    cdef Held* img
    for i in range(n):
        e = core._anchored[row[i]]
        while e != NOWHERE:
            img = &core._held[e]
            if _lists_it(core, slot, e) or _contains_all(
                    img.run.data(), img.run.size(), row, n):
                pos = _lower_bound(img.holders.data(), 0, img.holders.size(), slot)
                img.holders.insert(img.holders.begin() + pos, slot)
            e = img.next


cdef void _unhold(Core core, uint32_t slot) noexcept nogil:
    # Take a slot out of every holder list and drop the images only it listed.
    cdef const uint32_t* row = core._pair_layer.data() + core._off[slot]
    cdef uint32_t n = core._len[slot], i, e, pos
    cdef int64_t j
    cdef Held* img
    for i in range(n):
        e = core._anchored[row[i]]
        while e != NOWHERE:
            img = &core._held[e]
            pos = _lower_bound(img.holders.data(), 0, img.holders.size(), slot)
            if pos < img.holders.size() and img.holders[pos] == slot:
                img.holders.erase(img.holders.begin() + pos)
            e = img.next
    for j in range(core._lists_off[slot], core._lists_off[slot] + core._lists_len[slot]):
        e = core._lists[j]
        core._held[e].listed -= 1
        if core._held[e].listed == 0:
            core._unlisted += 1
    core._lists_len[slot] = 0
    if core._unlisted > 1024 and core._unlisted * 2 > <int64_t>core._held_by_hash.size():
        # Images no slot lists any more stay held (a cache for them often
        # comes back, as churn recreates caches) until they are half of all.
        for e in range(core._held.size()):
            if core._held[e].listed == 0 and core._held[e].run.size():
                _drop_held(core, e)
        core._unlisted = 0


cdef object _check(Core core):
    # See Core.check.
    cdef size_t e, s
    cdef int64_t j
    with nogil:
        core._rdlock()
    try:
        listed = {}
        for s in range(core._alive.size()):
            if core._alive[s]:
                for j in range(core._lists_off[s], core._lists_off[s] + core._lists_len[s]):
                    listed[core._lists[j]] = listed.get(core._lists[j], 0) + 1
        free = {core._held_free[j] for j in range(core._held_free.size())}
        unlisted = 0
        for e in range(core._held.size()):
            if e in free:
                assert e not in listed, f"dropped image {e} is still listed"
                continue
            run = list(core._held[e].run)
            want = [s for s in range(core._alive.size()) if core._alive[s] and set(run)
                    <= {core._pair_layer[j] for j in range(
                        core._off[s], core._off[s] + core._len[s])}]
            got = list(core._held[e].holders)
            assert got == want, f"image {e} {run}: holders {got}, want {want}"
            assert core._held[e].listed == listed.get(e, 0), (
                f"image {e}: listed {core._held[e].listed}, want {listed.get(e, 0)}")
            unlisted += core._held[e].listed == 0
            assert _find_held(core, core._held[e].run.data(), len(run),
                              _fingerprint(core._held[e].run.data(), len(run))) == e
            assert core._held[e].anchor in run
            chain = []
            j = core._anchored[core._held[e].anchor]
            while j != NOWHERE:
                chain.append(j)
                j = core._held[j].next
            assert chain.count(e) == 1, f"image {e} is {chain.count(e)} times on its anchor"
        assert <size_t>core._held_by_hash.size() == core._held.size() - len(free)
        assert unlisted == core._unlisted, (
            f"{unlisted} images unlisted, counted {core._unlisted}")
    finally:
        core._unlock()
