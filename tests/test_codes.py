import numpy as np

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
