"""Indexes changed in place: shards that answer as one index, items added, changed and removed
without training, compaction, drift, and the commands that do it."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CLI, TINY_MODEL, json_lines, topic_text, write_corpus
from test_cli_images import TINY_IMAGES

from semhash import Index, StackedAutoencoder, TextCorpus, TextFeatures
from semhash.cli import cli
from semhash.codes import binary
from semhash.errors import SemhashError
from semhash.index import index as index_module
from semhash.index.shards import Shard


@pytest.fixture
def runner():
    return CliRunner()


def build(root, backend=None):
    model = StackedAutoencoder(**{**TINY_MODEL, "seed": 0})
    return Index.build(TextCorpus(root), TextFeatures(min_df=1), model, trees=8, backend=backend)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("live")
    return build(write_corpus(base / "corpus")).save(base / "index")


def fresh(built, tmp_path):
    """A copy of the built index and of its corpus, to change."""
    corpus = shutil.copytree(built.manifest["source"]["root"], tmp_path / "corpus")
    target = shutil.copytree(built.folder, tmp_path / "index")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["source"]["root"] = str(corpus.resolve())
    (target / "manifest.json").write_text(json.dumps(manifest))
    return corpus, target


def sharded(index, cuts, deleted=()):
    """The same index with its codes and records cut into shards at `cuts`, some rows removed."""
    packed, records = np.asarray(index.packed), list(index.records)
    bounds = [0, *cuts, len(packed)]
    shards = []
    for start, end in zip(bounds, bounds[1:]):
        gone = [row - start for row in deleted if start <= row < end]
        shards.append(Shard(packed[start:end].copy(), records[start:end], index.bits, gone))
    return Index(index.manifest, index.features, index.model, shards)


def brute(index, query, live):
    """Every live row and its distance, by distance, then row."""
    distances = binary.hamming(index.packed[live], query)
    order = np.lexsort((live, distances))
    return live[order], distances[order]


@pytest.mark.parametrize("deleted", [(), (0, 5, 30, 31, 71)])
@pytest.mark.parametrize("backend", ["exact", "mih", "annoy"])
def test_shards_answer_as_one_index_and_leave_removed_rows_out(built, tmp_path, deleted, backend):
    whole = Index.open(built.folder)
    split = sharded(whole, [10, 40], deleted)
    split.manifest = {**split.manifest, "backend": index_module.chosen_backend(len(split), backend, 8, 0)}
    split.save(tmp_path / "split")
    opened = Index.open(tmp_path / "split")
    assert [entry["items"] for entry in opened.manifest["shards"]] == [10, 30, 32] and len(opened) == 72 - len(deleted)
    live = np.setdiff1d(np.arange(72), deleted)
    for row in range(0, 72, 7):
        query = whole.packed[row]
        expected = brute(whole, query, live)
        for k in (1, 10, 100):
            rows, distances = opened.search(query, k, search_k=10**6)
            assert distances.tolist() == expected[1][:k].tolist()
            if backend != "annoy":
                assert rows.tolist() == expected[0][:k].tolist()
        rows, distances = opened.ball(query, 3)
        assert rows.tolist() == expected[0][expected[1] <= 3].tolist()
    assert list(opened.records) == list(whole.records)
    for row in deleted:
        assert opened.records.row_of(whole.records[row]["id"]) is None
    np.testing.assert_allclose(opened.bit_balance(), binary.bit_balance(whole.packed[live], whole.bits))


def test_a_missing_shard_or_a_garbled_list_gives_a_clear_message(built, tmp_path):
    sharded(Index.open(built.folder), [30]).save(tmp_path / "index")
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    shutil.rmtree(tmp_path / "index" / manifest["data"] / "shard-000001")
    with pytest.raises(SemhashError, match="shard-000001/codes.npy is missing; rebuild it"):
        Index.open(tmp_path / "index")
    manifest["shards"][1]["deleted"] = 99
    (tmp_path / "index" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SemhashError, match="garbles its list of shards"):
        Index.open(tmp_path / "index")


def test_real_valued_codes_are_checked_and_an_index_without_them_still_answers(built, tmp_path):
    """A shard's projections.npy must fit its codes; a shard written before they were stored has
    none, and its index answers, ties in row order, and takes new shards that have them."""
    corpus, target = fresh(built, tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    stored = target / manifest["data"] / "shard-000000" / "projections.npy"
    np.save(stored, np.zeros((16, 72), np.float16))  # as many bytes, the wrong shape
    with pytest.raises(SemhashError, match="projections.npy holds float16 values shaped \\(16, 72\\) where the "
                                           "manifest says 72 codes of 16 bits; rebuild it"):
        Index.open(target)
    stored.unlink()
    del manifest["files"]["shard-000000/projections.npy"], manifest["shards"][0]["projections"]
    (target / "manifest.json").write_text(json.dumps(manifest))
    before = Index.open(target)
    assert before.projections([0]) is None
    assert len(before.query("bank interest rates", k=72)) == 72
    (corpus / "finance" / "en-new.txt").write_text(topic_text(np.random.default_rng(6), "finance", "en"), encoding="utf-8")
    before.update(TextCorpus(corpus))
    after = Index.open(target)
    assert after.shards[0].projections is None and after.shards[1].projections is not None
    assert after.projections([0, 72]) is None and len(after.query("bank interest rates", k=73)) == 73
    after.verify()


def test_a_reader_ranks_ties_after_its_generation_is_gone(built, tmp_path):
    """Two writes later a reader's generation folder is removed; its real-valued codes are still
    read, through the memory map it holds."""
    _, target = fresh(built, tmp_path)
    reader, writer = Index.open(target), Index.open(target)
    expected = reader.query("bank interest rates", k=20)
    writer.remove(["sports/en-00.txt"])
    writer.remove(["sports/en-02.txt"])
    assert not Path(reader.shards[0].projections.filename).exists()
    assert reader.query("bank interest rates", k=20) == expected


def test_update_encodes_new_and_changed_files_and_removes_vanished_ones(built, tmp_path):
    corpus, target = fresh(built, tmp_path)
    opened = Index.open(target)
    generation = opened.manifest["generation"]
    assert opened.update(TextCorpus(corpus))["unchanged"] == 72  # nothing changed: nothing written
    assert opened.manifest["generation"] == generation
    rng = np.random.default_rng(5)
    (corpus / "sports" / "en-00.txt").write_text(topic_text(rng, "finance", "en"), encoding="utf-8")
    (corpus / "finance" / "en-new.txt").write_text(topic_text(rng, "finance", "en"), encoding="utf-8")
    (corpus / "cooking" / "en-02.txt").unlink()
    before = Index.open(target)
    report = opened.update(TextCorpus(corpus))
    assert {key: report[key] for key in ("added", "changed", "removed", "unchanged")} == {
        "added": 1, "changed": 1, "removed": 1, "unchanged": 70}
    assert len(opened) == 72 and len(opened.shards) == 2 and opened.manifest["counts"]["documents"] == 72
    assert opened.shards[1].trained is False and report["drift"]["unseen_items"] == 2
    assert 0 <= report["drift"]["unknown_term_share"] < 0.2
    again = Index.open(target)
    ids = {record["id"] for row, record in enumerate(again.records) if row in set(again.live_rows().tolist())}
    assert "finance/en-new.txt" in ids and "cooking/en-02.txt" not in ids
    assert again.record("sports/en-00.txt")["snippet"] != before.record("sports/en-00.txt")["snippet"]
    found = [hit["id"] for hit in again.query("bank interest rates inflation bonds stocks", k=100)]
    assert "finance/en-new.txt" in found and "cooking/en-02.txt" not in found and len(found) == 72
    assert len(found) == len(set(found))
    with pytest.raises(SemhashError, match="no item"):
        again.like("cooking/en-02.txt")
    assert before.query("football goal", k=3) == before.query("football goal", k=3)  # the old reader still answers
    again.verify()


def test_remove_add_and_compaction(built, tmp_path, monkeypatch):
    corpus, target = fresh(built, tmp_path)
    opened = Index.open(target)
    with pytest.raises(SemhashError, match="no item 'nope.txt' .*nothing was removed"):
        opened.remove(["sports/en-00.txt", "nope.txt"])
    assert len(Index.open(target)) == 72
    assert opened.remove(["sports/en-00.txt", "sports/zh-01.txt"]) == 2
    assert len(Index.open(target)) == 70 and Index.open(target).manifest["shards"][0]["deleted"] == 2
    assert "sports/en-00.txt" not in [hit["id"] for hit in Index.open(target).query("football goal", k=72)]
    report = opened.add(TextCorpus(corpus).only(["sports/en-00.txt"]))
    assert (report["added"], report["removed"], len(opened)) == (1, 0, 71)
    monkeypatch.setattr(index_module, "MAX_SHARDS", 2)
    for name in ("sports/zh-01.txt", "sports/en-02.txt"):  # a third shard: merged with the second
        if name != "sports/zh-01.txt":
            opened.remove([name])
        opened.add(TextCorpus(corpus).only([name]))
    assert len(opened.shards) == 2 and len(opened) == 72
    ids = [record["id"] for record in opened.shards[0].records]
    kept = {opened.records[row]["id"]: opened.projections([row])[0] for row in opened.live_rows()
            if opened.records[row]["id"] not in ids[:40]}
    opened.remove(ids[:40])  # most of the first shard removed: written again without them
    assert opened.manifest["shards"][0]["deleted"] == 0 and len(Index.open(target)) == 32
    reopened = Index.open(target)
    reopened.verify()
    live = reopened.live_rows()
    assert {reopened.records[row]["id"]: reopened.projections([row])[0].tolist() for row in live} == {
        item: value.tolist() for item, value in kept.items()}  # each item's real-valued code kept through compaction
    np.testing.assert_array_equal(binary.pack(reopened.projections(live) > 0), reopened.codes(live))


def test_image_folders_gain_and_lose_images(tmp_path, runner):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in (("red", [200, 20, 20]), ("blue", [20, 20, 200])):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(colour, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    command = ["index", str(tmp_path / "images"), "-o", str(tmp_path / "index"), "--size", "16",
               "--image-features", "pixels", "--hidden", "32", *TINY_IMAGES]
    assert runner.invoke(cli, command).exit_code == 0
    assert all("sha256" in record for record in Index.open(tmp_path / "index").records)
    Image.fromarray(np.full((16, 16, 3), [20, 200, 20], np.uint8)).save(tmp_path / "images" / "red" / "new.png")
    (tmp_path / "images" / "blue" / "0.png").unlink()
    result = runner.invoke(cli, command)
    assert result.exit_code == 0, result.output
    report = json_lines(result.stdout)[0]
    assert (report["added"], report["removed"], report["unchanged"]) == (1, 1, 23)
    assert "unknown_term_share" not in report["drift"]
    hits = Index.open(tmp_path / "index").like("red/new.png", k=23)
    assert "blue/0.png" not in [hit["id"] for hit in hits] and len(hits) == 23


def test_reindexing_a_folder_updates_it_and_changed_settings_need_retrain(tmp_path, runner):
    corpus = write_corpus(tmp_path / "corpus")
    output = tmp_path / "index"
    assert runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI]).exit_code == 0
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI])
    assert result.exit_code == 0, result.output
    row = json_lines(result.stdout)[0]
    assert row["updated"] is False and row["unchanged"] == 72
    (corpus / "sports" / "en-00.txt").unlink()
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI, "--plain"])
    assert result.exit_code == 0 and "0 added, 0 changed, 1 removed, 71 unchanged" in result.stdout
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI[:-1], "--bits", "32", "-q"])
    assert result.exit_code == 2 and "--bits 32 (the index has 16); give --retrain" in result.output
    result = runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI, "--bits", "32", "--retrain"])
    assert result.exit_code == 0 and Index.open(output).bits == 32


def test_add_and_remove_commands(tmp_path, runner):
    corpus = write_corpus(tmp_path / "corpus")
    output = tmp_path / "index"
    (tmp_path / "later.txt").write_text("bank rates", encoding="utf-8")
    assert runner.invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI]).exit_code == 0
    result = runner.invoke(cli, ["remove", str(output), "sports/en-00.txt", "sports/en-02.txt"])
    assert result.exit_code == 0 and json_lines(result.stdout)[0]["removed"] == 2
    result = runner.invoke(cli, ["remove", str(output), "sports/en-00.txt"])
    assert result.exit_code == 1 and "no item 'sports/en-00.txt'" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["add", str(output), str(corpus / "sports"), "-q"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["added"] == 2 and len(Index.open(output)) == 72
    result = runner.invoke(cli, ["add", str(output), str(tmp_path / "later.txt")])
    assert result.exit_code == 2 and "outside the indexed folder" in result.output
    info = json_lines(runner.invoke(cli, ["info", str(output)]).stdout)[0]
    assert info["drift"]["unseen_items"] == 2 and info["drift"]["retrain"] is False
    assert "items the model never saw" in runner.invoke(cli, ["info", str(output), "--plain"]).stdout


def test_files_left_out_are_remembered_and_read_again_only_once_changed(built, tmp_path):
    corpus, target = fresh(built, tmp_path)
    (corpus / "sports" / "empty.txt").write_text("   \n", encoding="utf-8")
    (corpus / "sports" / "stop.txt").write_text("the and of 的", encoding="utf-8")
    opened = Index.open(target)
    report = opened.update(TextCorpus(corpus))
    assert (report["added"], report["unchanged"], sum(report["skipped"].values())) == (0, 72, 2)
    generation = opened.manifest["generation"]
    report = opened.update(TextCorpus(corpus))  # the two are not read again: nothing to write
    assert report["skipped"] == {} and opened.manifest["generation"] == generation
    (corpus / "sports" / "stop.txt").write_text("football goal", encoding="utf-8")
    assert opened.update(TextCorpus(corpus))["added"] == 1 and len(opened) == 73
    assert set(opened.manifest["unindexed"]) == {"sports/empty.txt"}
