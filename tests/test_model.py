import numpy as np
import pytest
import scipy.sparse as sp

from conftest import TINY_MODEL, topic_text, TOPICS
from semhash.errors import SemhashError
from semhash.features import TextFeatures
from semhash.model import StackedAutoencoder


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    texts = [topic_text(rng, topic, lang) for topic in TOPICS for lang in ("en", "zh") for _ in range(8)]
    return TextFeatures(min_df=1).fit_transform(texts)


@pytest.fixture(scope="module")
def fitted(X):
    return StackedAutoencoder(**TINY_MODEL).fit(X)


def test_pretraining_changes_each_layers_weights(X):
    initial = StackedAutoencoder(**{**TINY_MODEL, "pretrain_epochs": 0, "epochs": 0}).fit(X)
    pretrained = StackedAutoencoder(**{**TINY_MODEL, "epochs": 0}).fit(X)
    assert len(pretrained.weights_) == 2
    for (kernel0, _), (kernel1, _) in zip(initial.weights_, pretrained.weights_):
        assert kernel0.shape == kernel1.shape
        assert np.abs(kernel0 - kernel1).mean() > 1e-3
    for losses in pretrained.history_["pretrain"]:
        assert losses[-1] < losses[0]


def test_fine_tuning_lowers_reconstruction_loss(fitted):
    assert fitted.history_["loss_after_finetuning"] < fitted.history_["loss_before_finetuning"]


def test_fine_tuning_makes_at_least_min_steps_updates(X):
    model = StackedAutoencoder(**{**TINY_MODEL, "pretrain_epochs": 1, "epochs": 1, "min_steps": 20}).fit(X)
    steps_per_epoch = -(-X.shape[0] // TINY_MODEL["batch_size"])
    assert model.history_["finetune_epochs"] == -(-20 // steps_per_epoch) > 1
    assert len(model.history_["finetune"]) == model.history_["finetune_epochs"]


def test_codes_are_binary_and_cut_by_a_rotation_learned_with_itq(fitted, X):
    bits = fitted.encode(X)
    assert bits.dtype == bool and bits.shape == (X.shape[0], 16)
    assert fitted.history_["binarize"] == "itq"
    np.testing.assert_allclose(fitted.rotation_ @ fitted.rotation_.T, np.eye(16), atol=1e-5)
    assert 0 < bits.mean() < 1
    real = fitted.transform(X)
    assert real.shape == (X.shape[0], 16) and 0 <= real.min() and real.max() <= 1


def test_median_binarizing_balances_every_bit(X):
    model = StackedAutoencoder(**{**TINY_MODEL, "binarize": "median"}).fit(X)
    np.testing.assert_allclose(model.encode(X).mean(axis=0), 0.5, atol=0.05)
    np.testing.assert_array_equal(model.rotation_, np.eye(16))


def test_too_few_rows_for_itq_fall_back_to_medians(X):
    model = StackedAutoencoder(**{**TINY_MODEL, "epochs": 1}).fit(X[:20])
    assert model.history_["binarize"] == "median"


def test_same_seed_gives_the_same_codes(fitted, X):
    again = StackedAutoencoder(**TINY_MODEL).fit(X)
    np.testing.assert_array_equal(again.encode(X), fitted.encode(X))
    other = StackedAutoencoder(**{**TINY_MODEL, "seed": 1}).fit(X)
    assert not np.array_equal(other.encode(X), fitted.encode(X))


def test_dense_and_sparse_input_agree(fitted, X):
    np.testing.assert_allclose(fitted.transform(X.toarray()), fitted.transform(sp.csr_matrix(X)), rtol=1e-5)


def test_save_and_load_give_the_same_codes(fitted, X, tmp_path):
    params = fitted.save(tmp_path)
    assert (tmp_path / "encoder.keras").is_file()
    loaded = StackedAutoencoder.load(tmp_path, params)
    np.testing.assert_array_equal(loaded.encode(X), fitted.encode(X))


def test_keras_encoder_matches_numpy_inference(fitted, X):
    keras_codes = np.asarray(fitted.encoder_.predict(X.toarray(), verbose=0))
    np.testing.assert_allclose(keras_codes, fitted.transform(X), atol=1e-4)


def test_bad_parameters_name_the_choice(X):
    with pytest.raises(SemhashError, match="activation"):
        StackedAutoencoder(activation="swish").fit(X)
    with pytest.raises(SemhashError, match="not fitted"):
        StackedAutoencoder().transform(X)


def test_supervised_fine_tuning_pulls_codes_of_a_label_together(X):
    labels = np.repeat(list(TOPICS), 16)
    unsupervised = StackedAutoencoder(**{**TINY_MODEL, "epochs": 2}).fit(X)
    supervised = StackedAutoencoder(**{**TINY_MODEL, "epochs": 2, "supervised_epochs": 20}).fit(X, labels)
    assert len(supervised.history_["supervised"]) == 20
    assert supervised.history_["supervised"][-1] < supervised.history_["supervised"][0]

    def spread(model):
        bits = model.encode(X).astype(int)
        same = labels[:, None] == labels[None, :]
        return (bits[:, None, :] != bits[None, :, :]).sum(axis=2)[same].mean()

    assert spread(supervised) < spread(unsupervised)


def test_fit_transform_and_fit_encode_give_what_fit_then_transform_and_encode_give(fitted, X):
    np.testing.assert_allclose(StackedAutoencoder(**TINY_MODEL).fit_transform(X), fitted.transform(X), atol=1e-6)
    np.testing.assert_array_equal(StackedAutoencoder(**TINY_MODEL).fit_encode(X), fitted.encode(X))
