"""How an index finds the codes nearest to a query: an exact scan, multi-index hashing or Annoy,
behind one interface.

A backend is built over the indexed codes (`build`), answers a packed query code with rows and
Hamming distances (`search` for the k nearest, `within` for every code within a radius), writes
what it needs beside the index's codes (`save`, which returns the settings the manifest records
under the backend's name) and reads it back (`load`). `BACKENDS` names them, `create` makes one by
name, and `default_backend` picks the faster one for an index's size. None can add codes after
`build`: Annoy's trees and the hash tables are fixed once built, so an index grows by shards.
"""

import abc
import functools
import itertools
import math
import threading
from pathlib import Path

import numpy as np

from .. import defaults
from ..codes import binary
from ..errors import SemhashError
from ..progress import progress_bar

ANNOY = "annoy.ann"
# Annoy inspects this many nodes per result and tree by default (its own default is 1):
# learned codes repeat (72 test documents had 14 distinct codes), and repeats cost Annoy recall.
SEARCH_NODES_PER_RESULT_AND_TREE = 10
# Up to this many codes an exact scan answers a query faster than Annoy at the default
# search_k: at 1,000,000 codes of 64 bits (benchmarks/search_scale.py, docs/RESULTS.md) the
# word scan took 0.8 ms for the top 10 and 0.9 ms for the top 100, Annoy 1.7 to 1.9 and 12 to
# 29 ms; only for the top 1 was Annoy faster (0.25 against 0.7 ms, recall .5 on random codes).
# The scan grows with the codes, Annoy hardly does: the top-10 crossover lies near 2,000,000
# by that growth, not measured, so the limit stays at what was measured.
EXACT_SCAN_MAX = 1_000_000
ANNOY_MAX_COUNT = 2**31 - 1  # Annoy reads k and search_k as C ints
# What multi-index hashing's probing costs, counted in codes the word scan compares in the same
# time (about 1 ns a code at 10,000,000 codes of 64 bits): a lookup in a substring's table about
# 2 us, a new candidate (its row gathered, flagged and its distance counted) 40 to 100 ns.
# Probing stops for a scan once its work would pass the codes' count, so a query probes for at
# most about a scan's time before it scans (docs/RESULTS.md "Multi-index hashing's costs").
LOOKUP_COST = 2000
CANDIDATE_COST = 100
# No more neighbour masks than this for one substring length and radius (2 MB of uint64).
MAX_NEIGHBOUR_MASKS = 1 << 18
MIH_FILES = ("mih-order.npy", "mih-keys.npy", "mih-starts.npy")
REBUILD_INDEX = "rebuild the index with `semhash index`"


def _result_count(k, n_codes):
    """How many results a search for `k` gives among `n_codes` codes: k, cut to the codes."""
    if k < 1:
        raise SemhashError(f"k is the number of results; give 1 or more, not {k}")
    return min(k, n_codes)


def _checked_radius(radius):
    """`radius`, a count of bits, refused when negative."""
    if radius < 0:
        raise SemhashError(f"a radius is a number of bits; give 0 or more, not {radius}")
    return radius


def _by_distance(rows, distances, radius):
    """The `rows` at `distances` of at most `radius`, ordered by distance, then row."""
    keep = distances <= radius
    rows, distances = rows[keep], distances[keep]
    order = np.lexsort((rows, distances))
    return rows[order], distances[order]


class Backend(abc.ABC):
    """A search over binary codes: built once over all of them, then queried."""

    name = None
    files = ()  # the files `save` writes, where it writes any

    @abc.abstractmethod
    def build(self, bits):
        """Index the boolean codes `bits` (rows by bits); returns self."""

    def over(self, packed, n_bits, show_progress=False):
        """Index the `packed` codes of `n_bits` bits; returns self."""
        return self.build(binary.unpack(packed, n_bits))

    @abc.abstractmethod
    def search(self, query, k):
        """Rows and Hamming distances (both int64) of the `k` codes nearest to the packed
        code `query`, nearest first; k is cut to the codes indexed and must be 1 or more."""

    @abc.abstractmethod
    def within(self, query, radius):
        """Rows and Hamming distances (both int64) of every code within `radius` bits of the
        packed code `query`, ordered by distance, then row."""

    @abc.abstractmethod
    def save(self, folder):
        """Write the backend's own files to `folder`; returns its settings for the manifest."""

    @classmethod
    @abc.abstractmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        """The backend `save` wrote to `folder` with `settings`, over the `packed` codes of
        `n_bits` bits; `verify(names)`, where given, checks files against their recorded
        checksums before they are read. With no folder (its files are gone), the same backend
        built again from the codes with `settings`."""


class ExactScan(Backend):
    """Every code compared with the query (`binary.scan`): exact, ties in row order, and
    faster than Annoy up to EXACT_SCAN_MAX codes. It keeps nothing but the packed codes, which
    the index saves itself, and their 64-bit word view (`binary.words`), made when it is built
    or loaded rather than on each query."""

    name = "exact"

    def __init__(self, packed=None):
        self.packed = packed
        self.words = None if packed is None else binary.words(packed)

    def build(self, bits):
        return self.over(binary.pack(bits), bits.shape[1])

    def over(self, packed, n_bits, show_progress=False):
        self.packed = packed
        self.words = binary.words(packed)
        return self

    def search(self, query, k):
        return binary.scan(self.words, query, _result_count(k, len(self.packed)))

    def within(self, query, radius):
        """Every code's distance, a chunk at a time (`binary.within`), filtered."""
        return _by_distance(*binary.within(self.words, query, _checked_radius(radius)), radius)

    def save(self, folder):
        return {}

    @classmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        return cls(packed)


def default_substrings(n_bits, n_codes):
    """Multi-index hashing's substrings for `n_codes` codes of `n_bits`: bits / log2(codes), as
    Norouzi, Punjani and Fleet advise (about one code a bucket), rounded, at least 1 and enough
    that no substring passes the 64 bits of a table's key, at most one a bit."""
    advised = round(n_bits / math.log2(n_codes)) if n_codes > 1 else 1
    return min(n_bits, max(advised, -(-n_bits // 64)))


def _spans(n_bits, substrings):
    """(start, length) of each substring: lengths differ by at most one, the longer first."""
    short, longer = divmod(n_bits, substrings)
    lengths = [short + 1] * longer + [short] * (substrings - longer)
    return list(zip(itertools.accumulate([0, *lengths[:-1]]), lengths))


def _substring_values(packed, start, length):
    """Bits start to start + length of each packed code (rows of uint8) as uint64, the first
    bit highest; read a byte at a time, so nothing is unpacked."""
    end = start + length
    first, last = start // 8, (end - 1) // 8
    values = (packed[:, first] & (0xFF >> (start % 8))).astype(np.uint64)
    if first == last:
        return values >> (8 * (last + 1) - end)
    for column in range(first + 1, last):
        values = (values << 8) | packed[:, column]
    tail = end - 8 * last  # bits of the last byte inside the substring, 1 to 8
    return (values << tail) | (packed[:, last] >> (8 - tail))


@functools.lru_cache(maxsize=64)
def _neighbour_masks(length, distance):
    """Every value of `length` bits with `distance` bits set: XORed with a substring, its
    neighbours at exactly that distance."""
    chosen = np.array(list(itertools.combinations(range(length), distance)), dtype=np.uint64)
    return np.bitwise_or.reduce(np.uint64(1) << chosen.reshape(math.comb(length, distance), distance), axis=1)


class _Table:
    """One substring's hash table: the rows sorted by substring value (`order`), the distinct
    values (`keys`), and where each value's rows begin in `order` (`starts`, one more than the
    keys). Rows within a bucket are in no particular order (numpy's quicksort: a third of the
    stable sort's time), since the answers are sorted again."""

    def __init__(self, order, keys, starts):
        self.order, self.keys, self.starts = order, keys, starts

    @classmethod
    def of(cls, values):
        """The table of the substring `values`, one a code."""
        order = np.argsort(values)
        ordered = values[order]
        firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        return cls(order.astype(_row_type(len(values))), ordered[firsts], np.r_[firsts, len(values)])

    def buckets(self, values):
        """Where the rows of those `values` that occur begin and end in `order`."""
        at = np.searchsorted(self.keys, values)
        inside = at < len(self.keys)
        at = at[inside][self.keys[at[inside]] == values[inside]]
        return self.starts[at], self.starts[at + 1]

    def rows(self, begins, ends):
        """The rows of the buckets from `begins` to `ends`."""
        sizes = ends - begins
        offsets = np.repeat(begins - np.cumsum(sizes) + sizes, sizes)
        return self.order[offsets + np.arange(len(offsets))].astype(np.int64)


def _row_type(n_codes):
    """The narrowest unsigned integer that numbers `n_codes` rows: stored tables are half the size."""
    return np.uint32 if n_codes < 2**32 else np.uint64


class MultiIndexHashing(Backend):
    """Exact search by multi-index hashing (Norouzi, Punjani and Fleet, "Fast Exact Search in
    Hamming Space with Multi-Index Hashing"): each code is cut into `substrings` disjoint
    substrings (by default `default_substrings`), each with a table from substring value to rows.
    A code within r = r' x m + a bits of the query (m substrings, a < m) is within r' bits of it
    on one of the first a + 1 substrings or within r' - 1 on one of the others; so probing the
    tables at growing radii finds every code within a growing bound, and the answers are the exact
    scan's, ties in row order. Where probing would cost more than a scan, it scans.

    Where an index stores the tables (MIH_FILES: rows by value for each substring, the distinct
    values and where each begins, all tables end to end), they are memory-mapped when loaded;
    otherwise they are built from the codes then (0.13 s at 1,000,000 codes of 64 bits, 4.7 s at
    10,000,000; see docs/RESULTS.md)."""

    name = "mih"
    files = MIH_FILES

    def __init__(self, substrings=None):
        self.substrings = substrings
        self.packed = None
        self._local = threading.local()

    def build(self, bits):
        return self.over(binary.pack(bits), bits.shape[1])

    def over(self, packed, n_bits, show_progress=False):
        """Build the tables over the `packed` codes of `n_bits` bits; returns self."""
        self._split(packed, n_bits)
        self.tables = [_Table.of(_substring_values(packed, start, length)) for start, length in self.spans]
        return self

    def _split(self, packed, n_bits):
        """Settle the substrings for the `packed` codes of `n_bits` bits."""
        m = self.substrings or default_substrings(n_bits, len(packed))
        if not -(-n_bits // 64) <= m <= n_bits:
            raise SemhashError(f"{n_bits}-bit codes split into 1 to {n_bits} substrings of at most 64 bits, "
                               f"so {-(-n_bits // 64)} or more, not {m}")
        self.packed, self.n_bits, self.substrings = packed, n_bits, m
        self.spans = _spans(n_bits, m)
        self._scan = None

    @property
    def scan(self):
        """The exact scan a search falls back to where probing would cost more, made on first
        use: its word view copies the codes, which most searches never need."""
        if self._scan is None:
            self._scan = ExactScan(self.packed)
        return self._scan

    @scan.setter
    def scan(self, scan):
        self._scan = scan

    def _marks(self):
        """This thread's flag a row (False between searches), kept from one search to the next:
        a fresh one a search cost more than the search, its pages faulting in anew."""
        marks = getattr(self._local, "marks", None)
        if marks is None or len(marks) != len(self.packed):
            marks = self._local.marks = np.zeros(len(self.packed), dtype=bool)
        return marks

    def _probed(self, query, enough):
        """Probe the tables at growing radii until `enough(counts, bound)`, where counts[d] is
        the number of codes found at distance d and every code within `bound` bits is found.
        Returns the rows found, their distances and that bound, or None once probing would
        cost more than a scan (see LOOKUP_COST)."""
        n_codes = len(self.packed)
        values = [_substring_values(query[None, :], start, length)[0] for start, length in self.spans]
        marks = self._marks()
        counts = np.zeros(self.n_bits + 1, dtype=np.int64)
        found_rows, found_distances = [], []
        work = 0
        longest = max(length for _, length in self.spans)
        try:
            for radius, number in itertools.product(range(longest + 1), range(self.substrings)):
                length = self.spans[number][1]
                lookups = math.comb(length, radius)
                if lookups:
                    if lookups > MAX_NEIGHBOUR_MASKS or work + LOOKUP_COST * lookups > n_codes:
                        return None
                    table = self.tables[number]
                    rows = table.rows(*table.buckets(values[number] ^ _neighbour_masks(length, radius)))
                    rows = rows[~marks[rows]]
                    marks[rows] = True
                    found_rows.append(rows)
                    work += LOOKUP_COST * lookups + CANDIDATE_COST * len(rows)
                    if work > n_codes:
                        return None
                    distances = binary.hamming(self.packed[rows], query)
                    counts += np.bincount(distances, minlength=len(counts))
                    found_distances.append(distances)
                bound = radius * self.substrings + number
                if enough(counts, bound):
                    break
            return np.concatenate(found_rows), np.concatenate(found_distances), bound
        finally:
            for rows in found_rows:
                marks[rows] = False

    def search(self, query, k):
        k = _result_count(k, len(self.packed))
        probed = self._probed(query, lambda counts, bound: counts[: bound + 1].sum() >= k)
        if probed is None:
            return self.scan.search(query, k)
        rows, distances = _by_distance(*probed)
        return rows[:k], distances[:k]

    def within(self, query, radius):
        radius = _checked_radius(radius)
        probed = self._probed(query, lambda counts, bound: bound >= radius)
        if probed is None:
            return self.scan.within(query, radius)
        return _by_distance(*probed[:2], radius)

    def save(self, folder):
        """Write the tables (MIH_FILES) where `folder` is given; the settings either way."""
        if folder is None:
            return {"substrings": self.substrings}
        order, keys, starts = MIH_FILES
        np.save(Path(folder) / order, np.stack([table.order for table in self.tables]), allow_pickle=False)
        np.save(Path(folder) / keys, np.concatenate([table.keys for table in self.tables]), allow_pickle=False)
        np.save(Path(folder) / starts, np.concatenate([table.starts for table in self.tables]), allow_pickle=False)
        return {"substrings": self.substrings, "keys": [len(table.keys) for table in self.tables]}

    @classmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        """The tables stored in `folder` (memory-mapped, their shapes checked), or, where none are
        stored, built from the codes."""
        backend = cls(settings.get("substrings"))
        if folder is None or "keys" not in settings:
            return backend.over(packed, n_bits)
        backend._split(packed, n_bits)
        folder, n = Path(folder), len(packed)
        try:
            order, keys, starts = (np.load(folder / name, mmap_mode="r", allow_pickle=False) for name in MIH_FILES)
        except (ValueError, OSError) as error:
            raise SemhashError(f"{folder} holds damaged multi-index tables ({error}); {REBUILD_INDEX}") from None
        counts = settings["keys"]
        if (order.shape != (backend.substrings, n) or order.dtype != _row_type(n) or keys.dtype != np.uint64
                or len(counts) != backend.substrings or keys.shape != (sum(counts),)
                or starts.shape != (sum(counts) + len(counts),) or starts.dtype != np.int64):
            raise SemhashError(f"{folder} holds multi-index tables that do not fit its codes; {REBUILD_INDEX}")
        key_ends, start_ends = np.cumsum([0, *counts]), np.cumsum([0, *(count + 1 for count in counts)])
        backend.tables = [_Table(order[number], keys[key_ends[number]:key_ends[number + 1]],
                                 starts[start_ends[number]:start_ends[number + 1]])
                          for number in range(backend.substrings)]
        return backend


def _annoy(n_bits):
    from annoy import AnnoyIndex

    return AnnoyIndex(n_bits, "hamming")


def build_annoy(bits, trees, seed, show_progress=False):
    """An Annoy index with the Hamming metric over boolean codes (rows by bits), built on
    one thread so that `seed` fixes its trees."""
    annoy = _annoy(bits.shape[1])
    annoy.set_seed(seed)
    with progress_bar("building Annoy index", range(len(bits)), show=show_progress) as bar:
        for row in bar:
            annoy.add_item(row, bits[row].astype(np.float32))
    annoy.build(trees, n_jobs=1)
    return annoy


def _annoy_nodes(path, n_bits, mode="r"):
    """A saved Hamming Annoy file as memory-mapped nodes (rows of bytes), with each node's
    n_descendants and children[2]; None for a file that is not whole nodes of annoylib's
    Node<int32, uint64>: n_descendants, children[2], 4 bytes of padding, then the code words.
    A node with more descendants than fit in place of its vector (`list_max`) splits into its
    two children; one with fewer lists its items in place of the vector."""
    node_size = 16 + 8 * -(-n_bits // 64)
    size = path.stat().st_size
    if not size or size % node_size:
        return None
    nodes = np.memmap(path, dtype=np.uint8, mode=mode).reshape(-1, node_size)
    header = nodes[:, :12].copy().view("<i4")
    return nodes, header[:, 0], header[:, 1:], (node_size - 4) // 4


def _zero_unread_annoy_bytes(path, n_bits):
    """Zero the bytes of a saved Hamming Annoy file that Annoy never reads, so that one seed
    gives one file: Annoy builds each split node in uninitialised stack memory and sets only
    its first code word, leaving the struct's padding and the other words to chance. A file
    that does not fit the layout (see `_annoy_nodes`) is left as it is."""
    layout = _annoy_nodes(path, n_bits, mode="r+")
    if layout is None:
        return
    nodes, descendants, children, list_max = layout
    split = descendants > list_max
    if np.any(descendants < 1) or np.any((children[split] < 0) | (children[split] >= len(nodes))):
        return
    nodes[split, 12:16] = 0
    nodes[split, 24:] = 0
    nodes.flush()


def annoy_file_problem(path, n_bits, n_items):
    """Why Annoy's C++ reader must not be handed the file at `path`, or None when every node
    it would follow stays inside the file: the first `n_items` nodes are items, the last ones
    are roots over all of them, split nodes point at nodes of the file, and item lists name
    items. (A damaged file otherwise crashes the process inside Annoy.)"""
    layout = _annoy_nodes(path, n_bits)
    if layout is None:
        return f"it is not whole {n_bits}-bit Annoy nodes"
    nodes, descendants, children, list_max = layout
    n_nodes = len(nodes)
    if n_nodes <= n_items or np.any(descendants[:n_items] != 1):
        return f"its first {n_items} nodes are not the items"
    if np.any(descendants < 1) or np.any(descendants > n_items) or descendants[-1] != n_items:
        return "its nodes' counts of descendants do not fit the items"
    split = descendants > list_max
    if np.any((children[split] < 0) | (children[split] >= n_nodes)):
        return "a split node points outside the file"
    listing = np.flatnonzero((descendants > 1) & ~split)
    if len(listing):
        items = np.ascontiguousarray(nodes[listing, 4 : 4 + 4 * list_max]).view("<i4")
        named = np.arange(list_max) < descendants[listing, None]
        if np.any(named & ((items < 0) | (items >= n_items))):
            return "an item list names items that are not in the index"
    return None


class AnnoyBackend(Backend):
    """Annoy's forest of `trees` random-projection trees with the Hamming metric: a query
    inspects search_k nodes rather than every code, so it stays fast as the codes grow, but
    may miss some of the nearest. Saved as `annoy.ann`; Annoy cannot add codes once built."""

    name = "annoy"
    files = (ANNOY,)

    def __init__(self, trees=defaults.TREES, seed=defaults.SEED):
        self.trees = trees
        self.seed = seed
        self.annoy = None  # Annoy's index, once built or loaded
        self.n_bits = None

    def build(self, bits, show_progress=False):
        """Build the trees on one thread, so that the seed fixes them (and the saved file)."""
        self.annoy = build_annoy(bits, self.trees, self.seed, show_progress)
        self.n_bits = bits.shape[1]
        return self

    def over(self, packed, n_bits, show_progress=False):
        return self.build(binary.unpack(packed, n_bits), show_progress)

    def default_search_k(self, k):
        """The nodes a search for `k` results inspects unless told: 10 x trees x k."""
        return SEARCH_NODES_PER_RESULT_AND_TREE * self.trees * k

    def search(self, query, k, search_k=None):
        """As `Backend.search`, inspecting `search_k` nodes (by default `default_search_k(k)`),
        cut to every code in every tree and to what Annoy's 32-bit counts hold."""
        n_items = self.annoy.get_n_items()
        k = _result_count(k, n_items)
        if search_k is None:
            search_k = self.default_search_k(k)
        search_k = min(search_k, self.trees * n_items, ANNOY_MAX_COUNT)
        vector = binary.unpack(query[None, :], self.n_bits)[0].astype(np.float32)
        rows, distances = self.annoy.get_nns_by_vector(vector, k, search_k=search_k, include_distances=True)
        return np.array(rows, dtype=np.int64), np.array(distances, dtype=np.int64)

    def within(self, query, radius):
        """Refused: Annoy's trees may miss codes, so a ball would be incomplete."""
        raise SemhashError("Annoy cannot find every code within a radius; use the exact scan or mih")

    def save(self, folder):
        """Write `annoy.ann` with the bytes Annoy never reads zeroed, so one seed gives one file."""
        path = Path(folder) / ANNOY
        self.annoy.save(str(path))
        _zero_unread_annoy_bytes(path, self.n_bits)
        return {"metric": "hamming", "trees": self.trees, "seed": self.seed}

    @classmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        """Memory-map `annoy.ann` once it has been checked: its checksum (`verify`), then its
        structure (`annoy_file_problem`), since Annoy's C++ reader trusts every byte and a
        damaged file would crash it. With no folder, built again from the codes (one seed, one file)."""
        if folder is None:
            return cls(settings["trees"], settings["seed"]).over(packed, n_bits)
        path = Path(folder) / ANNOY
        if verify is not None:
            verify([ANNOY])
        problem = annoy_file_problem(path, n_bits, len(packed))
        if problem:
            raise SemhashError(f"{path} is damaged: {problem}; rebuild the index with `semhash index`")
        annoy = _annoy(n_bits)
        try:
            annoy.load(str(path))
        except OSError as error:
            raise SemhashError(f"{path} cannot be read ({error}); rebuild the index") from None
        backend = cls(settings["trees"], settings["seed"])
        backend.annoy, backend.n_bits = annoy, n_bits
        return backend


BACKENDS = {backend.name: backend for backend in (ExactScan, AnnoyBackend, MultiIndexHashing)}


def backend_class(name):
    """The backend called `name` in BACKENDS."""
    if name not in BACKENDS:
        raise SemhashError(f"search backends are {', '.join(BACKENDS)}, not {name!r}")
    return BACKENDS[name]


def create(name, **settings):
    """An unbuilt backend by its name in BACKENDS, with its settings (Annoy's trees and seed,
    multi-index hashing's substrings)."""
    return backend_class(name)(**settings)


def default_backend(n_codes):
    """The name of the backend that answers fastest among `n_codes` codes (docs/RESULTS.md, "The
    default backend"): "exact" up to EXACT_SCAN_MAX, where a scan costs under a millisecond and
    needs nothing stored; "mih" beyond, whose stored tables answer at 10,000,000 learned codes
    25 to 65 times faster than the scan, exactly. Annoy, slower than the scan for 10 results
    or more at 1,000,000 codes and approximate, is never the default."""
    return "exact" if n_codes <= EXACT_SCAN_MAX else "mih"
