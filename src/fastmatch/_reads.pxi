# Reads other than scoring: the index's size in bytes.  Included by _core.pyx.


cdef size_t _nbytes(Core core) noexcept:
    # See Core.nbytes.
    cdef size_t total = 0
    cdef size_t layer
    total += core._pair_layer.capacity() * 4 + core._pair_pos.capacity() * 4
    total += core._off.capacity() * 8 + core._len.capacity() * 4
    total += core._alive.capacity() * (1 + 8 * 3 + 4 * 3) + core._free.capacity() * 4
    total += core._post.capacity() * sizeof(vector[uint32_t])
    for layer in range(core._post.size()):
        total += core._post[layer].capacity() * 4
    # Held images: their runs and holders, the fingerprint table (a node
    # of two words and a bucket pointer each), anchors and slot lists.
    total += core._held.capacity() * sizeof(Held) + core._held_free.capacity() * 4
    for layer in range(core._held.size()):
        total += (core._held[layer].run.capacity()
                  + core._held[layer].holders.capacity()) * 4
    total += core._held_by_hash.size() * 32 + core._held_by_hash.bucket_count() * 8
    total += core._anchored.capacity() * 4 + core._lists.capacity() * 4
    total += core._lists_off.capacity() * 8 + core._lists_len.capacity() * 4
    return total
