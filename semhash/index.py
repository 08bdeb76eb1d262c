"""An index folder: the fitted features and encoder, the codes, the records and Annoy.

Layout (all written into a temporary folder, then renamed into place):
    manifest.json   format version, settings, counts and the size of every other file
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

import collections
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np

from . import __version__, codes
from .errors import SemhashError
from .features import TextFeatures
from .model import IMAGE_DEFAULTS, StackedAutoencoder, load_model
from .patches import PatchFeatures
from .pixels import PixelFeatures
from .progress import progress_bar

FORMAT = "semhash-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
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


def _features_class(manifest):
    """The features an index's manifest names; image indexes from before patch features hold pixels."""
    if manifest["kind"] == "text":
        return TextFeatures
    return IMAGE_FEATURES[manifest["features"].get("type", "pixels")]


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C back until the block is done, so a swap of folders is never cut in two."""
    pending = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *args: pending.append(args))
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt


def _replace_folder(source, target):
    """Move the finished folder `source` to `target`, replacing an earlier index there."""
    if target.exists() and not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise SemhashError(f"{target} exists and is not a semhash index; choose another --output")
    with _interrupts_deferred():
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging_folder(target):
    """A new empty folder beside `target`, with the permissions a plain mkdir would give."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


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


def _zero_unread_annoy_bytes(path, n_bits):
    """Zero the bytes of a saved Hamming Annoy file that Annoy never reads, so that one seed
    gives one file: Annoy builds each split node in uninitialised stack memory and sets only
    its first code word, leaving the struct's padding and the other words to chance.

    The layout is annoylib's Node<int32, uint64>: n_descendants, children[2], 4 bytes of
    padding, then the code words. A file that does not fit that layout is left as it is."""
    node_size = 16 + 8 * -(-n_bits // 64)
    size = path.stat().st_size
    if not size or size % node_size:
        return
    nodes = np.memmap(path, dtype=np.uint8, mode="r+").reshape(-1, node_size)
    header = nodes[:, :12].copy().view("<i4")  # n_descendants, children[0], children[1]
    descendants, children = header[:, 0], header[:, 1:]
    split = descendants > (node_size - 4) // 4  # fewer descendants: a list of them in place of the vector
    if np.any(descendants < 1) or np.any((children[split] < 0) | (children[split] >= len(nodes))):
        return
    nodes[split, 12:16] = 0
    nodes[split, 24:] = 0
    nodes.flush()


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
        annoy = build_annoy(bits, trees, model.seed, show_progress)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "semhash_version": __version__,
            **manifest,
            "bits": model.bits,
            "annoy": {"metric": "hamming", "trees": trees, "seed": model.seed},
            "training": {
                key: model.history_[key] for key in ("loss_before_finetuning", "loss_after_finetuning")
            },
        }
        return cls(manifest, features, model, codes.pack(bits), records, annoy)

    def save(self, folder):
        """Write the index to `folder` atomically: a crash leaves any earlier index whole."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = _staging_folder(folder)
        try:
            manifest = dict(self.manifest)
            manifest["features"] = self.features.save(staging)
            manifest["model"] = self.model.save(staging)
            np.save(staging / CODES, self.packed, allow_pickle=False)
            with open(staging / RECORDS, "w", encoding="utf-8") as out:
                for record in self.records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._annoy.save(str(staging / ANNOY))
            _zero_unread_annoy_bytes(staging / ANNOY, self.manifest["bits"])
            manifest["files"] = {
                path.name: path.stat().st_size for path in sorted(staging.iterdir()) if path.name != MANIFEST
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _replace_folder(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.manifest = manifest
        self.folder = folder
        return self

    @staticmethod
    def read_manifest(folder):
        """The manifest of the index in `folder`, checked, or a SemhashError saying what to do."""
        folder = Path(folder)
        rebuild = "rebuild it with `semhash index`"
        if not folder.is_dir():
            raise SemhashError(f"no index at {folder}; build one with `semhash index DIR`")
        path = folder / MANIFEST
        if not path.is_file():
            raise SemhashError(f"{folder} is not a semhash index (no {MANIFEST}); {rebuild}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise SemhashError(f"{path} is corrupt ({error}); {rebuild}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise SemhashError(f"{path} is not a semhash manifest; {rebuild}")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise SemhashError(
                f"{folder} has index format {version}, this semhash {__version__} reads format "
                f"{FORMAT_VERSION}; {rebuild}"
            )
        files = manifest.get("files")
        if not isinstance(files, dict) or not all(isinstance(size, int) for size in files.values()):
            raise SemhashError(f"{path} does not list the index's files; {rebuild}")
        for name, size in files.items():
            file = folder / name
            if not file.is_file():
                raise SemhashError(f"{file} is missing; {rebuild}")
            if file.stat().st_size != size:
                raise SemhashError(f"{file} has {file.stat().st_size} bytes, the manifest says {size}; {rebuild}")
        return manifest

    @classmethod
    def open(cls, folder):
        """Read an index written by `save`, checking its manifest and files."""
        folder = Path(folder)
        manifest = cls.read_manifest(folder)
        try:
            features = _features_class(manifest).load(folder, manifest["features"])
            model = load_model(folder, manifest["model"])
            packed = np.load(folder / CODES, allow_pickle=False)
            with open(folder / RECORDS, encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines]
            n = manifest["counts"]["documents"]
            expected_shape = (n, (manifest["bits"] + 7) // 8)
        except (KeyError, TypeError, ValueError, OSError) as error:
            raise SemhashError(f"{folder} is damaged ({type(error).__name__}: {error}); rebuild it with `semhash index`") from None
        if packed.shape != expected_shape or len(records) != n:
            raise SemhashError(
                f"{folder} holds {len(records)} records and {packed.shape[0]} codes where the manifest "
                f"says {n}; rebuild it with `semhash index`"
            )
        return cls(manifest, features, model, packed, records, folder=folder)

    def annoy(self):
        """The Annoy index, memory-mapped from the folder on first use."""
        if self._annoy is None:
            self._annoy = _annoy(self.bits)
            try:
                self._annoy.load(str(self.folder / ANNOY))
            except OSError as error:
                raise SemhashError(f"{self.folder / ANNOY} cannot be read ({error}); rebuild the index") from None
        return self._annoy

    def _expect_kind(self, kind, how):
        if self.manifest["kind"] != kind:
            raise SemhashError(f"{self.folder} is an index of {self.manifest['kind']}; {how}")

    def encode(self, texts):
        """Packed codes of new texts, and how many known terms each had."""
        self._expect_kind("text", "query it with an image or --like ID")
        X = self.features.transform(texts)
        return codes.pack(self.model.encode(X)), np.diff(X.indptr)

    def encode_images(self, images):
        """Packed codes of new uint8 images shaped (rows, height, width, 3)."""
        self._expect_kind("images", "query it with text or --like ID")
        return codes.pack(self.model.encode(self.features.transform(images)))

    def search(self, query, k=10, exact=None, search_k=None):
        """Rows and Hamming distances of the `k` codes nearest to a packed `query`.

        exact: True scans every code, False asks Annoy, None (the default) scans where
        that is faster: up to EXACT_SCAN_MAX codes. search_k: the Annoy nodes to inspect,
        by default 10 x trees x k.
        """
        if exact is None:
            exact = len(self.packed) <= EXACT_SCAN_MAX
        if exact:
            return codes.nearest(self.packed, query, k)
        if search_k is None:
            search_k = SEARCH_NODES_PER_RESULT_AND_TREE * self.manifest["annoy"]["trees"] * k
        bits = codes.unpack(query[None, :], self.bits)[0].astype(np.float32)
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

    def query(self, text, k=10, exact=None, search_k=None):
        """The `k` documents whose codes are nearest to the code of `text`."""
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
        return codes.bit_balance(self.packed, self.bits)
