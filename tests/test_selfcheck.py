"""The self-check that chooses between the autoencoder and PCA-ITQ, and PCA-ITQ as an index's model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CLI, TINY_MODEL, json_lines, write_corpus

from semhash import Index, TextCorpus, defaults
from semhash.cli import cli
from semhash.codes import binary
from semhash.features.text import TextFeatures
from semhash.features.tokenizer import JiebaTokenizer
from semhash.models.autoencoder import StackedAutoencoder
from semhash.models.baselines import PCA_ITQ_WEIGHTS, PCAITQ
from semhash.models.selfcheck import SelfChecked, exact_neighbours, neighbours_kept, split_rows


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """TF-IDF rows of a generated corpus of 120 documents: 12 check items held out."""
    corpus = write_corpus(tmp_path_factory.mktemp("selfcheck") / "corpus", per_topic=40)
    return TextFeatures(JiebaTokenizer(), min_df=1).fit_transform(document.text for document in TextCorpus(corpus))


def test_check_items_are_a_seeded_sample_held_out_of_fitting_and_capped():
    check, fitted = split_rows(1000, 500, holdout=True, seed=0)
    assert len(check) == 100 and len(fitted) == 900  # at most a tenth held out
    assert not np.isin(check, fitted).any() and np.array_equal(np.union1d(check, fitted), np.arange(1000))
    assert np.array_equal(split_rows(1000, 500, True, seed=0)[0], check)
    assert not np.array_equal(split_rows(1000, 500, True, seed=1)[0], check)
    check, fitted = split_rows(1000, 50, holdout=False, seed=0)
    assert len(check) == 50 and len(fitted) == 1000  # in-sample: checked among all


def test_a_coder_that_keeps_the_features_order_keeps_the_neighbours(rows):
    """PCA-ITQ with as many bits as it can have keeps more of the exact neighbours than with 2."""
    check, fitted = split_rows(rows.shape[0], 100, True, seed=0)
    exact, own = exact_neighbours(rows, check, fitted, "cosine")
    assert exact.shape == (12, 10) and (own == -1).all()  # held out: none of them is its own neighbour
    assert not np.isin(check, fitted[exact]).any()  # positions in the fitted rows, none a check item
    scores = {bits: neighbours_kept(PCAITQ(bits=bits).fit(rows[fitted]), rows, check, fitted, exact, own).mean()
              for bits in (2, 24)}
    assert scores[24] > scores[2] and scores[24] > 0.5


def test_the_check_keeps_pca_itq_where_the_autoencoder_learned_nothing(rows):
    untrained = StackedAutoencoder(**{**TINY_MODEL, "pretrain_epochs": 0, "epochs": 0}, seed=0)
    checked = SelfChecked(untrained).fit(rows)
    check = checked.check_
    assert check["check_items"] == 12 and check["fitted_items"] == 108 and check["held_out"]
    assert set(check["scores"]) == {"autoencoder", "pca-itq"}
    assert check["scores"]["pca-itq"] > check["scores"]["autoencoder"]
    assert check["chosen"] == "pca-itq" and isinstance(checked.chosen_, PCAITQ)
    assert np.array_equal(checked.encode(rows), checked.chosen_.encode(rows))
    # Kept, PCA-ITQ is fitted again on all 120 rows: the code `--coder pca-itq` makes, not the check's.
    assert check["kept_fitted_items"] == 120
    whole = PCAITQ(bits=untrained.bits, seed=0).fit(rows)
    assert np.array_equal(checked.encode(rows), whole.encode(rows))
    assert not np.array_equal(checked.candidates_["pca-itq"].encode(rows), whole.encode(rows))


def test_the_choice_is_recorded_and_the_same_for_the_same_seed(rows):
    first = SelfChecked(StackedAutoencoder(**TINY_MODEL, seed=3)).fit(rows)
    again = SelfChecked(StackedAutoencoder(**TINY_MODEL, seed=3)).fit(rows)
    assert {k: v for k, v in first.check_.items() if k != "seconds"} == \
        {k: v for k, v in again.check_.items() if k != "seconds"}
    assert np.array_equal(first.encode(rows), again.encode(rows))


def test_too_few_items_to_check_keep_the_autoencoder_unchecked(rows):
    checked = SelfChecked(StackedAutoencoder(**TINY_MODEL)).fit(rows[:60])
    assert checked.check_["scores"] == {} and checked.check_["chosen"] == "autoencoder"
    assert "fewer than 10 check items" in checked.check_["left_out"]["pca-itq"]
    assert checked.check_["fitted_items"] == checked.check_["kept_fitted_items"] == 60


def test_a_pca_itq_index_saves_loads_and_answers_as_before(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    built = Index.build(TextCorpus(corpus), TextFeatures(JiebaTokenizer(), min_df=1), PCAITQ(bits=16, seed=0))
    assert built.manifest["coder"] == {"asked": "pca-itq", "chosen": "pca-itq", "self_check": None}
    before = [built.query(text, k=8) for text in ("football goal striker", "股票 银行 利率")]
    built.save(tmp_path / "index")
    opened = Index.open(tmp_path / "index")
    assert isinstance(opened.model, PCAITQ)
    assert opened.manifest["model"] == {"arch": "pca-itq", "format": 1, "bits": 16, "n_iter": 50, "seed": 0}
    assert [opened.query(text, k=8) for text in ("football goal striker", "股票 银行 利率")] == before
    assert [hit["label"] for hit in before[0]].count("sports") >= 6
    assert np.array_equal(np.asarray(opened.packed), np.asarray(built.packed))
    data = tmp_path / "index" / opened.manifest["data"]
    with np.load(data / PCA_ITQ_WEIGHTS, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["mean", "projection"]
    assert not (data / "encoder.npz").exists()


def test_a_pca_itq_model_of_a_later_format_is_refused_in_one_line(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=6)
    Index.build(TextCorpus(corpus), TextFeatures(JiebaTokenizer(), min_df=1), PCAITQ(bits=8)).save(tmp_path / "index")
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["format"] = 2
    manifest_path.write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "index")])
    assert result.exit_code == 1 and "PCA-ITQ model of format 2" in result.stderr and "upgrade semhash" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_index_self_checks_when_asked_and_info_shows_it(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=40)
    runner = CliRunner()
    made = []
    for name in ("a", "b"):
        result = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / name), "--coder", "self-check",
                                     *TINY_CLI])
        assert result.exit_code == 0, result.output
        made.append(json_lines(result.stdout)[0])
    assert made[0]["coder"] in ("autoencoder", "pca-itq") and made[0] == {**made[1], "index": made[0]["index"],
                                                                         "seconds": made[0]["seconds"]}
    manifests = [json_lines(runner.invoke(cli, ["info", str(tmp_path / name)]).stdout)[0] for name in ("a", "b")]
    coder = manifests[0]["coder"]
    assert coder["asked"] == "self-check" and coder["chosen"] == coder["self_check"]["chosen"] == made[0]["coder"]
    assert set(coder["self_check"]["scores"]) == {"autoencoder", "pca-itq"}
    assert coder["self_check"]["check_items"] == 12 and coder["self_check"]["held_out"]
    strip = lambda check: {k: v for k, v in check.items() if k != "seconds"}  # noqa: E731
    assert strip(coder["self_check"]) == strip(manifests[1]["coder"]["self_check"])  # the same for the same seed
    codes = [(tmp_path / name / m["data"] / "shard-000000" / "codes.npy").read_bytes()
             for name, m in zip("ab", manifests)]
    assert codes[0] == codes[1]
    plain = runner.invoke(cli, ["info", str(tmp_path / "a"), "--plain"]).stdout
    assert "coder      " + coder["chosen"] + ", chosen by the self-check: exact neighbours kept autoencoder" in plain


def test_coder_option_forces_a_coder_and_a_forced_index_updates(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    runner = CliRunner()
    training = {"--hidden", "--pretrain-epochs", "--epochs", "--min-steps", "--min-pretrain-steps", "--batch-size",
                "--members"}
    tiny, args = [], list(TINY_CLI)
    while args:  # TINY_CLI less the autoencoder's training options and their values
        arg = args.pop(0)
        if arg in training:
            args.pop(0)
        else:
            tiny.append(arg)
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "itq"), "--coder", "pca-itq", *tiny])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["coder"] == "pca-itq"
    info = runner.invoke(cli, ["info", str(tmp_path / "itq"), "--plain"]).stdout
    assert "model      pca-itq:" in info and "coder      pca-itq, as asked" in info
    query = runner.invoke(cli, ["query", "football goal striker coach", "--index", str(tmp_path / "itq"), "-k", "5"])
    assert [hit["label"] for hit in json_lines(query.stdout)].count("sports") >= 4
    (corpus / "sports" / "new.txt").write_text("football striker goal referee stadium", encoding="utf-8")
    updated = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "itq"), "--coder", "pca-itq", *tiny])
    assert updated.exit_code == 0 and json_lines(updated.stdout)[0]["added"] == 1
    refused = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "itq"), "--coder", "autoencoder", *tiny])
    assert refused.exit_code == 2 and "--coder autoencoder (the index has pca-itq)" in refused.stderr
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "ae"), *TINY_CLI])  # the default coder
    assert result.exit_code == 0, result.output
    manifest = json_lines(runner.invoke(cli, ["info", str(tmp_path / "ae")]).stdout)[0]
    assert manifest["coder"] == {"asked": "autoencoder", "chosen": "autoencoder", "self_check": None}


@pytest.mark.parametrize("args, message", [
    (["--coder", "best"], "Invalid value for '--coder'"),
    (["--coder", "pca-itq", "--hidden", "32"], "--hidden train the autoencoder, and --coder pca-itq fits none"),
])
def test_bad_coder_options_are_one_line_usage_errors(tmp_path, args, message):
    corpus = write_corpus(tmp_path / "corpus", per_topic=4)
    result = CliRunner().invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "index"), *args])
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "index").exists()


def test_defaults_name_each_coder_once():
    model = defaults.model("text", bits=16, seed=4)
    assert defaults.coder("text", model) is model  # the autoencoder, unchecked
    checked = defaults.coder("text", model, "self-check")
    assert isinstance(checked, SelfChecked) and checked.metric == "cosine" and checked.model is model
    assert defaults.coder("images", model, "self-check").metric == "euclidean"
    forced = defaults.coder("text", model, "pca-itq")
    assert isinstance(forced, PCAITQ) and (forced.bits, forced.seed) == (16, 4)


def test_evaluate_scores_the_self_checked_default_beside_the_autoencoder(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=50)
    result = CliRunner().invoke(cli, ["evaluate", str(corpus), "--bits", "16", "--members", "1", "--hidden", "32",
                                      "--pretrain-epochs", "2", "--epochs", "2", "--min-steps", "100",
                                      "--min-pretrain-steps", "0", "--coder", "self-check", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json_lines(result.stdout)}
    default = rows["semhash-default"]
    assert default["coder"] == default["self_check"]["chosen"] in ("autoencoder", "pca-itq")
    assert default["self_check"]["check_items"] == 12  # a tenth of the 120 database documents
    if default["coder"] == "autoencoder":  # the same codes scored twice
        assert default["precision_at_100"] == rows["semhash"]["precision_at_100"]
    assert "self_check" not in rows["semhash"]


def test_packed_codes_of_a_reopened_pca_itq_index_match_its_encoder(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=6)
    features = TextFeatures(JiebaTokenizer(), min_df=1)
    saved = Index.build(TextCorpus(corpus), features, PCAITQ(bits=8)).save(tmp_path / "index")
    opened = Index.open(tmp_path / "index")
    texts = [document.text for document in TextCorpus(corpus)]
    assert np.array_equal(opened.encode(texts), binary.pack(saved.model.encode(saved.features.transform(texts))))


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_pca_itq_codes_image_folders_read_as_features_or_as_images(tmp_path, arch):
    from test_cli_images import write_png_folder

    folder = write_png_folder(tmp_path / "photos")
    runner = CliRunner()
    features = ["--centroids", "16"] if arch == "dense" else []
    result = runner.invoke(cli, ["index", str(folder), "-o", str(tmp_path / "index"), "--size", "16", "--arch", arch,
                                 *features, "--bits", "8", "--coder", "pca-itq", "--quiet"])
    assert result.exit_code == 0, result.output
    query = runner.invoke(cli, ["query", "--image", str(folder / "green" / "01.png"), "--index", str(tmp_path / "index"),
                                "-k", "5"])
    assert query.exit_code == 0, query.output
    hits = json_lines(query.stdout)
    assert hits[0]["id"] == "green/01.png" and [hit["label"] for hit in hits].count("green") >= 4


def test_a_line_corpus_is_coded_by_pca_itq_a_partition_at_a_time(tmp_path):
    rng = np.random.default_rng(0)
    from conftest import TOPICS, topic_text

    lines = [json.dumps({"text": topic_text(rng, topic, "en"), "label": topic}) for _ in range(20) for topic in TOPICS]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(tmp_path / "c.jsonl"), "-o", str(tmp_path / "index"), "--bits", "8",
                                 "--coder", "pca-itq", "--min-df", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    opened = Index.open(tmp_path / "index")
    assert isinstance(opened.model, PCAITQ) and opened.manifest["coder"]["chosen"] == "pca-itq"
    assert [hit["label"] for hit in opened.query("football goal striker coach", k=5)].count("sports") >= 4
