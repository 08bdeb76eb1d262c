import numpy as np
import pytest
import scipy.sparse as sp

from semhash.errors import SemhashError
from semhash.features.text import TextFeatures

TEXTS = ["bank rates bank", "bank stocks", "football goal", "football goal coach", "银行 利率", "银行 股票"]


def test_vocabulary_respects_min_df_and_max_df():
    features = TextFeatures(min_df=2, max_df=0.5).fit(TEXTS)
    assert sorted(features.terms_) == ["bank", "football", "goal", "银行"]


def test_max_features_keeps_the_most_frequent_terms():
    features = TextFeatures(min_df=1, max_df=1.0, max_features=2).fit(TEXTS)
    assert sorted(features.terms_) == ["bank", "football"]


def test_counts_are_sparse_and_transform_matches_fit():
    features = TextFeatures(min_df=1, max_df=1.0, weighting="counts", norm=None)
    fitted = features.fit_transform(TEXTS)
    assert sp.isspmatrix_csr(fitted) and fitted.dtype == np.float32
    assert fitted[0, features.vocabulary_["bank"]] == 2
    np.testing.assert_array_equal(features.transform(TEXTS).toarray(), fitted.toarray())


def test_unknown_words_give_an_empty_row():
    features = TextFeatures(min_df=1, max_df=1.0).fit(TEXTS)
    assert features.transform(["zebra 斑马"]).nnz == 0


@pytest.mark.parametrize("weighting", ["log1p", "binary", "tfidf"])
def test_weightings(weighting):
    features = TextFeatures(min_df=1, max_df=1.0, weighting=weighting, norm=None)
    row = features.fit_transform(TEXTS)[0].toarray().ravel()
    bank = row[features.vocabulary_["bank"]]
    rates = row[features.vocabulary_["rates"]]
    if weighting == "log1p":
        assert bank == pytest.approx(np.log(3)) and rates == pytest.approx(np.log(2))
    elif weighting == "binary":
        assert bank == rates == 1
    else:
        idf = features.idf()
        assert bank == pytest.approx((1 + np.log(2)) * idf[features.vocabulary_["bank"]]) and bank > rates


def test_l2_norm_makes_short_and_long_texts_alike():
    features = TextFeatures(min_df=1, max_df=1.0, scale=10.0).fit(TEXTS)
    rows = features.transform(["bank rates", "bank rates " * 20, "zebra"]).toarray()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), [10, 10, 0], rtol=1e-5)
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-5)


def test_empty_vocabulary_names_the_fix():
    with pytest.raises(SemhashError, match="--min-df"):
        TextFeatures(min_df=5).fit(TEXTS)


def test_save_and_load_round_trip(tmp_path):
    features = TextFeatures(min_df=1, max_df=1.0)
    X = features.fit_transform(TEXTS)
    settings = features.save(tmp_path)
    assert (tmp_path / "vocabulary.txt").read_text(encoding="utf-8").splitlines()[0].count("\t") == 1
    loaded = TextFeatures.load(tmp_path, settings)
    assert loaded.terms_ == features.terms_
    np.testing.assert_allclose(loaded.transform(TEXTS).toarray(), X.toarray())
