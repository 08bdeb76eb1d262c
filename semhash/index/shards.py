"""The shards of an index: each a slice of its items with its own codes, records, deleted rows and
search structures, so that an index can grow by a shard (written apart, by another process or
another machine) and change without rewriting what it already holds.

A shard's files lie in a folder of their own inside the index's generation folder:

    shard-000003/codes.npy       packed codes, one row an item (uint8), memory-mapped
    shard-000003/records.sqlite  the items' records, one a row of the codes (see `records`)
    shard-000003/deleted.npy     the rows removed since the shard was written (int64, ascending)
    shard-000003/projections.npy the items' real-valued codes (float16, rows by bits), whose signs
                                 are the bits: they order items whose codes are identical (see
                                 `Index.reranked`); a shard written before them has none
    shard-000003/...             the stored structures of a search backend, where it keeps any

A shard never changes once written: removing an item writes a new `deleted.npy` into the next
generation, beside links to the shard's other files. The index numbers its rows across the
shards in their order (a shard's first row follows the last of the one before), deleted rows
included, so that a row names one item for as long as the generation lasts. A search asks each
shard for its nearest codes (as many more as it has deleted rows, so that the live ones are
certain to be among them), leaves the deleted out and merges by distance, then row: the answer
of one unsharded index of the same codes in the same order.
"""

import operator
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..codes import binary
from ..errors import SemhashError
from . import records as item_records
from .backends import AnnoyBackend, backend_class, create

CODES = "codes.npy"
DELETED = "deleted.npy"
PROJECTIONS = "projections.npy"
REBUILD = "rebuild it with `semhash index`"
PICKLED = "a .npy or .npz file is not numpy's format, and semhash reads no pickle"


def shard_name(number):
    return f"shard-{number:06d}"


def _load_array(path, **options):
    """A .npy file read without pickle, its damage a SemhashError naming it."""
    try:
        return np.load(path, allow_pickle=False, **options)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as error:
        why = PICKLED if "allow_pickle" in str(error) else f"{type(error).__name__}: {error}"
        raise SemhashError(f"{path} is damaged ({why}); {REBUILD}") from None


def link_or_copy(source, destination, link=True):
    """Give `destination` the bytes of `source`: with `link`, a hard link where the file system
    allows one (a published file never changes, so two generations of an index may share it),
    else a copy."""
    if link:
        try:
            os.link(source, destination)
            return
        except OSError:
            pass
    shutil.copyfile(source, destination)


class Shard:
    """One shard: its codes, records, deleted rows, and its search backends, built or read on first
    use. `folder` is where its files lie once written (None before); `settings` what its manifest
    entry records of the stored backends."""

    def __init__(self, packed, records, n_bits, deleted=(), folder=None, settings=None, backends=None, trained=True,
                 projections=None):
        self.packed = packed
        self.projections = projections  # float16, rows by bits, or None where the shard keeps none
        self.records = records
        self.n_bits = n_bits
        self.trained = trained  # whether the model was fitted on its items, or they came after
        self.deleted = np.asarray(deleted, dtype=np.int64)
        self.folder = folder
        self.settings = dict(settings or {})
        self._backends = dict(backends or {})

    @classmethod
    def of_projections(cls, projections, records, n_bits, trained=True):
        """A shard of the items whose real-valued codes are `projections` (rows by bits): their
        bits are the signs, and the values are kept (as float16) to order identical codes."""
        projections = np.asarray(projections)
        return cls(binary.pack(projections > 0), records, n_bits, trained=trained,
                   projections=projections.astype(np.float16))

    def projection_rows(self, rows):
        """The real-valued codes of the shard's `rows` (float16), or None where it keeps none. Read
        from a stored file a row at a time (pread): reading them through the memory map mapped the
        kernel's whole cached block around each row, 121 MB for 82 rows of a 10,000,000-item index."""
        if not isinstance(self.projections, np.memmap):  # none kept, or held in memory
            return None if self.projections is None else self.projections[rows]
        size = self.projections.strides[0]
        try:
            with open(self.projections.filename, "rb") as file:
                data = b"".join(os.pread(file.fileno(), size, self.projections.offset + int(row) * size) for row in rows)
        except FileNotFoundError:  # its generation was replaced since it was opened: the map still reads it
            return self.projections[rows]
        return np.frombuffer(data, dtype=self.projections.dtype).reshape(len(rows), self.projections.shape[1])

    def __len__(self):
        """The rows, deleted ones included."""
        return len(self.packed)

    @property
    def live(self):
        return len(self.packed) - len(self.deleted)

    def is_deleted(self, rows):
        """Which of the shard's `rows` were removed."""
        at = np.searchsorted(self.deleted, rows)
        return (at < len(self.deleted)) & (self.deleted[np.minimum(at, len(self.deleted) - 1)] == rows) \
            if len(self.deleted) else np.zeros(np.shape(rows), dtype=bool)

    def live_rows(self):
        """The rows not removed, ascending."""
        return np.setdiff1d(np.arange(len(self.packed)), self.deleted, assume_unique=True)

    def backend(self, name, settings=None, verify=None):
        """The search backend `name` over this shard's codes: read from its stored files where the
        shard holds them (checked first by `verify(paths)`), else made with `settings` and built
        from the codes on first use, and kept. Where the shard's generation was replaced since it was
        opened, its stored backend is built again from the codes, which the map still reads, with the
        settings it was stored with (one seed builds one structure), so an open index keeps answering."""
        if name not in self._backends:
            stored = self.settings.get(name)
            if stored is not None and self.folder is not None:
                folder = self.folder if self.folder.is_dir() else None  # None: replaced since it was opened
                check = None if verify is None or folder is None else (
                    lambda names: verify([folder / name for name in names]))
                self._backends[name] = backend_class(name).load(folder, stored, self.packed, self.n_bits, check)
            else:
                self._backends[name] = create(name, **(settings or {})).over(self.packed, self.n_bits)
        return self._backends[name]

    def search(self, query, k, name, search_k=None, settings=None, verify=None):
        """Rows and distances of the `k` live codes nearest to `query` by the backend `name` (see
        `backend` for `settings` and `verify`)."""
        if not self.live:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        backend = self.backend(name, settings, verify)
        wanted = min(k + len(self.deleted), len(self.packed))
        if isinstance(backend, AnnoyBackend):
            rows, distances = backend.search(query, wanted, search_k)
        else:
            rows, distances = backend.search(query, wanted)
        keep = ~self.is_deleted(rows)
        return rows[keep][:k], distances[keep][:k]

    def within(self, query, radius, name, settings=None, verify=None):
        """Rows and distances of every live code within `radius` bits of `query`."""
        rows, distances = self.backend(name, settings, verify).within(query, radius)
        keep = ~self.is_deleted(rows)
        return rows[keep], distances[keep]

    def write(self, folder, backend=None, link=True, show_progress=False):
        """Write the shard's files into a new folder `folder`, taking those of a shard already
        written (its stored backends' too) by `link_or_copy`; with `backend`, an unbuilt Backend,
        its structures as well, built unless the shard holds them. Returns the shard's manifest
        entry and points the shard at its new folder."""
        folder = Path(folder)
        folder.mkdir()
        settings = {}
        if self.folder is not None:
            link_or_copy(self.folder / CODES, folder / CODES, link)
            if self.projections is not None:
                link_or_copy(self.folder / PROJECTIONS, folder / PROJECTIONS, link)
            for name, stored in self.settings.items():
                for file in backend_class(name).files:
                    link_or_copy(self.folder / file, folder / file, link)
                settings[name] = stored
        else:
            np.save(folder / CODES, np.ascontiguousarray(self.packed), allow_pickle=False)
            if self.projections is not None:
                np.save(folder / PROJECTIONS, np.ascontiguousarray(self.projections), allow_pickle=False)
        if isinstance(self.records, item_records.SqliteRecords):
            link_or_copy(self.records.path, folder / item_records.SQLITE, link)
        else:  # built in memory, or read from an index before SQLite
            item_records.write_sqlite(folder / item_records.SQLITE, self.records)
        if len(self.deleted):
            np.save(folder / DELETED, self.deleted, allow_pickle=False)
        if backend is not None and backend.name not in settings:
            built = self._backends.get(backend.name) or backend.over(self.packed, self.n_bits, show_progress)
            self._backends[backend.name] = built
            settings[backend.name] = built.save(folder)
        self.folder, self.settings = folder, settings
        return {"items": len(self.packed), "deleted": len(self.deleted), "trained": self.trained, "backends": settings,
                "projections": self.projections is not None}

    def delete(self, rows):
        """Mark the shard's `rows` removed (in memory: `write` records it in the next generation)."""
        self.deleted = np.union1d(self.deleted, np.asarray(rows, dtype=np.int64))

    @classmethod
    def open(cls, folder, entry, n_bits, records=None):
        """The shard written to `folder` with the manifest `entry`; `records`, where given, are
        those of an index before shards (format 1 or 2), read already."""
        n = entry["items"]
        packed = _load_array(folder / CODES, mmap_mode="r")
        if packed.dtype != np.uint8 or packed.shape != (n, (n_bits + 7) // 8) or not packed.flags.c_contiguous:
            raise SemhashError(f"{folder / CODES} holds {packed.dtype} codes shaped {packed.shape} where the "
                               f"manifest says {n} of {n_bits} bits; {REBUILD}")
        if records is None:
            records = item_records.SqliteRecords(folder / item_records.SQLITE, n)
        elif len(records) != n:
            raise SemhashError(f"{folder} holds {len(records)} records where the manifest says {n}; {REBUILD}")
        deleted = np.empty(0, np.int64)
        if entry.get("deleted"):
            deleted = _load_array(folder / DELETED)
            if (deleted.dtype != np.int64 or deleted.shape != (entry["deleted"],) or np.any(np.diff(deleted) <= 0)
                    or np.any(deleted < 0) or np.any(deleted >= n)):
                raise SemhashError(f"{folder / DELETED} does not list {entry['deleted']} rows of the shard; {REBUILD}")
        projections = None
        if entry.get("projections"):
            projections = _load_array(folder / PROJECTIONS, mmap_mode="r")
            if projections.dtype != np.float16 or projections.shape != (n, n_bits):
                raise SemhashError(f"{folder / PROJECTIONS} holds {projections.dtype} values shaped "
                                   f"{projections.shape} where the manifest says {n} codes of {n_bits} bits; {REBUILD}")
        return cls(packed, records, n_bits, deleted, folder, entry.get("backends"), trained=entry.get("trained", True),
                   projections=projections)


def merged(shards, n_bits):
    """One shard, in memory, of the live items of `shards` in their order: what compaction writes
    in place of shards with many removed rows, or of many small ones. Its items count as trained
    on where all of theirs did."""
    packed = np.concatenate([shard.packed[shard.live_rows()] for shard in shards])
    records = [record for shard in shards
               for record, gone in zip(shard.records, shard.is_deleted(np.arange(len(shard)))) if not gone]
    projections = None
    if all(shard.projections is not None for shard in shards):
        projections = np.concatenate([shard.projections[shard.live_rows()] for shard in shards])
    return Shard(packed, records, n_bits, trained=all(shard.trained for shard in shards), projections=projections)


class ShardedRecords(Sequence):
    """The records of every shard as one sequence in row order (deleted rows included: a row's
    record stays readable while its generation lasts), with `row_of(id)` for live items."""

    def __init__(self, shards):
        self.shards = shards
        self.offsets = np.cumsum([0, *(len(shard) for shard in shards)])

    def __len__(self):
        return int(self.offsets[-1])

    def locate(self, row):
        """(the shard, the row within it) of a row of the index."""
        row = operator.index(row)
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} of {len(self)}")
        row %= len(self)
        number = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return self.shards[number], row - int(self.offsets[number])

    def __getitem__(self, row):
        shard, local = self.locate(row)
        return shard.records[local]

    def __iter__(self):
        for shard in self.shards:
            yield from shard.records

    def row_of(self, item_id):
        """The row of the live item `item_id`, or None."""
        for shard, offset in zip(self.shards, self.offsets):
            local = item_records.row_of(shard.records, item_id)
            if local is not None and not shard.is_deleted(local):
                return int(offset) + local
        return None
