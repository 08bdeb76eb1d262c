"""The exact Hamming scan as one compiled loop (numba): XOR, the processor's popcount and the
cut-off test fused, so each code is read once and no array as long as the codes is written.

numpy needs a pass over memory for each of those steps; this loop answers the top 100 among
1,000,000 codes of 64 bits in 0.69 to 0.91 times faiss' `IndexBinaryFlat` time, where the numpy
scan takes 1.06 to 1.40 times faiss' (docs/RESULTS.md, "The compiled scan"). Importing numba and
loading the cached machine code costs a process about a second, so `binary.scan` imports this
module only once it would repay that (`binary.COMPILED_SCAN_AFTER_SECONDS`).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


def _compiled(function):
    """`function` compiled by numba, its machine code cached on disk where numba finds a writable
    place (beside this file or in the user's cache); where it finds none, as when both are
    read-only, compiled afresh in each process instead of failing at import."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)


# Distances are computed for this many rows at a time, a loop the compiler vectorizes, before
# the rows are tested against the cut-off: 256 beat 128 and 512 (int32 distances beat uint8).
BLOCK_ROWS = 256


@intrinsic
def _popcount(typingctx, word):
    """The number of set bits of a 64-bit word, as LLVM's ctpop (one instruction on x86-64)."""

    def codegen(context, builder, signature, args):
        ctpop = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(ctpop, args)

    return types.uint64(types.uint64), codegen


@_compiled
def _keep_best(rows, distances, held, k, farthest):
    """Cut the `held` rows back to the k nearest, nearest first and ties in row order (a stable
    counting sort over the few possible distances); returns how many are kept."""
    starts = np.zeros(farthest + 2, np.int64)
    for i in range(held):
        starts[distances[i] + 1] += 1
    for distance in range(1, farthest + 2):
        starts[distance] += starts[distance - 1]
    sorted_rows, sorted_distances = np.empty(held, np.int64), np.empty(held, np.int64)
    for i in range(held):
        place = starts[distances[i]]
        starts[distances[i]] += 1
        sorted_rows[place], sorted_distances[place] = rows[i], distances[i]
    kept = min(k, held)
    rows[:kept], distances[:kept] = sorted_rows[:kept], sorted_distances[:kept]
    return kept


@_compiled
def scan(words_view, query_words, k):
    """The `k` rows of `words_view` ((words, rows) uint64, see `binary.words`) nearest to the
    code whose words are `query_words`: (rows, distances), int64, nearest first, ties in row
    order. Rows are gathered only below the cut-off, the k-th distance held (`binary.scan`
    explains why that is exact)."""
    n_words, n_rows = words_view.shape
    farthest = 64 * n_words
    rows = np.empty(2 * k + BLOCK_ROWS, np.int64)
    distances = np.empty(2 * k + BLOCK_ROWS, np.int64)
    block = np.empty(BLOCK_ROWS, np.int32)
    held, cutoff = 0, farthest + 1
    for start in range(0, n_rows, BLOCK_ROWS):
        n = min(BLOCK_ROWS, n_rows - start)
        for i in range(n):
            block[i] = _popcount(words_view[0, start + i] ^ query_words[0])
        for word in range(1, n_words):
            for i in range(n):
                block[i] += _popcount(words_view[word, start + i] ^ query_words[word])
        below = 0
        for i in range(n):
            below += block[i] < cutoff
        if below:
            for i in range(n):
                if block[i] < cutoff:
                    rows[held], distances[held] = start + i, block[i]
                    held += 1
            if held >= 2 * k:
                held = _keep_best(rows, distances, held, k, farthest)
                cutoff = distances[k - 1]
    held = _keep_best(rows, distances, held, k, farthest)
    return rows[:held].copy(), distances[:held].copy()
