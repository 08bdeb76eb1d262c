import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semhash.codes import binary


def test_pack_and_unpack_round_trip():
    bits = np.random.default_rng(0).random((5, 20)) > 0.5
    packed = binary.pack(bits)
    assert packed.shape == (5, 3) and packed.dtype == np.uint8
    np.testing.assert_array_equal(binary.unpack(packed, 20), bits)


def test_hamming_counts_differing_bits():
    bits = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    packed = binary.pack(bits)
    np.testing.assert_array_equal(binary.hamming(packed, packed[0]), [0, 1, 4])


def test_nearest_is_exact_and_breaks_ties_by_position():
    bits = np.array([[1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=bool)
    packed = binary.pack(bits)
    rows, distances = binary.nearest(packed, binary.pack(np.zeros((1, 4), dtype=bool))[0], 3)
    assert rows.tolist() == [3, 1, 2] and distances.tolist() == [0, 1, 1]


def test_bit_balance():
    bits = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], dtype=bool)
    np.testing.assert_allclose(binary.bit_balance(binary.pack(bits), 2), [0.75, 0.25])
    many = np.random.default_rng(0).random((1001, 70)) < 0.3
    counted = binary.bit_counts(binary.pack(many), 70, rows_at_once=64)  # in chunks, the last one short
    np.testing.assert_array_equal(counted, many.sum(axis=0))


def brute_force(bits, query, k):
    """Every distance counted bit by bit, sorted stably: rows in database order among ties."""
    distances = (bits != query).sum(axis=1)
    rows = np.argsort(distances, kind="stable")[:k]
    return rows, distances[rows]


@st.composite
def databases(draw):
    """Boolean codes of 1 to 256 bits, all random or a few codes repeated (many ties), a query
    among or beside them, a k that may pass the rows, and a chunk of a few rows or the default."""
    n_bits = draw(st.integers(1, 256))
    n_rows = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bits = rng.random((n_rows, n_bits)) < 0.5
    if draw(st.booleans()):
        bits = bits[rng.integers(0, min(draw(st.integers(1, 5)), n_rows), n_rows)]
    query = bits[rng.integers(n_rows)] if draw(st.booleans()) else rng.random(n_bits) < 0.5
    chunk_bytes = draw(st.sampled_from([8, 24, 256, binary.SCAN_CHUNK_BYTES]))
    return bits, query, draw(st.integers(1, n_rows + 3)), chunk_bytes


@settings(max_examples=300, deadline=None)
@given(databases())
def test_the_scan_is_the_brute_force_answer_with_ties_in_database_order(database):
    bits, query, k, chunk_bytes = database
    packed = binary.pack(bits)
    rows, distances = binary.scan(binary.words(packed), binary.pack(query[None])[0], k, chunk_bytes)
    expected_rows, expected = brute_force(bits, query, k)
    assert rows.dtype == distances.dtype == np.int64
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(distances, expected)


@settings(max_examples=300, deadline=None)
@given(databases())
def test_the_compiled_scan_is_the_brute_force_answer_with_ties_in_database_order(database):
    bits, query, k, _ = database
    rows, distances = binary.scan(binary.words(binary.pack(bits)), binary.pack(query[None])[0], k, compiled=True)
    expected_rows, expected = brute_force(bits, query, k)
    assert rows.dtype == distances.dtype == np.int64
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(distances, expected)


def test_the_compiled_and_the_numpy_scan_agree_on_many_repeated_codes():
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 256, (50, 8), dtype=np.uint8)  # many exact repeats: ties everywhere
    packed = centres[rng.integers(0, 50, 100_000)]
    packed[::7] ^= rng.integers(0, 256, packed[::7].shape, dtype=np.uint8)
    view = binary.words(packed)
    for query in (packed[5], rng.integers(0, 256, 8, dtype=np.uint8)):
        for k in (1, 100, 3000):
            compiled, numpy_scan = binary.scan(view, query, k, compiled=True), binary.scan(view, query, k, compiled=False)
            np.testing.assert_array_equal(compiled[0], numpy_scan[0])
            np.testing.assert_array_equal(compiled[1], numpy_scan[1])


SCANS_THEN_MODULES = """
import sys, numpy as np
from semhash.codes import binary
binary.COMPILED_SCAN_AFTER_SECONDS = {after}
codes = np.random.default_rng(0).integers(0, 256, (20_000, 8), dtype=np.uint8)
view = binary.words(codes)
for row in range(20):
    assert binary.scan(view, codes[row], 10)[0][0] == row
print("numba" in sys.modules, "semhash.codes.kernel" in sys.modules)
"""


@pytest.mark.parametrize("after, loaded", [(60.0, "False False"), (0.001, "True True")])
def test_numba_loads_only_once_the_numpy_scans_have_taken_their_time(after, loaded):
    """A process of a few scans never loads numba; one whose scans passed the allowance does."""
    ran = subprocess.run([sys.executable, "-c", SCANS_THEN_MODULES.format(after=after)], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == loaded


NO_CACHE_LOCATOR = """
import numpy as np
from numba.core import caching
caching.CacheImpl._locator_classes = []  # as where site-packages and the user's cache are both read-only
from semhash.codes import binary
codes = np.random.default_rng(0).integers(0, 256, (2_000, 8), dtype=np.uint8)
view = binary.words(codes)
assert [int(binary.scan(view, codes[row], 10, compiled=True)[0][0]) for row in range(5)] == list(range(5))
print("scanned")
"""


def test_the_compiled_scan_runs_where_numba_has_nowhere_to_cache_its_machine_code():
    ran = subprocess.run([sys.executable, "-c", NO_CACHE_LOCATOR], capture_output=True, text=True, check=False)
    assert ran.returncode == 0 and ran.stdout.strip() == "scanned", ran.stderr[-2000:]


@settings(max_examples=200, deadline=None)
@given(databases(), st.integers(0, 260))
def test_the_chunked_ball_is_every_row_within_the_radius_in_row_order(database, radius):
    bits, query, _, chunk_bytes = database
    rows, distances = binary.within(binary.words(binary.pack(bits)), binary.pack(query[None])[0], radius, chunk_bytes)
    everything = (bits != query).sum(axis=1)
    assert rows.tolist() == np.flatnonzero(everything <= radius).tolist()
    assert distances.tolist() == everything[everything <= radius].tolist() and distances.dtype == np.int64


def test_the_word_view_of_64_bit_codes_is_the_codes_themselves():
    """Whole words in one block of memory (a mapped codes.npy): a view, no copy."""
    packed = np.random.default_rng(0).integers(0, 256, (50, 8), dtype=np.uint8)
    view = binary.words(packed)
    assert view.shape == (1, 50) and np.shares_memory(view, packed)
    np.testing.assert_array_equal(view[0], packed.view(np.uint64)[:, 0])


def test_the_word_view_pads_each_code_with_zero_bytes():
    packed = np.arange(2 * 9, dtype=np.uint8).reshape(2, 9)
    view = binary.words(packed)
    assert view.shape == (2, 2) and view.dtype == np.uint64 and view.flags.c_contiguous
    padded = np.zeros((2, 16), dtype=np.uint8)
    padded[:, :9] = packed
    np.testing.assert_array_equal(view.T.copy().view(np.uint8), padded)


def test_asymmetric_distance_weighs_each_disagreeing_bit_by_the_query_projection():
    rng = np.random.default_rng(0)
    projections, bits = rng.normal(size=(4, 21)), rng.random((9, 21)) < 0.5
    expected = [[np.abs(query)[(query > 0) != row].sum() for row in bits] for query in projections]
    np.testing.assert_allclose(binary.asymmetric(projections, binary.pack(bits), 21), expected)
