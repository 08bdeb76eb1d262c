import numpy as np
import pytest

from semhash.codes import binary, neighbours
from semhash.evaluation import metrics

# Six database codes of 4 bits and their labels, two queries. Hamming distances:
#   query 0 = 0000 (label a): rows 0..5 at 0, 1, 2, 3, 1, 4  (rows 1 and 4 tie at 1)
#   query 1 = 1111 (label b): rows 0..5 at 4, 3, 2, 1, 3, 0  (rows 1 and 4 tie at 3)
DB_BITS = ["0000", "0001", "0011", "0111", "1000", "1111"]
DB_LABELS = ["a", "a", "b", "a", "b", "b"]
QUERY_BITS = ["0000", "1111"]
QUERY_LABELS = ["a", "b"]
# Seed 0 gives the permutation [3, 2, 5, 4, 0, 1]: row 4 has tie rank 0 and row 1 tie rank 2,
# so row 4 comes before row 1 wherever they tie. Seed 1 ([4, 0, 2, 1, 5, 3]) puts row 1 first.
SEED_0_ROWS = [[0, 4, 1, 2, 3, 5], [5, 3, 2, 4, 1, 0]]


def packed(strings):
    return binary.pack(np.array([[c == "1" for c in s] for s in strings]))


def packed_random(rng, rows, bits):
    return binary.pack(rng.random((rows, bits)) > 0.5)


def ranked(depth=6, seed=0):
    return metrics.hamming_ranking(packed(DB_BITS), packed(QUERY_BITS), depth, seed=seed)


def hand_relevance(seed=0):
    rows, _ = ranked(seed=seed)
    return metrics.relevance(rows, DB_LABELS, QUERY_LABELS)


def test_ranking_breaks_ties_by_the_seeded_permutation():
    rows, distances = ranked()
    assert rows.tolist() == SEED_0_ROWS
    assert distances.tolist() == [[0, 1, 1, 2, 3, 4], [0, 1, 2, 3, 3, 4]]
    assert ranked(seed=1)[0].tolist() == [[0, 1, 4, 2, 3, 5], [5, 3, 2, 1, 4, 0]]


def test_ranking_depth_is_a_prefix_and_is_cut_at_the_database_size():
    rows, distances = ranked(depth=2)
    assert rows.tolist() == [[0, 4], [5, 3]] and distances.tolist() == [[0, 1], [0, 1]]
    assert ranked(depth=50)[0].shape == (2, 6)


def test_ranking_matches_a_plain_sort_on_random_codes():
    rng = np.random.default_rng(3)
    db, queries = packed_random(rng, 300, 12), packed_random(rng, 40, 12)
    rows, distances = metrics.hamming_ranking(db, queries, 25, seed=7)
    tie_rank = np.random.default_rng(7).permutation(300)
    for q in range(40):
        exact = binary.hamming(db, queries[q])
        expected = np.lexsort((tie_rank, exact))[:25]
        assert rows[q].tolist() == expected.tolist()
        assert distances[q].tolist() == exact[expected].tolist()


def test_relevance_marks_rows_with_the_query_label():
    # query 0 (a) ranks rows 0 4 1 2 3 5, labelled a b a b a b; query 1 (b) ranks 5 3 2 4 1 0: b a b b a a
    assert hand_relevance().tolist() == [[1, 0, 1, 0, 1, 0], [1, 0, 1, 1, 0, 0]]


def test_precision_at_k_by_hand():
    relevant = hand_relevance()
    assert metrics.precision_at(relevant, 1) == 1.0
    assert metrics.precision_at(relevant, 3) == pytest.approx(2 / 3)  # (2/3 + 2/3) / 2
    assert metrics.precision_at(relevant, 4) == pytest.approx(0.625)  # (2/4 + 3/4) / 2
    with pytest.raises(ValueError):
        metrics.precision_at(relevant, 7)


def test_mean_average_precision_by_hand():
    relevant = hand_relevance()
    # query 0: relevant at 1, 3, 5: (1/1 + 2/3 + 3/5) / 3 = 34/45
    # query 1: relevant at 1, 3, 4: (1/1 + 2/3 + 3/4) / 3 = 29/36
    assert metrics.mean_average_precision(relevant, 6) == pytest.approx((34 / 45 + 29 / 36) / 2)
    # within the first 3 both have relevant items at 1 and 3: (1 + 2/3) / 2 = 5/6
    assert metrics.mean_average_precision(relevant, 3) == pytest.approx(5 / 6)
    # seed 1 puts row 1 (a) before row 4 for query 0: relevant at 1, 2, 5: (1 + 1 + 3/5) / 3 = 13/15
    assert metrics.mean_average_precision(hand_relevance(seed=1)[:1], 6) == pytest.approx(13 / 15)


def test_a_query_with_no_relevant_item_has_average_precision_zero():
    relevant = np.array([[0, 0, 0], [0, 1, 0]], dtype=bool)
    assert metrics.mean_average_precision(relevant, 3) == pytest.approx((0 + 1 / 2) / 2)


def test_the_precision_within_a_radius_by_hand():
    precision, _ = metrics.pr_curve(packed(DB_BITS), packed(QUERY_BITS), DB_LABELS, QUERY_LABELS, 4)
    # radius 2: query 0 gets rows 0 1 4 2, two of them a: 2/4; query 1 gets rows 5 3 2, two b: 2/3
    assert precision[2] == pytest.approx((2 / 4 + 2 / 3) / 2)
    # radius 0: each query finds only its own code, which is relevant
    assert precision[0] == 1.0


def test_a_query_with_nothing_within_the_radius_counts_as_precision_zero():
    # 0101 is 1 to 3 bits from every database code, so nothing is at distance 0
    precision, _ = metrics.pr_curve(packed(DB_BITS), packed(["0101", "0000"]), DB_LABELS, ["a", "a"], 4)
    assert precision[0] == pytest.approx((0 + 1) / 2)


def test_pr_curve_by_hand():
    precision, recall = metrics.pr_curve(packed(DB_BITS), packed(QUERY_BITS), DB_LABELS, QUERY_LABELS, 4)
    # Each query has 3 relevant rows. Query 0, radius 0..4: sets {0} {0 1 4} {0 1 4 2} {+3} {+5},
    # relevant 1 2 2 3 3; query 1: {5} {5 3} {5 3 2} {+1 4} {+0}, relevant 1 1 2 3 3.
    # precision: query 0: 1, 2/3, 2/4, 3/5, 3/6; query 1: 1, 1/2, 2/3, 3/5, 3/6
    np.testing.assert_allclose(precision, [1, (2 / 3 + 1 / 2) / 2, (2 / 4 + 2 / 3) / 2, 3 / 5, 1 / 2])
    # recall: query 0: 1/3, 2/3, 2/3, 1, 1; query 1: 1/3, 1/3, 2/3, 1, 1
    np.testing.assert_allclose(recall, [1 / 3, 1 / 2, 2 / 3, 1, 1])


def test_pr_curve_agrees_with_the_ranking_on_random_codes():
    rng = np.random.default_rng(4)
    db, queries = packed_random(rng, 200, 10), packed_random(rng, 30, 10)
    db_labels, query_labels = rng.integers(0, 3, 200), rng.integers(0, 3, 30)
    precision, recall = metrics.pr_curve(db, queries, db_labels, query_labels, 10)
    rows, distances = metrics.hamming_ranking(db, queries, 200)
    relevant = metrics.relevance(rows, db_labels, query_labels)
    for radius in (0, 3, 5, 10):
        within = distances <= radius
        hits = (relevant & within).sum(axis=1)
        expected = np.divide(hits, within.sum(axis=1), out=np.zeros(30), where=within.any(axis=1))
        assert precision[radius] == pytest.approx(expected.mean())
        assert recall[radius] == pytest.approx(np.mean(hits / relevant.sum(axis=1)))


def test_ties_are_broken_by_permutation_not_database_order():
    # 1,000 identical codes sorted by label (10 labels of 100), queries all of label 0: in database
    # order the first 100 would all be relevant; a random order gives about one in ten.
    db = binary.pack(np.zeros((1000, 16), dtype=bool))
    queries = binary.pack(np.zeros((5, 16), dtype=bool))
    db_labels = np.repeat(np.arange(10), 100)
    first, _ = metrics.hamming_ranking(db, queries, 100, seed=0)
    precision = metrics.precision_at(metrics.relevance(first, db_labels, np.zeros(5)), 100)
    assert 0.03 < precision < 0.2
    assert np.array_equal(metrics.hamming_ranking(db, queries, 100, seed=0)[0], first)
    assert not np.array_equal(metrics.hamming_ranking(db, queries, 100, seed=1)[0], first)


def test_recall_at_k_counts_ties_with_the_kth():
    exact = [[0, 1, 1], [2, 2, 3]]
    # query 0: another row at distance 1 is as good as the one exact search chose: 3 of 3;
    # query 1: 2, 2 and 4 found, 4 is worse than the 3rd exact distance (3): 2 of 3
    assert metrics.recall_at_k(exact, [[0, 1, 1], [2, 2, 4]]) == pytest.approx((3 / 3 + 2 / 3) / 2)
    # a search that returns fewer than k, or more (only the first k count)
    assert metrics.recall_at_k(exact, [[1], [2, 3, 3, 3]]) == pytest.approx((1 / 3 + 3 / 3) / 2)


def test_chunks_give_the_same_ranking(monkeypatch):
    rng = np.random.default_rng(6)
    db, queries = packed_random(rng, 50, 8), packed_random(rng, 20, 8)
    db_labels, query_labels = rng.integers(0, 2, 50), rng.integers(0, 2, 20)
    whole = metrics.hamming_ranking(db, queries, 10), metrics.pr_curve(db, queries, db_labels, query_labels, 8)
    monkeypatch.setattr(neighbours, "CHUNK_CELLS", 120)  # two queries a block
    chunked = metrics.hamming_ranking(db, queries, 10), metrics.pr_curve(db, queries, db_labels, query_labels, 8)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
