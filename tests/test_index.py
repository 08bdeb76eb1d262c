import json
import os
import shutil

import numpy as np
import pytest
from conftest import TINY_MODEL, write_corpus

from semhash import Index, StackedAutoencoder, TextCorpus, TextFeatures
from semhash.codes import binary
from semhash.errors import SemhashError
from semhash.index import records as item_records
from semhash.index import store
from semhash.index.backends import _annoy, _zero_unread_annoy_bytes, annoy_file_problem, build_annoy
from semhash.index.index import MAX_QUERY_BYTES


def build(root, seed=0, backend=None):
    features = TextFeatures(min_df=1)
    model = StackedAutoencoder(**{**TINY_MODEL, "seed": seed})
    return Index.build(TextCorpus(root), features, model, trees=8, backend=backend)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    base = tmp_path_factory.mktemp("index")
    built = build(write_corpus(base / "corpus")).save(base / "index")
    return built


@pytest.fixture(scope="module")
def saved_annoy(tmp_path_factory):
    """The same index, with Annoy as its search backend: its file stored in the shard."""
    base = tmp_path_factory.mktemp("index")
    return build(write_corpus(base / "corpus"), backend="annoy").save(base / "index")


def test_round_trip_keeps_codes_records_and_answers(saved):
    opened = Index.open(saved.folder)
    assert isinstance(opened.packed, np.memmap)  # mapped, not read
    np.testing.assert_array_equal(opened.packed, saved.packed)
    assert len(opened.records) == len(saved.records) and list(opened.records) == list(saved.records)
    assert [opened.records[row] for row in np.arange(len(saved)) - 3] == list(saved.records)[-3:] + list(saved.records)[:-3]
    assert [opened.records.row_of(record["id"]) for record in list(saved.records)] == list(range(len(saved)))
    assert opened.records.row_of("nope.txt") is None
    with pytest.raises(IndexError):
        opened.records[len(saved)]
    assert opened.query("football goal striker", k=5, exact=True) == saved.query("football goal striker", k=5, exact=True)
    manifest = json.loads((saved.folder / "manifest.json").read_text())
    assert manifest["format_version"] == store.FORMAT_VERSION == 5
    assert manifest["kind"] == "text" and manifest["bits"] == 16
    assert manifest["backend"] == {"name": "exact", "chosen": "by size", "settings": {}}
    assert manifest["shards"] == [{"name": "shard-000000", "items": 72, "deleted": 0, "trained": True,
                                   "backends": {"exact": {}}, "projections": True}]
    assert set(manifest["files"]) == {"shard-000000/codes.npy", "encoder.keras", "encoder.npz", "lexicon.npz",
                                      "shard-000000/records.sqlite", "shard-000000/projections.npy", "vocabulary.txt"}
    for name, entry in manifest["files"].items():
        file = saved.folder / manifest["data"] / name
        assert entry == {"bytes": file.stat().st_size, "sha256": store.sha256(file)}
    assert sorted(path.name for path in saved.folder.iterdir()) == [".semhash.lock", manifest["data"], "manifest.json"]


def test_neighbours_share_the_topic(saved):
    hits = Index.open(saved.folder).query("football match goal striker coach", k=5, exact=True)
    assert [hit["label"] for hit in hits].count("sports") >= 4


def test_annoy_finds_what_exact_search_finds_on_small_data(saved):
    opened = Index.open(saved.folder)
    for row in range(len(opened)):
        _, exact = opened.search(opened.packed[row], k=10, exact=True)
        found, approximate = opened.search(opened.packed[row], k=10, exact=False)
        assert sorted(approximate.tolist()) == sorted(exact.tolist())
        np.testing.assert_array_equal(approximate, binary.hamming(opened.packed[found], opened.packed[row]))


def test_like_leaves_the_document_out(saved):
    hits = Index.open(saved.folder).like("sports/en-00.txt", k=3)
    assert len(hits) == 3 and "sports/en-00.txt" not in [hit["id"] for hit in hits]
    with pytest.raises(SemhashError, match="no item"):
        Index.open(saved.folder).like("nope.txt")


def test_same_seed_gives_the_same_index_files(saved_annoy, tmp_path):
    again = build(write_corpus(tmp_path / "corpus"), backend="annoy").save(tmp_path / "index")
    for name in ("shard-000000/codes.npy", "shard-000000/annoy.ann", "encoder.npz", "vocabulary.txt"):
        assert (data(again.folder) / name).read_bytes() == (data(saved_annoy.folder) / name).read_bytes(), name


def shard(folder):
    """The folder of the first shard of an index."""
    return data(folder) / "shard-000000"


def data(folder):
    """The generation folder that an index's manifest names."""
    return folder / json.loads((folder / "manifest.json").read_text())["data"]


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


def snapshot(folder):
    """Every file below `folder`, by relative path, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_index_whole(saved, tmp_path, monkeypatch, failure):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    before = snapshot(target)

    def crash(folder):
        (folder / "half-written").write_text("x")
        raise failure

    monkeypatch.setattr(saved.model, "save", crash)
    with pytest.raises(type(failure)):
        saved.save(target)
    assert snapshot(target) == before
    assert [path.name for path in tmp_path.iterdir()] == ["index"]


def test_saved_folder_gets_ordinary_permissions(saved):
    assert saved.folder.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def test_each_save_is_a_new_generation_and_keeps_the_one_before(saved, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    (target / "notes.txt").write_text("mine")  # not semhash's: never removed
    (target / "generation-000099").mkdir()  # what a writer killed before its manifest leaves
    first = json.loads((target / "manifest.json").read_text())["data"]
    for expected in ("generation-000002", "generation-000003"):
        saved.save(target)
        assert json.loads((target / "manifest.json").read_text())["data"] == expected
        assert list(Index.open(target).records) == list(saved.records)
    assert sorted(path.name for path in target.iterdir()) == [
        ".semhash.lock", "generation-000002", "generation-000003", "manifest.json", "notes.txt"]
    assert first == "generation-000001" and (target / "notes.txt").read_text() == "mine"
    assert [path.name for path in tmp_path.iterdir()] == ["index"]


def test_stale_folders_of_the_old_swap_are_removed_by_the_next_save(saved, tmp_path):
    for stale in (".index.tmp-abcd1234", ".index.old-efgh5678", ".index.shards-k2_9xq0a"):
        (tmp_path / stale / "index").mkdir(parents=True)
    (tmp_path / ".index.notes").mkdir()  # not a name semhash made: kept
    saved.save(tmp_path / "index")
    assert sorted(path.name for path in tmp_path.iterdir()) == [".index.notes", "index"]


def format_3_copy(saved, target):
    """`saved` rewritten as semhash wrote indexes of format 3: one set of codes and records beside
    the other files, and Annoy's file always."""
    shutil.copytree(saved.folder, target)
    manifest = json.loads((target / "manifest.json").read_text())
    shard = data(target) / "shard-000000"
    for name in ("codes.npy", "records.sqlite"):
        (shard / name).rename(data(target) / name)
    shutil.rmtree(shard)
    annoy = build_annoy(binary.unpack(saved.packed, saved.bits), 8, 0)
    annoy.save(str(data(target) / "annoy.ann"))
    files = {name: entry for name, entry in manifest["files"].items() if "/" not in name}
    for name in ("codes.npy", "records.sqlite", "annoy.ann"):
        files[name] = {"bytes": (data(target) / name).stat().st_size, "sha256": store.sha256(data(target) / name)}
    for key in ("shards", "backend"):
        del manifest[key]
    manifest.update(format_version=3, files=files, annoy={"metric": "hamming", "trees": 8, "seed": 0})
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def format_2_copy(saved, target):
    """`saved` rewritten as semhash wrote indexes of format 2: the records in records.jsonl."""
    format_3_copy(saved, target)
    records = data(target) / "records.jsonl"
    records.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in saved.records),
                       encoding="utf-8")
    (data(target) / "records.sqlite").unlink()
    manifest = json.loads((target / "manifest.json").read_text())
    del manifest["files"]["records.sqlite"]
    manifest["files"]["records.jsonl"] = {"bytes": records.stat().st_size, "sha256": store.sha256(records)}
    (target / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    return target


def format_1_copy(saved, target):
    """`saved` rewritten as semhash wrote indexes before format 2: the files beside the manifest."""
    format_2 = format_2_copy(saved, target.with_name(f"{target.name}-format-2"))
    manifest = json.loads((format_2 / "manifest.json").read_text())
    shutil.copytree(data(format_2), target)
    files = {name: entry["bytes"] for name, entry in manifest.pop("files").items()}
    for key in ("data", "generation"):
        del manifest[key]
    (target / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1, "files": files}))
    return target


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_formats_are_read_and_replaced_whole(saved, tmp_path, version):
    target = {1: format_1_copy, 2: format_2_copy, 3: format_3_copy}[version](saved, tmp_path / "index")
    (target / "notes.txt").write_text("mine")
    opened = Index.open(target)
    assert opened.manifest["format_version"] == version and opened.manifest["backend"]["name"] == "exact"
    assert isinstance(opened.shards[0].records, list) == (version < 3)
    assert list(opened.records) == list(saved.records)
    assert opened.projections([0]) is None  # stored from format 4 on: ties in row order
    assert opened.like("sports/en-00.txt", k=5, exact=True) == saved.like("sports/en-00.txt", k=5, exact=True, rerank=False)
    assert opened.search(opened.packed[0], 5, exact=False)[1].tolist() == saved.search(saved.packed[0], 5, exact=True)[1].tolist()
    opened.save(target)  # an older index saved again: the current format, Annoy's file kept in its shard
    generations = ["generation-000001"] if version == 1 else ["generation-000001", "generation-000002"]
    assert sorted(path.name for path in target.iterdir()) == [".semhash.lock", *generations, "manifest.json", "notes.txt"]
    again = Index.open(target)
    assert again.manifest["format_version"] == store.FORMAT_VERSION
    assert list(again.records) == list(saved.records)
    assert set(again.manifest["shards"][0]["backends"]) == {"annoy", "exact"}
    assert again.search(again.packed[0], 5, exact=False)[1].tolist() == saved.search(saved.packed[0], 5, exact=True)[1].tolist()


@pytest.mark.parametrize("make", [
    lambda d: (d.mkdir(), (d / "mine.txt").write_text("keep me")),
    lambda d: (d.mkdir(), (d / "manifest.json").write_text('{"name": "my web app"}'), (d / "app.js").write_text("1")),
    lambda d: (d.mkdir(), (d / "manifest.json").write_text("not json at all")),
    lambda d: d.write_text("a file"),
])
def test_save_refuses_to_replace_anything_semhash_did_not_write(saved, tmp_path, make):
    target = tmp_path / "target"
    make(target)
    before = snapshot(tmp_path)
    with pytest.raises(SemhashError, match="not a semhash|not a folder|corrupt"):
        saved.save(target)
    assert snapshot(tmp_path) == before


def test_format_4_is_read_as_it_was_written(saved, tmp_path):
    """Format 5 only marks models that may squash a joined code layer; a format-4 index has none."""
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    _edit_manifest(target, format_version=4)
    opened = Index.open(target)
    assert opened.manifest["format_version"] == 4 and opened.model.scales_ is None
    assert opened.like("sports/en-00.txt", k=5, exact=True) == saved.like("sports/en-00.txt", k=5, exact=True)


def test_a_newer_format_is_not_replaced(saved, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    _edit_manifest(target, format_version=store.FORMAT_VERSION + 1)
    with pytest.raises(SemhashError, match=f"index format {store.FORMAT_VERSION + 1}"):
        saved.save(target)


def test_the_corpus_and_the_index_may_not_hold_each_other(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    for output in (corpus, corpus / "index", corpus / "sports"):
        with pytest.raises(SemhashError, match="inside the corpus"):
            store.check_destination(output, source=corpus)
    with pytest.raises(SemhashError, match="lies inside"):
        store.check_destination(tmp_path, source=corpus)
    store.check_destination(tmp_path / "index", source=corpus)


def _edit_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))


def _same_size_noise(path):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "manifest.json").write_text("{not json"), "corrupt"),
    (lambda f: (f / "manifest.json").unlink(), "not a semhash index"),
    (lambda f: (shard(f) / "codes.npy").write_bytes(b"\x93NUMPY"), "bytes, the manifest says"),
    (lambda f: (shard(f) / "codes.npy").unlink(), "missing"),
    (lambda f: _edit_manifest(f, files=["codes.npy"]), "does not list the index's files"),
    (lambda f: _edit_manifest(f, files={"../x": {"bytes": 1, "sha256": "0"}}), "outside the index"),
    (lambda f: _edit_manifest(f, data="../elsewhere"), "names no generation"),
    (lambda f: _edit_manifest(f, counts={}), "damaged"),
    (lambda f: _edit_manifest(f, features={"weighting": "log1p"}), "damaged"),
    (lambda f: _edit_manifest(f, format_version=99), "format 99"),
    (lambda f: _edit_manifest(f, format_version="2"), "format_version '2', not a whole number"),
    (lambda f: _edit_manifest(f, format_version=True), "format_version True, not a whole number"),
    (lambda f: _same_size_noise(shard(f) / "codes.npy"), "damaged .a .npy or .npz file is not numpy's format"),
    (lambda f: _same_size_noise(shard(f) / "records.sqlite"), r"records.sqlite is damaged \(.*\); rebuild it"),
    (lambda f: _truncate(shard(f) / "records.sqlite"), "records.sqlite has .* bytes, the manifest says"),
    (lambda f: (shard(f) / "records.sqlite").unlink(), "records.sqlite is missing"),
] + [(lambda f, name=name: _same_size_noise(data(f) / name), "does not match the sha256")
     for name in ("encoder.npz", "vocabulary.txt", "lexicon.npz")])
def test_damaged_index_gives_a_clear_error(saved, tmp_path, damage, message):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    damage(target)
    with pytest.raises(SemhashError, match=message):
        Index.open(target)


def _truncate(path, keep=None):
    path.write_bytes(path.read_bytes()[:keep if keep is not None else path.stat().st_size // 2])


@pytest.mark.parametrize("name", ["codes.npy", "records.jsonl"])
def test_format_2_checks_every_file_it_parses_on_open(saved, tmp_path, name):
    target = format_2_copy(saved, tmp_path / "index")
    _same_size_noise(data(target) / name)
    with pytest.raises(SemhashError, match=f"{name} does not match the sha256"):
        Index.open(target)


def _refit_manifest(folder, name):
    """Record the size of the file `name` as it now is, so that only what reads it meets the damage."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name]["bytes"] = (data(folder) / name).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _page_noise(path, page, size=4096):
    content = bytearray(path.read_bytes())
    content[page * size:(page + 1) * size] = np.random.default_rng(page).bytes(size)
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("damage", [
    lambda path: _truncate(path, 4096),  # the first page alone: the table's pages are gone
    lambda path: _truncate(path, 100),  # SQLite's header alone
    lambda path: path.write_bytes(path.read_bytes()[:100] + np.random.default_rng(1).bytes(path.stat().st_size - 100)),
    lambda path: _page_noise(path, 1),  # opens; the lookup of an id meets it
    lambda path: _page_noise(path, 3),  # opens and looks up; reading every record meets it
])
def test_records_damaged_past_the_size_check_give_a_message_not_a_traceback(saved, tmp_path, damage):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    damage(shard(target) / "records.sqlite")
    _refit_manifest(target, "shard-000000/records.sqlite")
    with pytest.raises(SemhashError, match=r"records.sqlite (is damaged|holds rows|lacks row).*; rebuild it"):
        opened = Index.open(target)
        opened.like(saved.records[-1]["id"], k=len(saved))
        list(opened.records)


def test_damage_opening_does_not_read_is_found_by_verify(saved, tmp_path):
    """The codes are mapped, not hashed, on open: noise past numpy's header, or codes swapped in
    from another index of the same size, open and answer; `verify` reads every file and finds them."""
    other = build(write_corpus(tmp_path / "corpus", seed=1), seed=1).save(tmp_path / "other")
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    Index.open(target).verify()
    shutil.copy(shard(other.folder) / "codes.npy", shard(target) / "codes.npy")  # the same size, other codes
    opened = Index.open(target)
    opened.query("football goal striker", k=5)
    with pytest.raises(SemhashError, match="codes.npy does not match the sha256"):
        opened.verify()


def test_codes_of_another_shape_are_refused(saved, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    np.save(shard(target) / "codes.npy", np.asarray(saved.packed).reshape(-1, 1))  # the same bytes, another shape
    _refit_manifest(target, "shard-000000/codes.npy")
    with pytest.raises(SemhashError, match=r"codes.npy holds uint8 codes shaped \(144, 1\) where the manifest says 72 of 16"):
        Index.open(target)


def test_a_damaged_annoy_file_is_refused_before_annoy_reads_it(saved_annoy, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved_annoy.folder, target)
    _same_size_noise(shard(target) / "annoy.ann")
    opened = Index.open(target)  # Annoy's file is checked when first asked for
    with pytest.raises(SemhashError, match="annoy.ann does not match the sha256"):
        opened.search(opened.packed[0], 5, exact=False)


@pytest.mark.parametrize("seed", range(20))
def test_annoy_files_that_would_crash_annoy_are_found_without_checksums(saved, tmp_path, seed):
    """Format-1 indexes record no checksums: the file's structure is checked instead."""
    target = format_1_copy(saved, tmp_path / "index")
    path = target / "annoy.ann"
    assert annoy_file_problem(path, saved.bits, len(saved)) is None
    nodes = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    if seed % 2:  # a few bytes changed anywhere
        for at in rng.integers(0, len(nodes), 8):
            nodes[at] = int(rng.integers(0, 256))
    else:  # same-size noise
        nodes = bytearray(rng.bytes(len(nodes)))
    path.write_bytes(bytes(nodes))
    problem = annoy_file_problem(path, saved.bits, len(saved))
    opened = Index.open(target)
    if problem is None:  # the changes missed every pointer: Annoy may read the file safely
        opened.search(opened.packed[0], 5, exact=False)
    else:
        with pytest.raises(SemhashError, match="annoy.ann is damaged"):
            opened.search(opened.packed[0], 5, exact=False)


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


def test_small_indexes_are_scanned_exactly_unless_annoy_is_asked_for(saved):
    opened = Index.open(saved.folder)
    query = opened.packed[0]
    assert [a.tolist() for a in opened.search(query, k=5)] == [a.tolist() for a in opened.search(query, k=5, exact=True)]
    assert set(opened.shards[0]._backends) == {"exact"}
    opened.search(query, k=5, exact=False)  # built from the codes, since the index stores none
    assert set(opened.shards[0]._backends) == {"exact", "annoy"}


def test_a_damaged_index_can_be_rebuilt_in_place(saved, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    _edit_manifest(target, model=None, generation="x", data="elsewhere")
    with pytest.raises(SemhashError, match="garbles model"):
        Index.open(target)
    saved.save(target)
    assert list(Index.open(target).records) == list(saved.records)


@pytest.mark.parametrize("name", ["codes.npy", "encoder.npz", "lexicon.npz"])
def test_a_damaged_array_file_is_not_met_with_advice_to_unpickle_it(saved, tmp_path, name):
    target = format_1_copy(saved, tmp_path / "index")  # no checksums: numpy meets the damage
    _same_size_noise(target / name)
    with pytest.raises(SemhashError, match="damaged") as caught:
        Index.open(target)
    assert "unsafely" not in str(caught.value) and "allow_pickle" not in str(caught.value)


def test_backends_are_chosen_by_name_and_mih_answers_as_the_scan(saved):
    opened = Index.open(saved.folder)
    for row in range(0, len(opened), 5):
        for k in (1, 10, 100):
            exact = [a.tolist() for a in opened.search(opened.packed[row], k, exact=True)]
            assert [a.tolist() for a in opened.search(opened.packed[row], k, backend="mih")] == exact
            assert [a.tolist() for a in opened.search(opened.packed[row], k, backend="exact")] == exact
    assert opened.shards[0].backend("mih") is opened.shards[0].backend("mih")  # built once
    assert opened.like("sports/en-00.txt", k=4, backend="mih") == opened.like("sports/en-00.txt", k=4, exact=True)
    with pytest.raises(SemhashError, match="by exact or by name, not both"):
        opened.search(opened.packed[0], 5, exact=True, backend="mih")
    with pytest.raises(SemhashError, match="search backends are exact, annoy, mih, not 'faiss'"):
        opened.search(opened.packed[0], 5, backend="faiss")


@pytest.mark.parametrize("choice", [{}, {"backend": "mih"}, {"exact": False}, {"backend": "annoy"}])
def test_within_is_every_item_within_the_radius(saved, choice):
    """A ball is the nearest items cut at the radius, whichever backend is chosen: Annoy gives way to mih."""
    opened = Index.open(saved.folder)
    everything = opened.query("football goal striker", k=len(opened), exact=True)
    around = opened.like("cooking/en-00.txt", k=len(opened), exact=True)
    for radius in (0, 2, 5, 16):
        assert opened.within("football goal striker", radius, **choice) == [
            hit for hit in everything if hit["distance"] <= radius]
        assert opened.within_like("cooking/en-00.txt", radius, **choice) == [
            hit for hit in around if hit["distance"] <= radius]
    with pytest.raises(SemhashError, match="give 0 or more, not -1"):
        opened.within("football", -1, **choice)


def test_records_keep_every_key_and_value_through_sqlite(tmp_path):
    records = [
        {"id": "a.txt", "path": "a.txt", "label": None, "snippet": "银行 bank", "sha256": "00"},
        {"id": "data_batch_1/0", "label": "cat", "source": {"archive": "c.tar.gz", "batch": "data_batch_1", "index": 0}},
        {"id": "b", "label": 3, "path": ["not", "text"], "later_field": {"added": True}},
    ]
    item_records.write_sqlite(tmp_path / "records.sqlite", records)
    read = item_records.SqliteRecords(tmp_path / "records.sqlite", len(records))
    assert list(read) == records and [read[row] for row in range(3)] == records
    assert [read.row_of(record["id"]) for record in records] == [0, 1, 2]
    with pytest.raises(SemhashError, match="holds rows 0 to 2 where the manifest says 4 items"):
        item_records.SqliteRecords(tmp_path / "records.sqlite", 4)
    with pytest.raises(SemhashError, match="two items have the same id"):
        item_records.write_sqlite(tmp_path / "twice.sqlite", [records[0], records[0]])


@pytest.mark.parametrize("seed", range(5))
def test_reranked_is_a_full_sort_by_distance_then_asymmetric_then_cosine_distance(saved, seed):
    """Every item at the k-th distance or nearer is weighed, not only those the search returned;
    items whose codes are identical come by the cosine of their stored real-valued codes."""
    opened = Index.open(saved.folder)
    projections = np.random.default_rng(seed).normal(size=opened.bits)
    packed = codes_of(projections)
    everything = np.arange(len(opened))
    hamming = binary.hamming(opened.packed, packed)
    weighed = binary.asymmetric(projections[None], opened.packed, opened.bits)[0].round(9)
    stored = opened.projections(everything).astype(np.float64)
    assert np.array_equal(binary.pack(stored > 0), opened.packed)
    cosine = stored @ projections / np.linalg.norm(stored, axis=1) / np.linalg.norm(projections)
    assert len(np.unique(opened.packed, axis=0)) < len(opened)  # identical codes, for the cosine to order
    for k in (1, 5, 20):
        rows, distances = opened.search(packed, k, exact=True)
        found, found_distances = opened.reranked(projections, packed, rows, distances)
        expected = everything[np.lexsort((everything, -cosine, weighed, hamming))][:k]
        assert found.tolist() == expected.tolist() and found_distances.tolist() == hamming[expected].tolist()


def test_like_ranks_as_a_query_from_the_item_s_stored_real_valued_code(saved):
    opened = Index.open(saved.folder)
    everything = np.arange(len(opened))
    stored = opened.projections(everything).astype(np.float64)
    for row in (0, 17, 50):
        hamming = binary.hamming(opened.packed, opened.packed[row])
        weighed = binary.asymmetric(stored[row][None], opened.packed, opened.bits)[0].round(9)
        cosine = stored @ stored[row] / np.linalg.norm(stored, axis=1) / np.linalg.norm(stored[row])
        ranked = [other for other in np.lexsort((everything, -cosine, weighed, hamming)) if other != row]
        item = opened.records[row]["id"]
        assert [hit["id"] for hit in opened.like(item, 10)] == [opened.records[other]["id"] for other in ranked[:10]]
        assert [hit["id"] for hit in opened.within_like(item, 4)] == [
            opened.records[other]["id"] for other in ranked if hamming[other] <= 4]
        unranked = [opened.records[other]["id"] for other in np.lexsort((everything, hamming)) if other != row][:10]
        assert [hit["id"] for hit in opened.like(item, 10, rerank=False)] == unranked


def codes_of(projections):
    return binary.pack(np.asarray(projections)[None] > 0)[0]


def test_queries_rank_ties_by_asymmetric_distance_unless_told_not_to(saved):
    opened = Index.open(saved.folder)
    plain = opened.query("football goal striker coach", k=30, exact=True, rerank=False)
    reranked = opened.query("football goal striker coach", k=30, exact=True)
    assert [hit["distance"] for hit in plain] == [hit["distance"] for hit in reranked]
    projections = opened._projections("football goal striker coach", 10_000)
    rows, distances = opened.search(codes_of(projections), 30, exact=True)
    assert [hit["id"] for hit in plain] == [opened.records[row]["id"] for row in rows]  # index order
    weighed = binary.asymmetric(projections[None], opened.packed, opened.bits)[0]
    row_of = {record["id"]: row for row, record in enumerate(opened.records)}
    keys = [(hit["distance"], weighed[row_of[hit["id"]]]) for hit in reranked]
    assert keys == sorted(keys)


def test_an_open_index_whose_generation_was_replaced_before_its_first_query_still_answers(saved_annoy, tmp_path):
    """Annoy's stored file is read on the first query; where an update has replaced (and removed) the
    generation it was opened on by then, it is built again from the mapped codes with the stored trees
    and seed, and answers as the stored one would have."""
    corpus = shutil.copytree(saved_annoy.manifest["source"]["root"], tmp_path / "corpus")
    target = shutil.copytree(saved_annoy.folder, tmp_path / "index")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["source"]["root"] = str(corpus.resolve())
    (target / "manifest.json").write_text(json.dumps(manifest))
    before = Index.open(shutil.copytree(target, tmp_path / "copy")).query("football goal striker", k=10)
    kept_open = Index.open(target)
    for added in ("new.txt", "newer.txt"):  # an update keeps the generation before it, and removes older ones
        (corpus / "sports" / added).write_text("football goal striker coach")
        Index.open(target).update(TextCorpus(corpus))
    assert not kept_open.shards[0].folder.is_dir()  # its generation is gone
    assert kept_open.query("football goal striker", k=10) == before
    assert len(Index.open(target)) == len(kept_open) + 2
