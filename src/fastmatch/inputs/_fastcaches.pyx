# cython: language_level=3
"""The plain ``ImageCache`` object (SPEC §6), read in C.

A plain object is what the API server gives for an ECI ImageCache: a JSON object of
kind ``ImageCache`` whose ``metadata``, ``spec`` and ``status`` (if any) are objects,
whose name is a non-empty string, whose ``status.imageCacheId`` (if any) is a string
without surrounding white space, whose ``spec.images`` is a list of references, whose
``metadata.labels`` (if any) is an object, whose ``metadata.creationTimestamp`` is
Kubernetes' own form (``2025-10-18T20:51:23Z``), as is ``status.expireDateTime`` if
given, whose ``spec.imageCacheSize`` (if any) and ``spec.retentionDays`` (if any) are
integers in range, whose ``status.phase`` (if any) is one of ECI's phases, spelled as
ECI spells it, and whose images list no layer with two sizes.

:class:`PlainCaches` reads a run of such objects straight into caches, and steps over
objects of other kinds; it hands anything else back, unread, to the careful reader in
``fastmatch.inputs.caches``, which reads it field by field and words its error.
Nothing here raises on bad input: handing an object back is how it says "not plain".
The caches it makes are those the careful reader makes, field for field.
"""

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject, PyObject_Hash
from cpython.ref cimport Py_INCREF
from cpython.set cimport PyFrozenSet_New
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport (
    Py_UNICODE_ISSPACE,
    PyUnicode_GET_LENGTH,
    PyUnicode_READ_CHAR,
    PyUnicode_Tailmatch,
)

from fastmatch.inputs._slots cimport get_slot, new_instance, set_slot

from datetime import datetime

from fastmatch.model import (
    MAX_IMAGES_PER_CACHE,
    MAX_SIZE_GIB,
    MIN_SIZE_GIB,
    Image,
    ImageCache,
)

__all__ = ["PlainCaches"]

cdef extern from *:
    """
    /* A cache's layers as they are merged, to check that a layer in two images has one
       size and to sum its distinct layers' bytes without a dict: open addressing on
       str's own (cached) hash, a slot in use when it holds this cache's stamp, so that
       nothing is cleared between caches. */
    typedef struct {
        PyObject *key;  /* borrowed: the image's LayerSizes holds it */
        Py_hash_t hash;
        long long size;
        unsigned long long stamp;
    } fastcaches_slot;
    typedef struct {
        fastcaches_slot *slots;
        size_t mask;  /* capacity - 1, a power of two */
        unsigned long long stamp;
    } fastcaches_merge;
    /* Start merging a cache of at most n layers; -1 when memory ran out. */
    static int fastcaches_merge_start(fastcaches_merge *m, Py_ssize_t n) {
        size_t want = 16;
        while (want < 2 * (size_t)n) want *= 2;
        if (m->slots == NULL || m->mask + 1 < want) {
            fastcaches_slot *grown = (fastcaches_slot *)PyMem_Calloc(want, sizeof(fastcaches_slot));
            if (grown == NULL) return -1;
            PyMem_Free(m->slots);
            m->slots = grown;
            m->mask = want - 1;
        }
        m->stamp += 1;
        return 0;
    }
    /* Add a layer (a str key, its hash, its size): 1 when new, 0 when there already
       with this size, 2 when there with another size, -1 on an error (raised). */
    static int fastcaches_merge_add(fastcaches_merge *m, PyObject *key, Py_hash_t hash,
                                    long long size) {
        for (size_t at = (size_t)hash & m->mask;; at = (at + 1) & m->mask) {
            fastcaches_slot *slot = &m->slots[at];
            if (slot->stamp != m->stamp) {
                slot->key = key;
                slot->hash = hash;
                slot->size = size;
                slot->stamp = m->stamp;
                return 1;
            }
            if (slot->key == key || (slot->hash == hash && PyUnicode_Compare(slot->key, key) == 0))
                return slot->size == size ? 0 : 2;
            if (PyErr_Occurred()) return -1;
        }
    }
    static void fastcaches_merge_init(fastcaches_merge *m) {
        m->slots = NULL;
        m->mask = 0;
        m->stamp = 0;
    }
    static void fastcaches_merge_free(fastcaches_merge *m) {
        PyMem_Free(m->slots);
        m->slots = NULL;
    }
    /* Whether a str is Kubernetes' own time form: 20 characters, "T" at 10, "Z" last. */
    static int fastcaches_k8s_time(PyObject *text) {
        return PyUnicode_GET_LENGTH(text) == 20
            && PyUnicode_READ_CHAR(text, 10) == 'T' && PyUnicode_READ_CHAR(text, 19) == 'Z';
    }
    """
    ctypedef struct fastcaches_merge:
        size_t mask
        unsigned long long stamp
    void fastcaches_merge_init(fastcaches_merge *m)
    int fastcaches_merge_start(fastcaches_merge *m, Py_ssize_t n)
    int fastcaches_merge_add(fastcaches_merge *m, PyObject *key, Py_hash_t hash,
                             long long size) except -1
    void fastcaches_merge_free(fastcaches_merge *m)
    bint fastcaches_k8s_time(object text)

# The slots of ImageCache, in the order model.trusted_cache_of writes them.
cdef object CACHE_ID = ImageCache.__dict__["id"]
cdef object CACHE_IMAGES = ImageCache.__dict__["images"]
cdef object CACHE_NAME = ImageCache.__dict__["name"]
cdef object CACHE_SIZE_GIB = ImageCache.__dict__["size_gib"]
cdef object CACHE_PHASE = ImageCache.__dict__["phase"]
cdef object CACHE_CREATED = ImageCache.__dict__["created"]
cdef object CACHE_EXPIRES = ImageCache.__dict__["expires"]
cdef object CACHE_LAST_MATCHED = ImageCache.__dict__["last_matched"]
cdef object CACHE_AUTO_CREATED = ImageCache.__dict__["auto_created"]
cdef object CACHE_ARCH = ImageCache.__dict__["arch"]
cdef object CACHE_OS = ImageCache.__dict__["os"]
cdef object CACHE_RETENTION_DAYS = ImageCache.__dict__["retention_days"]
cdef object CACHE_SIZES = ImageCache.__dict__["_sizes"]
cdef object CACHE_BYTES = ImageCache.__dict__["_bytes"]
cdef object CACHE_BY_REFERENCE = ImageCache.__dict__["_by_reference"]

# The slots of Image a cache's derived fields are made of.
cdef object IMAGE_LAYERS = Image.__dict__["layers"]
cdef object IMAGE_SIZES = Image.__dict__["_sizes"]
cdef object IMAGE_KEYS = Image.__dict__["_keys"]

cdef object FROM_ISO = datetime.fromisoformat
cdef object DEFAULT_SIZE = 20  # what the careful reader takes for a missing size
cdef long long MIN_SIZE = MIN_SIZE_GIB
cdef long long MAX_SIZE = MAX_SIZE_GIB
cdef Py_ssize_t MAX_IMAGES = MAX_IMAGES_PER_CACHE
cdef long long MAX_BYTES = 1LL << 62  # summed in C up to here, in Python beyond


cdef inline object get(dict d, str key):
    """``d.get(key)``, borrowed into a new reference (``None`` when absent)."""
    cdef PyObject *found = PyDict_GetItem(d, key)
    return <object>found if found != NULL else None


cdef object k8s_time(object value):
    """The time of a field in Kubernetes' own form (``2025-10-18T20:51:23Z``), as the
    careful reader reads it, else ``None``."""
    if type(value) is not str or not fastcaches_k8s_time(value):
        return None
    try:
        return FROM_ISO(value)
    except ValueError:
        return None


cdef inline bint ranged(object value, long long low, long long high) noexcept:
    """Whether ``value`` is an ``int`` (not a ``bool``) from ``low`` to ``high``."""
    cdef int overflow = 0
    cdef long long n
    if type(value) is not int:
        return False
    n = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0 and low <= n <= high


cdef inline bint padded(str text) noexcept:
    """Whether ``text`` (non-empty) starts or ends with white space (``str.strip`` would
    change it)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    return Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, 0)) or \
        Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, n - 1))


@cython.auto_pickle(False)  # a reader is used where it is made
cdef class PlainCaches:
    """Reads a run of plain ``ImageCache`` objects (see the module) into caches.

    ``sets``: the read's :class:`~fastmatch.inputs.caches.ImageSets` (a list of
    references read before gives its images, and its first cache's derived fields,
    again; its :class:`~fastmatch.inputs.images.ImageReader` gives the images of a list
    not read before, from its memo or looked up); ``phases``: ECI's phase names to
    :class:`~fastmatch.model.Phase`; ``preparing``: the phase of an object without
    one; ``managed_by``: the label (key, value) of fastmatch's own caches;
    ``prefix``: the name prefix of ECI's auto-created caches.
    """

    cdef object sets
    cdef dict remembered  # sets.sets: a list of references (a tuple) -> (images, cache)
    cdef object reader
    cdef dict memo  # the reader's: (reference, platform) -> image
    cdef dict phases
    cdef object preparing
    cdef str managed_key
    cdef object managed_value
    cdef str prefix
    cdef fastcaches_merge merge

    def __cinit__(self) -> None:
        fastcaches_merge_init(&self.merge)

    def __dealloc__(self) -> None:
        fastcaches_merge_free(&self.merge)

    def __init__(self, sets, dict phases, preparing, tuple managed_by, str prefix) -> None:
        self.sets = sets
        self.remembered = sets.sets
        self.reader = sets.reader
        self.memo = sets.reader._memo
        self.phases = phases
        self.preparing = preparing
        self.managed_key, self.managed_value = managed_by
        self.prefix = prefix

    def read(self, list found, Py_ssize_t start, list caches) -> Py_ssize_t:
        """Read ``found[start:]`` (``Located`` objects) up to the first object that is
        neither a plain ``ImageCache`` nor of another kind, appending ``(cache,
        located)`` to ``caches``; return that object's index (``len(found)`` when all
        were read)."""
        cdef Py_ssize_t i, n = PyList_GET_SIZE(found)
        cdef object located, obj, kind, cache
        for i in range(start, n):
            located = <object>PyList_GET_ITEM(found, i)
            obj = located.obj
            if type(obj) is not dict:
                return i
            kind = get(<dict>obj, "kind")
            if type(kind) is str and kind == "ImageCache":
                cache = self.cache(<dict>obj)
                if cache is None:
                    return i
                caches.append((cache, located))
            elif kind is None and "kind" not in <dict>obj:
                return i  # perhaps a DescribeImageCaches answer: the careful reader's
            elif type(kind) is not str and kind is not None and type(kind) not in (
                    int, float, bool, list, dict):
                return i
            # else another kind: skipped, as the careful reader skips it
        return n

    cdef bint derive(self, object cache, tuple images) except -1:
        """Write what ``ImageCache._derive`` derives from ``images`` into ``cache``: its
        bytes and the identities it lists by reference only, its layers checked to have
        one size each, and its merged layers left for ``layer_sizes()`` to make when
        asked; ``False`` for the careful reader to do it (a layer listed twice, or with
        two sizes, which it words)."""
        cdef list by_reference = []
        cdef object image, part, layers
        cdef PyObject *key
        cdef PyObject *value
        cdef Py_ssize_t pos, i, n = 0, known = 0
        cdef long long total = 0, size
        cdef int overflow = 0, added
        cdef list parts = []  # the layer sizes of the images whose layers are known
        for image in images:
            if type(image) is not Image:
                return False
            layers = get_slot(IMAGE_LAYERS, image)
            if not layers:
                by_reference.extend(get_slot(IMAGE_KEYS, image))
                continue
            part = get_slot(IMAGE_SIZES, image)
            if len(part) != len(layers):
                return False  # a layer twice in one image
            n += len(part)
            parts.append(part)
        known = len(parts)
        if known > 1 and fastcaches_merge_start(&self.merge, n) < 0:
            raise MemoryError()
        for i in range(known):
            pos = 0
            while PyDict_Next(parts[i], &pos, &key, &value):
                if type(<object>value) is not int or type(<object>key) is not str:
                    return False
                size = PyLong_AsLongLongAndOverflow(<object>value, &overflow)
                if overflow or size < 0 or size > MAX_BYTES - total:
                    return False  # the careful reader sums it in Python
                if known > 1:
                    added = fastcaches_merge_add(&self.merge, key, PyObject_Hash(<object>key),
                                                 size)
                    if added == 2:
                        return False  # one layer, two sizes
                    if added == 0:
                        continue  # in an earlier image of the cache
                total += size
        set_slot(CACHE_SIZES, cache, None)
        set_slot(CACHE_BYTES, cache, total)
        set_slot(CACHE_BY_REFERENCE, cache, PyFrozenSet_New(by_reference))
        return True

    cdef object images(self, list refs):
        """The images of a list of references not read before (as the careful reader's
        ``_images`` gives them), else ``None``: a reference the reader has met is taken
        from its memo, any other is looked up by the reader itself."""
        cdef Py_ssize_t i, n = PyList_GET_SIZE(refs)
        cdef object images = PyTuple_New(n)
        cdef object ref, image
        cdef PyObject *found
        for i in range(n):
            ref = <object>PyList_GET_ITEM(refs, i)
            if type(ref) is not str:
                return None
            found = PyDict_GetItem(self.memo, (ref, None))
            if found != NULL:
                image = <object>found
            else:
                try:
                    image = self.reader.image(ref, "spec.images")
                except Exception:  # the careful reader words it, naming the field
                    return None
            Py_INCREF(image)
            PyTuple_SET_ITEM(images, i, image)
        return images

    cdef object cache(self, dict obj):
        """The cache of a plain object, else ``None``."""
        cdef object meta = get(obj, "metadata")
        cdef object spec = get(obj, "spec")
        cdef object status = get(obj, "status")
        cdef object name, cache_id, refs, known, images, like, labels, created, size
        cdef object retention, phase, expires, auto, key
        if type(meta) is not dict or type(spec) is not dict:
            return None
        if status is None:
            status = {}
        elif type(status) is not dict:
            return None
        name = get(<dict>meta, "name")
        if type(name) is not str or not name:
            return None
        cache_id = get(<dict>status, "imageCacheId")
        if cache_id is None or (type(cache_id) is str and not cache_id):
            cache_id = name
        elif type(cache_id) is not str:
            return None
        if padded(<str>cache_id):
            return None
        refs = get(<dict>spec, "images")
        if type(refs) is not list or not 1 <= PyList_GET_SIZE(refs) <= MAX_IMAGES:
            return None
        try:
            key = tuple(refs)
            known = self.remembered.get(key)
        except TypeError:  # something unhashable in the list: not plain
            return None
        if known is not None:
            images, like = known
        else:
            images = self.images(<list>refs)
            if images is None:
                return None
            like = None
        labels = get(<dict>meta, "labels")
        if labels is not None and type(labels) is not dict:
            return None
        created = k8s_time(get(<dict>meta, "creationTimestamp"))
        if created is None:
            return None
        size = get(<dict>spec, "imageCacheSize")
        if size is None:
            size = DEFAULT_SIZE
        elif not ranged(size, MIN_SIZE, MAX_SIZE):
            return None
        retention = get(<dict>spec, "retentionDays")
        if retention is not None and not ranged(retention, 1, 10**6):
            return None
        phase = get(<dict>status, "phase")
        if phase is None or (type(phase) is str and not phase):
            phase = self.preparing
        elif type(phase) is not str:
            return None
        else:
            phase = self.phases.get(phase)
            if phase is None:
                return None
        expires = get(<dict>status, "expireDateTime")
        if expires is not None:
            expires = k8s_time(expires)
            if expires is None:
                return None
        auto = PyUnicode_Tailmatch(name, self.prefix, 0, PyUnicode_GET_LENGTH(name), -1) == 1 \
            or (labels is not None and get(<dict>labels, self.managed_key) == self.managed_value)
        cache = new_instance(ImageCache, 0)
        set_slot(CACHE_ID, cache, cache_id)
        set_slot(CACHE_IMAGES, cache, images)
        set_slot(CACHE_NAME, cache, name)
        set_slot(CACHE_SIZE_GIB, cache, size)
        set_slot(CACHE_PHASE, cache, phase)
        set_slot(CACHE_CREATED, cache, created)
        set_slot(CACHE_EXPIRES, cache, expires)
        set_slot(CACHE_LAST_MATCHED, cache, None)
        set_slot(CACHE_AUTO_CREATED, cache, True if auto else False)
        set_slot(CACHE_ARCH, cache, None)
        set_slot(CACHE_OS, cache, None)
        set_slot(CACHE_RETENTION_DAYS, cache, retention)
        if like is not None:
            set_slot(CACHE_SIZES, cache, (<object>like)._sizes)
            set_slot(CACHE_BYTES, cache, (<object>like)._bytes)
            set_slot(CACHE_BY_REFERENCE, cache, (<object>like)._by_reference)
        elif not self.derive(cache, <tuple>images):
            return None  # a layer listed with two sizes: the careful reader words it
        if known is None:
            self.sets.remember(refs, images, cache)
        return cache
