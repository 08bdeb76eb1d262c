"""The records of an index's items, one a row of its codes: written to SQLite, read back by row.

`records.sqlite` holds one table, `items`, whose primary key `row` is the item's row of the codes:

    row      INTEGER PRIMARY KEY   the row of the item's code
    id       TEXT UNIQUE           what `like ID` names (an index on it answers by lookup)
    path, label, snippet, sha256   TEXT, where the record holds them as text
    source   TEXT                  the image's source, as JSON
    extra    TEXT                  a JSON object of anything else the record holds

so that opening an index reads none of it, a result is fetched by its row and `like ID` is an
index lookup, at 300 items as at 10 million. Indexes before format 3 keep `records.jsonl`, one
JSON record a line, read whole.
"""

import json
import operator
import sqlite3
from collections.abc import Sequence

from ..errors import SemhashError

SQLITE = "records.sqlite"
JSONL = "records.jsonl"
TEXT_COLUMNS = ("id", "path", "label", "snippet", "sha256")
COLUMNS = (*TEXT_COLUMNS, "source", "extra")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM items"
REBUILD = "rebuild it with `semhash index`"


def _row_values(row, record):
    """The table's values for `record`: text in its column, the source as JSON, the rest (values
    of other types, other keys) in `extra`; a NULL column is a key the record lacks."""
    text = {key: value for key, value in record.items() if key in TEXT_COLUMNS and isinstance(value, str)}
    extra = {key: value for key, value in record.items() if key not in text and key != "source"}
    source = json.dumps(record["source"], ensure_ascii=False) if "source" in record else None
    return (row, *(text.get(key) for key in TEXT_COLUMNS), source,
            json.dumps(extra, ensure_ascii=False) if extra else None)


def _record(values):
    """The record a row of the table holds (the inverse of `_row_values`)."""
    *text, source, extra = values
    record = {key: value for key, value in zip(TEXT_COLUMNS, text) if value is not None}
    if source is not None:
        record["source"] = json.loads(source)
    if extra is not None:
        record.update(json.loads(extra))
    return record


def write_sqlite(path, records):
    """Write `records`, in row order, to a new SQLite file at `path` in one transaction. The file
    lies in a generation folder not yet published, which a kill leaves as garbage for the next
    writer to remove: no journal is needed, and `store.write` syncs the file itself."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        with connection:
            connection.execute("CREATE TABLE items (row INTEGER PRIMARY KEY, id TEXT NOT NULL, path TEXT, "
                               "label TEXT, snippet TEXT, sha256 TEXT, source TEXT, extra TEXT)")
            connection.executemany(f"INSERT INTO items VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                                   (_row_values(row, record) for row, record in enumerate(records)))
            connection.execute("CREATE UNIQUE INDEX items_id ON items (id)")
    except sqlite3.IntegrityError:
        raise SemhashError("two items have the same id; an index needs each id once") from None
    finally:
        connection.close()


class SqliteRecords(Sequence):
    """The records in a published `records.sqlite`, read-only: `len`, `[row]` (a dict), iteration
    in row order and `row_of(id)`. A published generation never changes, so SQLite is told the
    file is immutable (no locks, no journal looked for). Damage SQLite meets, at opening or at
    any later read, is a SemhashError naming the file."""

    def __init__(self, path, count):
        self.path = path
        try:
            self._db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True,
                                       check_same_thread=False)  # read-only: safe to share between threads
            # two statements: SQLite reads one end of the primary key for min() or max() alone,
            # but the whole table for both in one statement (5 s at 10,000,000 items)
            first, last = (self._db.execute(f"SELECT {end}(row) FROM items").fetchone()[0] for end in ("min", "max"))
        except sqlite3.DatabaseError as error:
            if not path.is_file():  # removed by a writer since the manifest was read
                raise FileNotFoundError(path) from None
            raise self._damaged(error) from None
        if (first, last) != ((0, count - 1) if count else (None, None)):
            raise SemhashError(f"{path} holds rows {first} to {last} where the manifest says {count} items; {REBUILD}")
        self._count = count

    def _read(self, sql, parameters=(), make=_record):
        """What `make` makes of each row the query `sql` selects, as a generator: SQLite's
        errors, and JSON that does not parse, become a SemhashError naming the file."""
        try:
            for values in self._db.execute(sql, parameters):
                yield make(values)
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            raise self._damaged(error) from None

    def _damaged(self, error):
        return SemhashError(f"{self.path} is damaged ({type(error).__name__}: {error}); {REBUILD}")

    def __len__(self):
        return self._count

    def __getitem__(self, row):
        row = operator.index(row)  # numpy's integers too, as searches return them
        if not -self._count <= row < self._count:
            raise IndexError(f"row {row} of {self._count}")
        found = next(self._read(f"{SELECT} WHERE row = ?", (row % self._count,)), None)
        if found is None:
            raise SemhashError(f"{self.path} lacks row {row}; {REBUILD}")
        return found

    def __iter__(self):
        return self._read(f"{SELECT} ORDER BY row")

    def row_of(self, item_id):
        """The row of the item `item_id`, or None."""
        return next(self._read("SELECT row FROM items WHERE id = ?", (item_id,), operator.itemgetter(0)), None)

    def fingerprints(self):
        """(row, id, sha256 or None) of every item, in row order, without the rest of the records."""
        return self._read("SELECT row, id, sha256 FROM items ORDER BY row", make=tuple)


def read_jsonl(path):
    """The records of `records.jsonl` (formats 1 and 2), all of them, as a list of dicts."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def fingerprints(records):
    """(row, id, sha256 or None) of every record of `records` (SqliteRecords, or a list of dicts)."""
    if isinstance(records, SqliteRecords):
        return records.fingerprints()
    return ((row, record["id"], record.get("sha256")) for row, record in enumerate(records))


def row_of(records, item_id):
    """The row of the item `item_id` in `records` (SqliteRecords, or a list of dicts), or None."""
    if isinstance(records, SqliteRecords):
        return records.row_of(item_id)
    return next((row for row, record in enumerate(records) if record["id"] == item_id), None)
