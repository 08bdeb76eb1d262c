"""Retrieval quality as ../shared/PROTOCOL.md measures it: exact ranking, then precision and mAP.

Every query is ranked against the whole database. Ties in distance are broken by a random
permutation of the database fixed by a seed, never by database order: a database sorted by
label would otherwise score the tied items of one label as if the codes had found them.

Ranking gives (rows, distances); `relevance` turns rows into a boolean matrix (same label as
the query) that `precision_at` and `mean_average_precision` score. `radius_precision` and
`pr_curve` score the set of items within a Hamming radius instead, from per-query counts of
the database at each distance. `recall_at_k` scores an approximate search (Annoy) against the
exact ranking.
"""

import numpy as np

from . import codes

# Query-by-database cells held at once: a (rows, database) block of int64 is 32 MiB.
CHUNK_CELLS = 2**22
METRICS = ("cosine", "euclidean")


def _query_chunks(n_queries, n_db):
    """Slices of query rows small enough that a (chunk, n_db) block fits in CHUNK_CELLS."""
    step = max(1, CHUNK_CELLS // max(1, n_db))
    return [slice(start, start + step) for start in range(0, n_queries, step)]


def _hamming_blocks(db_packed, query_packed):
    """Yield (query slice, Hamming distances of those queries to every database row)."""
    # codes.hamming XORs and sums over axis 1: with the database as (1, bytes, rows) and the
    # queries as (chunk, bytes, 1), axis 1 is the bytes and the result is (chunk, rows).
    db_bytes = np.ascontiguousarray(db_packed.T)[None]
    for chunk in _query_chunks(len(query_packed), len(db_packed)):
        yield chunk, codes.hamming(db_bytes, query_packed[chunk][:, :, None])


def _dense(matrix):
    """A numpy array of a numpy array or a scipy sparse matrix."""
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def _squared_lengths(matrix):
    """Squared length of each row of a numpy array or a scipy sparse matrix."""
    squares = matrix.multiply(matrix) if hasattr(matrix, "multiply") else np.square(matrix)
    return np.asarray(squares.sum(axis=1), dtype=np.float64).ravel()


def _real_blocks(db, queries, metric):
    """Yield (query slice, cosine or Euclidean distances of those queries to every database row)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    db_squares = _squared_lengths(db)
    query_squares = _squared_lengths(queries)
    db_t = db.T
    for chunk in _query_chunks(queries.shape[0], db.shape[0]):
        products = _dense(queries[chunk] @ db_t).astype(np.float64)
        if metric == "cosine":
            # A row of zeros (a text of unknown words) is at distance 1 from everything.
            lengths = np.sqrt(query_squares[chunk, None] * db_squares[None, :])
            yield chunk, 1 - np.divide(products, lengths, out=np.zeros_like(products), where=lengths > 0)
        else:
            squares = query_squares[chunk, None] - 2 * products + db_squares[None, :]
            yield chunk, np.sqrt(np.maximum(squares, 0))


def _first(distances, tie_rank, depth):
    """Columns of the `depth` smallest distances of each row, nearest first, ties by `tie_rank`."""
    cutoff = np.partition(distances, depth - 1, axis=1)[:, depth - 1 : depth]
    # Everything nearer than the cutoff is in; the tied items of lowest tie rank fill the rest.
    key = np.where(distances < cutoff, -1, np.where(distances == cutoff, tie_rank, len(tie_rank)))
    chosen = np.argpartition(key, depth - 1, axis=1)[:, :depth]
    order = np.lexsort((tie_rank[chosen], np.take_along_axis(distances, chosen, axis=1)), axis=1)
    return np.take_along_axis(chosen, order, axis=1)


def _rank(blocks, n_queries, n_db, depth, seed, dtype):
    """(rows, distances) of the first `depth` database rows, from blocks of distances."""
    tie_rank = np.random.default_rng(seed).permutation(n_db)
    depth = min(depth, n_db)
    rows = np.empty((n_queries, depth), dtype=np.int64)
    distances = np.empty((n_queries, depth), dtype=dtype)
    for chunk, block in blocks:
        first = _first(block, tie_rank, depth)
        rows[chunk] = first
        distances[chunk] = np.take_along_axis(block, first, axis=1)
    return rows, distances


def hamming_ranking(db_packed, query_packed, depth, seed=0):
    """The first `depth` database rows for each query by Hamming distance, ties by a seeded permutation.

    db_packed, query_packed: packed codes (`codes.pack`). Returns (rows, distances), both
    (n_queries, min(depth, n_db)) int64, nearest first.
    """
    blocks = _hamming_blocks(db_packed, query_packed)
    return _rank(blocks, len(query_packed), len(db_packed), depth, seed, np.int64)


def real_ranking(db, queries, depth, metric="cosine", seed=0):
    """The first `depth` database rows for each query by cosine or Euclidean distance.

    The exact real-valued baseline. db, queries: numpy arrays or scipy sparse matrices (CSR)
    with the same columns. Ties (a query of zeros, duplicate rows) are broken by a seeded
    permutation, as in `hamming_ranking`. Returns (rows int64, distances float64), both
    (n_queries, min(depth, n_db)), nearest first; cosine distance is 1 - cosine similarity.
    """
    blocks = _real_blocks(db, queries, metric)
    return _rank(blocks, queries.shape[0], db.shape[0], depth, seed, np.float64)


def relevance(rows, db_labels, query_labels):
    """(n_queries, depth) bool: whether each ranked database row has its query's label."""
    return np.asarray(db_labels)[rows] == np.asarray(query_labels)[:, None]


def _first_columns(relevant, k):
    if k > relevant.shape[1]:
        raise ValueError(f"need a ranking at least {k} deep, got {relevant.shape[1]}")
    return relevant[:, :k]


def precision_at(relevant, k):
    """Mean over queries of the share of relevant items among the first k (precision@k)."""
    return float(_first_columns(relevant, k).mean())


def mean_average_precision(relevant, depth):
    """mAP@depth: the mean over queries of average precision over the first `depth`.

    A query's average precision is the mean of precision@r over the positions r (up to
    `depth`) that hold a relevant item; a query with none there scores 0.
    """
    relevant = _first_columns(relevant, depth)
    hits = np.cumsum(relevant, axis=1)
    precisions = np.where(relevant, hits / np.arange(1, depth + 1), 0).sum(axis=1)
    return float(np.mean(np.divide(precisions, hits[:, -1], out=np.zeros(len(relevant)), where=hits[:, -1] > 0)))


def _by_radius(db_packed, query_packed, db_labels, query_labels):
    """Per-query (precision, recall) of the set within each Hamming radius 0 .. 8 * bytes.

    Counts the database at each distance, all and relevant only, with one bincount a block
    of queries, then accumulates over the radius. An empty set has precision 0; a query with
    no relevant item in the database has recall 0.
    """
    db_labels, query_labels = np.asarray(db_labels), np.asarray(query_labels)
    n_radii = 8 * db_packed.shape[1] + 1
    retrieved = np.empty((len(query_packed), n_radii), dtype=np.int64)
    hits = np.empty_like(retrieved)
    for chunk, distances in _hamming_blocks(db_packed, query_packed):
        n = len(distances)
        cells = distances + n_radii * np.arange(n)[:, None]
        relevant = db_labels[None, :] == query_labels[chunk, None]
        retrieved[chunk] = np.bincount(cells.ravel(), minlength=n * n_radii).reshape(n, n_radii)
        hits[chunk] = np.bincount(cells[relevant], minlength=n * n_radii).reshape(n, n_radii)
    retrieved, hits = retrieved.cumsum(axis=1), hits.cumsum(axis=1)
    precision = np.divide(hits, retrieved, out=np.zeros(hits.shape), where=retrieved > 0)
    n_relevant = hits[:, -1:]
    recall = np.divide(hits, n_relevant, out=np.zeros(hits.shape), where=n_relevant > 0)
    return precision, recall


def radius_precision(db_packed, query_packed, db_labels, query_labels, radius=2):
    """Mean over queries of the share of relevant items within Hamming distance `radius`.

    A query with nothing within the radius counts as precision 0, the usual convention in the
    hashing literature (ITQ, KSH), so that a code which retrieves nothing is not rewarded.
    """
    precision, _ = _by_radius(db_packed, query_packed, db_labels, query_labels)
    return float(precision[:, min(radius, precision.shape[1] - 1)].mean())


def pr_curve(db_packed, query_packed, db_labels, query_labels, n_bits):
    """Precision and recall of the set within Hamming radius r, for r = 0 .. n_bits.

    Returns (precision, recall), each (n_bits + 1,): macro averages, the mean over queries
    of each query's precision and recall, with an empty set counted as precision 0 (as in
    `radius_precision`).
    """
    precision, recall = _by_radius(db_packed, query_packed, db_labels, query_labels)
    return precision[:, : n_bits + 1].mean(axis=0), recall[:, : n_bits + 1].mean(axis=0)


def recall_at_k(exact_distances, found_distances):
    """Mean share of the exact top k that an approximate search (Annoy) returns.

    exact_distances: (n_queries, k), the exact ranking's distances (`hamming_ranking`).
    found_distances: per query, the distances of the items the search returned (k or fewer;
    only the first k count). A returned item counts when its distance is no worse than the
    exact k-th distance, so an item tied with the k-th is as good as the one exact search chose.
    """
    exact_distances = np.asarray(exact_distances)
    k = exact_distances.shape[1]
    kth = exact_distances.max(axis=1)
    found = [np.count_nonzero(np.asarray(d)[:k] <= t) for d, t in zip(found_distances, kth, strict=True)]
    return float(np.mean(found)) / k
