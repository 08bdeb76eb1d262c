"""An index built a partition at a time, for corpora of millions of items.

The features and the model are fitted on a seeded sample of the items (`train_sample` of them;
each item's neighbour targets are sought within the sample), then every item is encoded, one
partition of consecutive rows at a time, by the numpy encoder, and each partition is written as a
shard of the index (see `shards`): in this process, or on the workers of a Dask cluster (see
`cluster`), which compute the same thing from the same bytes, so that the codes are the same, byte
for byte, wherever they were made. The driver then commits the shards in one manifest swap. No
process holds more than the sample, one partition, and (the driver) the shards' small entries.
"""

import collections
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from .. import defaults
from ..codes import binary
from ..errors import SemhashError
from ..features.text import TextFeatures
from ..models.autoencoder import ENCODER_KERAS, load_model
from ..progress import progress_bar
from ..sources.lines import SkipLog
from .backends import create
from .index import Index, chosen_backend, fitted_coder
from .shards import Shard, shard_name

PartitionShard = collections.namedtuple("PartitionShard", "number entry log rows")
PartitionShard.__doc__ = """What a partition's task gives back: its number, the manifest entry of the shard
it wrote (None where it kept no item), the SkipLog of the rows left out, and how many rows it covered."""


def sample_rows(n_rows, size, seed):
    """The rows (sorted) of a seeded sample of `size` of `n_rows`, or None for all of them."""
    if size is None or size >= n_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))


class Encoder:
    """Fitted text features and model as the bytes of the files they save (the numpy encoder, not
    Keras'), and their settings: what any process needs to encode items exactly as the others do.
    `digest` names it, so that a worker loads it once."""

    def __init__(self, features, model):
        with tempfile.TemporaryDirectory(prefix="semhash-encoder-") as folder:
            self.feature_settings = features.save(folder)
            self.model_settings = model.save(folder)
            self.files = {path.name: path.read_bytes() for path in sorted(Path(folder).iterdir())
                          if path.name != ENCODER_KERAS}
        digest = hashlib.sha256()
        for name, data in self.files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        self.digest = digest.hexdigest()

    def loaded(self):
        """(features, model) read back from the bytes, once a process."""
        return _loaded(self)

    def encode(self, source, partition):
        """(real-valued codes, records, SkipLog) of the items of one partition of `source`, read,
        featurized and coded; items with no known terms skipped as "no terms"."""
        features, model = self.loaded()
        log = SkipLog()
        documents = list(source.read(partition, log))
        X = features.transform([document.text for document in documents])
        has_terms = np.diff(X.indptr) > 0
        for document in (d for d, kept in zip(documents, has_terms) if not kept):
            log.add(f"{document.path}:{document.row}", "no terms: only stop words, numbers or words left out of "
                                                       "the vocabulary")
        records = [document.record() for document, keep in zip(documents, has_terms) if keep]
        projections = model.projections(X[has_terms]) if records else None
        return projections, records, log


_LOADED = {}


def _loaded(encoder):
    if encoder.digest not in _LOADED:
        with tempfile.TemporaryDirectory(prefix="semhash-encoder-") as folder:
            for name, data in encoder.files.items():
                (Path(folder) / name).write_bytes(data)
            _LOADED.clear()  # one encoder a process is enough: a new job brings its own
            _LOADED[encoder.digest] = (TextFeatures.load(folder, encoder.feature_settings),
                                       load_model(folder, encoder.model_settings))
    return _LOADED[encoder.digest]


class PartitionJob:
    """What the task of each partition needs: the `encoder`, the `backend` (as the manifest records
    it) whose structures each shard stores, and the `folder` the shards are written to, which every
    worker must see."""

    def __init__(self, encoder, backend, folder, n_bits):
        self.encoder = encoder
        self.backend = backend
        self.folder = str(folder)
        self.n_bits = n_bits

    def __call__(self, source, partition):
        """Encode a partition and write it as the shard named by its number. The shard is written
        aside, then renamed into place: a task run again after its worker died finds the shard
        there if the first run got that far (the same bytes, from the same input), and keeps it."""
        projections, records, log = self.encoder.encode(source, partition)
        if projections is None:
            return PartitionShard(partition.number, None, log, partition.rows)
        final = Path(self.folder) / shard_name(partition.number)
        aside = final.with_name(f"{final.name}.part-{uuid.uuid4().hex}")
        entry = Shard.of_projections(projections, records, self.n_bits).write(aside, create(self.backend["name"], **self.backend["settings"]))
        try:
            os.rename(aside, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(aside, ignore_errors=True)
        return PartitionShard(partition.number, entry, log, partition.rows)


def encode_partition(source, partition, job):
    """`job(source, partition)`, as a plain function to send to a worker."""
    return job(source, partition)


def encoded_here(source, partitions, job):
    """The PartitionShard of each partition, in order, written by this process."""
    return (encode_partition(source, partition, job) for partition in partitions)


def fit_on_sample(source, features, model, rows, partitions, show_progress=False):
    """Fit `features` and `model` on the items at `rows` (all when None): returns how many it read."""
    wanted = None if rows is None else set(rows.tolist())
    texts_read = []
    log = SkipLog()  # the encoding pass names and counts skipped rows, sampled or not

    def texts():
        with progress_bar("tokenizing the sample", length=len(rows) if rows is not None else sum(p.rows for p in partitions),
                          show=show_progress) as bar:
            for partition in partitions:
                chosen = None if wanted is None else wanted.intersection(
                    range(partition.first_row, partition.first_row + partition.rows))
                if chosen == set():
                    continue
                for document in source.read(partition, log, chosen):
                    texts_read.append(None)
                    yield document.text
                bar.update(partition.rows if chosen is None else len(chosen))

    try:
        X = features.fit_transform(texts())
    except SemhashError:
        if not texts_read:
            raise SemhashError(f"no readable rows in {source.root}: {sum(log.counts.values())} skipped "
                               f"({', '.join(f'{reason} {count}' for reason, count in log.counts.items())}); "
                               "check the file and --text-field") from None
        raise
    X = X[np.diff(X.indptr) > 0]
    model.fit(X)
    return X.shape[0]


def build(source, output, features=None, model=None, trees=defaults.TREES, backend=None,
          train_sample=defaults.TRAIN_SAMPLE, partition_rows=defaults.PARTITION_ROWS, cluster=None, show_progress=False,
          timings=None):
    """Build the index of a line corpus `source` a partition at a time and write it to `output`:
    features and model fitted on a seeded sample of `train_sample` rows (every row when None),
    then every partition encoded and written as a shard, here or by `cluster` (a
    `cluster.Cluster`), and the shards committed in one manifest swap. `backend` names the search
    backend (by default chosen by the corpus' size). Returns the opened index. `timings`, a dict,
    gets the seconds of each stage (scanning, training, encoding, writing)."""
    timings = {} if timings is None else timings
    started = time.perf_counter()
    features = features if features is not None else TextFeatures()
    if model is None:
        model = defaults.coder("text", defaults.model("text", features=features.kind, verbose=show_progress))
    partitions = source.partitions(partition_rows)
    n_rows = sum(partition.rows for partition in partitions)
    if n_rows == 0:
        raise SemhashError(f"{source.root} holds no rows; give a file of one document a row")
    rows = sample_rows(n_rows, train_sample, model.seed)
    timings["scanning"] = time.perf_counter() - started
    n_trained = fit_on_sample(source, features, model, rows, partitions, show_progress)
    model, trained = fitted_coder(model)
    timings["training"] = time.perf_counter() - started - timings["scanning"]
    chosen = chosen_backend(n_rows, backend, trees, model.seed)
    output = Path(output)
    output.absolute().parent.mkdir(parents=True, exist_ok=True)
    # Beside the output, so that its files are linked into the index rather than copied.
    with tempfile.TemporaryDirectory(dir=output.absolute().parent, prefix=f".{output.name}.shards-") as staging:
        job = PartitionJob(Encoder(features, model), chosen, staging, model.bits)
        results = encoded_here(source, partitions, job) if cluster is None else cluster.encode(source, partitions, job)
        log, shards = SkipLog(source.on_warning), []
        done, began = 0, time.perf_counter()
        with progress_bar("encoding", length=n_rows, show=show_progress, show_item=True) as bar:
            for result in results:
                log.merge(result.log)
                if result.entry is not None:
                    shards.append(Shard.open(Path(staging) / shard_name(result.number), result.entry, model.bits))
                done += result.rows
                bar.update(result.rows, f"{done / max(time.perf_counter() - began, 1e-9):,.0f} items/s")
        timings["encoding"] = time.perf_counter() - started - timings["scanning"] - timings["training"]
        n_items = sum(len(shard) for shard in shards)
        if n_items < 2:
            raise SemhashError(f"{source.root} holds {n_items} rows with known terms; an index needs 2 or more")
        ones = sum(binary.bit_counts(shard.packed, model.bits) for shard in shards)
        manifest = {
            "kind": "text", "source": source.describe(), "bits": model.bits, "backend": chosen,
            "counts": {"documents": n_items, "skipped": dict(log.counts), "decoded_with_replacements": log.fallbacks,
                       "truncated": 0},
            "training": {"sample": n_trained, "rows": n_rows, **trained.pop("training"),
                         "bit_balance_deviation": binary.balance_deviation(ones / n_items)},
            **trained,
        }
        Index(manifest, features, model, shards).save(output)
    timings["writing"] = time.perf_counter() - started - sum(timings.values())
    return Index.open(output)
