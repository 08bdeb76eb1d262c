import numpy as np
import pytest
import scipy.sparse as sp

from semhash.codes import binarize, binary
from semhash.errors import SemhashError
from semhash.evaluation import metrics
from semhash.models import baselines

HASHES = [baselines.LSH, baselines.PCAH, baselines.PCAITQ]


def clusters(rng, per_cluster, n_clusters=5, dims=50, spread=3.0):
    """Rows around n_clusters random centres (unit noise), and their cluster labels."""
    centres = rng.normal(scale=spread, size=(n_clusters, dims))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    return centres[labels] + rng.normal(size=(len(labels), dims)), labels


def sparse_rows(seed=0, rows=300, columns=40):
    return sp.random(rows, columns, density=0.2, format="csr", random_state=np.random.default_rng(seed))


def quantization_loss(projected):
    return np.sum((np.where(projected > 0, 1.0, -1.0) - projected) ** 2)


@pytest.mark.parametrize("hash_class", HASHES)
def test_codes_have_one_bool_row_per_input_row(hash_class):
    X = np.random.default_rng(0).normal(size=(200, 20))
    model = hash_class(bits=8).fit(X[:150])
    assert model.encode(X).shape == (200, 8) and model.encode(X).dtype == bool
    assert model.projection_.shape == (20, 8) and model.mean_.shape == (20,)


@pytest.mark.parametrize("hash_class", HASHES)
def test_the_same_seed_gives_the_same_codes(hash_class):
    X, _ = clusters(np.random.default_rng(1), 40)
    first = hash_class(bits=16, seed=3).fit_encode(X)
    np.testing.assert_array_equal(hash_class(bits=16, seed=3).fit_encode(X), first)


@pytest.mark.parametrize("hash_class", [baselines.LSH, baselines.PCAITQ])
def test_another_seed_gives_other_random_directions(hash_class):
    X, _ = clusters(np.random.default_rng(1), 40)
    assert not np.array_equal(hash_class(bits=16, seed=3).fit_encode(X), hash_class(bits=16, seed=4).fit_encode(X))


def test_pcah_recovers_the_signs_of_the_directions_of_most_variance():
    rng = np.random.default_rng(2)
    # coordinates 0, 1 and 2 vary most (standard deviations 10, 7 and 5), around a mean of 3
    X = rng.normal(size=(2000, 12)) * np.r_[10, 7, 5, np.ones(9)] + 3
    bits = baselines.PCAH(bits=3).fit_encode(X)
    # each direction points along +e_i (largest coordinate positive), so bit i is x_i > mean_i
    agreement = (bits == (X[:, :3] > X[:, :3].mean(axis=0))).mean(axis=0)
    assert np.all(agreement > 0.97)


def test_itq_quantization_loss_never_increases_and_ends_below_pcah():
    X, _ = clusters(np.random.default_rng(3), 100)
    itq = baselines.PCAITQ(bits=16).fit(X)
    losses = itq.quantization_loss_
    assert len(losses) == 51 and np.all(np.diff(losses) <= 1e-9 * losses[0])
    pcah = baselines.PCAH(bits=16).fit(X)
    assert losses[-1] < quantization_loss((X - pcah.mean_) @ pcah.projection_)
    # the rotation is orthogonal and the codes are the signs of the rotated components
    np.testing.assert_allclose(itq.rotation_.T @ itq.rotation_, np.eye(16), atol=1e-10)
    np.testing.assert_allclose(itq.projection_, pcah.projection_ @ itq.rotation_, atol=1e-10)


def test_lsh_bits_split_centred_gaussian_rows_evenly():
    X = np.random.default_rng(4).normal(size=(4000, 30)) + 5  # off the origin: LSH centres first
    balance = baselines.LSH(bits=64, seed=0).fit_encode(X).mean(axis=0)
    assert np.all(np.abs(balance - 0.5) < 0.05)


def test_pca_itq_finds_clusters_well_above_chance():
    X, labels = clusters(np.random.default_rng(5), 240)
    database, queries = np.arange(len(X)) % 6 != 0, np.arange(len(X)) % 6 == 0
    model = baselines.PCAITQ(bits=16).fit(X[database])
    rows, _ = metrics.hamming_ranking(binary.pack(model.encode(X[database])), binary.pack(model.encode(X[queries])), 50)
    precision = metrics.precision_at(metrics.relevance(rows, labels[database], labels[queries]), 50)
    assert precision > 0.8  # chance is 0.2 with five equal clusters


@pytest.mark.parametrize("hash_class", HASHES)
def test_sparse_and_dense_rows_give_the_same_codes(hash_class):
    X = sparse_rows()
    sparse_codes = hash_class(bits=8).fit(X).encode(X)
    np.testing.assert_array_equal(hash_class(bits=8).fit(X.toarray()).encode(X.toarray()), sparse_codes)


@pytest.mark.parametrize("hash_class", [baselines.PCAH, baselines.PCAITQ])
def test_arpack_gives_the_codes_of_the_covariance_solver(hash_class, monkeypatch):
    X = sparse_rows(seed=1)
    covariance = hash_class(bits=8).fit_encode(X)
    monkeypatch.setattr(binarize, "COVARIANCE_MAX_FEATURES", 0)  # as for a 10,000-term vocabulary
    np.testing.assert_array_equal(hash_class(bits=8).fit_encode(X), covariance)


@pytest.mark.parametrize("hash_class", [baselines.PCAH, baselines.PCAITQ])
def test_more_bits_than_principal_components_is_explained(hash_class):
    X = np.random.default_rng(6).normal(size=(30, 10))
    with pytest.raises(SemhashError, match="at most 10"):
        hash_class(bits=11).fit(X)
    with pytest.raises(SemhashError, match="at most 7"):  # 8 rows centred span 7 dimensions
        hash_class(bits=8).fit(X[:8])
    # rank 3: every row a combination of three directions
    low_rank = np.random.default_rng(7).normal(size=(100, 3)) @ np.random.default_rng(8).normal(size=(3, 10))
    with pytest.raises(SemhashError, match="spans only 3 dimensions"):
        hash_class(bits=4).fit(low_rank)
    assert hash_class(bits=3).fit_encode(low_rank).shape == (100, 3)


def test_bad_bits_and_misuse_are_explained():
    X = np.random.default_rng(9).normal(size=(50, 6))
    with pytest.raises(SemhashError, match="positive integer"):
        baselines.LSH(bits=0).fit(X)
    with pytest.raises(SemhashError, match="not fitted"):
        baselines.PCAH(bits=4).encode(X)
    with pytest.raises(SemhashError, match="5 columns but the hash was fitted on 6"):
        baselines.PCAITQ(bits=4).fit(X).encode(np.zeros((2, 5)))
