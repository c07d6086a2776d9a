# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The posting-read reference point of issue 3: a tight C loop over posting lists.

It only reads, for one pod, every entry of the posting list of every layer
the pod has (the inverted index as CSR: ``off`` into ``post``), folding them
into a checksum so the compiler cannot drop the reads.  No filtering, no
scoring, no decision: the least any inverted-index matcher that reads all of
a pod's postings could do.
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef class PostingReader:
    """Holds the CSR arrays; :meth:`read` walks the postings of a pod's layer ids."""

    cdef const uint32_t[::1] post
    cdef const int64_t[::1] off

    def __init__(self, const uint32_t[::1] post, const int64_t[::1] off):
        self.post = post
        self.off = off

    cpdef uint64_t read(self, const uint32_t[::1] layers) noexcept:
        """Checksum of every slot in the posting lists of ``layers``."""
        cdef uint64_t acc = 0
        cdef Py_ssize_t i
        cdef int64_t k, k1
        with nogil:
            for i in range(layers.shape[0]):
                k = self.off[layers[i]]
                k1 = self.off[layers[i] + 1]
                while k < k1:
                    acc += self.post[k]
                    k += 1
        return acc

    def postings(self, const uint32_t[::1] layers):
        """How many postings :meth:`read` walks for ``layers``."""
        cdef int64_t n = 0
        cdef Py_ssize_t i
        for i in range(layers.shape[0]):
            n += self.off[layers[i] + 1] - self.off[layers[i]]
        return n
