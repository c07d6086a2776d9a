# Writes: a cache staged by the Python half (keys interned, its row and its
# listed images as sorted runs) then inserted by the C half under the write
# lock; removal, compaction, replace and the bulk build.  Included by
# _core.pyx; the functions take the core as their first argument.


cdef extern from *:
    """
    /* Whether iterating o is iterating a dict: PyDict_Next walks it the same. */
    static int fastmatch_plain_dict(PyObject *o) {
        return PyDict_Check(o) && Py_TYPE(o)->tp_iter == PyDict_Type.tp_iter;
    }
    """
    bint _plain_dict "fastmatch_plain_dict"(object o)


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


cdef inline uint32_t _intern_built(Bulk* b, object key, list new_keys, dict fresh,
                                   list kept) except? 0xFFFFFFFF:
    # The id of a layer key in a bulk build (the core knew no key before it):
    # found by the key object's address, else by equality (an unhashable key
    # raises there), new keys taking the next ids.
    cdef int64_t* known = b.lid_of.find(<Address>key)
    cdef uint32_t lid
    if known != NULL:
        return <uint32_t>known[0]
    lid = len(new_keys)
    found = <object>PyDict_SetDefault(fresh, key, lid)
    if <uint32_t>found == lid:
        new_keys.append(key)
    else:
        lid = found
        kept.append(key)  # alive until the build ends, so that its address stays its own
    b.lid_of.put(<Address>key, lid)
    return lid


cdef int64_t _built_run(Bulk* b, object image, list new_keys, dict fresh,
                        list kept) except -2:
    # The run of an image object not met before in this build, or -1 when it has no keys.
    cdef size_t start = b.runs.size()
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    if _plain_dict(image):
        while PyDict_Next(image, &pos, &key, &value):
            b.runs.push_back(_intern_built(b, <object>key, new_keys, fresh, kept))
    else:
        for item in image:
            b.runs.push_back(_intern_built(b, item, new_keys, fresh, kept))
    if b.runs.size() == start:
        return -1
    # Often sorted already: a new image's new layers take the next ids in its order.
    if not is_sorted(b.runs.begin() + start, b.runs.end()):
        sort(b.runs.begin() + start, b.runs.end())
    b.run_off.push_back(b.runs.size())
    b.run_hash.push_back(_fingerprint(b.runs.data() + start, b.runs.size() - start))
    return b.run_off.size() - 2


cdef int64_t _built_group(Bulk* b, object keys, object images, list new_keys, dict fresh,
                          list kept) except -1:
    # A new group: the row and the runs of a slot with these keys and images.  The
    # row is its keys, sorted, merged with each sorted run in turn.
    cdef size_t start = b.rows.size()
    cdef int64_t r
    cdef int64_t* known
    for key in _seq(keys):
        b.rows.push_back(_intern_built(b, key, new_keys, fresh, kept))
    sort(b.rows.begin() + start, b.rows.end())
    for image in _seq(images):
        known = b.run_of.find(<Address>image)
        if known != NULL:
            r = known[0]
        else:
            r = _built_run(b, image, new_keys, fresh, kept)
            b.run_of.put(<Address>image, r)
            kept.append(image)  # alive until the build ends, so that its address stays its own
        if r < 0:
            continue
        b.lists.push_back(r)
        b.scratch.resize(b.rows.size() - start + b.run_off[r + 1] - b.run_off[r])
        merge(b.rows.begin() + start, b.rows.end(), b.runs.begin() + b.run_off[r],
              b.runs.begin() + b.run_off[r + 1], b.scratch.begin())
        b.rows.resize(start)
        b.rows.insert(b.rows.end(), b.scratch.begin(), b.scratch.end())
    b.rows.erase(unique(b.rows.begin() + start, b.rows.end()), b.rows.end())
    b.row_off.push_back(b.rows.size())
    b.list_off.push_back(b.lists.size())
    b.keys.push_back(<Address>keys if type(keys) is tuple else NULL)
    return b.keys.size() - 1


cdef void _built_lists(Core core, Bulk* b, uint32_t slot) noexcept nogil:
    # Record the images the slot lists, as _list_images does; a group's
    # held images are found (or started) at its first slot.
    cdef uint32_t g = b.group[slot], e, r
    cdef int64_t j
    if b.held_off[g] < 0:
        b.held_off[g] = b.held.size()
        for j in range(b.list_off[g], b.list_off[g + 1]):
            r = b.lists[j]
            e = _find_held(core, b.runs.data() + b.run_off[r], b.run_off[r + 1] - b.run_off[r],
                           b.run_hash[r])
            if e == NOWHERE:
                e = _new_held(core, b.runs.data() + b.run_off[r],
                              b.run_off[r + 1] - b.run_off[r], b.run_hash[r], False)
                if e == NOWHERE:
                    continue  # another run has its fingerprint: not held
            b.held.push_back(e)
        b.held_len[g] = b.held.size() - b.held_off[g]
    core._lists_off[slot] = core._lists.size()
    for j in range(b.held_off[g], b.held_off[g] + b.held_len[g]):
        e = b.held[j]
        core._held[e].listed += 1
        core._lists.push_back(e)
    core._lists_len[slot] = b.held_len[g]


cdef object _build(Core core, list objs, list keys, list images, list nbytes, list created,
                   list expires, list size_gib, list arch, list os):
    # See Core.build.
    cdef Py_ssize_t n = len(objs), c
    cdef Bulk b
    cdef vector[uint32_t] counts, cursor
    cdef uint32_t* order = NULL  # every posting list, back to back: written whole, never zeroed
    cdef dict fresh = {}
    cdef list new_keys = []
    cdef list kept = []
    cdef object listed, named
    cdef bint memo
    cdef int64_t* known
    cdef size_t i, nk, pairs = 0
    cdef int64_t g
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
        b.run_off.push_back(0)
        b.row_off.push_back(0)
        b.list_off.push_back(0)
        b.group.reserve(n)
        core._bytes.reserve(n)
        core._created.reserve(n)
        core._expires.reserve(n)
        core._size_gib.reserve(n)
        core._arch.reserve(n)
        core._os.reserve(n)
        for c in range(n):
            named = keys[c]
            listed = images[c]
            g = -1
            memo = type(listed) is tuple and type(named) is tuple
            if memo:
                known = b.by_images.find(<Address>listed)
                if known != NULL:
                    memo = False  # the first group of this images tuple stays
                    if b.keys[known[0]] == <Address>named:
                        g = known[0]
            if g < 0:
                g = _built_group(&b, named, listed, new_keys, fresh, kept)
                if memo:
                    b.by_images.put(<Address>listed, g)
            b.group.push_back(g)
            pairs += b.row_off[g + 1] - b.row_off[g]
            core._bytes.push_back(nbytes[c])
            core._created.push_back(created[c])
            core._expires.push_back(expires[c])
            core._size_gib.push_back(size_gib[c])
            core._arch.push_back(_platform(core, arch[c], True))
            core._os.push_back(_platform(core, os[c], True))
        core._keys.extend(new_keys)
        core._ids = fresh  # the core was empty: every key is one of this build's
        core._objs.extend(objs)
        nk = len(core._keys)
        order = <uint32_t*>malloc(max(pairs, 1) * sizeof(uint32_t))
        if order == NULL:
            raise MemoryError()
        with nogil:
            core._alive.assign(n, 1)
            core._off.resize(n)
            core._len.resize(n)
            core._pair_layer.reserve(pairs)
            for slot in range(n):
                g = b.group[slot]
                core._off[slot] = core._pair_layer.size()
                core._len[slot] = b.row_off[g + 1] - b.row_off[g]
                core._pair_layer.insert(core._pair_layer.end(), b.rows.begin() + b.row_off[g],
                                        b.rows.begin() + b.row_off[g + 1])
            core._post.resize(nk)
            core._anchored.assign(nk, NOWHERE)
            # The posting lists by a counting sort of the pairs on their
            # layer: one scattered write per pair into a flat array, then
            # each list copied out in one piece (pushing onto 100k lists
            # at random would miss the cache twice a pair).  Slots go in
            # in order, so every list is sorted.
            counts.assign(nk + 1, 0)
            for i in range(pairs):
                counts[core._pair_layer[i] + 1] += 1
            for i in range(nk):
                counts[i + 1] += counts[i]
            cursor.assign(counts.begin(), counts.end() - 1)
            core._pair_pos.resize(pairs)
            for slot in range(n):
                for i in range(core._off[slot], core._off[slot] + core._len[slot]):
                    lid = core._pair_layer[i]
                    order[cursor[lid]] = slot
                    core._pair_pos[i] = cursor[lid] - counts[lid]
                    cursor[lid] += 1
            for i in range(nk):
                core._post[i].assign(order + counts[i], order + counts[i + 1])
            core._lists_off.resize(n)
            core._lists_len.resize(n)
            core._held.reserve(b.run_hash.size())
            core._held_by_hash.reserve(b.run_hash.size())
            b.held_off.assign(b.keys.size(), -1)
            b.held_len.assign(b.keys.size(), 0)
            for slot in range(n):
                _built_lists(core, &b, slot)
            # Every row is in: anchor each image at its rarest layer now.
            b.stamp.assign(b.keys.size(), 0)
            b.holds.assign(b.keys.size(), 0)
            b.scratch.clear()
            for e in range(core._held.size()):
                _place_held_built(core, e, &b)
            core._live = n
            core._pairs = pairs
    finally:
        free(order)
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
