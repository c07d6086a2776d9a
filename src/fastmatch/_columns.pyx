# cython: language_level=3
"""The caches' columns for the core's bulk build (:func:`fastmatch.encoding.cache_columns`),
read in C.

Every field is read straight from the caches' slots.  A plain cache (of the
type :class:`~fastmatch.model.ImageCache` itself, its times in UTC) is encoded
here; a field this code does not take as plain is handed to the Python
function that encodes it, so that what is odd about it (a time zone, a limit
past year 9999) is computed, or refused, exactly as before: images that are
not plain go to ``image_parts``, a creation time to ``micros``, an expiry to
``expires_micros``.  A list holding anything but ``ImageCache`` objects is not
read here at all (``None``): the Python path reads it.
"""

from cpython.datetime cimport PyDateTime_IMPORT
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from cython.operator cimport dereference as deref
from libcpp.unordered_map cimport unordered_map

from datetime import datetime, timezone

from fastmatch.model import Image, ImageCache, Phase

__all__ = ["cache_columns"]

cdef extern from *:
    """
    #include <datetime.h>
    #include <structmember.h>

    /* The offset of a slot (an object member set by __slots__) in its instances, from
       its descriptor; -1 when it is no such slot. */
    static Py_ssize_t fastcolumns_slot(PyObject *descr) {
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READ_RESTRICTED)) return -1;
        return member->offset;
    }
    /* The value of a slot (borrowed), NULL when it is unset. */
    static PyObject *fastcolumns_get(PyObject *obj, Py_ssize_t offset) {
        return *(PyObject **)((char *)obj + offset);
    }

    /* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
    static long long fastcolumns_days(long long y, unsigned m, unsigned d) {
        y -= m <= 2;
        long long era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (long long)doe - 719468;
    }
    /* Microseconds since the epoch of a datetime, read as UTC. */
    static long long fastcolumns_micros(PyObject *t) {
        long long days = fastcolumns_days(PyDateTime_GET_YEAR(t), PyDateTime_GET_MONTH(t),
                                          PyDateTime_GET_DAY(t));
        long long seconds = ((days * 24 + PyDateTime_DATE_GET_HOUR(t)) * 60
                             + PyDateTime_DATE_GET_MINUTE(t)) * 60
                            + PyDateTime_DATE_GET_SECOND(t);
        return seconds * 1000000 + PyDateTime_DATE_GET_MICROSECOND(t);
    }
    /* Whether t is a datetime (not a subclass) in timezone.utc. */
    static int fastcolumns_utc(PyObject *t) {
        return PyDateTime_CheckExact(t) && ((PyDateTime_DateTime *)t)->hastzinfo
               && ((PyDateTime_DateTime *)t)->tzinfo == PyDateTime_TimeZone_UTC;
    }
    """
    ctypedef void* Address "void *"  # an object's address: its identity while it is alive
    Py_ssize_t _slot "fastcolumns_slot"(object descr)
    PyObject* _get "fastcolumns_get"(object obj, Py_ssize_t offset)
    long long _micros "fastcolumns_micros"(PyObject* t)
    bint _utc "fastcolumns_utc"(PyObject* t)

PyDateTime_IMPORT

cdef long long DAY = 86_400_000_000  # microseconds
cdef long long FAILED_DAYS = 1, AUTO_UNMATCHED_DAYS = 7, AUTO_MATCHED_DAYS = 30
# The last microsecond a datetime can hold (9999-12-31T23:59:59.999999): a later expiry
# is one that datetime arithmetic refuses, in the Python path.
cdef long long LAST = (<long long>(datetime.max.replace(tzinfo=timezone.utc)
                                   - datetime(1970, 1, 1, tzinfo=timezone.utc)).days * DAY
                       + DAY - 1)
# Retention days past which created + retention overflows whatever created is.
cdef long long MAX_RETENTION = 4_000_000
cdef object NEVER = 2**63 - 1  # fastmatch.encoding.NEVER
cdef long long NEVER_AT = 2**63 - 1
cdef PyObject* FAILED = <PyObject*>Phase.FAILED


cdef Py_ssize_t _offset(type cls, str name) except? -2:
    return _slot(cls.__dict__.get(name))


# Where each field lies in a cache, and an image (-1: not a slot, then nothing is
# read here).
cdef Py_ssize_t C_IMAGES = _offset(ImageCache, "images")
cdef Py_ssize_t C_BYTES = _offset(ImageCache, "_bytes")
cdef Py_ssize_t C_CREATED = _offset(ImageCache, "created")
cdef Py_ssize_t C_EXPIRES = _offset(ImageCache, "expires")
cdef Py_ssize_t C_LAST_MATCHED = _offset(ImageCache, "last_matched")
cdef Py_ssize_t C_RETENTION = _offset(ImageCache, "retention_days")
cdef Py_ssize_t C_AUTO = _offset(ImageCache, "auto_created")
cdef Py_ssize_t C_PHASE = _offset(ImageCache, "phase")
cdef Py_ssize_t C_SIZE_GIB = _offset(ImageCache, "size_gib")
cdef Py_ssize_t C_ARCH = _offset(ImageCache, "arch")
cdef Py_ssize_t C_OS = _offset(ImageCache, "os")
cdef Py_ssize_t I_PSEUDO = _offset(Image, "_pseudo")
cdef Py_ssize_t I_SIZES = _offset(Image, "_sizes")
cdef bint SLOTS = min(C_IMAGES, C_BYTES, C_CREATED, C_EXPIRES, C_LAST_MATCHED, C_RETENTION,
                      C_AUTO, C_PHASE, C_SIZE_GIB, C_ARCH, C_OS, I_PSEUDO, I_SIZES) >= 0


cdef inline object _field(object cache, Py_ssize_t offset):
    # A field of a cache _complete took.
    return <object>_get(cache, offset)


cdef inline bint _complete(object cache) noexcept:
    # Whether every field read here is set (so always, but in a cache made around its
    # constructor and the readers: the Python path raises AttributeError on it).
    return (_get(cache, C_IMAGES) != NULL and _get(cache, C_BYTES) != NULL
            and _get(cache, C_CREATED) != NULL and _get(cache, C_EXPIRES) != NULL
            and _get(cache, C_LAST_MATCHED) != NULL and _get(cache, C_RETENTION) != NULL
            and _get(cache, C_AUTO) != NULL and _get(cache, C_PHASE) != NULL
            and _get(cache, C_SIZE_GIB) != NULL and _get(cache, C_ARCH) != NULL
            and _get(cache, C_OS) != NULL)


cdef object _plain_parts(tuple images):
    # (keys, images) of an images tuple as _image_parts gives them, or None when one
    # of its images is not plain.
    cdef Py_ssize_t n = PyTuple_GET_SIZE(images), i, j, k = 0
    cdef PyObject* image
    cdef PyObject* pseudo
    cdef PyObject* sizes
    cdef tuple keys, parts = PyTuple_New(n)
    for i in range(n):
        image = PyTuple_GET_ITEM(images, i)
        if type(<object>image) is not Image:
            return None
        pseudo = _get(<object>image, I_PSEUDO)
        sizes = _get(<object>image, I_SIZES)
        if pseudo == NULL or sizes == NULL or type(<object>pseudo) is not tuple:
            return None
        Py_INCREF(<object>sizes)
        PyTuple_SET_ITEM(parts, i, <object>sizes)
        k += PyTuple_GET_SIZE(<object>pseudo)
    if n == 1:
        return (<object>_get(<object>PyTuple_GET_ITEM(images, 0), I_PSEUDO), parts)
    keys = PyTuple_New(k)
    k = 0
    for i in range(n):
        pseudo = _get(<object>PyTuple_GET_ITEM(images, i), I_PSEUDO)
        for j in range(PyTuple_GET_SIZE(<object>pseudo)):
            key = <object>PyTuple_GET_ITEM(<object>pseudo, j)
            Py_INCREF(key)
            PyTuple_SET_ITEM(keys, k, key)
            k += 1
    return (keys, parts)


cdef inline bint _limit(long long* at, long long limit) noexcept:
    # Fold one expiry limit in; False when it is past what a datetime holds (the
    # Python path then raises OverflowError computing it).
    if limit > LAST:
        return False
    if limit < at[0]:
        at[0] = limit
    return True


cdef object _plain_expires(object cache, long long created):
    # The expiry of a cache created at ``created`` (UTC microseconds), as
    # ImageCache.expires_at folds it (SPEC §4), in microseconds; None when the
    # Python path must compute it (a time not in UTC, a limit a datetime cannot
    # hold, a field of an unexpected type).
    cdef PyObject* expires = _get(cache, C_EXPIRES)
    cdef PyObject* matched = _get(cache, C_LAST_MATCHED)
    cdef PyObject* retention = _get(cache, C_RETENTION)
    cdef PyObject* auto = _get(cache, C_AUTO)
    cdef long long at = NEVER_AT, days
    if <object>expires is not None:
        if not _utc(expires):
            return None
        at = _micros(expires)
    if <object>retention is not None:
        if type(<object>retention) is not int or not 0 < <object>retention <= MAX_RETENTION:
            return None
        days = <object>retention
        if not _limit(&at, created + days * DAY):
            return None
    if _get(cache, C_PHASE) == FAILED and not _limit(&at, created + FAILED_DAYS * DAY):
        return None
    if <object>auto is True:
        if <object>matched is None:
            if not _limit(&at, created + AUTO_UNMATCHED_DAYS * DAY):
                return None
        elif not _utc(matched) or not _limit(&at, _micros(matched) + AUTO_MATCHED_DAYS * DAY):
            return None
    elif <object>auto is not False:
        return None
    return NEVER if at == NEVER_AT else at


def cache_columns(list caches, image_parts, micros, expires_micros):
    """The columns of :func:`fastmatch.encoding.cache_columns`, or ``None`` when a cache is
    not an ``ImageCache`` itself (or has a field unset).  ``image_parts(images)``,
    ``micros(created)`` and ``expires_micros(cache)`` encode what is not plain."""
    cdef Py_ssize_t n = PyList_GET_SIZE(caches), i
    cdef unordered_map[Address, Py_ssize_t] seen  # images tuple -> its parts in ``parts``
    cdef unordered_map[Address, Py_ssize_t].iterator it
    cdef list parts = []
    cdef list keys = [None] * n, images = [None] * n, nbytes = [None] * n
    cdef list created = [None] * n, expires = [None] * n, size_gib = [None] * n
    cdef list arch = [None] * n, os = [None] * n
    cdef PyObject* listed
    cdef PyObject* made
    cdef long long at
    if not SLOTS:
        return None
    for i in range(n):
        cache = <object>PyList_GET_ITEM(caches, i)
        if type(cache) is not ImageCache or not _complete(cache):
            return None
    for i in range(n):
        cache = <object>PyList_GET_ITEM(caches, i)
        listed = _get(cache, C_IMAGES)
        it = seen.find(<Address>listed)
        if it == seen.end():
            part = _plain_parts(<tuple>listed) if type(<object>listed) is tuple else None
            if part is None:
                part = image_parts(<object>listed)
            seen[<Address>listed] = len(parts)
            parts.append(part)
        else:
            part = parts[deref(it).second]
        keys[i] = part[0]
        images[i] = part[1]
        nbytes[i] = _field(cache, C_BYTES)
        size_gib[i] = _field(cache, C_SIZE_GIB)
        arch[i] = _field(cache, C_ARCH)
        os[i] = _field(cache, C_OS)
        made = _get(cache, C_CREATED)
        if _utc(made):
            at = _micros(made)
            created[i] = at
            when = _plain_expires(cache, at)
            expires[i] = when if when is not None else expires_micros(cache)
        else:
            created[i] = micros(<object>made)
            expires[i] = expires_micros(cache)
    return keys, images, nbytes, created, expires, size_gib, arch, os
