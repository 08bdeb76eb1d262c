"""Retrieval quality as ../shared/PROTOCOL.md measures it: exact ranking, then precision and mAP.

Every query is ranked against the whole database by Hamming distance here (real-valued
distances: `neighbours.real_ranking`), ties broken by a seeded permutation as `neighbours`
explains. Ranking gives (rows, distances); `relevance` turns rows into a boolean matrix (same label as
the query) that `precision_at` and `mean_average_precision` score. `pr_curve` scores the set
of items within each Hamming radius instead, from per-query counts of
the database at each distance. `recall_at_k` scores an approximate search (Annoy) against the
exact ranking.
"""

import numpy as np

from ..codes.neighbours import hamming_blocks, hamming_ranking  # noqa: F401 (hamming_ranking: the evaluation ranks with it)


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
    for chunk, distances in hamming_blocks(db_packed, query_packed):
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


def pr_curve(db_packed, query_packed, db_labels, query_labels, n_bits):
    """Precision and recall of the set within Hamming radius r, for r = 0 .. n_bits.

    Returns (precision, recall), each (n_bits + 1,): macro averages, the mean over queries
    of each query's precision and recall. A query with nothing within the radius counts as
    precision 0, the usual convention in the hashing literature (ITQ, KSH), so that a code which
    retrieves nothing is not rewarded; precision[2] is their "precision within Hamming radius 2".
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
