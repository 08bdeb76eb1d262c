import numpy as np
import pytest
import scipy.sparse as sp

from semhash.codes import neighbours


def test_real_ranking_by_hand():
    db = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0]])
    queries = np.array([[2.0, 0.0], [0.0, 0.0]])
    rows, distances = neighbours.real_ranking(db, queries, 4, metric="euclidean")
    # query 0 to rows 0..3: 1, sqrt(8) = 2.83, sqrt(10) = 3.16, 3
    assert rows[0].tolist() == [0, 1, 3, 2]
    np.testing.assert_allclose(distances[0], [1, np.sqrt(8), 3, np.sqrt(10)])
    rows, distances = neighbours.real_ranking(db, queries, 4, metric="cosine")
    # query 0 against rows 0..3: cosine 1, 0, 1/sqrt(2), -1; the zero query ties with everything
    assert rows[0].tolist() == [0, 2, 1, 3]
    np.testing.assert_allclose(distances[0], [0, 1 - 1 / np.sqrt(2), 1, 2])
    # seed 0 permutes 4 rows as [2, 0, 1, 3]: tie ranks give the order 1, 2, 0, 3
    assert np.random.default_rng(0).permutation(4).tolist() == [2, 0, 1, 3]
    assert rows[1].tolist() == [1, 2, 0, 3] and distances[1].tolist() == [1, 1, 1, 1]


def test_real_ranking_takes_sparse_rows_alike():
    rng = np.random.default_rng(5)
    db = sp.random(120, 40, density=0.1, format="csr", random_state=rng)
    queries = sp.random(30, 40, density=0.1, format="csr", random_state=rng)
    for metric in ("cosine", "euclidean"):
        sparse_rows, sparse_distances = neighbours.real_ranking(db, queries, 10, metric=metric)
        dense_rows, dense_distances = neighbours.real_ranking(db.toarray(), queries.toarray(), 10, metric=metric)
        np.testing.assert_array_equal(sparse_rows, dense_rows)
        np.testing.assert_allclose(sparse_distances, dense_distances)
    with pytest.raises(ValueError, match="unknown metric"):
        neighbours.real_ranking(db, queries, 10, metric="manhattan")


def test_without_self_drops_each_querys_own_row():
    # query 1's own row is ranked; query 0's is not (a duplicate of it came first): its last goes
    rows = np.array([[3, 2, 5], [1, 0, 4], [0, 2, 1]])
    assert neighbours.without_self(rows).tolist() == [[3, 2], [0, 4], [0, 1]]


def test_nearest_others_leave_each_row_out():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.2], [0.0, 0.3]])
    assert neighbours.nearest_others(X, 2, metric="euclidean").tolist() == [[1, 4], [0, 4], [3, 4], [2, 4], [0, 1]]
    # k is capped at the other rows there are
    assert neighbours.nearest_others(X[:2], 5, metric="euclidean").tolist() == [[1], [0]]
    duplicates = sp.csr_matrix([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    others = neighbours.nearest_others(duplicates, 2, metric="cosine")
    assert all(i not in row for i, row in enumerate(others.tolist()))
    assert sorted(others[0].tolist()) == [1, 2]


def test_neighbour_space_weighs_words_by_idf_for_idf_cosine_and_leaves_pixels_alone():
    # column 0 is in every row, column 1 in one of three: idf (1 + log 4/4) = 1 and (1 + log 4/2)
    rows = sp.csr_matrix(np.array([[2.0, 0, 1], [1, 1, 0], [3, 0, 0]], dtype=np.float32))
    weighed, metric = neighbours.neighbour_space(rows, "idf-cosine")
    assert metric == "cosine"
    idf = [1, 1 + np.log(2), 1 + np.log(2)]
    np.testing.assert_allclose(weighed.toarray(), rows.toarray() * idf, rtol=1e-6)
    dense, _ = neighbours.neighbour_space(rows.toarray(), "idf-cosine")
    np.testing.assert_allclose(dense, weighed.toarray())
    same, metric = neighbours.neighbour_space(rows, "euclidean")
    assert same is rows and metric == "euclidean"
    with pytest.raises(ValueError, match="idf-cosine, euclidean"):
        neighbours.neighbour_space(rows, "cosine")


def _ring_of_cliques(cliques, size):
    """Each row's `size - 1` others: its own clique's rows, the cliques joined into a ring by one edge each."""
    rows = np.arange(cliques * size).reshape(cliques, size)
    others = np.array([[o for o in clique if o != row] for clique in rows for row in clique])
    for c in range(cliques):  # the last row of each clique also reaches the first of the next
        others[rows[c, -1], -1] = rows[(c + 1) % cliques, 0]
    return others


def test_graph_eigenvectors_tell_apart_two_pieces():
    others = np.array([[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]])
    first = neighbours.neighbour_graph_eigenvectors(others, 1)[:, 0]
    np.testing.assert_allclose(first[:3], first[0])
    np.testing.assert_allclose(first[3:], first[3])
    assert abs(first[0] - first[3]) > 1
    np.testing.assert_allclose(np.mean(first**2), 1)


def test_graph_eigenvectors_by_arpack_are_the_dense_ones(monkeypatch):
    others = _ring_of_cliques(cliques=12, size=8)
    dense = neighbours.neighbour_graph_eigenvectors(others, 2, seed=0)
    monkeypatch.setattr(neighbours, "DENSE_GRAPH_ROWS", 0)
    sparse = neighbours.neighbour_graph_eigenvectors(others, 2, seed=0)
    assert sparse.shape == dense.shape == (96, 2)
    # the ring's first two eigenvectors share one eigenvalue: compare the plane they span, not the vectors
    residual = dense - sparse @ np.linalg.lstsq(sparse, dense, rcond=None)[0]
    assert np.abs(residual).max() < 1e-6
    np.testing.assert_array_equal(sparse, neighbours.neighbour_graph_eigenvectors(others, 2, seed=0))


def test_graph_eigenvectors_are_fewer_on_a_tiny_graph():
    assert neighbours.neighbour_graph_eigenvectors(np.array([[1], [0], [1]]), 64).shape == (3, 1)
    assert neighbours.neighbour_graph_eigenvectors(np.empty((5, 0), dtype=np.int64), 4).shape == (5, 0)
