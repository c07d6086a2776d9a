# Writes: a cache staged by the Python half (keys interned, its row and its
# listed images as sorted runs) then inserted by the C half under the write
# lock; removal, compaction, replace and the bulk build.  Included by
# _core.pyx; the functions take the core as their first argument.


cdef inline tuple _seq(object items):
    # A tuple to loop over by index: looping over anything else allocates an
    # iterator object, and a bulk load that allocates per cache pays for
    # garbage collections over the whole heap.
    return items if type(items) is tuple else tuple(items)


cdef int32_t _platform(Core core, object name, bint create):
    if name is None:
        return 0
    code = core._platforms.get(name)
    if code is None:
        if not create:
            return -1  # known to the pod, held by no cache: mismatches every known one
        code = len(core._platforms) + 1
        core._platforms[name] = code
    return code


cdef uint32_t _intern(Core core, object key, list new_keys, dict fresh, uint32_t next_id):
    # The id of a layer key: known, new in this write, or the next one.
    cdef PyObject* found = PyDict_GetItemWithError(core._ids, key)
    cdef uint32_t lid
    if found == NULL:
        found = PyDict_GetItemWithError(fresh, key)
    if found != NULL:
        return <uint32_t>(<object>found)
    lid = next_id + len(new_keys)
    fresh[key] = lid
    new_keys.append(key)
    return lid


cdef int64_t _stage(Core core, object obj, object keys, object images, object arch, object os,
                    list new_keys, dict fresh, Staged* st) except -1:
    # The Python half of an add, done before the write lock is taken so
    # that matches never wait on a writer that waits for the GIL: the row
    # of the cache's distinct layer ids, the images it lists as sorted
    # runs with their fingerprints (new keys get the next ids, published
    # only once their posting lists exist), its platforms, its slot.
    cdef uint32_t next_id = len(core._keys)
    cdef size_t run, i
    cdef PyObject* found
    cdef _Encoded enc
    cdef vector[Known] known
    cdef bint everything
    # ``new_keys`` and ``fresh`` (key -> id) are the keys first seen in this
    # write, shared by every cache of a batch so that one key gets one id.
    st.row.clear()
    st.img_layers.clear()
    st.img_off.clear()
    st.img_hash.clear()
    st.img_off.push_back(0)
    for key in _seq(keys):
        st.row.push_back(_intern(core, key, new_keys, fresh, next_id))
    sort(st.row.begin(), st.row.end())
    for image in _seq(images):
        run = st.img_layers.size()
        found = PyDict_GetItemWithError(core._encoded, PyLong_FromVoidPtr(<void*>image))
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
                    found = PyDict_GetItemWithError(core._ids, key)
                    if found != NULL:
                        known.push_back(Known(<uint32_t>(<object>found), value))
                        st.img_layers.push_back(known.back().lid)
                    else:
                        everything = False
                        st.img_layers.push_back(_intern(core, key, new_keys, fresh, next_id))
            else:
                for key in image:
                    st.img_layers.push_back(_intern(core, key, new_keys, fresh, next_id))
            if st.img_layers.size() == run:
                continue  # no layers at all: nothing to hold
            sort(st.img_layers.begin() + run, st.img_layers.end())
            st.img_hash.push_back(_fingerprint(st.img_layers.data() + run,
                                               st.img_layers.size() - run))
            if everything:
                _remember(core, image, &known, st.img_hash.back())
        st.img_off.push_back(st.img_layers.size())
        # A listed image lies inside its cache, whatever ``keys`` said:
        # the row is the merge of the sorted runs.
        st.merged.resize(st.row.size() + st.img_layers.size() - run)
        merge(st.row.begin(), st.row.end(), st.img_layers.begin() + run,
              st.img_layers.end(), st.merged.begin())
        st.row.swap(st.merged)
    st.row.erase(unique(st.row.begin(), st.row.end()), st.row.end())
    st.arch = _platform(core, arch, True)
    st.os = _platform(core, os, True)
    if core._free.size():
        st.slot = core._free.back()
        core._free.pop_back()
        core._objs[st.slot] = obj  # not reachable until the slot is live
    else:
        # Past the objects, not the live flags: in a batch the slots staged
        # before this one are not inserted yet.
        st.slot = len(core._objs)
        core._objs.append(obj)
    st.n_keys = next_id + len(new_keys)
    return st.slot


cdef void _insert_locked(Core core, Staged* st, int64_t nbytes, int64_t created,
                         int64_t expires, int32_t size_gib) noexcept nogil:
    # The C half of an add, under the write lock, without the GIL.
    cdef uint32_t slot = st.slot
    cdef int64_t off = core._pair_layer.size()
    cdef uint32_t n = st.row.size()
    cdef uint32_t i, lid
    if core._post.size() < st.n_keys:
        core._post.resize(st.n_keys)
        core._anchored.resize(st.n_keys, NOWHERE)
    if slot == core._alive.size():
        core._alive.push_back(0)
        core._bytes.push_back(0)
        core._created.push_back(0)
        core._expires.push_back(0)
        core._size_gib.push_back(0)
        core._arch.push_back(0)
        core._os.push_back(0)
        core._off.push_back(0)
        core._len.push_back(0)
        core._lists_off.push_back(0)
        core._lists_len.push_back(0)
    _list_images(core, st)
    core._pair_layer.insert(core._pair_layer.end(), st.row.begin(), st.row.end())
    core._pair_pos.resize(core._pair_layer.size())
    core._off[slot] = off
    core._len[slot] = n
    for i in range(n):
        lid = core._pair_layer[off + i]
        core._pair_pos[off + i] = core._post[lid].size()
        core._post[lid].push_back(slot)
    _hold(core, slot)
    core._bytes[slot] = nbytes
    core._created[slot] = created
    core._expires[slot] = expires
    core._size_gib[slot] = size_gib
    core._arch[slot] = st.arch
    core._os[slot] = st.os
    core._alive[slot] = 1
    core._live += 1
    core._pairs += n


cdef void _publish(Core core, list new_keys):
    # After the write lock: the new keys become known to pods.
    cdef uint32_t lid = len(core._keys)
    for key in new_keys:
        core._ids[key] = lid
        core._keys.append(key)
        lid += 1


cdef void _remove_locked(Core core, uint32_t slot) noexcept nogil:
    cdef int64_t off = core._off[slot]
    cdef uint32_t n = core._len[slot]
    cdef uint32_t i, lid, pos, moved, where
    _unhold(core, slot)
    for i in range(n):
        lid = core._pair_layer[off + i]
        pos = core._pair_pos[off + i]
        moved = core._post[lid].back()
        core._post[lid].pop_back()
        if pos < core._post[lid].size():
            # Swap-remove: the slot that was last now sits where ours was.
            core._post[lid][pos] = moved
            where = _lower_bound(core._pair_layer.data() + core._off[moved], 0,
                                 core._len[moved], lid)
            core._pair_pos[core._off[moved] + where] = pos
    core._alive[slot] = 0
    core._len[slot] = 0
    core._free.push_back(slot)
    core._garbage += n
    core._pairs -= n
    core._live -= 1
    if core._garbage > 65536 and core._garbage > core._pairs:
        _compact_locked(core)


cdef void _compact_locked(Core core) noexcept nogil:
    # Pairs of removed slots are garbage at the front of the arrays; copy
    # the live segments down.  Posting positions do not change.
    cdef vector[uint32_t] layer
    cdef vector[uint32_t] pos
    cdef size_t s
    cdef int64_t i, off
    layer.reserve(core._pairs)
    pos.reserve(core._pairs)
    for s in range(core._alive.size()):
        if not core._alive[s]:
            continue
        off = core._off[s]
        core._off[s] = layer.size()
        for i in range(off, off + core._len[s]):
            layer.push_back(core._pair_layer[i])
            pos.push_back(core._pair_pos[i])
    core._pair_layer.swap(layer)
    core._pair_pos.swap(pos)
    layer.clear()
    for s in range(core._alive.size()):
        off = core._lists_off[s]
        core._lists_off[s] = layer.size()
        for i in range(off, off + core._lists_len[s]):
            layer.push_back(core._lists[i])
    core._lists.swap(layer)
    core._garbage = 0


cdef void _take_writer(Core core) noexcept:
    # The writers' turn.  Tried first holding the GIL: a try never waits,
    # and when the GIL is released, getting it back means waiting for a
    # thread that holds it (a match in Python code) to give it up, which it
    # does only every switch interval (5 ms): a writer that released it on
    # every write got about 1.5k writes/s beside one flat-out matcher.
    if pthread_mutex_trylock(&core._writer) != 0:
        with nogil:
            pthread_mutex_lock(&core._writer)


cdef bint _take_write_lock(Core core) noexcept:
    # The write lock, tried holding the GIL (see _take_writer); when it is
    # busy (a match scoring without the GIL), waited for without the GIL,
    # as every wait is.  True when it was got holding the GIL.
    if pthread_rwlock_trywrlock(&core._lock) == 0:
        return True
    with nogil:
        core._wrlock()
    return False


cdef object _replace(Core core, int64_t slot, object obj, object keys, object images,
                     int64_t nbytes, int64_t created, int64_t expires, int32_t size_gib,
                     object arch, object os):
    # See Core.replace.
    cdef Staged* st = &core._staged  # writers take turns: one will do
    cdef list new_keys = []
    cdef uint32_t old = <uint32_t>slot
    _take_writer(core)
    try:
        if slot >= 0:
            _check_slot(core, slot)
        _stage(core, obj, keys, images, arch, os, new_keys, {}, st)
        # The C half is short (O(the cache's layers)): done holding the GIL
        # when the lock came at once, rather than hand the GIL away.
        _take_write_lock(core)
        if slot >= 0:
            _remove_locked(core, old)
        _insert_locked(core, st, nbytes, created, expires, size_gib)
        core._unlock()
        _publish(core, new_keys)
        if slot >= 0:
            core._objs[slot] = None  # unreachable since the write
        return st.slot
    finally:
        pthread_mutex_unlock(&core._writer)


cdef object _apply(Core core, list ops):
    # See Core.apply.  Every op is (old slot or -1, row or None): the
    # caches are staged first (Python half, GIL held, before the lock),
    # then every remove and insert is done under one write lock.
    cdef vector[Staged] staged
    cdef vector[int64_t] olds
    cdef vector[int64_t] which  # by op: its index in staged, or -1
    cdef vector[int64_t] nbytes, created, expires
    cdef vector[int32_t] size_gib
    cdef list new_keys = []
    cdef dict fresh = {}
    cdef list slots = []
    cdef Py_ssize_t i, n = len(ops)
    cdef Py_ssize_t n_objs
    cdef int64_t old, k
    _take_writer(core)
    try:
        seen = set()
        for op in ops:
            old = op[0]
            if old >= 0:
                _check_slot(core, old)
                if old in seen:
                    raise KeyError(f"slot {old} is freed twice in one batch")
                seen.add(old)
            olds.push_back(old)
        staged.resize(n)
        k = 0
        n_objs = len(core._objs)
        try:
            for i in range(n):
                obj, row = (<tuple>ops[i])[1], (<tuple>ops[i])[2]
                if row is None:
                    which.push_back(-1)
                    continue
                keys, images, nb, cr, ex, sg = row[:6]
                arch = row[6] if len(row) > 6 else None
                os = row[7] if len(row) > 7 else None
                nbytes.push_back(nb)
                created.push_back(cr)
                expires.push_back(ex)
                size_gib.push_back(sg)
                _stage(core, obj, keys, images, arch, os, new_keys, fresh, &staged[k])
                which.push_back(k)
                k += 1
        except BaseException:
            # Nothing is live yet: hand back the slots the staged caches took.
            for i in range(<Py_ssize_t>k):
                if staged[i].slot < n_objs:
                    core._objs[staged[i].slot] = None
                    core._free.push_back(staged[i].slot)
            del core._objs[n_objs:]
            raise
        if _take_write_lock(core):
            _apply_locked(core, &staged, &olds, &which, &nbytes, &created, &expires, &size_gib)
        else:
            with nogil:  # the lock was contended: a batch is long, let matches run
                _apply_locked(core, &staged, &olds, &which, &nbytes, &created, &expires,
                              &size_gib)
        core._unlock()
        _publish(core, new_keys)
        for i in range(n):
            if olds[i] >= 0:
                core._objs[olds[i]] = None  # unreachable since the write
            slots.append(staged[which[i]].slot if which[i] >= 0 else -1)
        return slots
    finally:
        pthread_mutex_unlock(&core._writer)


cdef void _apply_locked(Core core, vector[Staged]* staged, vector[int64_t]* olds,
                        vector[int64_t]* which, vector[int64_t]* nbytes,
                        vector[int64_t]* created, vector[int64_t]* expires,
                        vector[int32_t]* size_gib) noexcept nogil:
    cdef size_t i
    cdef int64_t k
    for i in range(olds.size()):
        if deref(olds)[i] >= 0:
            _remove_locked(core, <uint32_t>deref(olds)[i])
        k = deref(which)[i]
        if k >= 0:
            _insert_locked(core, &deref(staged)[k], deref(nbytes)[k], deref(created)[k],
                           deref(expires)[k], deref(size_gib)[k])


cdef object _build(Core core, list objs, list keys, list images, list nbytes, list created,
                   list expires, list size_gib, list arch, list os):
    # See Core.build.
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
    if core._alive.size() or len(core._keys):
        raise ValueError("build fills an empty core only")
    with nogil:
        pthread_mutex_lock(&core._writer)
        core._wrlock()
    try:
        run_off.push_back(0)
        slot_runs_off.push_back(0)
        for c in range(n):
            row.clear()
            for key in _seq(keys[c]):
                row.push_back(_intern(core, key, new_keys, fresh, 0))
            for image in _seq(images[c]):
                found = memo.get(PyLong_FromVoidPtr(<void*>image))
                if found is None:
                    start = runs.size()
                    if type(image) is dict:
                        sizes = <dict>image
                        for key in sizes:
                            runs.push_back(_intern(core, key, new_keys, fresh, 0))
                    else:
                        for key in image:
                            runs.push_back(_intern(core, key, new_keys, fresh, 0))
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
            core._off.push_back(core._pair_layer.size())
            core._len.push_back(row.size())
            core._pair_layer.insert(core._pair_layer.end(), row.begin(), row.end())
            core._alive.push_back(1)
            core._bytes.push_back(nbytes[c])
            core._created.push_back(created[c])
            core._expires.push_back(expires[c])
            core._size_gib.push_back(size_gib[c])
            core._arch.push_back(_platform(core, arch[c], True))
            core._os.push_back(_platform(core, os[c], True))
        core._keys.extend(new_keys)
        core._ids.update(fresh)
        core._objs.extend(objs)
        nk = len(core._keys)
        with nogil:
            core._post.resize(nk)
            core._anchored.assign(nk, NOWHERE)
            # The posting lists by a counting sort of the pairs on their
            # layer: one scattered write per pair into a flat array, then
            # each list copied out in one piece (pushing onto 100k lists
            # at random would miss the cache twice a pair).
            counts.assign(nk + 1, 0)
            for i in range(core._pair_layer.size()):
                counts[core._pair_layer[i] + 1] += 1
            for i in range(nk):
                counts[i + 1] += counts[i]
            cursor.assign(counts.begin(), counts.end() - 1)
            order.resize(core._pair_layer.size())
            core._pair_pos.resize(core._pair_layer.size())
            for slot in range(n):
                for i in range(core._off[slot], core._off[slot] + core._len[slot]):
                    lid = core._pair_layer[i]
                    order[cursor[lid]] = slot
                    core._pair_pos[i] = cursor[lid] - counts[lid]
                    cursor[lid] += 1
            for i in range(nk):
                core._post[i].assign(order.begin() + counts[i], order.begin() + counts[i + 1])
            core._lists_off.resize(n)
            core._lists_len.resize(n)
            for slot in range(n):
                core._lists_off[slot] = core._lists.size()
                for j in range(slot_runs_off[slot], slot_runs_off[slot + 1]):
                    r = slot_runs[j]
                    off = run_off[r]
                    _list_run(core, runs.data() + off, run_off[r + 1] - off, run_hash[r], False)
                core._lists_len[slot] = core._lists.size() - core._lists_off[slot]
            # Every row is in: anchor each image at its rarest layer now.
            for e in range(core._held.size()):
                _place_held(core, e)
            core._live = n
            core._pairs = core._pair_layer.size()
    finally:
        core._unlock()
        pthread_mutex_unlock(&core._writer)


cdef object _remove(Core core, int64_t slot):
    _take_writer(core)
    try:
        _check_slot(core, slot)
        _take_write_lock(core)  # then removed holding the GIL: O(its layers)
        _remove_locked(core, <uint32_t>slot)
        core._unlock()
        core._objs[slot] = None
    finally:
        pthread_mutex_unlock(&core._writer)


cdef object _compact(Core core):
    cdef size_t layer
    with nogil:
        pthread_mutex_lock(&core._writer)
        core._wrlock()
        if core._garbage:
            _compact_locked(core)
        core._pair_layer.shrink_to_fit()
        core._pair_pos.shrink_to_fit()
        core._lists.shrink_to_fit()
        for layer in range(core._post.size()):
            core._post[layer].shrink_to_fit()
        core._post.shrink_to_fit()
        for layer in range(core._held.size()):
            core._held[layer].holders.shrink_to_fit()
        core._unlock()
        pthread_mutex_unlock(&core._writer)


cdef int _check_slot(Core core, int64_t slot) except -1:
    if slot < 0 or <size_t>slot >= core._alive.size() or not core._alive[slot]:
        raise KeyError(f"slot {slot} is not live")
    return 0
