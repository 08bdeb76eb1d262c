import json
import os
import shutil

import numpy as np
import pytest

from conftest import TINY_MODEL, write_corpus
from semhash import Index, StackedAutoencoder, TextCorpus, TextFeatures, codes
from semhash.errors import SemhashError
from semhash.index import MAX_QUERY_BYTES, _annoy, _zero_unread_annoy_bytes, build_annoy


def build(root, seed=0):
    features = TextFeatures(min_df=1)
    model = StackedAutoencoder(**{**TINY_MODEL, "seed": seed})
    return Index.build(TextCorpus(root), features, model)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    base = tmp_path_factory.mktemp("index")
    built = build(write_corpus(base / "corpus")).save(base / "index")
    return built


def test_round_trip_keeps_codes_records_and_answers(saved):
    opened = Index.open(saved.folder)
    np.testing.assert_array_equal(opened.packed, saved.packed)
    assert opened.records == saved.records
    assert opened.query("football goal striker", k=5, exact=True) == saved.query("football goal striker", k=5, exact=True)
    manifest = json.loads((saved.folder / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["kind"] == "text" and manifest["bits"] == 16
    assert set(manifest["files"]) == {"annoy.ann", "codes.npy", "encoder.keras", "encoder.npz", "lexicon.npz",
                                      "records.jsonl", "vocabulary.txt"}


def test_neighbours_share_the_topic(saved):
    hits = Index.open(saved.folder).query("football match goal striker coach", k=5, exact=True)
    assert [hit["label"] for hit in hits].count("sports") >= 4


def test_annoy_finds_what_exact_search_finds_on_small_data(saved):
    opened = Index.open(saved.folder)
    for row in range(len(opened)):
        _, exact = opened.search(opened.packed[row], k=10, exact=True)
        found, approximate = opened.search(opened.packed[row], k=10, exact=False)
        assert sorted(approximate.tolist()) == sorted(exact.tolist())
        np.testing.assert_array_equal(approximate, codes.hamming(opened.packed[found], opened.packed[row]))


def test_like_leaves_the_document_out(saved):
    hits = Index.open(saved.folder).like("sports/en-00.txt", k=3)
    assert len(hits) == 3 and "sports/en-00.txt" not in [hit["id"] for hit in hits]
    with pytest.raises(SemhashError, match="no item"):
        Index.open(saved.folder).like("nope.txt")


def test_same_seed_gives_the_same_index_files(saved, tmp_path):
    again = build(write_corpus(tmp_path / "corpus")).save(tmp_path / "index")
    for name in ("codes.npy", "annoy.ann", "encoder.npz", "vocabulary.txt"):
        assert (again.folder / name).read_bytes() == (saved.folder / name).read_bytes(), name


@pytest.mark.parametrize("n_bits", [16, 100])
def test_bytes_annoy_never_reads_are_zeroed_and_answers_kept(tmp_path, n_bits):
    bits = np.random.default_rng(0).random((300, n_bits)) < 0.5
    path = tmp_path / "annoy.ann"
    build_annoy(bits, trees=4, seed=0).save(str(path))
    _zero_unread_annoy_bytes(path, n_bits)
    clean = path.read_bytes()
    # What Annoy's uninitialised stack memory may leave: noise in a split node's padding and,
    # past 64 bits, in the code words after the first.
    node_size = 16 + 8 * -(-n_bits // 64)
    nodes = np.frombuffer(clean, dtype=np.uint8).reshape(-1, node_size).copy()
    split = nodes[:, :4].copy().view("<i4").ravel() > (node_size - 4) // 4
    assert split.any()
    nodes[split, 12:16] = 0xAB
    nodes[split, 24:] = 0xCD
    path.write_bytes(nodes.tobytes())
    _zero_unread_annoy_bytes(path, n_bits)
    assert path.read_bytes() == clean
    raw = tmp_path / "raw.ann"
    build_annoy(bits, trees=4, seed=0).save(str(raw))
    zeroed, untouched = _annoy(n_bits), _annoy(n_bits)
    zeroed.load(str(path))
    untouched.load(str(raw))
    for item in range(0, 300, 7):
        assert zeroed.get_nns_by_item(item, 20, include_distances=True) == untouched.get_nns_by_item(
            item, 20, include_distances=True)


@pytest.mark.parametrize("size", [250, 240])  # not whole nodes; whole nodes that make no tree
def test_a_file_of_another_layout_is_left_as_it_is(tmp_path, size):
    path = tmp_path / "annoy.ann"
    path.write_bytes(bytes(range(size)))
    _zero_unread_annoy_bytes(path, 64)
    assert path.read_bytes() == bytes(range(size))


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_index_whole(saved, tmp_path, monkeypatch, failure):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    before = {path.name: path.read_bytes() for path in target.iterdir()}

    def crash(folder):
        (folder / "half-written").write_text("x")
        raise failure

    monkeypatch.setattr(saved.model, "save", crash)
    with pytest.raises(type(failure)):
        saved.save(target)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["index"]


def test_saved_folder_gets_ordinary_permissions(saved):
    assert saved.folder.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def test_save_replaces_an_earlier_index(saved, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    (target / "stale").write_text("old")
    saved.save(target)
    assert not (target / "stale").exists() and Index.open(target)
    assert [path.name for path in tmp_path.iterdir()] == ["index"]


def test_save_refuses_to_replace_a_folder_that_is_not_an_index(saved, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(SemhashError, match="not a semhash index"):
        saved.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


def _edit_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "manifest.json").write_text("{not json"), "corrupt"),
    (lambda f: (f / "manifest.json").unlink(), "not a semhash index"),
    (lambda f: (f / "codes.npy").write_bytes(b"\x93NUMPY"), "bytes, the manifest says"),
    (lambda f: (f / "annoy.ann").unlink(), "missing"),
    (lambda f: _edit_manifest(f, files=["codes.npy"]), "does not list the index's files"),
    (lambda f: _edit_manifest(f, counts={}), "damaged"),
    (lambda f: _edit_manifest(f, features={"weighting": "log1p"}), "damaged"),
    (lambda f: (f / "manifest.json").write_text(
        (f / "manifest.json").read_text().replace('"format_version": 1', '"format_version": 99')), "format 99"),
])
def test_damaged_index_gives_a_clear_error(saved, tmp_path, damage, message):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    damage(target)
    with pytest.raises(SemhashError, match=message):
        Index.open(target)


def test_query_with_no_known_words(saved):
    with pytest.raises(SemhashError, match="none of the query's words"):
        Index.open(saved.folder).query("zebra giraffe 斑马")


def test_a_query_over_the_size_limit_is_refused(saved):
    opened = Index.open(saved.folder)
    chinese = "银行" * (MAX_QUERY_BYTES // 6 + 1)  # fewer characters than the limit, more UTF-8 bytes
    for text in ("bank " * MAX_QUERY_BYTES, chinese):
        with pytest.raises(SemhashError, match=f"over the limit of {MAX_QUERY_BYTES:,} bytes; .* raise max_bytes"):
            opened.query(text)
    assert opened.query("bank " * 4, max_bytes=20) and opened.query(chinese, max_bytes=len(chinese) * 3)


@pytest.mark.parametrize("exact", [True, False])
def test_k_is_cut_to_the_size_of_the_index(saved, exact):
    opened = Index.open(saved.folder)
    rows, _ = opened.search(opened.packed[0], k=10**12, exact=exact, search_k=10**12)
    assert sorted(rows) == list(range(len(opened)))
    with pytest.raises(SemhashError, match="give 1 or more"):
        opened.search(opened.packed[0], k=0, exact=exact)


def test_small_indexes_are_scanned_exactly_unless_annoy_is_asked_for(saved, monkeypatch):
    opened = Index.open(saved.folder)
    calls = []
    monkeypatch.setattr(opened, "annoy", lambda: calls.append(1) or opened.__class__.annoy(opened))
    query = opened.packed[0]
    assert [a.tolist() for a in opened.search(query, k=5)] == [a.tolist() for a in opened.search(query, k=5, exact=True)]
    assert calls == []
    opened.search(query, k=5, exact=False)
    assert calls == [1]
