"""An index: the fitted features and encoder, and the shards of codes and records they made.

Its data files, in the generation folder its manifest names (see `store`):
    shard-NNNNNN/   the codes, records, deleted rows and stored search structures of a shard of
                    the items (see `shards`); indexes before format 4 hold one set of them beside
                    the files below: codes.npy, records.sqlite (records.jsonl before format 3)
                    and annoy.ann
    vocabulary.txt  text: the terms, one a line with its document frequency
    lexicon.npz     text: jieba's word frequencies, so queries segment exactly as indexing did
    patches.npz     images described by patch features: whitening, centroids, column statistics, axes
    pixels.npz      images taken as pixels: the per-channel mean and deviation that standardize them
    encoder.keras   the encoder in Keras' format
    encoder.npz     the same encoder's weights and bit thresholds, for numpy inference
"""

import time
from pathlib import Path
from zipfile import BadZipFile

import numpy as np

from .. import defaults
from ..codes import binary
from ..errors import SemhashError
from ..modality import MAX_QUERY_BYTES, named, of_source
from ..models.autoencoder import ENCODER_KERAS, load_model
from ..models.selfcheck import coder_name
from . import records as item_records
from . import store
from .backends import ANNOY, MIH_FILES, AnnoyBackend, backend_class, create, default_backend
from .shards import CODES, PICKLED, PROJECTIONS, Shard, ShardedRecords, merged, shard_name

# Past this many shards, `update` merges the shards after the first into one; a shard whose rows
# are more than this share removed is written again without them (see `Index._compact`).
MAX_SHARDS = 8
MAX_REMOVED_SHARE = 0.5
# `Index.drift` recommends retraining past these (see docs/RESULTS.md, "Live indexes"): a share
# of the items the model never saw, a rise in the mean distance of the bits' balance from .5 over
# the training codes', and a share of new documents' terms outside the vocabulary.
DRIFT_LIMITS = {"unseen_share": 0.25, "bit_balance_deviation": 0.05, "unknown_term_share": 0.3}
# At most this many items at the k-th distance or nearer are weighed by `Index.reranked`.
RERANK_CANDIDATES = 10_000
# Files whose sha256 opening does not check (by name, in whichever folder): Annoy's and the
# multi-index tables (checked or bounded when first asked for), Keras' (not read to answer
# queries) and, from format 3 on, those that grow with the items, which would make opening read
# every byte: numpy's header check, the size check and the shape check make a damaged codes.npy
# safe to map, and SQLite meets damage in records.sqlite as an error (see `records`). `verify`
# checks them all.
GROWING = (ANNOY, ENCODER_KERAS, CODES, PROJECTIONS, item_records.SQLITE, *MIH_FILES)
NOT_HASHED_AT_OPEN = {1: (), 2: (ANNOY, ENCODER_KERAS), 3: GROWING, 4: GROWING, 5: GROWING}


class Index:
    """Binary codes of a text corpus or an image collection, with the means to encode and
    search new items.

    Build one with `Index.build(source)`, write it with `save(folder)`, read it back with
    `Index.open(folder)`, then `query(text or pixels)` or `like(item_id)` for the nearest items,
    `within(text or pixels, radius)` or `within_like(item_id, radius)` for every item within a
    Hamming radius. What differs between text and images is asked of `modality`.
    """

    def __init__(self, manifest, features, model, shards, folder=None):
        self.manifest = manifest
        self.features = features
        self.model = model
        self.shards = list(shards)
        self.records = ShardedRecords(self.shards)  # every row's record, by row across the shards
        self.folder = folder

    @property
    def bits(self):
        return self.manifest["bits"]

    @property
    def modality(self):
        """The modality of the items: text or images (see `semhash.modality`)."""
        return named(self.manifest["kind"])

    def __len__(self):
        """The items the index holds (removed ones left out)."""
        return sum(shard.live for shard in self.shards)

    @property
    def packed(self):
        """Every row's packed code, in row order: the one shard's codes, memory-mapped, or a copy
        of all the shards' codes end to end."""
        if len(self.shards) == 1:
            return self.shards[0].packed
        return np.concatenate([shard.packed for shard in self.shards])

    def codes(self, rows):
        """The packed codes of `rows`, gathered from their shards."""
        return self._gathered(rows, lambda shard, local: shard.packed[local])

    def projections(self, rows):
        """The real-valued codes (float16) of `rows`, or None where a shard keeps none (written
        before they were stored)."""
        if any(shard.projections is None for shard in self.shards):
            return None
        return self._gathered(rows, Shard.projection_rows)

    def _gathered(self, rows, rows_of):
        """`rows_of(shard, its rows)` for the shards holding `rows`, in the order asked."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.shards) == 1:
            return rows_of(self.shards[0], rows)
        offsets = self.records.offsets
        numbers = np.searchsorted(offsets, rows, side="right") - 1
        first = rows_of(self.shards[0], rows[:0])
        gathered = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
        for number in np.unique(numbers):
            inside = numbers == number
            gathered[inside] = rows_of(self.shards[number], rows[inside] - offsets[number])
        return gathered

    def live_rows(self):
        """The rows of the items the index holds, ascending."""
        return np.concatenate([shard.live_rows() + offset for shard, offset in zip(self.shards, self.records.offsets)])

    @classmethod
    def build(cls, source, features=None, model=None, trees=defaults.TREES, backend=None, show_progress=False):
        """Read `source` (a TextCorpus, an ImageFolder or a CIFAR-10 reader), fit the features and the
        model, and encode every item.

        features, model: unfitted, by default those of the source's modality (see `defaults`); a
        model may be a `SelfChecked` one (see `defaults.coder`), and the index keeps the coder it chose.
        trees: Annoy's, where it is asked for. backend: the search backend queries use unless
        told, whose structures `save` stores; by default the fastest for the index's size (see
        `backends.default_backend`).
        show_progress: bars for reading, and for training when the model is the default one (a
        model passed in keeps its own `verbose`).
        """
        modality = of_source(source)
        features = features if features is not None else modality.default_features(source, show_progress)
        if model is None:
            model = defaults.coder(modality.name, defaults.model(modality.name, features=features.kind,
                                                                 verbose=show_progress))  # the default coder
        X, records, described = modality.read(source, features, show_progress)
        return cls._trained({"kind": modality.name, **described}, X, features, model, records, trees, backend)

    @classmethod
    def _trained(cls, manifest, X, features, model, records, trees, backend=None):
        """Fit `model` on the feature rows X and encode them, as one shard."""
        model, trained = fitted_coder(model.fit(X))
        shard = Shard.of_projections(model.projections(X), records, model.bits)
        manifest = {
            **manifest,
            "bits": model.bits,
            "training": {**trained.pop("training"),
                         "bit_balance_deviation": binary.balance_deviation(binary.bit_balance(shard.packed, model.bits))},
            **trained,
            "backend": chosen_backend(len(shard), backend, trees, model.seed),
        }
        return cls(manifest, features, model, [shard])

    def save(self, folder, show_progress=False):
        """Write the index to `folder` atomically (see `store`): a crash at any moment leaves an
        earlier index there whole, and nothing semhash did not write is replaced. Each shard's
        files already written are linked into the new generation of the same folder, copied to
        another; the default backend's structures are stored with each shard (Annoy's built here
        when not yet, with a progress bar)."""
        same = self.folder is not None and Path(folder).resolve() == self.folder.resolve()
        self.manifest = store.write(folder, self._current_manifest(), self._files_writer(same, show_progress))
        self.folder = Path(folder)
        return self

    def _current_manifest(self):
        return {**self.manifest, "counts": {**self.manifest["counts"], "documents": len(self)}}

    def _files_writer(self, link, show_progress):
        """What fills a generation folder with the index (see `store.write`): the features, the
        model, and each shard in order with the default backend's structures."""
        backend = self.manifest["backend"]

        def write_files(data):
            written = {"features": self.features.save(data), "model": self.model.save(data), "shards": []}
            for number, shard in enumerate(self.shards):
                name = shard_name(number)
                made = create(backend["name"], **backend["settings"])
                entry = shard.write(data / name, made, link=link, show_progress=show_progress)
                written["shards"].append({"name": name, **entry})
            return written

        return write_files

    def update(self, source, remove_missing=True, show_progress=False):
        """Bring the saved index up to date with `source`, the corpus it was built from (or some of
        its files: `source.only(ids)`), without training again: the files are told apart by id
        and sha256; new and changed ones are read and encoded with the stored features and model
        into a new shard, changed and (with `remove_missing`) vanished ones removed, all in one
        atomic write (none when nothing changed). Files read and left out (binary, empty, no
        known terms) are remembered by their sha256, and read again only once they change.
        Readers see the index before or after, never between. Returns the report: added,
        changed, removed, unchanged, skipped, seconds, and `drift` (see `drift`)."""
        started = time.perf_counter()
        with store.writing(self._saved_folder()) as write:
            current = Index.open(self.folder)  # the latest generation, read under the writer lock
            stored = current._fingerprints()
            seen = dict(source.fingerprints())
            # files read before and left out (binary, empty, no known terms), by the sha256 read then
            before = current.manifest.get("unindexed", {})
            unindexed = {item: digest for item, digest in before.items() if seen.get(item, digest) == digest}
            new = [item for item in seen if item not in stored and unindexed.get(item) != seen[item]]
            changed = [item for item in seen if item in stored and stored[item][1] != seen[item]]
            removed = [item for item in stored if item not in seen] if remove_missing else []
            report = {"added": 0, "changed": len(changed), "removed": len(removed),
                      "unchanged": sum(1 for item in seen if item in stored and stored[item][1] == seen[item]),
                      "skipped": {}}
            tally, records = {}, []
            if new or changed:
                X, records, read = current.modality.read_more(source.only(new + changed), current.features,
                                                              show_progress)
                report["skipped"], tally = read.pop("skipped"), read
                current._delete([stored[item][0] for item in changed])
                if records:
                    current._grow(Shard.of_projections(current.model.projections(X), records, current.bits,
                                                       trained=False))
                indexed = {record["id"] for record in records}
                report["added"] = len(indexed - set(changed))
                unindexed.update((item, seen[item]) for item in new + changed if item not in indexed)
            current._delete([stored[item][0] for item in removed])
            if remove_missing:
                unindexed = {item: digest for item, digest in unindexed.items() if item in seen}
            if records or changed or removed or unindexed != before:
                current._changed(tally)
                current.manifest = {**current.manifest, "unindexed": unindexed}
                current.manifest = write(current._current_manifest(), current._files_writer(True, show_progress))
                drift = current.manifest["drift"]  # as `_changed` measured it, not counted again
            else:
                drift = current.drift()
        self._become(current)
        return {**report, "seconds": round(time.perf_counter() - started, 2), "drift": drift}

    def add(self, source, show_progress=False):
        """Add the items of `source` (new ones, or changed ones again) to the saved index: `update`
        that removes nothing."""
        return self.update(source, remove_missing=False, show_progress=show_progress)

    def remove(self, ids):
        """Remove the items `ids` from the saved index, in one atomic write; an id it does not hold
        is an error, and nothing is removed then. Returns how many were removed."""
        ids = list(dict.fromkeys(ids))
        with store.writing(self._saved_folder()) as write:
            current = Index.open(self.folder)
            rows = [current.records.row_of(item) for item in ids]
            missing = [item for item, row in zip(ids, rows) if row is None]
            if missing:
                raise SemhashError(f"no item {missing[0]!r} in {self.folder}"
                                   + (f" (nor {len(missing) - 1} more of the ids given)" if len(missing) > 1 else "")
                                   + "; nothing was removed")
            current._delete(rows)
            current._changed()
            current.manifest = write(current._current_manifest(), current._files_writer(True, False))
        self._become(current)
        return len(rows)

    def _changed(self, tally=None):
        """After items were added or removed: compact the shards, choose the default backend again
        where it was chosen by size, and record the drift (`tally`: the terms of new documents)."""
        self._compact()
        backend = self.manifest["backend"]
        if backend["chosen"] == "by size":
            backend = chosen_backend(len(self), None, **backend["settings"])
        self.manifest = {**self.manifest, "backend": backend, "drift": self.drift(tally)}

    def _saved_folder(self):
        if self.folder is None:
            raise SemhashError("this index has not been saved; save it before changing it in place")
        return self.folder

    def _become(self, other):
        """Take on the state of `other`, the same index read or written again."""
        self.__dict__.update(other.__dict__)

    def _fingerprints(self):
        """{id: (row, sha256)} of every item the index holds."""
        stored = {}
        for shard, offset in zip(self.shards, self.records.offsets):
            deleted = set(shard.deleted.tolist())
            for row, item, digest in item_records.fingerprints(shard.records):
                if row not in deleted:
                    stored[item] = (int(offset) + row, digest)
        return stored

    def _grow(self, shard):
        """Add a shard after the others."""
        self.shards.append(shard)
        self.records = ShardedRecords(self.shards)

    def _delete(self, rows):
        """Mark the index's `rows` removed, each in its shard."""
        for row in rows:
            shard, local = self.records.locate(row)
            shard.delete([local])

    def _compact(self):
        """Keep removed rows and small shards from slowing every search: a shard whose rows are
        mostly removed (over MAX_REMOVED_SHARE) is written again without them, one wholly removed
        is dropped, and past MAX_SHARDS the shards after the first are merged into one."""
        shards = [shard for shard in self.shards if shard.live]
        shards = [merged([shard], self.bits) if len(shard.deleted) > MAX_REMOVED_SHARE * len(shard) else shard
                  for shard in shards]
        if len(shards) > MAX_SHARDS:
            shards = [shards[0], merged(shards[1:], self.bits)]
        self.shards = shards or [Shard(np.empty((0, (self.bits + 7) // 8), np.uint8), [], self.bits)]
        self.records = ShardedRecords(self.shards)

    def drift(self, tally=None):
        """How far the index has moved from what its model was fitted on, and whether to retrain:
        the share of its items the model never saw (added or changed since training), how far the
        bits' balance has moved from .5 on average, against the balance of the codes the model was
        trained with, and, for text, the share of the last added documents' terms outside the
        vocabulary. Past DRIFT_LIMITS, `retrain` is True."""
        unseen = sum(shard.live for shard in self.shards if not shard.trained)
        trained = self.manifest.get("training", {}).get("bit_balance_deviation")
        drift = {"unseen_items": unseen, "unseen_share": round(unseen / max(len(self), 1), 4),
                 "bit_balance_deviation": binary.balance_deviation(self.bit_balance()) if len(self) else None,
                 "bit_balance_deviation_at_training": trained}
        last = self.manifest.get("drift", {}).get("unknown_term_share")
        if tally and tally.get("terms"):
            last = round(tally["unknown_terms"] / tally["terms"], 4)
        if last is not None:
            drift["unknown_term_share"] = last
        reasons = [name for name, limit in DRIFT_LIMITS.items()
                   if drift.get(name) is not None and drift[name] - (drift.get(f"{name}_at_training") or 0) > limit]
        return {**drift, "retrain": bool(reasons), "reasons": reasons}

    @classmethod
    def open(cls, folder):
        """Read an index written by `save`, checking its manifest, the size of every file, and the
        sha256 of each small file before it is parsed (see NOT_HASHED_AT_OPEN); the codes are
        memory-mapped and the records fetched by row, so that opening reads as little at 10
        million items as at 300. Stored search structures are read when first asked for."""
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
        version = manifest["format_version"]
        unchecked = NOT_HASHED_AT_OPEN[version]
        store.verify(folder, manifest, [name for name in manifest["files"] if Path(name).name not in unchecked])
        n, n_bits = manifest["counts"]["documents"], manifest["bits"]
        try:
            features = named(manifest["kind"]).features_class(manifest["features"]).load(data, manifest["features"])
            model = load_model(data, manifest["model"])
            if version >= 4:
                shards = [Shard.open(data / entry["name"], entry, n_bits) for entry in manifest["shards"]]
            else:  # one shard of the files beside the others, and Annoy's always
                records = item_records.read_jsonl(data / item_records.JSONL) if version < 3 else None
                entry = {"items": n, "deleted": 0, "backends": {AnnoyBackend.name: manifest["annoy"]}}
                shards = [Shard.open(data, entry, n_bits, records)]
                annoy = manifest["annoy"]
                manifest = {**manifest, "backend": chosen_backend(n, None, annoy.get("trees"), annoy.get("seed"))}
        except FileNotFoundError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, EOFError, BadZipFile) as error:
            # numpy's advice for a file it takes for a pickle, to load it "unsafely", never fits here
            why = PICKLED if "allow_pickle" in str(error) else f"{type(error).__name__}: {error}"
            raise SemhashError(f"{folder} is damaged ({why}); {store.REBUILD}") from None
        return cls(manifest, features, model, shards, folder=folder)

    def verify(self):
        """Check every file of the index against the sha256 its manifest records, reading each
        in full: what opening leaves out (see NOT_HASHED_AT_OPEN). Format 1 records none."""
        store.verify(self.folder, self.manifest, list(self.manifest["files"]))

    def _verify(self, paths):
        """Check the files at `paths`, in the index's generation folder, against their sha256."""
        data = store.data_folder(self.folder, self.manifest)
        store.verify(self.folder, self.manifest, [Path(path).relative_to(data).as_posix() for path in paths])

    def encode(self, items):
        """Packed codes of new items: texts, or uint8 images shaped (rows, height, width, 3)."""
        return binary.pack(self.model.encode(self.features.transform(items)))

    def backend_settings(self, name):
        """The settings a backend called `name` is made with where an index stores none of it:
        Annoy's trees and seed as the index records them."""
        return self.manifest["backend"]["settings"] if name == self.manifest["backend"]["name"] else (
            {"trees": defaults.TREES, "seed": self.model.seed} if name == AnnoyBackend.name else {})

    def _backend_name(self, exact, backend):
        """The backend a search uses: `backend` by name; or, as before names, exact True for the
        scan and False for Annoy; by default the one the manifest records (see `chosen_backend`)."""
        if backend is not None and exact is not None:
            raise SemhashError("choose the search backend by exact or by name, not both")
        if backend is not None:
            return backend_class(backend).name
        if exact is None:
            return self.manifest["backend"]["name"]
        return "exact" if exact else AnnoyBackend.name

    def _merged(self, found, k=None):
        """The rows (of the index) and distances found in each shard, as (local rows, distances)
        pairs in shard order, merged by distance, then row, and cut to `k`."""
        offsets = self.records.offsets
        rows = np.concatenate([local + offset for (local, _), offset in zip(found, offsets)])
        distances = np.concatenate([distances for _, distances in found])
        if len(found) > 1:
            order = np.lexsort((rows, distances))
            rows, distances = rows[order], distances[order]
        return rows[:k], distances[:k]

    def search(self, query, k=10, exact=None, search_k=None, backend=None):
        """Rows and Hamming distances of the `k` codes nearest to a packed `query`, over every shard.

        backend: "exact" scans every code, "mih" probes multi-index hash tables (exact too, and
        faster at millions of codes), "annoy" asks Annoy (approximate). exact: the older way to
        choose, True for the scan and False for Annoy. With neither, the one the index records.
        search_k: the Annoy nodes to inspect in each shard, by default 10 x trees x k. Both are cut
        to what the index holds: k to its codes, search_k to every code in every tree.
        """
        if k < 1:
            raise SemhashError(f"k is the number of results; give 1 or more, not {k}")
        name = self._backend_name(exact, backend)
        settings = self.backend_settings(name)
        return self._merged([shard.search(query, k, name, search_k, settings, self._verify) for shard in self.shards], k)

    def ball(self, query, radius, exact=None, backend=None):
        """Rows and Hamming distances of every code within `radius` bits of a packed `query`,
        by distance, then row; the backend is chosen as by `search`, except that Annoy, which
        may miss codes, gives way to multi-index hashing."""
        name = self._backend_name(exact, backend)
        name = "mih" if name == AnnoyBackend.name else name
        settings = self.backend_settings(name)
        return self._merged([shard.within(query, radius, name, settings, self._verify) for shard in self.shards])

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
        query's real value lies from its cut), then, among identical codes, by the cosine distance
        between the query's real-valued code and the item's (where the index stores them), then by
        row. Learned codes repeat, so many items
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
        """`rows` by Hamming distance, then asymmetric distance to `projections`, then cosine
        distance to the items' real-valued codes where they are stored, then row. The asymmetric
        distance is weighed once for each distinct code, so identical codes tie exactly."""
        distinct, code_of = np.unique(self.codes(rows), axis=0, return_inverse=True)
        weighed = binary.asymmetric(projections[None], distinct, self.bits)[0][code_of.ravel()]
        stored = self.projections(rows)
        if stored is None:
            order = np.lexsort((rows, weighed, distances))
        else:
            stored = stored.astype(np.float64)
            cosine = stored @ projections / (np.linalg.norm(stored, axis=1) * np.linalg.norm(projections) + 1e-12)
            order = np.lexsort((rows, -cosine, weighed, distances))
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
        row = self.records.row_of(item_id)
        if row is not None:
            return row
        cifar = str(self.manifest["source"].get("kind", "")).startswith("cifar")
        how = "a batch and a position, like data_batch_1/0" if cifar else "paths relative to the indexed folder"
        raise SemhashError(f"no item {item_id!r} in {self.folder}; ids are {how}")

    def record(self, item_id):
        """The stored record of an indexed document or image."""
        return self.records[self._row(item_id)]

    def like(self, item_id, k=10, exact=None, search_k=None, backend=None, rerank=True):
        """The `k` items nearest to an indexed item, leaving the item itself out; ranked again with
        `rerank` as `query` ranks them, from the item's stored real-valued code (where the index
        stores them: see `projections`)."""
        row = self._row(item_id)
        packed = self.codes([row])[0]
        found, distances = self.search(packed, k + 1, exact, search_k, backend)
        projections = self._stored_projections(row) if rerank else None
        if projections is not None:
            found, distances = self.reranked(projections, packed, found, distances, exact, backend)
        keep = found != row
        return self._hits(found[keep][:k], distances[keep][:k])

    def _stored_projections(self, row):
        """The real-valued code stored for `row` (float64, as a query's), or None where the index
        keeps none."""
        stored = self.projections([row])
        return None if stored is None else stored[0].astype(np.float64)

    def within_like(self, item_id, radius, exact=None, backend=None, rerank=True):
        """Every item within `radius` bits of an indexed item, leaving the item itself out; ranked
        again with `rerank`, as `like` says."""
        row = self._row(item_id)
        found, distances = self.ball(self.codes([row])[0], radius, exact, backend)
        projections = self._stored_projections(row) if rerank else None
        if projections is not None:
            found, distances = self._by_asymmetric(projections, found, distances)
        keep = found != row
        return self._hits(found[keep], distances[keep])

    def bit_balance(self):
        """The share of the items holding each bit set, counted shard by shard (a shard with no
        removed rows straight from its mapped codes, without a copy)."""
        counts = sum(binary.bit_counts(shard.packed[shard.live_rows()] if len(shard.deleted) else shard.packed,
                                       self.bits) for shard in self.shards)
        return counts / len(self)


def fitted_coder(model):
    """(the coder an index keeps of the fitted `model`, what its manifest records of it): the
    autoencoder's losses under `training`, where one was trained, and how its code layer was cut
    ("itq", or "median" where the items were too few) and how many clusters each cluster member learned,
    and under `coder` the coder asked for and the one kept, with the self-check that chose it, where one
    ran (see `models.selfcheck`)."""
    check = getattr(model, "check_", None)
    kept = getattr(model, "chosen_", model)
    history = getattr(model, "history_", {})
    training = {key: history[key] for key in ("loss_before_finetuning", "loss_after_finetuning") if key in history}
    if "binarize" in getattr(kept, "history_", {}):
        training["binarize"] = kept.history_["binarize"]
    if "cluster_members" in getattr(kept, "history_", {}):
        training["clusters"] = [member["clusters"] for member in kept.history_["cluster_members"]]
    coder = {"asked": defaults.SELF_CHECK if check else coder_name(kept), "chosen": coder_name(kept), "self_check": check}
    return kept, {"training": training, "coder": coder}


def chosen_backend(n_codes, name=None, trees=None, seed=None):
    """What the manifest records of the search backend an index of `n_codes` codes uses unless a
    query names another: `name` where given, else `backends.default_backend`'s choice by size;
    and Annoy's trees and seed where it is Annoy."""
    chosen = backend_class(name).name if name is not None else default_backend(n_codes)
    settings = {"trees": trees or defaults.TREES, "seed": defaults.SEED if seed is None else seed} \
        if chosen == AnnoyBackend.name else {}
    return {"name": chosen, "chosen": "given" if name is not None else "by size", "settings": settings}
