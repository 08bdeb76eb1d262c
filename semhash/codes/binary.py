"""Binary codes: packed eight bits to a byte, compared by Hamming distance."""

import time

import numpy as np


def pack(bits):
    """Pack a (rows, n_bits) boolean array into (rows, ceil(n_bits / 8)) uint8."""
    return np.packbits(np.asarray(bits, dtype=bool), axis=1)


def unpack(packed, n_bits):
    """The inverse of `pack`: a (rows, n_bits) boolean array."""
    return np.unpackbits(packed, axis=1, count=n_bits).astype(bool)


def hamming(packed, query):
    """Hamming distance from one packed code `query` to each row of `packed`."""
    return np.bitwise_count(np.bitwise_xor(packed, query)).sum(axis=1, dtype=np.int64)


WORD_BYTES = 8
# The exact scan reads this many bytes of 64-bit words at a time, so that a chunk's words, XORs
# and distances stay in a core's cache: 512 KiB (65,536 codes of 64 bits) beat 128 KiB and
# 2 MiB on 1,000,000 codes of 64 bits (see docs/RESULTS.md).
SCAN_CHUNK_BYTES = 1 << 19
# The scan's first read: few enough rows that the cut-off it gives costs little to find.
FIRST_ROWS = 2048
# The compiled loop (`kernel`) scans in about two thirds of the numpy scan's time, but loading
# numba costs a process about a second and 130 MB. So `scan` loads it once the process's numpy
# scans have taken this long: ski rental, which never spends much more than twice what the better
# choice in hindsight would have, and a process answering a few queries, as `semhash query` does,
# never pays for it (docs/RESULTS.md, "The compiled scan").
COMPILED_SCAN_AFTER_SECONDS = 1.0
_numpy_scan_seconds = 0.0


def words(packed):
    """The packed codes as 64-bit words for `scan`: (words, rows) uint64, each row padded with
    zero bytes to whole words, each word of every code contiguous. Made once per database; for
    64-bit codes in one block of memory (a memory-mapped codes.npy) a view, which copies nothing."""
    rows, n_bytes = packed.shape
    if n_bytes % WORD_BYTES == 0 and packed.flags.c_contiguous:
        as_words = packed.view(np.uint64)
    else:
        padded = np.zeros((rows, -(-n_bytes // WORD_BYTES) * WORD_BYTES), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        as_words = padded.view(np.uint64)
    return np.ascontiguousarray(as_words.T)


def _query_words(query):
    """The packed code `query` as 64-bit words, as `words` makes them for a database."""
    return words(np.asarray(query, dtype=np.uint8)[None])[:, 0]


def _chunk_distances(words_view, query, chunk_bytes, first_rows=None):
    """(first row, distances) for a chunk of rows of `words_view` at a time: the Hamming distances
    (XOR and popcount, summed over words) to the packed code `query`. The distances are a buffer
    the next chunk overwrites. `first_rows`: a smaller first chunk."""
    n_words, n_rows = words_view.shape
    query = _query_words(query)
    dtype = np.min_scalar_type(64 * n_words)
    chunk = max(chunk_bytes // (WORD_BYTES * n_words), 1)
    xor, counts, distances = np.empty(chunk, np.uint64), np.empty(chunk, np.uint8), np.empty(chunk, dtype)
    start = 0
    while start < n_rows:
        stop = min(start + (chunk if start or first_rows is None else min(chunk, first_rows)), n_rows)
        n = stop - start
        np.bitwise_xor(words_view[0, start:stop], query[0], out=xor[:n])
        np.bitwise_count(xor[:n], out=distances[:n])
        for word in range(1, n_words):
            np.bitwise_xor(words_view[word, start:stop], query[word], out=xor[:n])
            np.add(distances[:n], np.bitwise_count(xor[:n], out=counts[:n]), out=distances[:n])
        yield start, distances[:n]
        start = stop


def within(words_view, query, radius, chunk_bytes=SCAN_CHUNK_BYTES):
    """The rows of `words_view` (see `words`) within `radius` bits of the packed code `query` and
    their distances (both int64), in row order: a chunk at a time, so that no array as long as the
    codes is made."""
    rows, distances = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for start, chunk in _chunk_distances(words_view, query, chunk_bytes):
        found = np.nonzero(chunk <= radius)[0]
        rows.append(found + start)
        distances.append(chunk[found].astype(np.int64))
    return np.concatenate(rows), np.concatenate(distances)


def scan(words_view, query, k, chunk_bytes=SCAN_CHUNK_BYTES, compiled=None):
    """The `k` rows of `words_view` (see `words`) nearest to the packed code `query` by exact
    Hamming scan: (rows, distances), both int64, nearest first; ties keep database order.
    `compiled`: run the compiled loop (`kernel.scan`) rather than numpy; by default, once this
    process's numpy scans have taken COMPILED_SCAN_AFTER_SECONDS. Both give the same answer.

    The distances of a chunk of rows at a time (XOR and popcount, summed over words) are
    compared with a cut-off: once k rows at distance <= d are held, a later row can enter only
    at a distance < d (among ties, earlier rows win), so only those are gathered. Whenever
    the rows held reach 2k, they are cut back to the k best by a stable sort of their
    distances (a counting sort: numpy sorts 8- and 16-bit integers by radix), which lowers d.
    No distance outside the rows held is ever sorted.
    """
    global _numpy_scan_seconds
    k = min(k, words_view.shape[1])
    if compiled is None:
        compiled = _numpy_scan_seconds >= COMPILED_SCAN_AFTER_SECONDS
    if compiled and k > 0:
        from semhash.codes import kernel  # numba loads only once the scans repay it

        return kernel.scan(words_view, _query_words(query), k)
    started = time.perf_counter()
    answer = _numpy_scan(words_view, query, k, chunk_bytes)
    _numpy_scan_seconds += time.perf_counter() - started
    return answer


def _numpy_scan(words_view, query, k, chunk_bytes):
    """`scan` in numpy, for k no more than the rows."""
    farthest = 64 * len(words_view)
    dtype = np.min_scalar_type(farthest)
    cutoff = farthest + 1  # gather rows nearer than this: every row until k are held
    held_rows, held_distances, held = [np.empty(0, np.int64)], [np.empty(0, dtype)], 0
    for start, distances in _chunk_distances(words_view, query, chunk_bytes, FIRST_ROWS):
        found = np.nonzero(distances < cutoff)[0]
        if len(found):
            held_rows.append(found + start)
            held_distances.append(distances[found])
            held += len(found)
            if held >= 2 * k or (held >= k and cutoff > farthest):
                rows, kept = _best(held_rows, held_distances, k)
                held_rows, held_distances, held, cutoff = [rows], [kept], k, kept[-1]
    rows, kept = _best(held_rows, held_distances, k)
    return rows, kept.astype(np.int64)


def _best(held_rows, held_distances, k):
    """The k nearest of the rows held (in database order), nearest first, ties in row order."""
    rows, distances = np.concatenate(held_rows), np.concatenate(held_distances)
    order = np.argsort(distances, kind="stable")[:k]
    return rows[order], distances[order]


def nearest(packed, query, k):
    """The `k` rows of `packed` nearest to `query` by exact Hamming scan: (rows, distances).

    Ties keep database order, so the answer is the same on every run. This makes the word
    view on each call; to search one database many times, keep `words(packed)` and call `scan`.
    """
    return scan(words(packed), query, k)


def bit_counts(packed, n_bits, rows_at_once=1 << 16):
    """How many rows have each bit set, unpacked a chunk of rows at a time: unpacking 10,000,000
    codes of 64 bits at once would take 640 MB."""
    counts = np.zeros(n_bits, dtype=np.int64)
    for start in range(0, len(packed), rows_at_once):
        counts += unpack(packed[start:start + rows_at_once], n_bits).sum(axis=0)
    return counts


def bit_balance(packed, n_bits):
    """The share of rows with each bit set; 0.5 everywhere is a perfectly balanced code."""
    return bit_counts(packed, n_bits) / len(packed)


def balance_deviation(balance):
    """How far the bits' shares set (`bit_balance`) lie from .5 on average, to four places: 0 for
    a perfectly balanced code, what manifests record and drift compares."""
    return round(float(np.mean(np.abs(np.asarray(balance) - 0.5))), 4)


def asymmetric(projections, packed, n_bits):
    """For each query's real-valued `projections` (queries by bits) and each packed code, the sum of
    |projection| over the bits where the code disagrees with the projection's sign: the Hamming
    distance with each bit weighted by how sure the query is of it (queries by codes, float64).
    With signs s of a code, that is (|p|.sum() - p @ s) / 2."""
    signs = unpack(packed, n_bits).astype(np.float64) * 2 - 1
    projections = np.asarray(projections, dtype=np.float64)
    return (np.abs(projections).sum(axis=1, keepdims=True) - projections @ signs.T) / 2
