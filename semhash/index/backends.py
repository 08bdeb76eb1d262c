"""How an index finds the codes nearest to a query: an exact scan or Annoy, behind one interface.

A backend is built over the indexed codes (`build`), answers a packed query code with rows and
Hamming distances (`search`), writes what it needs beside the index's codes (`save`, which
returns the settings the manifest records under the backend's name) and reads it back (`load`).
`BACKENDS` names them, `create` makes one by name, and `default_backend` picks the faster one
for an index's size. Neither can add codes after `build`: Annoy's trees are fixed once built.
"""

import abc
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


def _result_count(k, n_codes):
    """How many results a search for `k` gives among `n_codes` codes: k, cut to the codes."""
    if k < 1:
        raise SemhashError(f"k is the number of results; give 1 or more, not {k}")
    return min(k, n_codes)


class Backend(abc.ABC):
    """A search over binary codes: built once over all of them, then queried."""

    name = None

    @abc.abstractmethod
    def build(self, bits):
        """Index the boolean codes `bits` (rows by bits); returns self."""

    @abc.abstractmethod
    def search(self, query, k):
        """Rows and Hamming distances (both int64) of the `k` codes nearest to the packed
        code `query`, nearest first; k is cut to the codes indexed and must be 1 or more."""

    @abc.abstractmethod
    def save(self, folder):
        """Write the backend's own files to `folder`; returns its settings for the manifest."""

    @classmethod
    @abc.abstractmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        """The backend `save` wrote to `folder` with `settings`, over the `packed` codes of
        `n_bits` bits; `verify(names)`, where given, checks files against their recorded
        checksums before they are read."""


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
        self.packed = binary.pack(bits)
        self.words = binary.words(self.packed)
        return self

    def search(self, query, k):
        return binary.scan(self.words, query, _result_count(k, len(self.packed)))

    def save(self, folder):
        return {}

    @classmethod
    def load(cls, folder, settings, packed, n_bits, verify=None):
        return cls(packed)


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
        damaged file would crash it."""
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


BACKENDS = {backend.name: backend for backend in (ExactScan, AnnoyBackend)}


def create(name, **settings):
    """An unbuilt backend by its name in BACKENDS, with its settings (Annoy's trees and seed)."""
    if name not in BACKENDS:
        raise SemhashError(f"search backends are {' and '.join(BACKENDS)}, not {name!r}")
    return BACKENDS[name](**settings)


def default_backend(n_codes):
    """The name of the backend that answers fastest among `n_codes` codes: "exact" up to
    EXACT_SCAN_MAX, "annoy" beyond."""
    return "exact" if n_codes <= EXACT_SCAN_MAX else "annoy"
