"""`semhash evaluate` end to end on a small generated labelled corpus."""

import json

import numpy as np
from click.testing import CliRunner
from conftest import json_lines, write_corpus
from PIL import Image
from test_images import ARCHIVE_ORDER, write_archive, write_python_folder

from semhash.cli import cli
from semhash.evaluation import run
from semhash.evaluation.run import Evaluation
from semhash.sources import datasets


def test_evaluate_writes_json_markdown_and_plot(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=20)
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, [
        "evaluate", str(corpus), "--bits", "8,16", "--labels", "--members", "2", "--hidden", "32",
        "--pretrain-epochs", "2", "--epochs", "2", "--min-steps", "300", "--min-pretrain-steps", "0",
        "--json", str(out / "rows.json"), "--markdown", str(out / "table.md"),
        "--plot", str(out / "plot.png"), "--quiet",
    ])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "rows.json").read_text())
    assert json_lines(result.stdout) == rows
    methods = [(row["method"], row["bits"]) for row in rows]
    assert methods[0] == ("exact-cosine", None)
    for bits in (8, 16):
        for method in ("lsh", "pcah", "pca-itq", "semhash", "semhash-supervised"):
            assert (method, bits) in methods
    for row in rows:
        assert row["corpus"] == str(corpus)
        assert 0 <= row["precision_at_100"] <= 1 and 0 <= row["map_at_1000"] <= 1
    semhash = next(row for row in rows if row["method"] == "semhash" and row["bits"] == 16)
    assert len(semhash["pr_curve"]["precision"]) == 17
    # the 16-bit model's members are the 8-bit one's, cut again rather than trained again
    assert semhash["members_from_bits"] == 8
    assert all("members_from_bits" not in row for row in rows if row["bits"] == 8 or row["method"] != "semhash")
    assert semhash["annoy"]["recall_at_100"] >= 0.95
    # 12 queries and 48 database documents, 16 of each topic: chance mAP is about 1/3
    assert semhash["map_at_1000"] > 0.6
    table = (out / "table.md").read_text()
    assert "| semhash-supervised |" in table and "Wall time" in table
    assert "| semhash | 16 | " in table and "(the 8-bit row's members, cut) |" in table
    with Image.open(out / "plot.png") as plot:
        assert plot.format == "PNG"


def test_labelled_folder_holds_out_a_share_of_each_label(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=10)
    kind, database, queries = datasets.load(str(corpus), query_share=0.2, seed=3)
    assert kind == "text" and len(database.items) == 24 and len(queries.items) == 6
    assert sorted(queries.labels.tolist()) == ["cooking"] * 2 + ["finance"] * 2 + ["sports"] * 2
    assert not set(database.items) & set(queries.items)


def test_newsgroup_headers_are_stripped():
    post = "From: someone@example.com\nNewsgroups: sci.space\nSubject: orbits\n\nThe body.\n\nMore."
    assert datasets.strip_headers(post) == "The body.\n\nMore."


def test_benchmarks_need_their_data_folder(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", "thucnews", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "thucnews-headlines not found" in result.output
    result = CliRunner().invoke(cli, ["evaluate", "cifar10"])
    assert result.exit_code == 1 and "give it with --data" in result.output


def test_cifar_baselines_run_on_pixels_and_on_the_patch_features_semhash_reads(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_archive(write_python_folder(tmp_path / "src" / "cifar-10-batches-py"), data / datasets.CIFAR, ARCHIVE_ORDER)
    result = CliRunner().invoke(cli, ["evaluate", "cifar10", "--data", str(data), "--bits", "8", "--centroids", "8",
                                      "--hidden", "16", "--pretrain-epochs", "1", "--epochs", "1", "--min-steps", "0",
                                      "--min-pretrain-steps", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    methods = [row["method"] for row in json_lines(result.stdout)]
    assert methods == ["exact-euclidean", "exact-euclidean-patches", "lsh", "pcah", "pca-itq", "lsh-patches",
                       "pcah-patches", "pca-itq-patches", "semhash"]
    clash = CliRunner().invoke(cli, ["evaluate", "cifar10", "--data", str(data), "--bits", "8", "--arch", "conv",
                                      "--image-features", "patches"])
    assert clash.exit_code == 2 and "the conv model reads pixels" in clash.output


def test_cifar_with_the_conv_model_trains_on_pixels_and_refuses_dense_settings(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_archive(write_python_folder(tmp_path / "src" / "cifar-10-batches-py"), data / datasets.CIFAR, ARCHIVE_ORDER)
    command = ["evaluate", "cifar10", "--data", str(data), "--bits", "8", "--arch", "conv", "--no-baselines", "--quiet"]
    result = CliRunner().invoke(cli, [*command, "--filters", "4", "--pretrain-epochs", "1", "--epochs", "1",
                                      "--min-steps", "0"])
    assert result.exit_code == 0, result.output
    assert [row["method"] for row in json_lines(result.stdout)] == ["semhash"]
    dense_only_options = (["--hidden", "16"], ["--members", "2"], ["--principal-axes", "4"], ["--graph-eigenvectors", "4"],
                          ["--clusters", "4"])
    for dense_only in dense_only_options:
        refused = CliRunner().invoke(cli, [*command, *dense_only])
        assert refused.exit_code == 2
        assert f"{dense_only[0]} only apply to other kinds of corpus than a conv model" in refused.output


def test_variants_add_a_row_for_each_code_layer_variant(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=12)
    result = CliRunner().invoke(cli, ["evaluate", str(corpus), "--bits", "8", "--variants", "--no-baselines",
                                      "--members", "1", "--hidden", "16", "--pretrain-epochs", "1", "--epochs", "1",
                                      "--min-steps", "0", "--min-pretrain-steps", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert [row["method"] for row in rows] == ["semhash", "semhash-variational", "semhash-l1"]
    assert all(0 <= row["precision_at_100"] <= 1 for row in rows)


def test_annoy_is_checked_on_a_seeded_sample_of_many_queries_and_on_all_of_a_few():
    evaluation = Evaluation("20newsgroups", seed=3)
    sample = evaluation._annoy_sample(7532)
    assert len(sample) == len(set(sample.tolist())) == run.ANNOY_QUERIES and sample.max() < 7532
    assert np.array_equal(sample, np.sort(sample)) and np.array_equal(sample, Evaluation("x", seed=3)._annoy_sample(7532))
    assert not np.array_equal(sample, Evaluation("x", seed=4)._annoy_sample(7532))
    assert evaluation._annoy_sample(40).tolist() == list(range(40))
