"""An index: the fitted features and encoder, the codes, the records and Annoy.

Its data files, in the generation folder its manifest names (see `store`):
    records.jsonl   one item a line: id, path, label, snippet, sha256 for a document;
                    id, label, source (file, or archive, batch and position) for an image
    codes.npy       packed binary codes, one row an item (uint8)
    vocabulary.txt  text: the terms, one a line with its document frequency
    lexicon.npz     text: jieba's word frequencies, so queries segment exactly as indexing did
    patches.npz     images described by patch features: whitening, centroids, column statistics
    pixels.npz      images taken as pixels: the per-channel mean and deviation that standardize them
    encoder.keras   the encoder in Keras' format
    encoder.npz     the same encoder's weights and bit thresholds, for numpy inference
    annoy.ann       an Annoy index with the Hamming metric
"""

import json
from pathlib import Path
from zipfile import BadZipFile

import numpy as np

from .. import defaults
from ..codes import binary
from ..errors import SemhashError
from ..modality import MAX_QUERY_BYTES, named, of_source
from ..models.autoencoder import ENCODER_KERAS, load_model
from ..progress import progress_bar
from . import store

RECORDS = "records.jsonl"
CODES = "codes.npy"
ANNOY = "annoy.ann"
# Annoy inspects this many nodes per result and tree by default (its own default is 1):
# learned codes repeat (72 test documents had 14 distinct codes), and repeats cost Annoy recall.
SEARCH_NODES_PER_RESULT_AND_TREE = 10
# Up to this many codes an exact scan answers a query faster than Annoy at the default
# search_k: measured 0.4 against 4.6 ms at 11,314 codes and 1.5 against 6.2 ms at 50,000;
# a scan grows with the codes (7.9 ms at 200,000), Annoy hardly does. See docs/RESULTS.md.
EXACT_SCAN_MAX = 100_000
ANNOY_MAX_COUNT = 2**31 - 1  # Annoy reads k and search_k as C ints
PICKLED = "a .npy or .npz file is not numpy's format, and semhash reads no pickle"


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


class Index:
    """Binary codes of a text corpus or an image collection, with the means to encode and
    search new items.

    Build one with `Index.build(source)`, write it with `save(folder)`, read it back with
    `Index.open(folder)`, then `query(text or pixels)` or `like(item_id)`. What differs between
    text and images is asked of `modality`.
    """

    def __init__(self, manifest, features, model, packed, records, annoy=None, folder=None):
        self.manifest = manifest
        self.features = features
        self.model = model
        self.packed = packed
        self.records = records
        self._annoy = annoy
        self.folder = folder

    @property
    def bits(self):
        return self.manifest["bits"]

    @property
    def modality(self):
        """The modality of the items: text or images (see `semhash.modality`)."""
        return named(self.manifest["kind"])

    def __len__(self):
        return len(self.records)

    @classmethod
    def build(cls, source, features=None, model=None, trees=defaults.TREES, show_progress=False):
        """Read `source` (a TextCorpus, an ImageFolder or a CIFAR-10 reader), fit the features and the
        model, encode every item and build Annoy.

        features, model: unfitted, by default those of the source's modality (see `defaults`).
        show_progress: bars for reading and building Annoy, and for training when the model is the
        default one (a model passed in keeps its own `verbose`).
        """
        modality = of_source(source)
        features = features if features is not None else modality.default_features(source, show_progress)
        if model is None:
            model = defaults.model(modality.name, features=features.kind, verbose=show_progress)
        X, records, described = modality.read(source, features, show_progress)
        return cls._trained({"kind": modality.name, **described}, X, features, model, records, trees, show_progress)

    @classmethod
    def _trained(cls, manifest, X, features, model, records, trees, show_progress):
        """Fit `model` on the feature rows X, encode them and build Annoy over the codes."""
        bits = model.fit_encode(X)
        annoy = build_annoy(bits, trees, model.seed, show_progress)
        manifest = {
            **manifest,
            "bits": model.bits,
            "annoy": {"metric": "hamming", "trees": trees, "seed": model.seed},
            "training": {
                key: model.history_[key] for key in ("loss_before_finetuning", "loss_after_finetuning")
            },
        }
        return cls(manifest, features, model, binary.pack(bits), records, annoy)

    def save(self, folder):
        """Write the index to `folder` atomically (see `store`): a crash at any moment leaves an
        earlier index there whole, and nothing semhash did not write is replaced."""

        def write_files(data):
            written = {"features": self.features.save(data), "model": self.model.save(data)}
            np.save(data / CODES, self.packed, allow_pickle=False)
            with open(data / RECORDS, "w", encoding="utf-8") as out:
                for record in self.records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._annoy.save(str(data / ANNOY))
            _zero_unread_annoy_bytes(data / ANNOY, self.bits)
            return written

        self.manifest = store.write(folder, self.manifest, write_files)
        self.folder = Path(folder)
        return self

    @classmethod
    def open(cls, folder):
        """Read an index written by `save`, checking its manifest, and the size and sha256 of
        every file it reads; Annoy's file is checked when first asked for."""
        folder = Path(folder)
        try:
            return cls._opened(folder)
        except FileNotFoundError:  # a writer replaced the generation just read: read the new one
            pass
        try:
            return cls._opened(folder)
        except FileNotFoundError:
            raise SemhashError(f"{folder} changed twice while it was read; try again") from None

    @classmethod
    def _opened(cls, folder):
        manifest = store.read_manifest(folder)
        data = store.data_folder(folder, manifest)
        store.verify(folder, manifest, [name for name in manifest["files"] if name not in (ANNOY, ENCODER_KERAS)])
        try:
            features = named(manifest["kind"]).features_class(manifest["features"]).load(data, manifest["features"])
            model = load_model(data, manifest["model"])
            packed = np.load(data / CODES, allow_pickle=False)
            with open(data / RECORDS, encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines]
            n = manifest["counts"]["documents"]
            expected_shape = (n, (manifest["bits"] + 7) // 8)
        except FileNotFoundError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, EOFError, BadZipFile) as error:
            # numpy's advice for a file it takes for a pickle, to load it "unsafely", never fits here
            why = PICKLED if "allow_pickle" in str(error) else f"{type(error).__name__}: {error}"
            raise SemhashError(f"{folder} is damaged ({why}); rebuild it with `semhash index`") from None
        if packed.shape != expected_shape or len(records) != n:
            raise SemhashError(
                f"{folder} holds {len(records)} records and {packed.shape[0]} codes where the manifest "
                f"says {n}; rebuild it with `semhash index`"
            )
        return cls(manifest, features, model, packed, records, folder=folder)

    def annoy(self):
        """The Annoy index, memory-mapped from the folder on first use, once its file has been
        checked: Annoy's C++ reader trusts every byte, and a damaged file would crash it."""
        if self._annoy is None:
            path = store.data_folder(self.folder, self.manifest) / ANNOY
            if not path.is_file():
                raise SemhashError(f"{self.folder} was replaced since it was opened; open it again")
            store.verify(self.folder, self.manifest, [ANNOY])
            problem = annoy_file_problem(path, self.bits, len(self))
            if problem:
                raise SemhashError(f"{path} is damaged: {problem}; rebuild the index with `semhash index`")
            annoy = _annoy(self.bits)
            try:
                annoy.load(str(path))
            except OSError as error:
                raise SemhashError(f"{path} cannot be read ({error}); rebuild the index") from None
            self._annoy = annoy
        return self._annoy

    def encode(self, items):
        """Packed codes of new items: texts, or uint8 images shaped (rows, height, width, 3)."""
        return binary.pack(self.model.encode(self.features.transform(items)))

    def search(self, query, k=10, exact=None, search_k=None):
        """Rows and Hamming distances of the `k` codes nearest to a packed `query`.

        exact: True scans every code, False asks Annoy, None (the default) scans where
        that is faster: up to EXACT_SCAN_MAX codes. search_k: the Annoy nodes to inspect,
        by default 10 x trees x k. Both are cut to what the index holds: k to its codes,
        search_k to every code in every tree (Annoy's counts are 32-bit).
        """
        if k < 1:
            raise SemhashError(f"k is the number of results; give 1 or more, not {k}")
        k = min(k, len(self.packed))
        if exact is None:
            exact = len(self.packed) <= EXACT_SCAN_MAX
        if exact:
            return binary.nearest(self.packed, query, k)
        trees = self.manifest["annoy"]["trees"]
        if search_k is None:
            search_k = SEARCH_NODES_PER_RESULT_AND_TREE * trees * k
        search_k = min(search_k, trees * len(self.packed), ANNOY_MAX_COUNT)
        bits = binary.unpack(query[None, :], self.bits)[0].astype(np.float32)
        rows, distances = self.annoy().get_nns_by_vector(bits, k, search_k=search_k, include_distances=True)
        return np.array(rows, dtype=np.int64), np.array(distances, dtype=np.int64)

    def _hits(self, rows, distances):
        """Result dicts: the record's id, path and label, the distance and score, then
        the text's snippet or the image's source."""
        hits = []
        for row, distance in zip(rows, distances):
            record = self.records[row]
            hit = {key: record[key] for key in ("id", "path", "label") if key in record}
            hit.update(distance=int(distance), score=round(1 - int(distance) / self.bits, 4))
            hit.update((key, record[key]) for key in ("snippet", "source") if key in record)
            hits.append(hit)
        return hits

    def query(self, item, k=10, exact=None, search_k=None, max_bytes=MAX_QUERY_BYTES):
        """The `k` items whose codes are nearest to the code of `item`: a text (of at most
        `max_bytes`) for an index of text, the pixels of an image (uint8, height x width x 3) for
        one of images."""
        rows = self.modality.query_rows(self.features, item, max_bytes)
        return self._hits(*self.search(binary.pack(self.model.encode(rows))[0], k, exact, search_k))

    def _row(self, item_id):
        for row, record in enumerate(self.records):
            if record["id"] == item_id:
                return row
        cifar = str(self.manifest["source"].get("kind", "")).startswith("cifar")
        how = "a batch and a position, like data_batch_1/0" if cifar else "paths relative to the indexed folder"
        raise SemhashError(f"no item {item_id!r} in {self.folder}; ids are {how}")

    def record(self, item_id):
        """The stored record of an indexed document or image."""
        return self.records[self._row(item_id)]

    def like(self, item_id, k=10, exact=None, search_k=None):
        """The `k` items nearest to an indexed item, leaving the item itself out."""
        row = self._row(item_id)
        found, distances = self.search(self.packed[row], k + 1, exact, search_k)
        keep = found != row
        return self._hits(found[keep][:k], distances[keep][:k])

    def bit_balance(self):
        return binary.bit_balance(self.packed, self.bits)
