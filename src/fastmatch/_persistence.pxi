# Persistence: the live state as NumPy arrays (to_arrays) and a core
# rebuilt from them (from_arrays), checked for consistency as it is read.
# Included by _core.pyx.


cdef tuple _to_arrays(Core core):
    # See Core.to_arrays.
    with nogil:
        pthread_mutex_lock(&core._writer)
        core._rdlock()
    try:
        rows = [s for s in range(core._alive.size()) if core._alive[s]]
        used = {}
        keys = []
        lens = np.empty(len(rows), dtype=np.uint32)
        layer_ids = np.empty(core._pairs, dtype=np.uint32)
        at = 0
        for r, s in enumerate(rows):
            off = core._off[s]
            n = core._len[s]
            lens[r] = n
            for i in range(n):
                old = core._pair_layer[off + i]
                new = used.get(old)
                if new is None:
                    new = used[old] = len(keys)
                    keys.append(core._keys[old])
                layer_ids[at] = new
                at += 1
        # The images each row lists, as runs of the new layer ids (a run
        # lies inside its row, so every id was renumbered above).
        img_count = np.empty(len(rows), dtype=np.uint32)
        img_lens = []
        img_ids = []
        for r, s in enumerate(rows):
            img_count[r] = core._lists_len[s]
            for j in range(core._lists_off[s], core._lists_off[s] + core._lists_len[s]):
                run = core._held[core._lists[j]].run
                img_lens.append(len(run))
                img_ids.extend(used[lid] for lid in run)
        platforms = sorted(core._platforms, key=core._platforms.get)
        arrays = {
            "img_count": img_count,
            "img_lens": np.array(img_lens, dtype=np.uint32),
            "img_ids": np.array(img_ids, dtype=np.uint32),
            "lens": lens,
            "layer_ids": layer_ids,
            "bytes": np.array([core._bytes[s] for s in rows], dtype=np.int64),
            "created": np.array([core._created[s] for s in rows], dtype=np.int64),
            "expires": np.array([core._expires[s] for s in rows], dtype=np.int64),
            "size_gib": np.array([core._size_gib[s] for s in rows], dtype=np.int32),
            "arch": np.array([core._arch[s] for s in rows], dtype=np.int32),
            "os": np.array([core._os[s] for s in rows], dtype=np.int32),
        }
        return arrays, keys, platforms, [core._objs[s] for s in rows]
    finally:
        core._unlock()
        pthread_mutex_unlock(&core._writer)


cdef Core _from_arrays(dict arrays, list keys, list platforms, list objs):
    # See Core.from_arrays.
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
                _list_run(core, run.data(), run.size(),
                          _fingerprint(run.data(), run.size()), True)
            core._lists_len[s] = core._lists.size() - core._lists_off[s]
            lens_at += img_count[s]
    return core
