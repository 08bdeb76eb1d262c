"""The search backends against a brute-force reference, their files, and the factory."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semhash.codes import binary
from semhash.errors import SemhashError
from semhash.index import backends
from semhash.index.backends import (
    ANNOY,
    BACKENDS,
    EXACT_SCAN_MAX,
    AnnoyBackend,
    ExactScan,
    MultiIndexHashing,
    create,
    default_backend,
    default_substrings,
)


def codes(kind, n_bits, n=200, seed=0):
    """Boolean codes: all random, or a few codes repeated, so that many distances tie."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random((n, n_bits)) < 0.5
    return (rng.random((6, n_bits)) < 0.5)[rng.integers(0, 6, n)]


def reference(bits, query, k):
    """Every distance counted bit by bit, sorted stably: rows in order among ties."""
    distances = (bits != query).sum(axis=1)
    rows = np.argsort(distances, kind="stable")[:k]
    return rows, distances[rows]


def ball(bits, query, radius):
    """Every row within `radius` bits, counted bit by bit, by distance then row."""
    rows, distances = reference(bits, query, len(bits))
    return rows[distances <= radius], distances[distances <= radius]


def same(found, expected):
    """Rows and distances equal, both int64."""
    assert found[0].dtype == found[1].dtype == np.int64
    assert [a.tolist() for a in found] == [a.tolist() for a in expected]


def built(name, bits):
    return create(name, **({"trees": 8, "seed": 0} if name == "annoy" else {})).build(bits)


def everything(name, n):
    """Search options that make a backend look at every code: Annoy at a search_k past its trees."""
    return {"search_k": 8 * n} if name == "annoy" else {}


@pytest.mark.parametrize("name", ["exact", "annoy", "mih"])
@pytest.mark.parametrize("kind", ["random", "repeated"])
@pytest.mark.parametrize("n_bits", [16, 100])
def test_backends_agree_with_brute_force(name, kind, n_bits):
    bits = codes(kind, n_bits)
    backend = built(name, bits)
    packed = binary.pack(bits)
    for row in range(0, len(bits), 17):
        for k in (1, 10, 50):
            rows, distances = backend.search(packed[row], k, **everything(name, len(bits)))
            expected_rows, expected = reference(bits, bits[row], k)
            assert rows.dtype == distances.dtype == np.int64
            assert distances.tolist() == expected.tolist()  # ties may pick other rows, never other distances
            np.testing.assert_array_equal(distances, binary.hamming(packed[rows], packed[row]))
            assert len(set(rows.tolist())) == k
            if name != "annoy":
                np.testing.assert_array_equal(rows, expected_rows)


@pytest.mark.parametrize("name", ["exact", "annoy", "mih"])
def test_k_is_cut_to_the_codes_and_must_be_positive(name):
    bits = codes("repeated", 16, n=30)
    backend = built(name, bits)
    query = binary.pack(bits)[0]
    rows, distances = backend.search(query, 10**12)
    assert sorted(rows.tolist()) == list(range(30))
    assert distances.tolist() == reference(bits, bits[0], 30)[1].tolist()
    with pytest.raises(SemhashError, match="give 1 or more, not 0"):
        backend.search(query, 0)


def test_annoy_saves_its_settings_and_one_seed_gives_one_file(tmp_path):
    bits = codes("random", 100)
    packed = binary.pack(bits)
    files = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        assert AnnoyBackend(trees=8, seed=3).build(bits).save(folder) == {"metric": "hamming", "trees": 8, "seed": 3}
        files.append((folder / ANNOY).read_bytes())
    assert files[0] == files[1]
    checked = []
    loaded = AnnoyBackend.load(tmp_path / "a", {"metric": "hamming", "trees": 8, "seed": 3}, packed, 100,
                               verify=checked.extend)
    assert checked == [ANNOY] and loaded.trees == 8
    for row in range(0, 200, 13):
        assert [a.tolist() for a in loaded.search(packed[row], 10)] == [
            a.tolist() for a in AnnoyBackend(trees=8, seed=3).build(bits).search(packed[row], 10)]


def test_annoy_refuses_a_damaged_file_before_annoy_reads_it(tmp_path):
    bits = codes("random", 16)
    AnnoyBackend(trees=4).build(bits).save(tmp_path)
    (tmp_path / ANNOY).write_bytes(np.random.default_rng(0).bytes((tmp_path / ANNOY).stat().st_size))
    with pytest.raises(SemhashError, match="annoy.ann is damaged"):
        AnnoyBackend.load(tmp_path, {"trees": 4, "seed": 0}, binary.pack(bits), 16)


def test_the_exact_scan_keeps_nothing_of_its_own(tmp_path):
    bits = codes("random", 16)
    assert ExactScan().build(bits).save(tmp_path) == {} and list(tmp_path.iterdir()) == []
    packed = binary.pack(bits)
    scan = ExactScan.load(tmp_path, {}, packed, 16)
    assert [a.tolist() for a in scan.search(packed[5], 7)] == [a.tolist() for a in reference(bits, bits[5], 7)]


def test_the_factory_makes_backends_by_name_and_refuses_others():
    assert set(BACKENDS) == {"exact", "annoy", "mih"}
    assert type(create("exact")) is ExactScan
    annoy = create("annoy", trees=4, seed=7)
    assert type(annoy) is AnnoyBackend and (annoy.trees, annoy.seed) == (4, 7)
    assert create("mih", substrings=5).substrings == 5
    with pytest.raises(SemhashError, match="search backends are exact, annoy, mih, not 'faiss'"):
        create("faiss")


def test_the_default_backend_is_the_exact_scan_up_to_its_limit_then_multi_index_hashing():
    assert default_backend(1) == default_backend(EXACT_SCAN_MAX) == "exact"
    assert default_backend(EXACT_SCAN_MAX + 1) == "mih"


@pytest.mark.parametrize("kind", ["random", "repeated"])
@pytest.mark.parametrize("n_bits, substrings", [(16, None), (100, 3), (64, 1)])
def test_stored_multi_index_tables_are_mapped_and_answer_as_the_built_ones(tmp_path, kind, n_bits, substrings):
    bits = codes(kind, n_bits)
    packed = binary.pack(bits)
    made = create("mih", substrings=substrings).build(bits)
    settings = made.save(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(MultiIndexHashing.files)
    loaded = MultiIndexHashing.load(tmp_path, settings, packed, n_bits)
    assert all(isinstance(table.order, np.memmap) for table in loaded.tables)
    for row in range(0, len(bits), 23):
        for k in (1, 10):
            same(loaded.search(packed[row], k), reference(bits, bits[row], k))
        same(loaded.within(packed[row], 3), ball(bits, bits[row], 3))
    with pytest.raises(SemhashError, match="do not fit its codes"):  # tables of other codes
        MultiIndexHashing.load(tmp_path, settings, packed[:-1], n_bits)
    (tmp_path / MultiIndexHashing.files[1]).write_bytes(b"not numpy")
    with pytest.raises(SemhashError, match="damaged multi-index tables"):
        MultiIndexHashing.load(tmp_path, settings, packed, n_bits)


@settings(max_examples=80, deadline=None)
@given(n_bits=st.sampled_from([16, 32, 64, 100]), repeated=st.booleans(), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_multi_index_hashing_is_the_exact_scan(n_bits, repeated, seed, data):
    """Same rows and distances as brute force, ties in row order, for any k, radius and number of
    substrings; with lookups and candidates made free, probing answers wherever its masks stay few (no scan)."""
    bits = codes("repeated" if repeated else "random", n_bits, n=data.draw(st.integers(1, 300)), seed=seed)
    substrings = data.draw(st.integers(-(-n_bits // 64), n_bits), label="substrings")
    queries = binary.pack(np.concatenate([bits[:: max(1, len(bits) // 4)], codes("random", n_bits, n=3, seed=seed + 1)]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backends, "LOOKUP_COST", 0)
        patch.setattr(backends, "CANDIDATE_COST", 0)
        mih = MultiIndexHashing(substrings).build(bits)
        if -(-n_bits // substrings) <= 16:  # at most C(16, 8) masks a probe: never a scan
            mih.scan = NoScan()
        for query in queries:
            unpacked = binary.unpack(query[None, :], n_bits)[0]
            for k in {1, 3, 10, data.draw(st.integers(1, len(bits) + 5), label="k")}:
                same(mih.search(query, k), reference(bits, unpacked, k))
            radius = data.draw(st.integers(0, n_bits + 1), label="radius")
            same(mih.within(query, radius), ball(bits, unpacked, radius))


class NoScan:
    """Put in place of multi-index hashing's fallback scan where a test says it is never needed."""

    def search(self, *args):
        raise AssertionError("multi-index hashing fell back to the scan")

    within = search


def test_clustered_codes_are_answered_by_probing_at_the_default_costs():
    """Learned-like codes (centres copied with a few bits flipped) never need the scan."""
    rng = np.random.default_rng(0)
    bits = (rng.random((3000, 64)) < 0.5)[rng.integers(0, 3000, 200_000)]
    bits ^= rng.random(bits.shape) < 0.02
    mih = MultiIndexHashing().build(bits)
    assert mih.substrings == default_substrings(64, 200_000) == 4
    mih.scan = NoScan()
    packed = binary.pack(bits)
    for row in range(0, 200_000, 19_999):
        same(mih.search(packed[row], 10), reference(bits, bits[row], 10))
        same(mih.within(packed[row], 2), ball(bits, bits[row], 2))


def test_multi_index_hashing_scans_where_probing_would_cost_more():
    bits = codes("random", 64, n=500)
    mih = MultiIndexHashing(2).build(bits)  # 32-bit substrings: probing past radius 1 costs more
    scanned = []

    class Counted(ExactScan):
        def search(self, query, k):
            scanned.append(k)
            return super().search(query, k)

    packed = binary.pack(bits)
    mih.scan = Counted(packed)
    same(mih.search(packed[7], 5), reference(bits, bits[7], 5))
    assert scanned == [5]


def test_multi_index_hashing_answers_threads_at_once_and_leaves_no_row_flagged(monkeypatch):
    """Each thread flags the rows it has found in a bitmap of its own, cleared after every search,
    also one that gives up probing for the scan. (Probing made free: so few codes would be scanned.)"""
    monkeypatch.setattr(backends, "LOOKUP_COST", 0)
    monkeypatch.setattr(backends, "CANDIDATE_COST", 0)
    bits = codes("repeated", 64, n=3000, seed=3) ^ (np.random.default_rng(4).random((3000, 64)) < 0.05)
    mih = MultiIndexHashing().build(bits)
    packed = binary.pack(bits)
    expected = {row: reference(bits, bits[row], 25) for row in range(0, 3000, 97)}

    def searched(rows):
        return [(row, mih.search(packed[row], 25)) for row in rows]

    with ThreadPoolExecutor(4) as pool:
        answers = [answer for part in pool.map(searched, [list(expected)] * 8) for answer in part]
    for row, answer in answers:
        same(answer, expected[row])
    same(mih.search(binary.pack(~bits[:1])[0], 3000), reference(bits, ~bits[0], 3000))  # every row: a scan
    assert not mih._marks().any()


@pytest.mark.parametrize("name", ["exact", "mih"])
def test_the_ball_is_every_code_within_the_radius(name):
    bits = codes("repeated", 32, n=300)
    backend = create(name).build(bits)
    packed = binary.pack(bits)
    for row in (0, 150):
        for radius in (0, 1, 5, 16, 32, 10**6):
            same(backend.within(packed[row], radius), ball(bits, bits[row], radius))
    with pytest.raises(SemhashError, match="give 0 or more, not -1"):
        backend.within(packed[0], -1)


def test_annoy_refuses_a_ball():
    with pytest.raises(SemhashError, match="Annoy cannot find every code within a radius"):
        AnnoyBackend(trees=2).build(codes("random", 16, n=20)).within(np.zeros(2, np.uint8), 3)


def test_substrings_follow_the_paper_and_fit_a_table_key(tmp_path):
    assert default_substrings(64, 1_000_000) == 3 and default_substrings(64, 10_000_000) == 3
    assert default_substrings(32, 65536) == 2 and default_substrings(16, 1) == 1
    assert default_substrings(1024, 256) == 128 and default_substrings(200, 2) == 200 and default_substrings(1024, 1) == 16
    bits = codes("random", 130, n=50)
    for wrong in (2, 131):
        with pytest.raises(SemhashError, match=f"so 3 or more, not {wrong}"):
            MultiIndexHashing(wrong).build(bits)
    mih = MultiIndexHashing(3).build(bits)
    assert [length for _, length in mih.spans] == [44, 43, 43]
    assert mih.save(None) == {"substrings": 3} and mih.save(tmp_path) == {"substrings": 3, "keys": [50, 50, 50]}
    loaded = MultiIndexHashing.load(tmp_path, {"substrings": 3}, binary.pack(bits), 130)
    same(loaded.search(binary.pack(bits)[4], 7), reference(bits, bits[4], 7))
