import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY_CLI, deadline, json_lines, write_corpus

from semhash import Index
from semhash.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_index_then_query_returns_json_lines(built_index, runner):
    result = runner.invoke(cli, ["query", "football goal striker coach", "--index", str(built_index), "-k", "5"])
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert len(hits) == 5
    assert set(hits[0]) == {"id", "path", "label", "distance", "score", "snippet"}
    assert [hit["label"] for hit in hits].count("sports") >= 4
    assert all(hit["score"] == pytest.approx(1 - hit["distance"] / 16) for hit in hits)
    assert [hit["distance"] for hit in hits] == sorted(hit["distance"] for hit in hits)


def test_chinese_query_and_exact_search(built_index, runner):
    result = runner.invoke(cli, ["query", "股票市场 银行利率 投资基金", "--index", str(built_index), "--exact", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert [hit["label"] for hit in json_lines(result.stdout)].count("finance") >= 4


def test_query_from_file_stdin_and_like(built_index, runner, tmp_path):
    query_file = tmp_path / "q.txt"
    query_file.write_text("厨师 面条 饺子 火锅", encoding="utf-8")
    from_file = runner.invoke(cli, ["query", "--file", str(query_file), "--index", str(built_index)])
    from_stdin = runner.invoke(cli, ["query", "-", "--index", str(built_index)], input="厨师 面条 饺子 火锅")
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert json_lines(from_file.stdout) == json_lines(from_stdin.stdout)
    like = runner.invoke(cli, ["query", "--like", "cooking/en-00.txt", "--index", str(built_index), "-k", "3"])
    assert like.exit_code == 0 and len(json_lines(like.stdout)) == 3


def test_plain_output_is_a_table(built_index, runner):
    result = runner.invoke(cli, ["query", "bank rates", "--index", str(built_index), "--plain", "-k", "2"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["rank", "dist", "score"] and len(lines) == 3


def test_info_shows_manifest_and_bit_balance(built_index, runner):
    result = runner.invoke(cli, ["info", str(built_index)])
    assert result.exit_code == 0
    info = json_lines(result.stdout)[0]
    assert info["counts"]["documents"] == 72 and len(info["bit_balance"]) == 16
    assert all(0 < share < 1 for share in info["bit_balance"])  # no bit is constant
    assert info["training"]["binarize"] == "itq"
    plain = runner.invoke(cli, ["info", str(built_index), "--plain"])
    assert "bit balance" in plain.stdout and "medians" not in plain.stdout


def test_info_says_where_too_few_items_were_cut_at_medians(runner, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=4)  # 12 items, fewer than the 16 bits
    assert runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "index"), *TINY_CLI]).exit_code == 0
    assert json_lines(runner.invoke(cli, ["info", str(tmp_path / "index")]).stdout)[0]["training"]["binarize"] == "median"
    plain = runner.invoke(cli, ["info", str(tmp_path / "index"), "--plain"]).stdout
    assert "bits cut at medians, too few items for ITQ" in plain


def test_info_verify_reads_every_file_that_opening_does_not_hash(built_index, runner, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    assert runner.invoke(cli, ["info", str(target), "--verify"]).exit_code == 0
    codes = target / json.loads((target / "manifest.json").read_text())["data"] / "shard-000000" / "codes.npy"
    content = bytearray(codes.read_bytes())
    content[-1] ^= 0xFF  # a code changed, numpy's header whole
    codes.write_bytes(bytes(content))
    assert runner.invoke(cli, ["info", str(target)]).exit_code == 0
    damaged = runner.invoke(cli, ["info", str(target), "--verify"])
    assert damaged.exit_code == 1 and "codes.npy does not match the sha256" in damaged.stderr
    assert len(damaged.stderr.strip().splitlines()) == 1


def test_default_index_is_the_only_one_under_indexes(built_index, runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = runner.invoke(cli, ["query", "bank"])
    assert missing.exit_code == 2 and "no index under indexes" in missing.stderr
    shutil.copytree(built_index, tmp_path / "indexes" / "corpus")
    assert runner.invoke(cli, ["query", "bank"]).exit_code == 0
    shutil.copytree(built_index, tmp_path / "indexes" / "other")
    several = runner.invoke(cli, ["query", "bank"])
    assert several.exit_code == 2 and "choose one with --index" in several.stderr


def test_index_writes_under_indexes_named_after_the_folder(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "mydocs", per_topic=4)
    result = runner.invoke(cli, ["index", "mydocs", *TINY_CLI, "--neighbours", "0"])
    assert result.exit_code == 0, result.output
    summary = json_lines(result.stdout)[0]
    assert summary["index"] == "indexes/mydocs" and summary["documents"] == 12
    manifest = json.loads((tmp_path / "indexes" / "mydocs" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["neighbours"] == 0 and manifest["model"]["neighbour_weight"] == 0.5


def test_skipped_and_undecodable_files_are_reported(runner, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=4)
    (corpus / "sports" / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (corpus / "sports" / "empty.txt").write_text("")
    (corpus / "sports" / "latin.txt").write_bytes(b"football goal caf\xff\xfe\x81\x30")
    tiny = [arg for arg in TINY_CLI if arg != "--quiet"]
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "index"), *tiny])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["skipped"] == {"binary": 1, "empty": 1}
    assert "photo.txt: binary" in result.stderr and "latin.txt is neither UTF-8 nor GB18030" in result.stderr
    assert "pretraining layer 1/2" in result.stderr


@pytest.mark.parametrize("setup, args, message", [
    (None, ["index", "{tmp}/nowhere"], "does not exist"),
    ("empty", ["index", "{tmp}/corpus"], "no files matching"),
    ("binary", ["index", "{tmp}/corpus"], "no readable documents"),
    ("corrupt", ["query", "bank", "--index", "{tmp}/index"], "corrupt"),
    (None, ["query", "bank", "--index", "{tmp}/nowhere"], "no index at"),
])
def test_errors_are_one_line_without_traceback(runner, tmp_path, built_index, setup, args, message):
    (tmp_path / "corpus").mkdir()
    if setup == "binary":
        (tmp_path / "corpus" / "a.txt").write_bytes(b"\x00\x01binary")
    if setup == "corrupt":
        shutil.copytree(built_index, tmp_path / "index")
        (tmp_path / "index" / "manifest.json").write_text("{oops")
    result = runner.invoke(cli, [arg.format(tmp=tmp_path) for arg in args] + TINY_CLI * (args[0] == "index"))
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_no_known_words(built_index, runner):
    result = runner.invoke(cli, ["query", "zebra giraffe", "--index", str(built_index)])
    assert result.exit_code == 1 and "none of the query's words" in result.stderr


@pytest.mark.parametrize("args", [["query"], ["query", "bank", "--like", "x"], ["query", "   "]])
def test_misuse_is_a_usage_error(built_index, runner, args):
    result = runner.invoke(cli, args + ["--index", str(built_index)])
    assert result.exit_code == 2 and "Usage:" in result.stderr


def test_a_reader_that_stops_early_gets_no_error(built_index):
    """`semhash query ... | head` closes the pipe before semhash writes: no message, exit 141."""
    command = [sys.executable, str(Path(__file__).resolve().parents[1] / "cli.py"),
               "query", "football goal striker coach", "--index", str(built_index)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # long before the model has loaded and the results are written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Error" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("setup, output, message", [
    ("web", "{tmp}/site", "not a semhash index"),  # a folder holding someone else's manifest.json
    ("file", "{tmp}/notes.txt", "not a folder"),
    (None, ".", "lies inside"),  # the working folder holds the corpus
    (None, "{tmp}/corpus", "inside the corpus"),
    (None, "{tmp}/corpus/sports/index", "inside the corpus"),
    (None, "{tmp}", "lies inside"),
])
def test_a_destination_that_cannot_be_written_is_refused_before_training(runner, tmp_path, monkeypatch, setup,
                                                                          output, message):
    write_corpus(tmp_path / "corpus")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "manifest.json").write_text('{"name": "my app", "icons": []}')
    (tmp_path / "site" / "index.html").write_text("<html></html>")
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    monkeypatch.setattr("semhash.index.index.Index.build", lambda *args, **kwargs: pytest.fail("trained"))
    result = runner.invoke(cli, ["index", str(tmp_path / "corpus"), "-o", output.format(tmp=tmp_path), *TINY_CLI])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before
    assert (tmp_path / "site" / "index.html").exists() and (tmp_path / "notes.txt").read_text() == "mine"


class EndlessInput(io.BufferedIOBase):
    """A stdin that never ends: it gives as many bytes as asked, and fails a read to its end."""

    def readable(self):
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            raise AssertionError("stdin was read to its end, which never comes")
        return (b"football " * (size // 9 + 1))[:size]

    read1 = read


def test_stdin_is_read_no_further_than_the_query_limit(built_index, runner):
    with deadline(60):
        result = runner.invoke(cli, ["query", "-", "--index", str(built_index)], input=EndlessInput())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "over the limit of 1,048,576 bytes" in result.stderr and "--max-query-bytes" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("how", ["text", "stdin", "file"])
def test_a_query_over_max_query_bytes_is_refused(built_index, runner, tmp_path, how):
    query = "football goal striker coach"  # 27 bytes
    (tmp_path / "q.txt").write_text(query, encoding="utf-8")
    where = {"text": [query], "stdin": ["-"], "file": ["--file", str(tmp_path / "q.txt")]}[how]
    args = ["query", *where, "--index", str(built_index)]
    refused = runner.invoke(cli, [*args, "--max-query-bytes", "26"], input=query)
    assert refused.exit_code == 1 and "over the limit of 26 bytes; shorten it or raise --max-query-bytes" in refused.stderr
    assert runner.invoke(cli, [*args, "--max-query-bytes", "27"], input=query).exit_code == 0


@pytest.mark.parametrize("search", ["--annoy", "--exact"])
def test_k_past_the_size_of_the_index_gives_every_item_once(built_index, runner, search):
    base = ["--index", str(built_index), search, "-k", "10000000"]
    result = runner.invoke(cli, ["query", "football goal", *base])
    assert result.exit_code == 0, result.output
    ids = [hit["id"] for hit in json_lines(result.stdout)]
    assert len(ids) == len(set(ids)) == 72
    like = runner.invoke(cli, ["query", "--like", "cooking/en-00.txt", *base, "--search-k", "99999999999"])
    assert like.exit_code == 0, like.output
    ids = [hit["id"] for hit in json_lines(like.stdout)]
    assert len(ids) == len(set(ids)) == 71 and "cooking/en-00.txt" not in ids


def test_hostile_files_are_skipped_before_training_named_and_counted(runner, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=4)
    os.mkfifo(corpus / "sports" / "fifo.txt")
    with open(os.fsencode(corpus) + b"/cooking/caf\xe9.txt", "wb") as file:
        file.write(b"recipe kitchen flour")
    (tmp_path / "elsewhere.txt").write_text("bank interest rates", encoding="utf-8")
    (corpus / "finance" / "out.txt").symlink_to(tmp_path / "elsewhere.txt")
    (corpus / "sports" / "long.txt").write_text("football goal striker " * 100, encoding="utf-8")
    (corpus / "finance" / "numbers.txt").write_text("12345 678 !!! ... 2024", encoding="utf-8")
    (corpus / "cooking" / "latin.txt").write_bytes("Kochen in München und Köln".encode("latin-1"))
    tiny = [arg for arg in TINY_CLI if arg != "--quiet"]
    with deadline(300):
        result = runner.invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "index"), *tiny,
                                     "--max-document-bytes", "1000"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["skipped"] == {
        "not a regular file": 1, "name not UTF-8": 1, "link outside the folder": 1, "no terms": 1}
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["documents"] == 14 and manifest["counts"]["truncated"] == 1
    for message in ("fifo.txt: not a regular file: a FIFO", "caf\\xe9.txt: name not UTF-8: rename it",
                    "out.txt: link outside the folder", "long.txt is larger than 1,000 bytes; truncated",
                    "numbers.txt: no terms", "latin.txt is neither UTF-8 nor GB18030; read as cp1252"):
        assert message in result.stderr
    assert "[default: 4194304;" in " ".join(runner.invoke(cli, ["index", "--help"]).stdout.split())
    misplaced = runner.invoke(cli, ["index", str(corpus), "--max-image-pixels", "100"])
    assert misplaced.exit_code == 2 and "--max-image-pixels only apply" in misplaced.stderr


@pytest.mark.parametrize("search", [[], ["--backend", "mih"], ["--annoy"], ["--backend", "exact"]])
def test_radius_gives_exactly_the_items_within_it(built_index, runner, search):
    """--radius R prints the items of `-k` all of them that lie within R bits, in the same order;
    -k caps how many."""
    for query in (["football goal"], ["--like", "cooking/en-00.txt"]):
        base = ["query", *query, "--index", str(built_index)]
        everything = json_lines(runner.invoke(cli, [*base, "--exact", "-k", "100"]).stdout)
        for radius in (0, 3, 16):
            result = runner.invoke(cli, [*base, *search, "--radius", str(radius)])
            assert result.exit_code == 0, result.output
            assert json_lines(result.stdout) == [hit for hit in everything if hit["distance"] <= radius]
        capped = runner.invoke(cli, [*base, *search, "--radius", "16", "-k", "4"])
        assert json_lines(capped.stdout) == everything[:4]


def test_the_backend_is_chosen_by_name(built_index, runner):
    base = ["query", "bank rates", "--index", str(built_index), "-k", "20"]
    exact = runner.invoke(cli, [*base, "--exact"])
    assert runner.invoke(cli, [*base, "--backend", "mih"]).stdout == exact.stdout != ""


@pytest.mark.parametrize("args, message", [
    (["--radius", "-1"], "Invalid value for '--radius'"),
    (["--exact", "--backend", "mih"], "give --exact, --annoy or --backend, not two of them"),
    (["--backend", "faiss"], "Invalid value for '--backend'"),
])
def test_a_negative_radius_or_two_backends_are_usage_errors(built_index, runner, args, message):
    result = runner.invoke(cli, ["query", "bank", "--index", str(built_index), *args])
    assert result.exit_code == 2 and "Usage:" in result.stderr and message in result.stderr


def test_index_takes_the_code_layer_variants(runner, corpus_dir, tmp_path):
    output = tmp_path / "index"
    result = runner.invoke(cli, ["index", str(corpus_dir), "-o", str(output), "--code-layer", "variational",
                                 "--sparsity", "0.01", *TINY_CLI])
    assert result.exit_code == 0, result.output
    model = json.loads((output / "manifest.json").read_text())["model"]
    assert (model["code_layer"], model["sparsity"]) == ("variational", 0.01)
    hits = json_lines(runner.invoke(cli, ["query", "football goal striker", "--index", str(output)]).stdout)
    assert len(hits) == 10


def test_index_joins_members_codes_and_queries_them(runner, corpus_dir, tmp_path):
    output = tmp_path / "index"
    result = runner.invoke(cli, ["index", str(corpus_dir), "-o", str(output), *TINY_CLI, "--members", "2",
                                 "--principal-axes", "4", "--graph-eigenvectors", "3", "--clusters", "2,3"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((output / "manifest.json").read_text())
    assert (manifest["model"]["members"], manifest["model"]["bits"], manifest["model"]["clusters"]) == (2, 16, [2, 3])
    assert manifest["training"]["clusters"] == [2, 3]
    hits = json_lines(runner.invoke(cli, ["query", "football goal striker", "--index", str(output)]).stdout)
    assert len(hits) == 10
    opened = Index.open(output)  # the joined code layer is squashed before its cut, in the index and the queries
    assert opened.model.scales_.shape == (135,)  # two members of 32 units, 4 axes, 3 graph units, two cluster members
    text = (corpus_dir / opened.records[0]["id"]).read_text(encoding="utf-8")
    assert (opened.encode([text]) == opened.codes([0])).all()


CLUSTERS_MESSAGE = ("Invalid value for '--clusters': give a number, 0 or more, of clusters, several positive ones "
                    "separated by commas, or auto")


@pytest.mark.parametrize(("args", "message"), [
    (["--members", "0"], "Invalid value for '--members': give a positive number of members, or auto"),
    (["--member-bits", "-4"], "Invalid value for '--member-bits': give a positive number of bits, or auto"),
    (["--principal-axes", "-1"], "Invalid value for '--principal-axes': give a number, 0 or more, of axes, or auto"),
    (["--graph-eigenvectors", "x"],
     "Invalid value for '--graph-eigenvectors': give a number, 0 or more, of eigenvectors, or auto"),
    (["--clusters", "-3"], CLUSTERS_MESSAGE),
    (["--clusters", "4,0"], CLUSTERS_MESSAGE),
    (["--epochs", "-1"], "Invalid value for '--epochs': give a number, 0 or more, of epochs, or auto"),
    (["--code-layer", "bernoulli"], "Invalid value for '--code-layer': 'bernoulli' is not one of 'noise', 'variational'."),
    (["--sparsity", "-1"], "Invalid value for '--sparsity': -1.0 is not in the range x>=0."),
])
def test_bad_code_layer_options_are_one_line_usage_errors(runner, corpus_dir, tmp_path, args, message):
    for command in (["index", str(corpus_dir), "-o", str(tmp_path / "index")], ["evaluate", str(corpus_dir)]):
        result = runner.invoke(cli, [*command, *args])
        assert result.exit_code == 2 and result.stderr.splitlines()[-1] == f"Error: {message}"
        assert "Traceback" not in result.output
