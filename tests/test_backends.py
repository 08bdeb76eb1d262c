"""The search backends against a brute-force reference, their files, and the factory."""

import numpy as np
import pytest

from semhash.codes import binary
from semhash.errors import SemhashError
from semhash.index.backends import ANNOY, BACKENDS, EXACT_SCAN_MAX, AnnoyBackend, ExactScan, create, default_backend


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


def built(name, bits):
    return create(name, **({"trees": 8, "seed": 0} if name == "annoy" else {})).build(bits)


def everything(name, n):
    """Search options that make a backend look at every code: Annoy at a search_k past its trees."""
    return {"search_k": 8 * n} if name == "annoy" else {}


@pytest.mark.parametrize("name", ["exact", "annoy"])
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
            if name == "exact":
                np.testing.assert_array_equal(rows, expected_rows)


@pytest.mark.parametrize("name", ["exact", "annoy"])
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
    assert set(BACKENDS) == {"exact", "annoy"}
    assert type(create("exact")) is ExactScan
    annoy = create("annoy", trees=4, seed=7)
    assert type(annoy) is AnnoyBackend and (annoy.trees, annoy.seed) == (4, 7)
    with pytest.raises(SemhashError, match="search backends are exact and annoy, not 'faiss'"):
        create("faiss")


def test_the_default_backend_is_the_exact_scan_up_to_its_limit():
    assert default_backend(1) == default_backend(EXACT_SCAN_MAX) == "exact"
    assert default_backend(EXACT_SCAN_MAX + 1) == "annoy"
