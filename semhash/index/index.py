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
    annoy.ann       an Annoy index with the Hamming metric (see `backends`)
"""

import collections
import itertools
import json
from pathlib import Path
from zipfile import BadZipFile

import numpy as np

from ..codes import binary
from ..errors import SemhashError
from ..features.patches import PatchFeatures
from ..features.pixels import PixelFeatures
from ..features.text import TextFeatures
from ..models.autoencoder import ENCODER_KERAS, IMAGE_DEFAULTS, StackedAutoencoder, load_model
from ..progress import progress_bar
from . import store
from .backends import ANNOY, AnnoyBackend, ExactScan, default_backend

RECORDS = "records.jsonl"
CODES = "codes.npy"
# A query text is read whole and tokenized at once, so its time and memory grow with it: 1 MiB
# holds some 150,000 English words or 350,000 Chinese characters, far more than a description of
# what to find needs, and tokenizes in about 2 s; a longer query is refused, not read on.
MAX_QUERY_BYTES = 1 << 20
PICKLED = "a .npy or .npz file is not numpy's format, and semhash reads no pickle"
IMAGE_FEATURES = {features.kind: features for features in (PatchFeatures, PixelFeatures)}


def image_features(arch="dense", kind=None, size=(32, 32), verbose=False, **params):
    """Unfitted image features of `kind` ("patches" or "pixels"), by default those that suit the
    model: patch features for the dense model, pixels for the conv model, which reads images."""
    kind = kind or ("pixels" if arch == "conv" else "patches")
    if kind not in IMAGE_FEATURES:
        raise SemhashError(f"image features are {' or '.join(IMAGE_FEATURES)}, not {kind!r}")
    if arch == "conv" and kind != "pixels":
        raise SemhashError("the conv model reads pixels, not patch features; use pixels or the dense model")
    if kind == "pixels":
        if params:
            raise SemhashError(f"{', '.join(params)} only apply to patch features, not pixels")
        return PixelFeatures(size=size)
    return PatchFeatures(size=size, verbose=verbose, **params)


def check_query_size(query, limit=MAX_QUERY_BYTES, setting="max_bytes"):
    """Refuse a query over `limit` bytes (bytes as read, a str as UTF-8), naming the `setting` that raises it."""
    if len(query) > limit or (isinstance(query, str) and len(query.encode("utf-8", "surrogatepass")) > limit):
        raise SemhashError(f"the query is over the limit of {limit:,} bytes; shorten it or raise {setting}")


def _features_class(manifest):
    """The features an index's manifest names; image indexes from before patch features hold pixels."""
    if manifest["kind"] == "text":
        return TextFeatures
    return IMAGE_FEATURES[manifest["features"].get("type", "pixels")]


class Index:
    """Binary codes of a text corpus or an image collection, with the means to encode and
    search new items.

    Build one with `Index.build(corpus)` or `Index.build_images(images)`, write it with
    `save(folder)`, read it back with `Index.open(folder)`, then `query(text)`,
    `query_image(pixels)` or `like(item_id)`.
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

    def __len__(self):
        return len(self.records)

    @classmethod
    def build(cls, corpus, features=None, model=None, trees=32, show_progress=False):
        """Tokenize `corpus` (a TextCorpus), train the model, encode, and build Annoy.

        show_progress: bars for tokenizing and building Annoy, and for training when the
        model is the default one (a model passed in keeps its own `verbose`).
        """
        features = features if features is not None else TextFeatures()
        model = model if model is not None else StackedAutoencoder(verbose=show_progress)
        n_files = len(corpus.paths())
        if n_files == 0:
            raise SemhashError(
                f"no files matching {', '.join(corpus.patterns)} under {corpus.root}; "
                "point at a folder of text files or choose them with --glob"
            )
        records = []

        def texts():
            with progress_bar("tokenizing", length=n_files, show=show_progress) as bar:
                for document in corpus:
                    records.append(document.record())
                    bar.update(1)
                    yield document.text

        try:
            X = features.fit_transform(texts())
        except SemhashError:
            if not records:
                reasons = collections.Counter(item.key for item in corpus.skipped)
                raise SemhashError(
                    f"no readable documents under {corpus.root}: {len(corpus.skipped)} files skipped "
                    f"({', '.join(f'{reason} {count}' for reason, count in reasons.items())}); add text files"
                ) from None
            raise
        skipped = collections.Counter(item.key for item in corpus.skipped)
        has_terms = np.diff(X.indptr) > 0
        if not has_terms.all():
            for record in itertools.compress(records, ~has_terms):
                if corpus.on_warning is not None:
                    corpus.on_warning(f"skipped {record['path']}: no terms: only stop words, numbers or words "
                                      "left out of the vocabulary")
            X = X[has_terms]
            records = list(itertools.compress(records, has_terms))
            skipped["no terms"] = int(np.count_nonzero(~has_terms))
        manifest = {
            "kind": "text",
            "source": {"root": str(Path(corpus.root).resolve()), "patterns": list(corpus.patterns)},
            "counts": {
                "documents": len(records),
                "skipped": dict(skipped),
                "decoded_with_replacements": len(corpus.fallbacks),
                "truncated": len(corpus.truncated),
            },
        }
        return cls._trained(manifest, X, features, model, records, trees, show_progress)

    @classmethod
    def build_images(cls, images, features=None, model=None, trees=32, show_progress=False):
        """Read `images` (a reader from `semhash.images`), train the model, encode, build Annoy.

        The pixels are held in memory as uint8 while training (150 MB for CIFAR-10's 50,000
        training images) and not stored in the index: each record names its source.
        """
        features = features if features is not None else image_features(size=images.size, verbose=show_progress)
        if model is None:
            model = StackedAutoencoder(**IMAGE_DEFAULTS["dense", features.kind], verbose=show_progress)
        chunks, records = [], []
        with progress_bar("reading images", length=len(images), show=show_progress) as bar:
            for batch in images:
                chunks.append(batch.pixels)
                records.extend(
                    {"id": id_, "label": label, "source": source}
                    for id_, label, source in zip(batch.ids, batch.labels, batch.sources)
                )
                bar.update(len(batch.ids))
        if not records:
            raise SemhashError(
                f"no readable images in {images.root} ({len(images.skipped)} files skipped); "
                "point at a folder of images or a CIFAR-10 archive"
            )
        X = features.fit_transform(np.concatenate(chunks))
        del chunks
        manifest = {
            "kind": "images",
            "source": images.describe(),
            "counts": {
                "documents": len(records),
                "skipped": dict(collections.Counter(item.key for item in images.skipped)),
            },
        }
        return cls._trained(manifest, X, features, model, records, trees, show_progress)

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
            with open(data / RECORDS, "w", encoding="utf-8") as out:
                for record in self.records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written["annoy"] = annoy.save(data)
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
            features = _features_class(manifest).load(data, manifest["features"])
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
        """The Annoy backend, read from the folder on first use, once its file has been checked
        (see `AnnoyBackend.load`)."""
        if self._annoy is None:
            data = store.data_folder(self.folder, self.manifest)
            if not (data / ANNOY).is_file():
                raise SemhashError(f"{self.folder} was replaced since it was opened; open it again")
            self._annoy = AnnoyBackend.load(data, self.manifest["annoy"], self.packed, self.bits,
                                            verify=lambda names: store.verify(self.folder, self.manifest, names))
        return self._annoy

    def _expect_kind(self, kind, how):
        if self.manifest["kind"] != kind:
            raise SemhashError(f"{self.folder} is an index of {self.manifest['kind']}; {how}")

    def encode(self, texts):
        """Packed codes of new texts, and how many known terms each had."""
        self._expect_kind("text", "query it with an image or --like ID")
        X = self.features.transform(texts)
        return binary.pack(self.model.encode(X)), np.diff(X.indptr)

    def encode_images(self, images):
        """Packed codes of new uint8 images shaped (rows, height, width, 3)."""
        self._expect_kind("images", "query it with text or --like ID")
        return binary.pack(self.model.encode(self.features.transform(images)))

    def search(self, query, k=10, exact=None, search_k=None):
        """Rows and Hamming distances of the `k` codes nearest to a packed `query`.

        exact: True scans every code, False asks Annoy, None (the default) scans where
        that is faster: up to EXACT_SCAN_MAX codes (see `backends.default_backend`).
        search_k: the Annoy nodes to inspect, by default 10 x trees x k. Both are cut to
        what the index holds: k to its codes, search_k to every code in every tree.
        """
        if exact is None:
            exact = default_backend(len(self.packed)) == "exact"
        if exact:
            return ExactScan(self.packed).search(query, k)
        return self.annoy().search(query, k, search_k)

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

    def query(self, text, k=10, exact=None, search_k=None, max_bytes=MAX_QUERY_BYTES):
        """The `k` documents whose codes are nearest to the code of `text`, of at most `max_bytes`."""
        check_query_size(text, max_bytes)
        packed, known = self.encode([text])
        if known[0] == 0:
            raise SemhashError("none of the query's words are in the index's vocabulary; try other words")
        return self._hits(*self.search(packed[0], k, exact, search_k))

    def query_image(self, image, k=10, exact=None, search_k=None):
        """The `k` images whose codes are nearest to the code of `image` (uint8, height x width x 3)."""
        return self._hits(*self.search(self.encode_images(image[None])[0], k, exact, search_k))

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
