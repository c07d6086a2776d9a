# Encoding of pods: a pod's images ({key: size} dicts) become runs of layer
# ids in a _Batch's flat arrays, with their fingerprints, for the scoring
# kernel; images whose every key is interned are remembered (_Encoded).  And
# replicas, which groups the pods of a match_many call.  Included by
# _core.pyx.


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


cdef bint _known_before(const Known& a, const Known& b) noexcept nogil:
    return a.lid < b.lid


cdef void _remember(Core core, object image, vector[Known]* known, uint64_t h):
    # Remember an image whose every key is interned (ids never change, so
    # neither does its encoding): its (id, size) pairs by id, its fingerprint.
    cdef _Encoded enc = _Encoded.__new__(_Encoded)
    enc.source = image
    enc.known.swap(known[0])
    sort(enc.known.begin(), enc.known.end(), _known_before)
    enc.hash = h
    if len(core._encoded) >= ENCODED_MAX:
        core._encoded.clear()  # a bounded memo: start afresh
    core._encoded[PyLong_FromVoidPtr(<void*>image)] = enc


cdef int64_t _encode(Core core, _Batch batch, list images, int32_t bar, object storage,
                     object arch, object os) except? -1:
    # Append one pod to ``batch`` (see Core.encode); returns the pod's bytes.
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
        found = PyDict_GetItemWithError(core._encoded, PyLong_FromVoidPtr(<void*>sizes))
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
            found = PyDict_GetItemWithError(core._ids, key)
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
            _remember(core, sizes, &known, batch.img_hash.back())
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
    batch.arch.push_back(_platform(core, arch, False))
    batch.os.push_back(_platform(core, os, False))
    return pod_bytes


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
