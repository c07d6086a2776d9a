# cython: language_level=3
"""The image catalog's plain lines (SPEC §6), read in C.

A plain line is what ``fastmatch resolve`` writes: a JSON object whose ``ref`` is a
valid reference without a digest, whose ``digest`` (if any) and layer digests are
``sha256:`` with 64 lowercase hex digits, whose sizes are integers from 0 to 2**50,
whose platform (if any) is one :func:`~fastmatch.inputs.catalog.canonical_platform`
reads, that lists no layer twice with two sizes, and whose image is not in the
catalog yet.  :class:`PlainReader` reads such lines straight into a catalog's
tables; it hands any other line back, unread, to the careful reader in
``fastmatch.inputs.catalog``, which checks it field by field and words its error.
Nothing here raises on bad input: refusing a line is how it says "not plain".

A catalog's images share their base layers: each distinct layer is checked and made
once, and every image that lists it holds the same :class:`~fastmatch.model.Layer`.
"""

cimport cython
from cpython.dict cimport PyDict_Next, PyDict_SetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

from fastmatch.inputs._slots cimport new_instance, set_slot

from fastmatch.errors import FastmatchError
from fastmatch.imageref import parse_reference
from fastmatch.model import MAX_LAYER_SIZE, PSEUDO_PREFIX, Image, Layer, LayerSizes

__all__ = ["PlainReader", "plain_reference_name"]

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <new>
    #include <vector>

    /* The one-byte characters of a str, or NULL when it holds any wider one (then it
       is not plain: every plain text is ASCII). */
    static const unsigned char *fastcatalog_bytes(PyObject *text, Py_ssize_t *length) {
        if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) return NULL;
        *length = PyUnicode_GET_LENGTH(text);
        return PyUnicode_1BYTE_DATA(text);
    }

    /* Whether the n characters at s are "sha256:" and 64 lowercase hex digits (without
       a branch per character, so that the compiler may vectorize it). */
    static int fastcatalog_sha256(const unsigned char *s, Py_ssize_t n) {
        if (n != 71 || memcmp(s, "sha256:", 7) != 0) return 0;
        unsigned ok = 1;
        for (Py_ssize_t i = 7; i < 71; i++) {
            unsigned c = s[i];
            ok &= ((c - '0') < 10u) | ((c - 'a') < 6u);
        }
        return (int)ok;
    }

    /* The layers made so far, found by the text of their digest (the 71 characters of a
       sha256 digest).  A line's digests are new str objects: hashing each with str's
       SipHash, for a dict, would cost more than the rest of reading its layer; the text
       of a sha256 digest is itself well spread, so a few multiplications hash it. */
    struct fastcatalog_layers {
        std::vector<const unsigned char *> texts;  /* each layer's digest text */
        std::vector<long long> sizes;              /* each layer's size */
        std::vector<Py_ssize_t> slots;             /* 1 + a layer's index; 0: empty */
        std::vector<char> placed;  /* whether found by its text (not: another size) */
        /* The images read, not made yet: each one's layer indexes, flat, from starts[i]
           to starts[i + 1]. */
        std::vector<Py_ssize_t> flat;
        std::vector<Py_ssize_t> starts;
        /* Per layer, the serial of the last line that listed it, and with what size:
           a layer listed twice in one line with two sizes makes the line not plain. */
        std::vector<long long> listed_on;
        std::vector<long long> listed_size;
    };
    static uint64_t fastcatalog_hash(const unsigned char *s) {
        uint64_t h = 0x9E3779B97F4A7C15ULL, word;
        for (int i = 7; i < 71; i += 8) {
            memcpy(&word, s + i, 8);
            h = (h ^ word) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        return h;
    }
    static fastcatalog_layers *fastcatalog_layers_new(void) {
        fastcatalog_layers *layers = new (std::nothrow) fastcatalog_layers();
        if (layers == NULL) return NULL;
        try {
            layers->slots.assign(1 << 12, 0);
            layers->starts.push_back(0);
        } catch (...) {
            delete layers;
            return NULL;
        }
        return layers;
    }
    static void fastcatalog_layers_free(fastcatalog_layers *layers) { delete layers; }
    /* The index of the layer whose digest is these 71 characters, or -1. */
    static Py_ssize_t fastcatalog_layers_find(const fastcatalog_layers *layers,
                                              const unsigned char *text) {
        size_t mask = layers->slots.size() - 1;
        for (size_t at = fastcatalog_hash(text) & mask;; at = (at + 1) & mask) {
            Py_ssize_t slot = layers->slots[at];
            if (slot == 0) return -1;
            if (memcmp(layers->texts[slot - 1], text, 71) == 0) return slot - 1;
        }
    }
    static void fastcatalog_layers_place(fastcatalog_layers *layers, Py_ssize_t index) {
        size_t mask = layers->slots.size() - 1;
        size_t at = fastcatalog_hash(layers->texts[index]) & mask;
        while (layers->slots[at] != 0) at = (at + 1) & mask;
        layers->slots[at] = index + 1;
    }
    /* Remember a new layer (its digest text must stay alive), found by its text when
       `placed` (the first size of a digest), else only kept; its index, or -1 when
       memory ran out. */
    static Py_ssize_t fastcatalog_layers_add(fastcatalog_layers *layers,
                                             const unsigned char *text, long long size,
                                             int placed) {
        Py_ssize_t index = (Py_ssize_t)layers->texts.size();
        try {
            layers->texts.push_back(text);
            layers->sizes.push_back(size);
            layers->placed.push_back((char)placed);
            layers->listed_on.push_back(0);
            layers->listed_size.push_back(0);
            if (placed && 2 * layers->texts.size() > layers->slots.size()) {
                layers->slots.assign(2 * layers->slots.size(), 0);  /* at most half full */
                for (Py_ssize_t i = 0; i <= index; i++)
                    if (layers->placed[i]) fastcatalog_layers_place(layers, i);
                return index;
            }
        } catch (...) {
            return -1;
        }
        if (placed) fastcatalog_layers_place(layers, index);
        return index;
    }
    /* Note that the line of this serial lists the layer `found` (its first size) as the
       layer `index` of this size; 0 when it listed it before with another size (a layer
       listed twice with one size is kept twice, as Image keeps it). */
    static int fastcatalog_layers_list(fastcatalog_layers *layers, long long serial,
                                       Py_ssize_t found, Py_ssize_t index, long long size) {
        if (layers->listed_on[found] == serial) {
            if (layers->listed_size[found] != size) return 0;
        } else {
            layers->listed_on[found] = serial;
            layers->listed_size[found] = size;
        }
        try {
            layers->flat.push_back(index);
        } catch (...) {
            return -1;
        }
        return 1;
    }
    /* The layer indexes of the line being read so far: how many. */
    static Py_ssize_t fastcatalog_layers_mark(const fastcatalog_layers *layers) {
        return (Py_ssize_t)layers->flat.size();
    }
    /* Forget the layers of a line found not plain after all. */
    static void fastcatalog_layers_drop(fastcatalog_layers *layers, Py_ssize_t mark) {
        layers->flat.resize((size_t)mark);
    }
    /* Close the line's image: its layers are those since the last image's; -1 when
       memory ran out. */
    static int fastcatalog_layers_close(fastcatalog_layers *layers) {
        try {
            layers->starts.push_back((Py_ssize_t)layers->flat.size());
        } catch (...) {
            return -1;
        }
        return 0;
    }
    static Py_ssize_t fastcatalog_image_start(const fastcatalog_layers *layers, Py_ssize_t i) {
        return layers->starts[i];
    }
    static Py_ssize_t fastcatalog_image_layer(const fastcatalog_layers *layers, Py_ssize_t at) {
        return layers->flat[at];
    }
    static long long fastcatalog_layers_size(const fastcatalog_layers *layers,
                                             Py_ssize_t index) {
        return layers->sizes[index];
    }
    """
    const unsigned char *fastcatalog_bytes(object text, Py_ssize_t *length)
    PyObject *PyDict_SetDefault(object d, object key, object default) except NULL
    PyObject *PyDict_GetItemWithError(object d, object key) except? NULL
    int fastcatalog_sha256(const unsigned char *s, Py_ssize_t n)
    ctypedef struct fastcatalog_layers:
        pass
    fastcatalog_layers *fastcatalog_layers_new()
    void fastcatalog_layers_free(fastcatalog_layers *layers)
    Py_ssize_t fastcatalog_layers_find(const fastcatalog_layers *layers,
                                       const unsigned char *text)
    Py_ssize_t fastcatalog_layers_add(fastcatalog_layers *layers, const unsigned char *text,
                                      long long size, int placed)
    int fastcatalog_layers_list(fastcatalog_layers *layers, long long serial,
                                Py_ssize_t found, Py_ssize_t index, long long size)
    Py_ssize_t fastcatalog_layers_mark(const fastcatalog_layers *layers)
    void fastcatalog_layers_drop(fastcatalog_layers *layers, Py_ssize_t mark)
    int fastcatalog_layers_close(fastcatalog_layers *layers)
    Py_ssize_t fastcatalog_image_start(const fastcatalog_layers *layers, Py_ssize_t i)
    Py_ssize_t fastcatalog_image_layer(const fastcatalog_layers *layers, Py_ssize_t at)
    long long fastcatalog_layers_size(const fastcatalog_layers *layers, Py_ssize_t index)


cdef long long MAX_SIZE = MAX_LAYER_SIZE


cdef inline bint is_lower_alnum(unsigned char c) noexcept nogil:
    return (b'a' <= c <= b'z') or (b'0' <= c <= b'9')


cdef inline bint is_word(unsigned char c) noexcept nogil:
    return is_lower_alnum(c) or (b'A' <= c <= b'Z') or c == b'_'


cdef inline bint same_text(const unsigned char *s, const char *text, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] != <unsigned char>text[i]:
            return False
    return True


cdef inline bint is_sha256(object text) noexcept:
    """Whether ``text`` (a str) is ``sha256:`` and 64 lowercase hex digits."""
    cdef Py_ssize_t n
    cdef const unsigned char *s = fastcatalog_bytes(text, &n)
    return s != NULL and fastcatalog_sha256(s, n)


cdef bint is_path_component(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """Docker's path component: ``[a-z0-9]+`` runs joined by ``.``, ``_``, ``__`` or
    dashes."""
    cdef Py_ssize_t i = 0, j, k
    if n == 0 or not is_lower_alnum(s[0]) or not is_lower_alnum(s[n - 1]):
        return False
    while i < n:
        if is_lower_alnum(s[i]):
            i += 1
            continue
        j = i
        while j < n and not is_lower_alnum(s[j]):
            j += 1
        if j - i == 1 and (s[i] == b'.' or s[i] == b'_' or s[i] == b'-'):
            pass
        elif j - i == 2 and s[i] == b'_' and s[i + 1] == b'_':
            pass
        else:
            for k in range(i, j):
                if s[k] != b'-':
                    return False
        i = j
    return True


cdef bint is_plain_host(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """A lowercase registry host Docker reads as one: dot-separated labels of
    ``[a-z0-9-]`` not starting or ending with ``-``, an optional ``:port``, and a ``.``,
    a ``:`` or the name ``localhost`` (or the first component would be a path)."""
    cdef Py_ssize_t i, start = 0, end = n
    cdef bint dotted = False
    for i in range(n):
        if s[i] == b':':
            end = i
            break
    if end < n:  # a port: digits, at least one
        if end + 1 == n:
            return False
        for i in range(end + 1, n):
            if not (b'0' <= s[i] <= b'9'):
                return False
    if end == 0:
        return False
    for i in range(end + 1):
        if i == end or s[i] == b'.':
            if i == start or s[start] == b'-' or s[i - 1] == b'-':
                return False
            if i < end:
                dotted = True
            start = i + 1
        elif not (is_lower_alnum(s[i]) or s[i] == b'-'):
            return False
    if end < n or dotted:
        return True
    return end == 9 and s[0] == b'l' and s[1] == b'o' and s[2] == b'c' and s[3] == b'a' \
        and s[4] == b'l' and s[5] == b'h' and s[6] == b'o' and s[7] == b's' and s[8] == b't'


cdef Py_ssize_t normalized_tag_colon(object ref) noexcept:
    """Where the tag's ``:`` is in ``ref`` when ``ref`` is a reference already in its
    normalized form, ``host/path:tag`` (then :func:`parse_reference` would give it back
    unchanged, with its name the text before that ``:``); else -1.  Only a subset of
    the grammar: a reference outside it is parsed by :func:`parse_reference`."""
    cdef Py_ssize_t n, i, colon = -1, slash = -1, start
    cdef const unsigned char *s = fastcatalog_bytes(ref, &n)
    if s == NULL:
        return -1
    for i in range(n):
        if s[i] == b'/':
            if slash < 0:
                slash = i
        elif s[i] == b':':
            colon = i
        elif s[i] == b'@':
            return -1
    if slash <= 0 or colon < slash:  # no host, or no tag after the last '/'
        return -1
    for i in range(slash, n):
        if s[i] == b'/':
            start = i
    if colon < start:
        return -1
    # The tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    if n - colon - 1 < 1 or n - colon - 1 > 128 or not is_word(s[colon + 1]):
        return -1
    for i in range(colon + 2, n):
        if not (is_word(s[i]) or s[i] == b'.' or s[i] == b'-'):
            return -1
    if not is_plain_host(s, slash):
        return -1
    # index.docker.io is docker.io; an official image on docker.io gains "library/".
    if slash == 15 and same_text(s, b"index.docker.io", 15):
        return -1
    if colon - slash - 1 > 255:  # the repository path, at most 255 characters
        return -1
    start = slash + 1
    for i in range(slash + 1, colon + 1):
        if i == colon or s[i] == b'/':
            if not is_path_component(s + start, i - start):
                return -1
            start = i + 1
    if slash == 9 and same_text(s, b"docker.io", 9):
        for i in range(slash + 1, colon):
            if s[i] == b'/':
                return colon
        return -1
    return colon


def plain_reference_name(ref: str) -> str | None:
    """The repository name of ``ref`` when the fast path takes it as its own normalized
    form (``host/path:tag``), else ``None`` (then :func:`parse_reference` reads it)."""
    cdef Py_ssize_t colon = normalized_tag_colon(ref) if type(ref) is str else -1
    return ref[:colon] if colon >= 0 else None


cdef object IMAGE_REF = Image.__dict__["ref"]
cdef object IMAGE_LAYERS = Image.__dict__["layers"]
cdef object IMAGE_DIGEST = Image.__dict__["digest"]
# What Image keeps of its layers (model.trusted_image writes them through Image._keep).
cdef object IMAGE_SIZES = Image.__dict__["_sizes"]
cdef object IMAGE_LAYER_SET = Image.__dict__["_layer_set"]
cdef str PSEUDO = PSEUDO_PREFIX
cdef object IMAGE_KEYS = Image.__dict__["_keys"]
cdef object IMAGE_PSEUDO = Image.__dict__["_pseudo"]
cdef object LAYER_DIGEST = Layer.__dict__["digest"]
cdef object LAYER_SIZE = Layer.__dict__["size"]


@cython.auto_pickle(False)  # a reader is used where it is made
cdef class PlainReader:
    """Reads a catalog's plain lines into its tables, in order, up to the first line
    that is not plain (see the module), and makes their images when first asked.

    ``by_ref``, ``by_digest``: the tables of a :class:`~fastmatch.inputs.catalog.Catalog`
    (reference to platform to ``(platform, image)``; ``(name, manifest digest)`` to
    reference); ``plain_platform``: a platform's canonical spelling, or ``None`` when it
    is not plain.  A line handed back is one the caller reads itself, adding what it
    reads to the same tables.

    Every line is checked as it is read; its :class:`~fastmatch.model.Image` is made
    when :meth:`build` is first called on its entry: until then ``by_ref`` holds, in
    place of the image, the image's number here (an ``int``).
    """

    cdef dict by_ref
    cdef dict by_digest
    cdef object plain_platform
    cdef dict platforms  # spelling -> canonical platform, or None: not plain
    # Each distinct layer made once: found by its digest's text in ``found`` (which
    # views the text of the digests ``made_digests`` holds), by index; with its size's
    # int.  Its Layer (``made``) is made with the first image made that lists it: a
    # cluster looks up half of a catalog's images, or fewer.
    cdef fastcatalog_layers *found
    cdef list made
    cdef list made_digests  # their digests, whose hashes str has already computed
    cdef list made_sizes
    # The images read and not made yet, by number: reference, manifest digest, line.
    cdef list refs
    cdef list digests
    cdef list numbers
    cdef long long serial  # the lines read
    # The keys of the JSON objects last read, as json.loads made them: it makes one
    # str per key name and document, so a field is found by identity, with no hash.
    cdef object key_ref, key_layers, key_digest, key_platform, key_size

    def __cinit__(self) -> None:
        self.found = fastcatalog_layers_new()
        if self.found == NULL:
            raise MemoryError()

    def __dealloc__(self) -> None:
        fastcatalog_layers_free(self.found)

    def __init__(self, dict by_ref, dict by_digest, plain_platform) -> None:
        self.by_ref = by_ref
        self.by_digest = by_digest
        self.plain_platform = plain_platform
        self.platforms = {}
        self.made = []
        self.made_digests = []
        self.made_sizes = []
        self.refs = []
        self.digests = []
        self.numbers = []
        self.serial = 0
        self.key_ref = "ref"
        self.key_layers = "layers"
        self.key_digest = "digest"
        self.key_platform = "platform"
        self.key_size = "size"

    def read(self, items):
        """Read ``(number, document)`` pairs from the iterator ``items`` up to the first
        whose document is not plain, and return that pair; ``None`` once ``items`` is
        exhausted."""
        for item in items:
            if type(item) is not tuple or len(<tuple>item) != 2:
                return item
            if not self.take((<tuple>item)[0], (<tuple>item)[1]):
                return item
        return None

    def line(self, Py_ssize_t number):
        """The line (or document) number of the image of this number here."""
        return self.numbers[number]

    def build(self, dict by_platform):
        """Make the images ``by_platform`` (an entry of ``by_ref``) holds by number."""
        cdef PyObject *key
        cdef PyObject *value
        cdef Py_ssize_t pos = 0
        cdef object number
        while PyDict_Next(by_platform, &pos, &key, &value):
            number = (<tuple>value)[1]
            if type(number) is int:
                # Only a value changes: the iteration goes on over the same keys.
                by_platform[<object>key] = (<object>key, self.image(number))

    cdef object image(self, Py_ssize_t number):
        cdef Py_ssize_t start = fastcatalog_image_start(self.found, number)
        cdef Py_ssize_t n = fastcatalog_image_start(self.found, number + 1) - start
        cdef Py_ssize_t i, index
        cdef object layer, digest = self.digests[number], ref = self.refs[number]
        cdef object built = PyTuple_New(n)
        cdef object sizes = LayerSizes.__new__(LayerSizes)  # empty: no __init__ to run
        for i in range(n):
            index = fastcatalog_image_layer(self.found, start + i)
            layer = self.made[index]
            if layer is None:  # the first image made that lists it
                layer = new_instance(Layer, 0)
                set_slot(LAYER_DIGEST, layer, self.made_digests[index])
                set_slot(LAYER_SIZE, layer, self.made_sizes[index])
                self.made[index] = layer
            # LayerSizes refuses item assignment; the dict API is how its maker fills it.
            PyDict_SetItem(sizes, self.made_digests[index], self.made_sizes[index])
            Py_INCREF(layer)
            PyTuple_SET_ITEM(built, i, layer)
        if not n:
            PyDict_SetItem(sizes, PSEUDO + (digest if digest is not None else ref), 0)
        image = new_instance(Image, 0)
        set_slot(IMAGE_REF, image, ref)
        set_slot(IMAGE_LAYERS, image, built)
        set_slot(IMAGE_DIGEST, image, digest)
        set_slot(IMAGE_SIZES, image, sizes)
        set_slot(IMAGE_LAYER_SET, image, None)  # made by Image.layer_set when asked
        # Its identities, as Image._identify keeps them: a plain line's reference has
        # no digest of its own, so they are the reference and the manifest digest.
        if digest is None:
            set_slot(IMAGE_KEYS, image, (ref,))
            set_slot(IMAGE_PSEUDO, image, (PSEUDO + ref,))
        else:
            set_slot(IMAGE_KEYS, image, (ref, digest))
            set_slot(IMAGE_PSEUDO, image, (PSEUDO + ref, PSEUDO + digest))
        return image

    cdef int fields(self, object doc, PyObject **ref, PyObject **layers, PyObject **digest,
                    PyObject **platform) except -1:
        """Find a line's fields (borrowed; NULL when absent); 0 when a key is not a str
        (not plain), else 1."""
        cdef Py_ssize_t pos = 0
        cdef PyObject *key
        cdef PyObject *value
        while PyDict_Next(doc, &pos, &key, &value):
            if key == <PyObject *>self.key_ref:
                ref[0] = value
            elif key == <PyObject *>self.key_layers:
                layers[0] = value
            elif key == <PyObject *>self.key_digest:
                digest[0] = value
            elif key == <PyObject *>self.key_platform:
                platform[0] = value
            elif type(<object>key) is not str:
                return 0
            elif <object>key == "ref":
                self.key_ref = <object>key
                ref[0] = value
            elif <object>key == "layers":
                self.key_layers = <object>key
                layers[0] = value
            elif <object>key == "digest":
                self.key_digest = <object>key
                digest[0] = value
            elif <object>key == "platform":
                self.key_platform = <object>key
                platform[0] = value
        return 1

    cdef int layer_fields(self, object entry, PyObject **digest, PyObject **size) except -1:
        """Find a layer's ``digest`` and ``size`` (borrowed; NULL when absent); 0 when a
        key is not a str (not plain), else 1."""
        cdef Py_ssize_t pos = 0
        cdef PyObject *key
        cdef PyObject *value
        while PyDict_Next(entry, &pos, &key, &value):
            if key == <PyObject *>self.key_digest:
                digest[0] = value
            elif key == <PyObject *>self.key_size:
                size[0] = value
            elif type(<object>key) is not str:
                return 0
            elif <object>key == "digest":
                self.key_digest = <object>key
                digest[0] = value
            elif <object>key == "size":
                self.key_size = <object>key
                size[0] = value
        return 1

    cdef bint take(self, object number, object doc) except -1:
        """Check the line ``doc`` and, if it is plain, enter its image; whether it was."""
        cdef PyObject *p_ref = NULL
        cdef PyObject *p_layers = NULL
        cdef PyObject *p_digest = NULL
        cdef PyObject *p_platform = NULL
        cdef PyObject *p_size
        cdef PyObject *p
        cdef Py_ssize_t colon, i, at, index, length, mark
        cdef const unsigned char *text
        cdef int overflow, listed
        cdef long long value
        cdef object ref, normalized, name, digest, platform, raw
        cdef object entry, layer_digest, size, by_platform
        cdef list layers
        if type(doc) is not dict or not self.fields(doc, &p_ref, &p_layers, &p_digest,
                                                    &p_platform):
            return False
        if p_ref == NULL or type(<object>p_ref) is not str:
            return False
        ref = <object>p_ref
        if p_layers == NULL or type(<object>p_layers) is not list:
            return False
        layers = <list>p_layers
        digest = None if p_digest == NULL else <object>p_digest
        if digest is not None and (type(digest) is not str or not is_sha256(digest)):
            return False
        platform = None
        if p_platform != NULL and <object>p_platform is not None:
            raw = <object>p_platform
            if type(raw) is not str:
                return False
            p = PyDict_GetItemWithError(self.platforms, raw)
            if p == NULL:
                platform = self.plain_platform(raw)
                self.platforms[raw] = platform
            else:
                platform = <object>p
            if platform is None:
                return False
        colon = normalized_tag_colon(ref)
        if colon >= 0:
            normalized = ref
            name = ref[:colon] if digest is not None else None
        else:
            try:
                parsed = parse_reference(ref)
            except FastmatchError:
                return False
            if parsed.digest is not None:  # by digest: Image's own checks
                return False
            normalized = parsed.normalized
            name = parsed.name
        p = PyDict_GetItemWithError(self.by_ref, normalized)
        by_platform = None if p == NULL else <object>p
        if by_platform is not None and platform in <dict>by_platform:
            return False  # listed before: the caller says whether with the same content

        self.serial += 1
        mark = fastcatalog_layers_mark(self.found)
        for i in range(len(layers)):
            entry = layers[i]
            p = p_size = NULL
            if (type(entry) is not dict or not self.layer_fields(entry, &p, &p_size)
                    or p == NULL or type(<object>p) is not str
                    or p_size == NULL or type(<object>p_size) is not int):
                fastcatalog_layers_drop(self.found, mark)
                return False
            layer_digest = <object>p
            size = <object>p_size
            value = PyLong_AsLongLongAndOverflow(size, &overflow)
            text = fastcatalog_bytes(layer_digest, &length)
            # 71: the length of every sha256 digest
            if overflow != 0 or value < 0 or value > MAX_SIZE or text == NULL or length != 71:
                fastcatalog_layers_drop(self.found, mark)
                return False
            # A digest found is one checked before: only a new one is checked now.
            at = fastcatalog_layers_find(self.found, text)
            if at >= 0 and fastcatalog_layers_size(self.found, at) == value:
                index = at
            else:
                if at < 0 and not fastcatalog_sha256(text, length):
                    fastcatalog_layers_drop(self.found, mark)
                    return False
                # The first size a digest is met with is the one found by its text.
                index = fastcatalog_layers_add(self.found, text, value, at < 0)
                if index < 0:
                    raise MemoryError()
                self.made.append(None)  # its Layer is made with the first image made
                self.made_digests.append(layer_digest)
                self.made_sizes.append(size)
                if at < 0:
                    at = index
            listed = fastcatalog_layers_list(self.found, self.serial, at, index, value)
            if listed < 0:
                raise MemoryError()
            if listed == 0:  # one layer, two sizes: Image words the error
                fastcatalog_layers_drop(self.found, mark)
                return False
        if fastcatalog_layers_close(self.found) < 0:
            raise MemoryError()
        if by_platform is None:
            self.by_ref[normalized] = {platform: (platform, len(self.refs))}
        else:
            (<dict>by_platform)[platform] = (platform, len(self.refs))
        self.refs.append(normalized)
        self.digests.append(digest)
        self.numbers.append(number)
        if digest is not None:
            self.by_digest.setdefault((name, digest), normalized)
        return True
