"""Binary codes: packed eight bits to a byte, compared by Hamming distance."""

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


def nearest(packed, query, k):
    """The `k` rows nearest to `query` by exact Hamming scan: (rows, distances).

    Ties keep database order, so the answer is the same on every run.
    """
    distances = hamming(packed, query)
    k = min(k, len(distances))
    if k < len(distances):
        candidates = np.argpartition(distances, k - 1)[:k]
        cutoff = distances[candidates].max()
        candidates = np.flatnonzero(distances <= cutoff)
    else:
        candidates = np.arange(len(distances))
    order = candidates[np.argsort(distances[candidates], kind="stable")][:k]
    return order, distances[order]


def bit_balance(packed, n_bits):
    """The share of rows with each bit set; 0.5 everywhere is a perfectly balanced code."""
    return unpack(packed, n_bits).mean(axis=0)
