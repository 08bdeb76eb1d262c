"""Line corpora: each reader on small files it writes, bad rows, missing fields, long rows, partitions."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from semhash.errors import SemhashError
from semhash.sources.detect import detect_kind
from semhash.sources.lines import MAX_NAMED, LineCorpus, SkipLog


def read(path, **settings):
    warnings = []
    corpus = LineCorpus(path, on_warning=warnings.append, **settings)
    return corpus, list(corpus), warnings


def test_json_lines_skip_bad_rows_counted_and_named(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": "football match", "id": 7, "label": "sports"}),
        "not json",
        json.dumps({"text": "bank rates"}),  # no id or label: FILE:LINE, None
        "",
        "[1, 2]",
        json.dumps({"text": 5}),
        json.dumps({"body": "x"}),
        json.dumps({"text": "   "}),
        json.dumps({"text": "央行 利率", "label": None}),
    ]) + "\n", encoding="utf-8")
    corpus, rows, warnings = read(path)
    assert [(row.id, row.label, row.text, row.row) for row in rows] == [
        ("7", "sports", "football match", 1), ("c.jsonl:3", None, "bank rates", 3), ("c.jsonl:9", None, "央行 利率", 9)]
    assert corpus.skip_counts == {"not JSON": 1, "not a JSON object": 1, "not text": 1, "missing field": 1, "empty": 1}
    assert warnings[0].startswith(f"skipped {path}:2: not JSON")
    assert rows[0].record() == {"id": "7", "path": str(path.absolute()), "label": "sports", "snippet": "football match",
                                "sha256": rows[0].sha256, "row": 1}
    assert len(corpus) == 8  # rows, bad ones included, the blank line not
    assert [row.id for row in corpus] == [row.id for row in rows]  # re-iterable


def test_csv_with_quoted_lines_and_a_row_of_the_wrong_width(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,text,label\n1,"hello, world",a\n2,"two\nlines",b\n3,too,many,fields\n\n4,fine,c\n',
                    encoding="utf-8")
    corpus, rows, _ = read(path)
    assert [(row.id, row.text, row.label, row.row) for row in rows] == [
        ("1", "hello, world", "a", 2), ("2", "two\nlines", "b", 3), ("4", "fine", "c", 7)]
    assert corpus.skip_counts == {"wrong number of fields": 1}
    assert corpus.skipped[0].path == f"{path}:5"


def test_tsv_takes_quotes_as_text_and_fields_by_name(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text('label\tbody\nsports\ta "quoted goal\nfinance\tbank\n', encoding="utf-8")
    _, rows, _ = read(path, text_field="body")
    assert [(row.id, row.text, row.label) for row in rows] == [("c.tsv:2", 'a "quoted goal', "sports"),
                                                               ("c.tsv:3", "bank", "finance")]


def test_parquet_rows_by_number(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["a goal", None, "x" * 60, "rates"], "topic": ["s", "s", "f", None],
                             "key": [10, 11, 12, 13]}), path, row_group_size=3)
    corpus, rows, _ = read(path, label_field="topic", id_field="key", max_bytes=50)
    assert [(row.id, row.text, row.label, row.row) for row in rows] == [("10", "a goal", "s", 1), ("13", "rates", None, 4)]
    assert corpus.skip_counts == {"not text": 1, "too long": 1}
    assert detect_kind(path) == "lines"


def test_plain_lines_need_lines_and_take_no_fields(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first line\n\nsecond line\n", encoding="utf-8")
    with pytest.raises(SemhashError, match="--lines"):
        detect_kind(path)
    _, rows, _ = read(path, format="lines")
    assert [(row.id, row.text) for row in rows] == [("c.txt:1", "first line"), ("c.txt:3", "second line")]
    with pytest.raises(SemhashError, match="no fields"):
        LineCorpus(path, format="lines", text_field="text")


@pytest.mark.parametrize("name, content, settings, fields", [
    ("c.jsonl", '{"body": "x", "topic": "y"}\n', {}, "body, topic"),
    ("c.csv", "body,topic\nx,y\n", {}, "body, topic"),
    ("c.csv", "text,topic\nx,y\n", {"id_field": "key"}, "text, topic"),
    ("c.parquet", None, {"label_field": "class"}, "text, topic"),
])
def test_a_missing_field_names_the_fields_found(tmp_path, name, content, settings, fields):
    path = tmp_path / name
    if content is None:
        pq.write_table(pa.table({"text": ["x"], "topic": ["y"]}), path)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SemhashError, match=f"its fields: {fields}") as raised:
        list(LineCorpus(path, **settings))
    assert "\n" not in str(raised.value)


def test_a_huge_line_is_skipped_unread_and_the_rows_after_it_kept(tmp_path):
    path = tmp_path / "c.jsonl"
    with open(path, "w", encoding="utf-8") as file:
        file.write(json.dumps({"text": "y" * 300_000}) + "\n" + json.dumps({"text": "kept"}) + "\n")
    corpus, rows, _ = read(path, max_bytes=1000)
    assert [row.text for row in rows] == ["kept"]
    assert corpus.skip_counts == {"too long": 1}


def test_a_csv_record_over_the_limit_across_short_lines_is_skipped_whole(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('text,label\n"' + "y\n" * 100 + '",a\nok,b\n"' + "z" * 100 + '\n",c\nfine,d\n', encoding="utf-8")
    corpus, rows, _ = read(path, max_bytes=50)
    assert [(row.text, row.label) for row in rows] == [("ok", "b"), ("fine", "d")]
    assert corpus.skip_counts == {"too long": 2}


def test_partitions_read_alone_give_the_rows_of_a_whole_pass(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text\n" + "".join(f'"row\n{i}"\n' if i % 7 == 0 else f"row {i}\nbad,row\n" for i in range(50)),
                    encoding="utf-8")
    corpus = LineCorpus(path)
    partitions = corpus.partitions(8)
    assert [partition.first_row for partition in partitions] == list(range(0, len(corpus), 8))
    one_by_one = [row for partition in partitions for row in corpus.read(partition, SkipLog())]
    assert [row.record() for row in one_by_one] == [row.record() for row in corpus]
    chosen = {1, 9, 30}
    assert [row.row for partition in partitions for row in corpus.read(partition, SkipLog(), chosen)] == \
        [row.row for index, row in enumerate(_raw_rows_of(corpus)) if index in chosen and row is not None]


def _raw_rows_of(corpus):
    """Every row of a corpus, bad ones as None, in order: what row numbers count."""
    for partition in corpus.partitions(1):
        found = list(corpus.read(partition, SkipLog()))
        yield found[0] if found else None


def test_named_skips_stop_at_a_limit_and_the_rest_are_counted(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("bad\n" * (MAX_NAMED + 30) + '{"text": "good"}\n', encoding="utf-8")
    corpus, rows, warnings = read(path)
    assert len(rows) == 1 and corpus.skip_counts == {"not JSON": MAX_NAMED + 30}
    assert len(corpus.skipped) == MAX_NAMED and len(warnings) == MAX_NAMED + 1
