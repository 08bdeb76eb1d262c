"""Corpora of one document a row: JSON Lines, CSV, TSV, Parquet, or plain text a line.

A `LineCorpus` is re-iterable and streamed, as `TextCorpus` is: no pass holds more than one row
(Parquet: one batch of rows) in memory, and no row is read past `max_bytes`, however long its
line. It is also cut into `Partition`s of consecutive rows, each of which can be read on its own
(by another process, on another machine that sees the file), so that a corpus of millions of rows
can be sampled for training and encoded a partition at a time.

Readers are the standard library's `json` and `csv`, and pyarrow for Parquet (imported only when
a Parquet file is read). Bad rows (not JSON, not an object, too long, no text, a CSV row with the
wrong number of fields) are skipped, counted by reason and named on stderr, as bad files of a
folder are; a field that the whole file lacks is an error naming the fields it has.
"""

import collections
import csv
import dataclasses
import hashlib
import json
from pathlib import Path

from ..errors import SemhashError
from .files import NotRegularFile, Skipped, open_regular, printable
from .text import MAX_DOCUMENT_BYTES, Document, decode, looks_binary

# The formats, by the suffix of the file; plain text a line only when asked (`--lines`), since a
# .txt file may as well be one document.
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
FORMATS = ("jsonl", "csv", "tsv", "parquet", "lines")
TEXT_FIELD, ID_FIELD, LABEL_FIELD = "text", "id", "label"
# Skipped rows named on stderr, and kept in `skipped`; further ones are only counted, so that a
# corpus of millions of bad rows neither floods stderr nor fills memory.
MAX_NAMED = 20
PARQUET_BATCH_ROWS = 1024


def format_of(path):
    """The format a file's suffix names, or None."""
    return SUFFIXES.get(Path(path).suffix.lower())


@dataclasses.dataclass(frozen=True)
class Row(Document):
    """One row of a line corpus: `path` is the corpus file, `row` the line the row starts on
    (Parquet: the row's number), counted from 1."""

    row: int

    def record(self):
        return {**super().record(), "row": self.row}


Partition = collections.namedtuple("Partition", "number start first_line first_row rows")
Partition.__doc__ = """Consecutive rows of a line corpus: `rows` of them from the `first_row`-th (counted
from 0, bad rows included, blank lines not), which starts at byte `start` on line `first_line` (Parquet:
`start` is the row's number)."""


class SkipLog:
    """The rows a pass left out: counted by reason (`counts`), the first MAX_NAMED named in `named`
    and through `on_warning`; rows decoded only with replacement characters, counted in `fallbacks`."""

    def __init__(self, on_warning=None):
        self.on_warning = on_warning
        self.counts = collections.Counter()
        self.named = []
        self.fallbacks = 0

    def add(self, where, reason):
        skipped = Skipped(where, reason)
        self.counts[skipped.key] += 1
        if len(self.named) < MAX_NAMED:
            self.named.append(skipped)
            self._warn(f"skipped {where}: {reason}")
            if len(self.named) == MAX_NAMED:
                self._warn(f"further skipped rows are counted, not named (the first {MAX_NAMED} were)")

    def merge(self, other):
        """Take in what another pass (a partition read elsewhere) skipped, naming what room is left."""
        for skipped in other.named:
            if len(self.named) < MAX_NAMED:
                self.add(skipped.path, skipped.reason)
                self.counts[skipped.key] -= 1
        self.counts.update(other.counts)
        self.fallbacks += other.fallbacks

    def _warn(self, message):
        if self.on_warning is not None:
            self.on_warning(message)


class BadRow(ValueError):
    """A row that is skipped; the message says why."""


class TooLong(BadRow):
    """A row longer than the corpus' limit; `quotes`, for a line, how many quote marks it held."""

    quotes = 0


class LineCorpus:
    """The rows of one file, each a document: JSON Lines (one object a line), CSV or TSV with a
    header, Parquet, or plain text (`format="lines"`: each non-blank line a document).

    text_field: the field holding the text (default "text"). id_field: the field holding the id;
    by default "id" where the file has it, else the id is FILE:LINE (Parquet: FILE:ROW).
    label_field: likewise, "label" where there is one, else no labels. A field asked for (or the
    text field) that the file lacks is a SemhashError naming the fields it has.

    Iterate it as often as needed; after a pass, `skipped` names the first rows left out (and
    `skip_counts` counts them all by reason) and `fallbacks` counts the rows decoded with
    replacement characters. A row longer than `max_bytes` is skipped, never read whole.
    """

    def __init__(self, path, format=None, text_field=None, id_field=None, label_field=None, on_warning=None,
                 max_bytes=MAX_DOCUMENT_BYTES):
        self.path = Path(path)
        self.format = format or format_of(path)
        if self.format not in FORMATS:
            raise SemhashError(f"{printable(path)} is not a corpus of one document a row; give a .jsonl, .csv, "
                               ".tsv or .parquet file, or a .txt file with --lines")
        if self.format == "lines" and any(field is not None for field in (text_field, id_field, label_field)):
            raise SemhashError(f"{printable(path)} is read as plain lines, which have no fields; give --text-field, "
                               "--id-field and --label-field only for JSON Lines, CSV, TSV or Parquet")
        self.text_field = text_field
        self.id_field = id_field
        self.label_field = label_field
        self.on_warning = on_warning
        self.max_bytes = max_bytes
        self.skipped = []
        self.skip_counts = collections.Counter()
        self.fallbacks = 0
        self._scanned = None

    # -- what the file holds -------------------------------------------------------------------

    @property
    def root(self):
        return self.path

    def describe(self):
        """What a manifest says of the source."""
        fields = self._fields()
        return {"root": str(self.path.resolve()), "format": self.format,
                **{name: value for name, value in zip(("text_field", "id_field", "label_field"), fields) if value}}

    def paths(self):
        return [self.path]

    def __len__(self):
        """The rows of the file, bad ones included, blank lines not."""
        return sum(partition.rows for partition in self.partitions())

    def partitions(self, rows=10_000):
        """The file cut into Partitions of `rows` rows (the last may hold fewer), found by one pass
        over it that reads no row whole and parses none (CSV: only to find where rows end)."""
        if self._scanned is None or self._scanned[0] != rows:
            self._fields()
            with self._opened() as file:
                self._scanned = (rows, list(self._cut(file, rows)))
        return self._scanned[1]

    def _opened(self):
        try:
            return open_regular(self.path)
        except NotRegularFile as error:
            raise SemhashError(f"cannot read {printable(self.path)}: {error.strerror}; give a corpus file") from None
        except OSError as error:
            raise SemhashError(f"cannot read {printable(self.path)}: {error.strerror}; check the path") from None

    def _cut(self, file, size):
        if self.format == "parquet":
            total = self._parquet().metadata.num_rows
            for number, start in enumerate(range(0, total, size)):
                yield Partition(number, start, start + 1, start, min(size, total - start))
            return
        number, first, count = 0, None, 0
        for line, start, _ in self._raw_rows(file):
            if first is None:
                first = (start, line, number * size)
            count += 1
            if count == size:
                yield Partition(number, *first, count)
                number, first, count = number + 1, None, 0
        if count:
            yield Partition(number, *first, count)

    def _fields(self):
        """(text field, id field or None, label field or None) as the file has them, checked
        against the fields it holds: the header, the schema, or the first JSON object's keys."""
        if self.format == "lines":
            return (None, None, None)
        found = self._found_fields()
        if found is None:  # no row in the file is an object: every row is skipped as bad
            return (self.text_field or TEXT_FIELD, self.id_field, self.label_field)
        chosen = []
        for given, default, option in ((self.text_field, TEXT_FIELD, "--text-field"), (self.id_field, ID_FIELD, "--id-field"),
                                       (self.label_field, LABEL_FIELD, "--label-field")):
            name = given or default
            if name in found:
                chosen.append(name)
            elif given is not None or option == "--text-field":
                fields = ", ".join(found) if found else "none"
                raise SemhashError(f"{printable(self.path)} has no field {name!r} (its fields: {fields}); "
                                   f"choose one with {option}")
            else:
                chosen.append(None)
        return tuple(chosen)

    def _found_fields(self):
        if self.format == "parquet":
            return list(self._parquet().schema_arrow.names)
        with self._opened() as file:
            if self.format in ("csv", "tsv"):
                for _, _, header in self._csv_records(file):
                    return header
                return None
            for _, _, data in self._raw_rows(file):
                try:
                    row = json.loads(data) if isinstance(data, bytes) else None
                except ValueError:
                    continue
                if isinstance(row, dict):
                    return list(row)
        return None

    def _parquet(self):
        try:
            import pyarrow.parquet
        except ImportError:
            raise SemhashError("reading Parquet needs pyarrow: pip install 'semhash[scale]'") from None
        try:
            return pyarrow.parquet.ParquetFile(self.path)
        except (OSError, pyarrow.ArrowException) as error:
            raise SemhashError(f"{printable(self.path)} is not a readable Parquet file ({error}); "
                               "give a Parquet file or a line corpus of another format") from None

    # -- reading rows --------------------------------------------------------------------------

    def _lines(self, file, line=1):
        """(line number, byte offset, byte offset after it, bytes) for each line from the file's
        position, none read further than `max_bytes` (TooLong in the place of a longer line's bytes)."""
        offset = file.tell()
        while True:
            data = file.readline(self.max_bytes + 1)
            if not data:
                return
            start = offset
            offset += len(data)
            if len(data) > self.max_bytes and not data.endswith(b"\n"):
                quotes = data.count(b'"')
                while data and not data.endswith(b"\n"):  # the rest of the line, a block at a time
                    data = file.readline(1 << 16)
                    offset += len(data)
                    quotes += data.count(b'"')
                data = self._too_long()
                data.quotes = quotes
            yield line, start, offset, data
            line += 1

    def _too_long(self, why=None):
        return TooLong(f"too long: {why or f'over the limit of {self.max_bytes:,} bytes'} "
                       "(--max-document-bytes sets it)")

    def _raw_rows(self, file, line=1):
        """(line, byte offset, row) for each row from the file's position: the line's bytes for
        JSON Lines and plain lines, blank lines left out; for CSV and TSV, the record's fields (the
        header left out); TooLong for a row over the limit."""
        if self.format in ("csv", "tsv"):
            records = self._csv_records(file, line)
            if file.tell() == 0:
                next(records, None)
            yield from records
            return
        for number, start, _, data in self._lines(file, line):
            if isinstance(data, TooLong) or data.strip():
                yield number, start, data

    def _csv_records(self, file, line=1):
        """(line, byte offset, fields or an error) of each CSV or TSV record from the file's
        position: the lines read by `_lines`, decoded, parsed by `csv`; a record of more than
        `max_bytes`, even over many short lines, is TooLong."""
        where = {"line": line, "offset": file.tell(), "bytes": 0, "long": False}

        def texts():
            # Past the limit, a record's lines are given to `csv` as their quote marks alone: it
            # still finds where the record ends, and what it holds stays small.
            for number, _, end, data in self._lines(file, line):
                where["line"], where["offset"] = number + 1, end
                if not isinstance(data, TooLong):
                    where["bytes"] += len(data)
                if isinstance(data, TooLong) or where["bytes"] > self.max_bytes:
                    where["long"] = True
                    quotes = data.quotes if isinstance(data, TooLong) else data.count(b'"')
                    yield '"' * (quotes % 2)
                    continue
                yield decode(data)[0]

        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if self.format == "tsv" else {}
        limit = csv.field_size_limit()
        csv.field_size_limit(max(self.max_bytes, 1))  # a quoted field over many lines stops there
        try:
            reader = csv.reader(texts(), **dialect)
            start = (where["line"], where["offset"])
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    fields = self._too_long(error) if "field larger" in str(error) else BadRow(f"not CSV: {error}")
                if where["long"]:
                    fields = self._too_long()
                if fields != []:  # a blank line is no row
                    yield *start, fields
                start = (where["line"], where["offset"])
                where["bytes"], where["long"] = 0, False
        finally:
            csv.field_size_limit(limit)

    def __iter__(self):
        log = SkipLog(self.on_warning)
        try:
            for partition in self.partitions():
                yield from self.read(partition, log)
        finally:
            self.skipped, self.skip_counts, self.fallbacks = log.named, log.counts, log.fallbacks

    def read(self, partition, log, only=None):
        """The Rows of `partition`, bad ones skipped into the SkipLog `log`; with `only`, a set of
        row numbers (counted from 0 over the file), just those rows."""
        fields = self._fields()
        if self.format == "parquet":
            yield from self._read_parquet(partition, fields, log, only)
            return
        header = self._found_fields() if self.format in ("csv", "tsv") else None
        with self._opened() as file:
            file.seek(partition.start)
            rows = self._raw_rows(file, partition.first_line)
            for number, (line, _, raw) in zip(range(partition.first_row, partition.first_row + partition.rows), rows):
                if only is not None and number not in only:
                    continue
                where = f"{printable(self.path)}:{line}"
                try:
                    document = self._document(line, raw, fields, header, log)
                except BadRow as error:
                    log.add(where, str(error))
                    continue
                yield document

    def _document(self, line, raw, fields, header, log):
        """The Row a raw row holds, or BadRow saying why it is skipped."""
        if isinstance(raw, Exception):
            raise raw
        if self.format == "lines":
            data = raw.rstrip(b"\r\n")
            return self._row(line, data, self._decoded(data, log), None, None)
        if self.format == "jsonl":
            text = self._decoded(raw, log)
            try:
                values = json.loads(text)
            except ValueError as error:
                raise BadRow(f"not JSON: {error}") from None
            if not isinstance(values, dict):
                raise BadRow(f"not a JSON object: a {type(values).__name__}")
            data = raw.rstrip(b"\r\n")
        else:
            if len(raw) != len(header):
                raise BadRow(f"wrong number of fields: {len(raw)} where the header has {len(header)}")
            values = dict(zip(header, raw))
            data = "\x1f".join(raw).encode("utf-8", "surrogatepass")
        return self._row(line, data, *self._values(values, fields))

    def _values(self, values, fields):
        """(text, id, label) of a row's values, or BadRow."""
        text_field, id_field, label_field = fields
        if text_field not in values:
            raise BadRow(f"missing field: {text_field!r}")
        text = values[text_field]
        if not isinstance(text, str):
            raise BadRow(f"not text: field {text_field!r} holds {type(text).__name__}")
        found = []
        for field, given in ((id_field, self.id_field), (label_field, self.label_field)):
            if field is None or (field not in values and given is None):  # a default field a row may lack
                found.append(None)
            elif field not in values:
                raise BadRow(f"missing field: {field!r}")
            elif isinstance(values[field], (dict, list)):
                raise BadRow(f"not a value: field {field!r} holds a {type(values[field]).__name__}")
            else:
                found.append(None if values[field] is None else str(values[field]))
        return text, *found

    def _decoded(self, data, log):
        """A row's bytes as text, decoded as a text file is (see `text.decode`)."""
        if looks_binary(data):
            raise BadRow("binary")
        text, encoding = decode(data)
        if encoding is None:
            log.fallbacks += 1
        return text

    def _row(self, line, data, text, id_, label):
        if not text.strip():
            raise BadRow("empty")
        if len(data) > self.max_bytes:
            raise self._too_long()
        return Row(id=id_ if id_ is not None else f"{self.path.name}:{line}", path=str(self.path.absolute()),
                   label=label, text=text, sha256=hashlib.sha256(data).hexdigest(), row=line)

    def _read_parquet(self, partition, fields, log, only):
        columns = [field for field in dict.fromkeys(fields) if field is not None]
        parquet = self._parquet()
        number = 0
        stop = partition.start + partition.rows
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            if number + batch.num_rows <= partition.start:
                number += batch.num_rows
                continue
            values = batch.to_pydict()
            for index in range(batch.num_rows):
                if partition.start <= number < stop and (only is None or number in only):
                    where = f"{printable(self.path)}:{number + 1}"
                    try:
                        text, id_, label = self._values({name: values[name][index] for name in columns}, fields)
                        yield self._row(number + 1, text.encode("utf-8", "surrogatepass"), text, id_, label)
                    except BadRow as error:
                        log.add(where, str(error))
                number += 1
            if number >= stop:
                return

