"""An index: the fitted features and encoder, the codes, the records and Annoy.

Its data files, in the generation folder its manifest names (see `store`):
    records.sqlite  one item a row (see `records`): id, path, label, snippet, sha256 for a
                    document; id, label, source (file, or archive, batch and position) for an
                    image. Formats 1 and 2 hold records.jsonl, one item a line, instead
    codes.npy       packed binary codes, one row an item (uint8)
    vocabulary.txt  text: the terms, one a line with its document frequency
    lexicon.npz     text: jieba's word frequencies, so queries segment exactly as indexing did
    patches.npz     images described by patch features: whitening, centroids, column statistics
    pixels.npz      images taken as pixels: the per-channel mean and deviation that standardize them
    encoder.keras   the encoder in Keras' format
    encoder.npz     the same encoder's weights and bit thresholds, for numpy inference
    annoy.ann       an Annoy index with the Hamming metric (see `backends`)
"""

from pathlib import Path
from zipfile import BadZipFile

import numpy as np

from .. import defaults
from ..codes import binary
from ..errors import SemhashError
from ..modality import MAX_QUERY_BYTES, named, of_source
from ..models.autoencoder import ENCODER_KERAS, load_model
from . import records as item_records
from . import store
from .backends import ANNOY, AnnoyBackend, backend_class, default_backend

# At most this many items at the k-th distance or nearer are weighed by `Index.reranked`.
RERANK_CANDIDATES = 10_000
CODES = "codes.npy"
PICKLED = "a .npy or .npz file is not numpy's format, and semhash reads no pickle"
# Files whose sha256 opening does not check: Annoy's (checked when Annoy is first asked for),
# Keras' (not read to answer queries) and, from format 3 on, the two that grow with the items,
# which would make opening read every byte: numpy's header check, the size check and the shape
# check make a damaged codes.npy safe to map, and SQLite meets damage in records.sqlite as an
# error (see `records`). `verify` checks them all.
NOT_HASHED_AT_OPEN = {1: (), 2: (ANNOY, ENCODER_KERAS), 3: (ANNOY, ENCODER_KERAS, CODES, item_records.SQLITE)}


class Index:
    """Binary codes of a text corpus or an image collection, with the means to encode and
    search new items.

    Build one with `Index.build(source)`, write it with `save(folder)`, read it back with
    `Index.open(folder)`, then `query(text or pixels)` or `like(item_id)` for the nearest items,
    `within(text or pixels, radius)` or `within_like(item_id, radius)` for every item within a
    Hamming radius. What differs between text and images is asked of `modality`.
    """

    def __init__(self, manifest, features, model, packed, records, annoy=None, folder=None):
        self.manifest = manifest
        self.features = features
        self.model = model
        self.packed = packed
        self.records = records
        self._annoy = annoy
        self._built = {}  # the backends other than Annoy, built over the codes on first use
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
        annoy = AnnoyBackend(trees, model.seed).build(bits, show_progress)
        manifest = {
            **manifest,
            "bits": model.bits,
            "training": {
                key: model.history_[key] for key in ("loss_before_finetuning", "loss_after_finetuning")
            },
        }
        return cls(manifest, features, model, binary.pack(bits), records, annoy)

    def save(self, folder):
        """Write the index to `folder` atomically (see `store`): a crash at any moment leaves an
        earlier index there whole, and nothing semhash did not write is replaced."""
        annoy = self.annoy()  # an opened index's Annoy file is read before a writer may remove it

        def write_files(data):
            written = {"features": self.features.save(data), "model": self.model.save(data)}
            np.save(data / CODES, self.packed, allow_pickle=False)
            item_records.write_sqlite(data / item_records.SQLITE, self.records)
            written["annoy"] = annoy.save(data)
            return written

        self.manifest = store.write(folder, self.manifest, write_files)
        self.folder = Path(folder)
        return self

    @classmethod
    def open(cls, folder):
        """Read an index written by `save`, checking its manifest, the size of every file, and the
        sha256 of each small file before it is parsed (see NOT_HASHED_AT_OPEN); the codes are
        memory-mapped and the records fetched by row, so that opening reads as little at 10
        million items as at 300. Annoy's file is checked when first asked for."""
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
        unchecked = NOT_HASHED_AT_OPEN[manifest["format_version"]]
        store.verify(folder, manifest, [name for name in manifest["files"] if name not in unchecked])
        n = manifest["counts"]["documents"]
        try:
            features = named(manifest["kind"]).features_class(manifest["features"]).load(data, manifest["features"])
            model = load_model(data, manifest["model"])
            packed = np.load(data / CODES, mmap_mode="r", allow_pickle=False)
            if manifest["format_version"] < 3:
                records = item_records.read_jsonl(data / item_records.JSONL)
        except FileNotFoundError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, EOFError, BadZipFile) as error:
            # numpy's advice for a file it takes for a pickle, to load it "unsafely", never fits here
            why = PICKLED if "allow_pickle" in str(error) else f"{type(error).__name__}: {error}"
            raise SemhashError(f"{folder} is damaged ({why}); {store.REBUILD}") from None
        if packed.dtype != np.uint8 or packed.shape != (n, (manifest["bits"] + 7) // 8) or not packed.flags.c_contiguous:
            raise SemhashError(f"{data / CODES} holds {packed.dtype} codes shaped {packed.shape} where the manifest "
                               f"says {n} of {manifest['bits']} bits; {store.REBUILD}")
        if manifest["format_version"] >= 3:
            records = item_records.SqliteRecords(data / item_records.SQLITE, n)
        elif len(records) != n:
            raise SemhashError(f"{folder} holds {len(records)} records where the manifest says {n}; {store.REBUILD}")
        return cls(manifest, features, model, packed, records, folder=folder)

    def verify(self):
        """Check every file of the index against the sha256 its manifest records, reading each
        in full: what opening leaves out (see NOT_HASHED_AT_OPEN). Format 1 records none."""
        store.verify(self.folder, self.manifest, list(self.manifest["files"]))

    def annoy(self):
        """The Annoy backend, read from the folder on first use, once its file has been checked
        (see `AnnoyBackend.load`)."""
        if self._annoy is None:
            data = store.data_folder(self.folder, self.manifest)
            if not (data / ANNOY).is_file():
                raise SemhashError(f"{self.folder} was replaced since it was opened; open it again")
            self._annoy = AnnoyBackend.load(data, self.manifest["annoy"], self.packed, self.bits,
                                            verify=lambda names: store.verify(self.folder, self.manifest, names))
        return self._annoy

    def encode(self, items):
        """Packed codes of new items: texts, or uint8 images shaped (rows, height, width, 3)."""
        return binary.pack(self.model.encode(self.features.transform(items)))

    def backend(self, name):
        """The search backend called `name` (see `backends.BACKENDS`): Annoy read from the folder
        (see `annoy`), the others built over the codes on first use and kept."""
        if name == AnnoyBackend.name:
            return self.annoy()
        if name not in self._built:
            self._built[name] = backend_class(name).load(None, {}, self.packed, self.bits)
        return self._built[name]

    def _backend_name(self, exact, backend):
        """The backend a search uses: `backend` by name; or, as before names, exact True for the
        scan and False for Annoy; by default the faster for the index's size (see
        `backends.default_backend`)."""
        if backend is not None and exact is not None:
            raise SemhashError("choose the search backend by exact or by name, not both")
        if backend is not None:
            return backend_class(backend).name
        if exact is None:
            return default_backend(len(self.packed))
        return "exact" if exact else AnnoyBackend.name

    def search(self, query, k=10, exact=None, search_k=None, backend=None):
        """Rows and Hamming distances of the `k` codes nearest to a packed `query`.

        backend: "exact" scans every code, "mih" probes multi-index hash tables (exact too, and
        faster at millions of codes), "annoy" asks Annoy (approximate). exact: the older way to
        choose, True for the scan and False for Annoy. With neither, the scan up to
        EXACT_SCAN_MAX codes, Annoy beyond (see `backends.default_backend`).
        search_k: the Annoy nodes to inspect, by default 10 x trees x k. Both are cut to
        what the index holds: k to its codes, search_k to every code in every tree.
        """
        name = self._backend_name(exact, backend)
        if name == AnnoyBackend.name:
            return self.annoy().search(query, k, search_k)
        return self.backend(name).search(query, k)

    def ball(self, query, radius, exact=None, backend=None):
        """Rows and Hamming distances of every code within `radius` bits of a packed `query`,
        by distance, then row; the backend is chosen as by `search`, except that Annoy, which
        may miss codes, gives way to multi-index hashing."""
        name = self._backend_name(exact, backend)
        return self.backend("mih" if name == AnnoyBackend.name else name).within(query, radius)

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

    def _projections(self, item, max_bytes):
        """The real values whose signs are the bits of `item`'s code: `item` is a text (of at most
        `max_bytes`) for an index of text, the pixels of an image (uint8, height x width x 3) for
        one of images."""
        return self.model.projections(self.modality.query_rows(self.features, item, max_bytes))[0]

    def query(self, item, k=10, exact=None, search_k=None, max_bytes=MAX_QUERY_BYTES, backend=None, rerank=True):
        """The `k` items whose codes are nearest to the code of `item` (see `_projections`); the
        backend is chosen as by `search`. With `rerank`, items at equal Hamming distance come in
        the order of their asymmetric distance to the query's real-valued code (see `reranked`)."""
        projections = self._projections(item, max_bytes)
        packed = binary.pack(projections[None] > 0)[0]
        rows, distances = self.search(packed, k, exact, search_k, backend)
        if rerank:
            rows, distances = self.reranked(projections, packed, rows, distances, exact, backend)
        return self._hits(rows, distances)

    def reranked(self, projections, packed, rows, distances, exact=None, backend=None):
        """`rows` and `distances` found for a query, ranked again: by Hamming distance, then by the
        asymmetric distance (`binary.asymmetric`: each disagreeing bit weighted by how far the
        query's real value lies from its cut), then by row. Learned codes repeat, so many items
        often share the k-th distance: all of them are weighed (up to RERANK_CANDIDATES), not only
        those the search happened to return; with Annoy, only those it returned."""
        if not len(rows):
            return rows, distances
        candidates, candidate_distances = rows, distances
        if self._backend_name(exact, backend) != AnnoyBackend.name:  # Annoy's answer is approximate anyway
            within = self.ball(packed, int(distances.max()), exact, backend)
            if len(within[0]) <= RERANK_CANDIDATES:  # else too many ties to weigh: order the ones found
                candidates, candidate_distances = within
        candidates, candidate_distances = self._by_asymmetric(projections, candidates, candidate_distances)
        return candidates[: len(rows)], candidate_distances[: len(rows)]

    def _by_asymmetric(self, projections, rows, distances):
        """`rows` by Hamming distance, then asymmetric distance to `projections`, then row."""
        weighed = binary.asymmetric(projections[None], self.packed[rows], self.bits)[0]
        order = np.lexsort((rows, weighed, distances))
        return rows[order], distances[order]

    def within(self, item, radius, exact=None, max_bytes=MAX_QUERY_BYTES, backend=None, rerank=True):
        """Every item whose code is within `radius` bits of the code of `item`, nearest first; ties
        by asymmetric distance with `rerank` (see `reranked`), else in index order (see `ball`)."""
        projections = self._projections(item, max_bytes)
        rows, distances = self.ball(binary.pack(projections[None] > 0)[0], radius, exact, backend)
        if rerank:
            rows, distances = self._by_asymmetric(projections, rows, distances)
        return self._hits(rows, distances)

    def _row(self, item_id):
        row = item_records.row_of(self.records, item_id)
        if row is not None:
            return row
        cifar = str(self.manifest["source"].get("kind", "")).startswith("cifar")
        how = "a batch and a position, like data_batch_1/0" if cifar else "paths relative to the indexed folder"
        raise SemhashError(f"no item {item_id!r} in {self.folder}; ids are {how}")

    def record(self, item_id):
        """The stored record of an indexed document or image."""
        return self.records[self._row(item_id)]

    def like(self, item_id, k=10, exact=None, search_k=None, backend=None):
        """The `k` items nearest to an indexed item, leaving the item itself out."""
        row = self._row(item_id)
        found, distances = self.search(self.packed[row], k + 1, exact, search_k, backend)
        keep = found != row
        return self._hits(found[keep][:k], distances[keep][:k])

    def within_like(self, item_id, radius, exact=None, backend=None):
        """Every item within `radius` bits of an indexed item, leaving the item itself out."""
        row = self._row(item_id)
        found, distances = self.ball(self.packed[row], radius, exact, backend)
        keep = found != row
        return self._hits(found[keep], distances[keep])

    def bit_balance(self):
        return binary.bit_balance(self.packed, self.bits)
