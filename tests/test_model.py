import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import TINY_MODEL, TOPICS, topic_text

from semhash.codes.binarize import ITQ_ITERATIONS, cut, hash_centres, pca_itq, principal_components, project
from semhash.codes.neighbours import nearest_others, neighbour_graph_eigenvectors, neighbour_space, spectral_clusters
from semhash.errors import SemhashError
from semhash.features.text import TextFeatures
from semhash.index.index import fitted_coder
from semhash.models.autoencoder import (
    CLUSTER_WEIGHT,
    CLUSTERS,
    FINETUNE_EPOCHS,
    GRAPH_RIDGE,
    SQUASH,
    StackedAutoencoder,
    ridge_readout,
    squash_scales,
)


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


def test_each_pretraining_layer_makes_at_least_min_pretrain_steps_updates(X):
    settings = {**TINY_MODEL, "hidden": (8,), "pretrain_epochs": 1, "epochs": 1, "min_pretrain_steps": 20}
    model = StackedAutoencoder(**settings).fit(X)
    steps_per_epoch = -(-X.shape[0] // TINY_MODEL["batch_size"])
    assert [len(losses) for losses in model.history_["pretrain"]] == [-(-20 // steps_per_epoch)] * 2
    assert -(-20 // steps_per_epoch) > 1
    unextended = StackedAutoencoder(**{**settings, "pretrain_epochs": 0}).fit(X)
    assert [len(losses) for losses in unextended.history_["pretrain"]] == [0, 0]


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


@pytest.mark.parametrize(("rows", "binarized"), [(16, "median"), (20, "itq")])
def test_itq_needs_more_rows_than_bits_else_medians(X, rows, binarized):
    model = StackedAutoencoder(**{**TINY_MODEL, "epochs": 1}).fit(X[:rows])
    assert model.history_["binarize"] == binarized
    assert fitted_coder(model)[1]["training"]["binarize"] == binarized  # what the index's manifest records


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
    # a training setting from a later semhash is passed over: inference needs only the weights
    later = StackedAutoencoder.load(tmp_path, {**params, "a_later_setting": 3})
    np.testing.assert_array_equal(later.encode(X), fitted.encode(X))
    # an index from before a setting was stated (neighbour_metric) loads with the default
    older = StackedAutoencoder.load(tmp_path, {name: value for name, value in params.items() if name != "neighbour_metric"})
    np.testing.assert_array_equal(older.encode(X), fitted.encode(X))


def test_keras_encoder_matches_numpy_inference(fitted, X):
    keras_codes = np.asarray(fitted.encoder_.predict(X.toarray(), verbose=0))
    np.testing.assert_allclose(keras_codes, fitted.transform(X), atol=1e-4)


def test_bad_parameters_name_the_choice(X):
    with pytest.raises(SemhashError, match="activation"):
        StackedAutoencoder(activation="swish").fit(X)
    with pytest.raises(SemhashError, match="not fitted"):
        StackedAutoencoder().transform(X)


def test_checking_parameters_imports_no_tensorflow():
    script = (
        "import sys, numpy as np\n"
        "from semhash.errors import SemhashError\n"
        "from semhash.models.autoencoder import StackedAutoencoder\n"
        "try:\n"
        "    StackedAutoencoder(output_loss='nope')._check_params(np.zeros((4, 3)))\n"
        "except SemhashError as error:\n"
        "    print(error)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    ran = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["unknown output loss 'nope'; choose from softmax, bce, mse", "False False"]


def test_supervised_fine_tuning_pulls_codes_of_a_label_together(X):
    labels = np.repeat(list(TOPICS), 16)
    unsupervised = StackedAutoencoder(**{**TINY_MODEL, "epochs": 2}).fit(X)
    supervised = StackedAutoencoder(**{**TINY_MODEL, "epochs": "auto", "supervised_epochs": 20}).fit(X, labels)
    # with labels, "auto" epochs leave out the unrolled autoencoder's fine-tuning: the labels' follows
    assert supervised.history_["finetune_epochs"] == 0 and "loss_after_finetuning" not in supervised.history_
    assert len(supervised.history_["supervised"]) == 20
    assert supervised.history_["supervised"][-1] < supervised.history_["supervised"][0]

    def spread(model):
        bits = model.encode(X).astype(int)
        same = labels[:, None] == labels[None, :]
        return (bits[:, None, :] != bits[None, :, :]).sum(axis=2)[same].mean()

    assert spread(supervised) < spread(unsupervised)
    # each label's codes sit nearer its own hash centre than any other label's
    centres = hash_centres(len(TOPICS), TINY_MODEL["bits"])
    names = np.unique(labels)
    codes = supervised.transform(X) > 0.5
    mean_distance = np.array([[(codes[labels == name] != centre).sum(axis=1).mean() for centre in centres] for name in names])
    assert (mean_distance.argmin(axis=1) == np.arange(len(names))).all()


@pytest.mark.parametrize(("epochs", "unlabelled", "labelled"), [("auto", FINETUNE_EPOCHS, 0), (3, 3, 3), (0, 0, 0)])
def test_auto_epochs_fine_tune_without_labels_only(epochs, unlabelled, labelled):
    model = StackedAutoencoder(epochs=epochs)
    assert (model._finetune_epochs(), model._finetune_epochs(y=np.zeros(3))) == (unlabelled, labelled)


def test_the_supervised_coder_reads_sparse_rows_as_the_dense_coder_reads_them(X):
    from semhash.models import network

    network.seed_everything(0)
    rows = sp.csr_matrix(X[:12], dtype=np.float32)
    stack = network.Stack([X.shape[1], 8, 4], "relu", "softmax")
    batches = [next(iter(network.Batches(rows, 12, np.random.default_rng(0), shuffle=False, sparse=sparse)
                         .dataset(1)))[0] for sparse in (True, False)]
    assert isinstance(batches[0], network.tf.SparseTensor) and not isinstance(batches[1], network.tf.SparseTensor)
    sparse_coder, dense_coder = stack.coder(0, 1e-3, sparse=True), stack.coder(0, 1e-3)
    np.testing.assert_allclose(sparse_coder(batches[0]), dense_coder(batches[1]), rtol=1e-5)
    np.testing.assert_allclose(dense_coder(batches[1]), stack.encoder()(rows.toarray()), rtol=1e-5)


def test_sparse_masking_noise_zeroes_a_share_of_the_stored_values_and_scales_the_rest():
    from semhash.models import network

    network.seed_everything(0)
    stored = [[row, column] for row in range(40) for column in range(0, 500, 10)]
    batch = network.tf.SparseTensor(stored, network.tf.ones(len(stored)), [40, 500])
    noise = network.SparseMaskingNoise(0.25)
    kept = noise(batch, training=True)
    values = kept.values.numpy()
    assert np.array_equal(kept.indices.numpy(), batch.indices.numpy())
    np.testing.assert_allclose(np.unique(values), [0, 1 / 0.75], rtol=1e-6)
    assert abs((values == 0).mean() - 0.25) < 0.04
    assert noise(batch, training=False) is batch


def test_fit_transform_and_fit_encode_give_what_fit_then_transform_and_encode_give(fitted, X):
    np.testing.assert_allclose(StackedAutoencoder(**TINY_MODEL).fit_transform(X), fitted.transform(X), atol=1e-6)
    np.testing.assert_array_equal(StackedAutoencoder(**TINY_MODEL).fit_encode(X), fitted.encode(X))


def test_neighbour_targets_mix_each_row_with_its_nearest_rows():
    # Four bags of words: rows 0 and 1 share their words, rows 2 and 3 theirs.
    X = sp.csr_matrix(np.array([[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 3], [0, 0, 2, 2]], dtype=np.float32))
    model = StackedAutoencoder(neighbours=1, neighbour_weight=0.25)
    targets = model._targets(X).toarray()
    own = X.toarray() / X.toarray().sum(axis=1, keepdims=True)
    np.testing.assert_allclose(targets, 0.75 * own + 0.25 * own[[1, 0, 3, 2]], atol=1e-6)
    # pixels (Euclidean, unscaled), images keep their shape
    images = np.array([0.0, 0.1, 5.0, 5.2], dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 3), np.float32)
    mixed = StackedAutoencoder(neighbours=1, neighbour_weight=0.5, output_loss="mse", neighbour_metric="euclidean")._targets(images)
    assert mixed.shape == images.shape
    np.testing.assert_allclose(mixed[:, 0, 0, 0], [0.05, 0.05, 5.1, 5.1], atol=1e-6)
    assert StackedAutoencoder(neighbours=0)._targets(X) is None


def test_neighbour_targets_change_training(X):
    alone = StackedAutoencoder(**{**TINY_MODEL, "neighbours": 0}).fit(X)
    mixed = StackedAutoencoder(**{**TINY_MODEL, "neighbours": 3}).fit(X)
    assert not np.allclose(alone.weights_[0][0], mixed.weights_[0][0])


@pytest.mark.parametrize("params", [{"neighbours": -1}, {"neighbours": 2.5}, {"neighbour_weight": 1.5}])
def test_bad_neighbour_settings_are_refused(X, params):
    with pytest.raises(SemhashError, match="neighbour"):
        StackedAutoencoder(**params).fit(X)


def test_the_neighbour_metric_is_the_stated_one_whatever_the_loss():
    # row 1 points as row 0 does (cosine 1) but lies nearer row 2 (Euclidean 1 against 9)
    X = np.array([[10, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=np.float32)
    text = {"neighbours": 1, "neighbour_weight": 0.5}
    # rebuilt through a softmax, rows are mixed as word distributions: [1, 0, 0], [1, 0, 0], [.5, .5, 0]
    np.testing.assert_allclose(StackedAutoencoder(**text)._targets(X)[1], [1, 0, 0])
    euclidean = StackedAutoencoder(**text, neighbour_metric="euclidean")._targets(X)
    np.testing.assert_allclose(euclidean[1], [0.75, 0.25, 0])
    # rebuilt under mean squared error, rows are mixed as they are
    mse = StackedAutoencoder(**text, output_loss="mse", neighbour_metric="idf-cosine")._targets(X)
    np.testing.assert_allclose(mse[1], [5.5, 0, 0])


@pytest.mark.parametrize("metric", [None, "auto", "cosine"])
def test_the_neighbour_metric_must_be_named(metric):
    with pytest.raises(SemhashError, match="unknown neighbour_metric .*; choose from idf-cosine, euclidean"):
        StackedAutoencoder(neighbour_metric=metric)._check_params(np.zeros((4, 3)))


def test_with_labels_neighbours_are_sought_within_each_label():
    X = sp.csr_matrix(np.array([[2, 1, 0], [1, 1, 0], [2, 1, 0.1], [0, 0, 1]], dtype=np.float32))
    model = StackedAutoencoder(neighbours=2)
    assert sorted(model._nearest(X, "cosine", None)[0]) == [1, 2]
    # row 0's label holds rows 0 and 1 only: its one neighbour is repeated; row 3 is alone
    others = model._nearest(X, "cosine", np.array(["a", "a", "b", "b"]))
    assert others.tolist() == [[1, 1], [0, 0], [3, 3], [2, 2]]
    alone = model._nearest(X, "cosine", np.array(["a", "a", "a", "b"]))
    assert alone[3].tolist() == [3, 3]


@pytest.mark.parametrize("settings", [{"code_layer": "variational"}, {"sparsity": 0.05}])
def test_code_layer_variants_train_save_load_and_encode_reproducibly(fitted, X, tmp_path, settings):
    model = StackedAutoencoder(**{**TINY_MODEL, **settings}).fit(X)
    assert model.history_["finetune"][-1] < model.history_["finetune"][0]
    again = StackedAutoencoder(**{**TINY_MODEL, **settings}).fit(X)
    np.testing.assert_array_equal(again.encode(X), model.encode(X))
    assert not np.array_equal(model.encode(X), fitted.encode(X))  # the setting changed the training
    params = model.save(tmp_path)
    assert {name: params[name] for name in settings} == settings
    loaded = StackedAutoencoder.load(tmp_path, params)
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))
    assert loaded.get_params() == model.get_params()


def test_an_l1_penalty_makes_the_codes_sparser(fitted, X):
    sparse = StackedAutoencoder(**{**TINY_MODEL, "sparsity": 0.5}).fit(X)
    assert sparse.transform(X).mean() < fitted.transform(X).mean() - 0.1


@pytest.mark.parametrize(("settings", "message"), [
    ({"code_layer": "bernoulli"}, "unknown code_layer 'bernoulli'; choose from noise, variational"),
    ({"sparsity": -0.1}, "sparsity must be a number, 0 or more, not -0.1"),
    ({"kl_weight": "much"}, "kl_weight must be a number, 0 or more, not 'much'"),
    ({"code_noise": "loud"}, "code_noise must be a number, 0 or more, or 'auto', not 'loud'"),
    ({"min_pretrain_steps": -1}, "min_pretrain_steps must be a whole number, 0 or more, not -1"),
    ({"min_steps": 2.5}, "min_steps must be a whole number, 0 or more, not 2.5"),
])
def test_bad_code_layer_settings_are_named(X, settings, message):
    with pytest.raises(SemhashError) as raised:
        StackedAutoencoder(**settings).fit(X)
    assert str(raised.value) == message


@pytest.mark.parametrize(("bits", "noise"), [(8, 6.0), (16, 6.0), (17, 8.0), (64, 8.0)])
def test_auto_code_noise_is_less_for_short_codes(bits, noise):
    assert StackedAutoencoder(bits=bits)._code_noise() == noise
    assert StackedAutoencoder(bits=bits, code_noise=2.5)._code_noise() == 2.5


def test_members_code_layers_are_joined_squashed_and_cut_to_the_bits_by_pca_itq(X, tmp_path):
    joined = StackedAutoencoder(**{**TINY_MODEL, "members": 2, "member_bits": 16, "principal_axes": 0,
                                   "graph_eigenvectors": 0}).fit(X)
    halves = [StackedAutoencoder(**{**TINY_MODEL, "members": 1, "seed": seed}).fit(X) for seed in (0, 1)]
    np.testing.assert_allclose(joined.transform(X), np.hstack([half.transform(X) for half in halves]), atol=1e-6)
    logits = joined._logits(X)
    np.testing.assert_allclose(logits, np.hstack([half._logits(X) for half in halves]), atol=1e-5)
    np.testing.assert_allclose(joined.scales_, SQUASH * logits.std(axis=0), rtol=1e-5)
    squashed = np.tanh(logits / joined.scales_)
    mean, components, rotation, _ = pca_itq(squashed, 16, ITQ_ITERATIONS, 0)
    codes = joined.encode(X)
    assert codes.shape == (X.shape[0], 16) and joined.rotation_.shape == (32, 16)
    np.testing.assert_array_equal(codes, cut(squashed, mean, components @ rotation))
    assert not np.array_equal(codes, halves[0].encode(X)) and halves[0].scales_ is None
    assert len(joined.history_["members"]) == 2
    keras_codes = np.asarray(joined.encoder_.predict(X.toarray(), verbose=0))
    np.testing.assert_allclose(keras_codes, joined.transform(X), atol=1e-4)
    params = joined.save(tmp_path)
    assert (params["members"], params["member_bits"]) == (2, 16)
    loaded = StackedAutoencoder.load(tmp_path, params)
    np.testing.assert_array_equal(loaded.encode(X), codes)
    np.testing.assert_array_equal(loaded.projections(X) > 0, codes)


@pytest.mark.parametrize("hidden", [(32,), (32, 16), ()])
def test_principal_axes_join_the_code_layer_exactly_through_relu_layers(X, fitted, hidden, tmp_path):
    settings = {**TINY_MODEL, "hidden": hidden, "member_bits": 16, "principal_axes": 5}
    model = StackedAutoencoder(**settings).fit(X)
    one = fitted if hidden == TINY_MODEL["hidden"] else StackedAutoencoder(**{**settings, "principal_axes": 0}).fit(X)
    logits = model._logits(X)
    mean, directions = principal_components(X, 5, 0)
    np.testing.assert_allclose(logits[:, :16], one._logits(X), atol=1e-5)
    np.testing.assert_allclose(logits[:, 16:], project(X, mean, directions), atol=1e-4)
    assert model.scales_.shape == (21,) and model.rotation_.shape == (21, 16)
    keras_codes = np.asarray(model.encoder_.predict(X.toarray(), verbose=0))
    np.testing.assert_allclose(keras_codes, model.transform(X), atol=1e-4)
    loaded = StackedAutoencoder.load(tmp_path, model.save(tmp_path))
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))


def test_the_graph_member_joins_the_code_layer_as_a_ridge_regression_from_the_hidden_layer(X, tmp_path):
    settings = {**TINY_MODEL, "members": 2, "member_bits": 16, "principal_axes": 0, "clusters": 0}
    model = StackedAutoencoder(**{**settings, "graph_eigenvectors": 5}).fit(X)
    plain = StackedAutoencoder(**{**settings, "graph_eigenvectors": 0}).fit(X)
    logits = model._logits(X)
    assert logits.shape == (X.shape[0], 37) and model.scales_.shape == (37,)
    plain_logits = plain._logits(X)
    np.testing.assert_allclose(logits[:, :32], plain_logits, atol=1e-5)
    # the last five units are the ridge regression of the graph's eigenvectors on the centred hidden layer
    kernel, bias = model.weights_[0]
    hidden = np.maximum(X @ kernel + bias, 0).astype(np.float64)
    centred = hidden - hidden.mean(axis=0)
    # over the graph of each row's 10 nearest by idf-cosine and 10 nearest in the joined layer without it
    rows, metric = neighbour_space(X, "idf-cosine")
    joined = np.tanh(plain_logits / squash_scales(plain_logits))
    others = [nearest_others(rows, 10, metric), nearest_others(joined - joined.mean(axis=0), 10, "cosine")]
    graph = neighbour_graph_eigenvectors(np.hstack(others), 5)
    coefficients = np.linalg.solve(centred.T @ centred + GRAPH_RIDGE * np.eye(hidden.shape[1]), centred.T @ graph)
    np.testing.assert_allclose(logits[:, 32:], centred @ coefficients, atol=1e-3)
    assert np.corrcoef(logits[:, 32], graph[:, 0])[0, 1] > 0.5
    keras_codes = np.asarray(model.encoder_.predict(X.toarray(), verbose=0))
    np.testing.assert_allclose(keras_codes, model.transform(X), atol=1e-4)
    loaded = StackedAutoencoder.load(tmp_path, model.save(tmp_path))
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))
    graph_kernel = model.weights_[-1][0][:, 32:]
    model.weights_[-1] = tuple(array[..., :32] for array in model.weights_[-1])
    again = model._with_graph_member(X, model._graph_targets(X, None, 5))  # one seed, one graph member
    np.testing.assert_array_equal(again[0][:, -5:], graph_kernel)


def test_cluster_members_learn_the_graphs_spectral_clusters_as_labels_and_weigh_less_in_the_cut(X, tmp_path):
    settings = {**TINY_MODEL, "members": 2, "member_bits": 16, "principal_axes": 0, "graph_eigenvectors": 5}
    model = StackedAutoencoder(**{**settings, "clusters": (4, 2)}).fit(X)
    without = StackedAutoencoder(**{**settings, "clusters": 0}).fit(X)
    logits = model._logits(X)
    assert logits.shape == (X.shape[0], 69) and model.scales_.shape == (69,)
    np.testing.assert_allclose(logits[:, :37], without._logits(X), atol=1e-5)
    # the last 32 units: two members (seeds 2 and 3, after the two members' 0 and 1) trained on the four and
    # the two spectral clusters of the graph member's graph as their labels
    members = StackedAutoencoder(**{**settings, "graph_eigenvectors": 0, "clusters": 0}).fit(X)
    eigenvectors = members._graph_targets(X, None, 5)
    for number, (count, start) in enumerate(((4, 37), (2, 53))):
        clusters = spectral_clusters(eigenvectors, count)
        assert model.history_["cluster_members"][number]["clusters"] == len(np.unique(clusters)) == count
        member = StackedAutoencoder(**{**TINY_MODEL, "seed": 2 + number}).fit(X, clusters)
        np.testing.assert_allclose(logits[:, start : start + 16], member._logits(X), atol=1e-5)
    # their squashed units count CLUSTER_WEIGHT times in the cut, folded into the thresholds and the rotation
    np.testing.assert_allclose(model.unit_weights_, [1] * 37 + [CLUSTER_WEIGHT] * 32)
    weighed = np.tanh(logits / model.scales_) * model.unit_weights_
    mean, components, rotation, _ = pca_itq(weighed, 16, ITQ_ITERATIONS, 0)
    codes = model.encode(X)
    np.testing.assert_array_equal(codes, cut(weighed, mean, components @ rotation))
    np.testing.assert_array_equal(model.projections(X) > 0, codes)
    np.testing.assert_allclose(model.projections(X), (weighed - mean) @ components @ rotation, atol=1e-4)
    loaded = StackedAutoencoder.load(tmp_path, model.save(tmp_path))
    np.testing.assert_array_equal(loaded.encode(X), codes)
    assert loaded.clusters == (4, 2) and fitted_coder(model)[1]["training"]["clusters"] == [4, 2]
    one = StackedAutoencoder(**{**settings, "clusters": 4}).fit(X)  # one count, one member: the first of those two
    np.testing.assert_allclose(one._logits(X), logits[:, :53], atol=1e-5)


def test_spectral_clusters_are_the_graphs_pieces_and_no_more_than_its_distinct_rows():
    pieces = np.array([[1], [0], [1], [4], [3], [4]])  # two triangles
    clusters = spectral_clusters(neighbour_graph_eigenvectors(pieces, 1), 2)
    assert len(set(clusters[:3])) == len(set(clusters[3:])) == 1 and clusters[0] != clusters[3]
    assert len(np.unique(spectral_clusters(np.ones((5, 2)), 3))) == 1


@pytest.mark.parametrize(("settings", "clusters", "with_labels"), [
    ({}, CLUSTERS, ()), ({"graph_eigenvectors": 0}, (), ()), ({"members": 1}, (), ()),
    ({"members": 1, "graph_eigenvectors": 8}, CLUSTERS, ()), ({"clusters": 5}, (5,), (5,)),
    ({"clusters": 0}, (), ()), ({"clusters": [6, 3]}, (6, 3), (6, 3)),
])
def test_auto_clusters_join_a_graph_member_learned_without_labels(settings, clusters, with_labels):
    model = StackedAutoencoder(**settings)
    assert (model._clusters(), model._clusters(y=np.zeros(3))) == (clusters, with_labels)


def test_ridge_readout_summed_by_chunks_is_scikit_learns_ridge_centred_on_the_rows():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 6)) + 3
    targets = features @ rng.normal(size=(6, 2)) + rng.normal(size=(50, 2))
    coefficients, intercept = ridge_readout((features[start : start + 7] for start in range(0, 50, 7)), targets, 4.0)
    reference = Ridge(alpha=4.0).fit(features, targets)
    np.testing.assert_allclose(coefficients, reference.coef_.T, atol=1e-10)
    np.testing.assert_allclose(intercept, reference.intercept_ - targets.mean(axis=0), atol=1e-10)
    np.testing.assert_allclose((features @ coefficients + intercept).mean(axis=0), 0, atol=1e-10)


@pytest.mark.parametrize(("settings", "eigenvectors", "with_labels"), [
    ({}, 64, 0), ({"members": 1}, 0, 0), ({"neighbours": 0}, 0, 0), ({"hidden": ()}, 0, 0),
    ({"members": 1, "graph_eigenvectors": 8}, 8, 8),
])
def test_auto_graph_eigenvectors_join_several_members_that_learn_from_neighbours(settings, eigenvectors, with_labels):
    model = StackedAutoencoder(**settings)
    assert (model._graph_eigenvectors(), model._graph_eigenvectors(y=np.zeros(3))) == (eigenvectors, with_labels)


def test_a_model_saved_before_members_principal_axes_and_the_graph_loads_as_it_was_built(fitted, tmp_path):
    params = fitted.save(tmp_path)
    del params["members"], params["principal_axes"], params["graph_eigenvectors"], params["clusters"]
    loaded = StackedAutoencoder.load(tmp_path, params).get_params()
    assert (loaded["members"], loaded["principal_axes"], loaded["graph_eigenvectors"], loaded["clusters"]) == (1, 0, 0, 0)


def test_principal_axes_are_as_many_as_the_rows_span(X):
    model = StackedAutoencoder(**{**TINY_MODEL, "member_bits": 16, "principal_axes": 32}).fit(X[:12])
    assert model._logits(X).shape == (X.shape[0], 16 + 11)


@pytest.mark.parametrize(("settings", "axes", "with_labels"), [
    ({}, 32, 0), ({"members": 2}, 32, 32), ({"members": 1}, 0, 0), ({"activation": "tanh"}, 0, 0),
    ({"keep_decoder": True}, 0, 0), ({"members": 1, "principal_axes": 8}, 8, 8),
])
def test_auto_principal_axes_join_several_members_through_relu_layers(settings, axes, with_labels):
    model = StackedAutoencoder(**settings)
    assert (model._principal_axes(), model._principal_axes(y=np.zeros(3))) == (axes, with_labels)


def test_members_cut_to_other_bits_are_the_model_fitted_at_those_bits(X, fitted):
    settings = {**TINY_MODEL, "members": 2, "member_bits": 16}
    wide = StackedAutoencoder(**{**settings, "bits": 24}).fit(X)
    narrow = StackedAutoencoder(**{**settings, "bits": 8})
    assert wide.shares_members_with(narrow)
    cut_model = wide.cut_to(8, X)
    np.testing.assert_array_equal(cut_model.encode(X), narrow.fit(X).encode(X))
    assert cut_model.bits == 8 and wide.bits == 24 and wide.encode(X).shape[1] == 24
    assert not wide.shares_members_with(StackedAutoencoder(**{**settings, "bits": 8, "epochs": 3}))
    assert not wide.shares_members_with(StackedAutoencoder(**{**settings, "bits": 8, "member_bits": 12}))
    assert not narrow.shares_members_with(StackedAutoencoder(**{**settings, "members": 1}))
    with pytest.raises(SemhashError, match="2 members of 16 bits cannot make 40"):
        wide.cut_to(40, X)
    with pytest.raises(SemhashError, match="members cannot be cut to 8 bits without training again"):
        fitted.cut_to(8, X)


def test_members_learned_from_labels_are_not_cut_to_other_bits(X):
    settings = {**TINY_MODEL, "members": 2, "member_bits": 16, "supervised_epochs": 1}
    labelled = StackedAutoencoder(**settings).fit(X, np.arange(X.shape[0]) % 2)
    assert not labelled.shares_members_with(StackedAutoencoder(**{**settings, "bits": 8}))


@pytest.mark.parametrize(("settings", "members", "member_bits"), [
    ({"bits": 16}, 4, 32), ({"bits": 64}, 4, 32), ({"bits": 128}, 4, 32), ({"bits": 256}, 4, 64),
    ({"bits": 128, "members": 2}, 2, 64), ({"bits": 64, "members": 1}, 1, 64),
    ({"bits": 64, "keep_decoder": True}, 1, 64),
])
def test_auto_members_are_four_of_at_least_32_bits_without_labels(settings, members, member_bits):
    model = StackedAutoencoder(**settings)
    assert (model._members(), model._member_bits()) == (members, member_bits)
    assert model._members(y=np.zeros(3)) == (1 if "members" not in settings else members)


@pytest.mark.parametrize(("settings", "message"), [
    ({"bits": 32, "members": 2, "member_bits": 8}, "2 members of 8 bits cannot make 32; choose wider members or more of them"),
    ({"members": 0}, "members must be a whole number, 1 or more, or 'auto', not 0"),
    ({"principal_axes": -1}, "principal_axes must be a whole number, 0 or more, or 'auto', not -1"),
    ({"principal_axes": 4, "activation": "tanh"},
     ("principal axes join the code layer through relu layers, not tanh; "
      "set principal_axes to 0 or the activation to relu")),
    ({"graph_eigenvectors": -2}, "graph_eigenvectors must be a whole number, 0 or more, or 'auto', not -2"),
    ({"graph_eigenvectors": 4, "neighbours": 0},
     ("the graph member is read from a hidden layer, over the neighbours' graph; "
      "set graph_eigenvectors to 0, or give hidden layers and neighbours")),
    ({"clusters": -1}, "clusters must be a whole number, 0 or more, several positive ones, or 'auto', not -1"),
    ({"clusters": (8, 0)}, "clusters must be a whole number, 0 or more, several positive ones, or 'auto', not (8, 0)"),
    ({"clusters": 8, "graph_eigenvectors": 0},
     "the cluster member learns the graph member's clusters; set clusters to 0, or give graph_eigenvectors"),
    ({"member_bits": "wide"}, "member_bits must be a whole number, 1 or more, or 'auto', not 'wide'"),
    ({"members": 2, "keep_decoder": True},
     "a model of several members keeps no decoder; set members to 1 or keep_decoder off"),
])
def test_bad_members_are_named(X, settings, message):
    with pytest.raises(SemhashError) as raised:
        StackedAutoencoder(**settings).fit(X)
    assert str(raised.value) == message
