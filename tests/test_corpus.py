import os
import socket

import pytest
from conftest import deadline

from semhash.errors import SemhashError
from semhash.sources.text import TextCorpus, decode, read_text, snippet


def test_ids_labels_and_records(tmp_path):
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_text("hello world\n", encoding="utf-8")
    (tmp_path / "top.md").write_text("no label here", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x,y", encoding="utf-8")
    documents = list(TextCorpus(tmp_path))
    assert [(d.id, d.label) for d in documents] == [("news/a.txt", "news"), ("top.md", None)]
    record = documents[0].record()
    assert record["snippet"] == "hello world" and len(record["sha256"]) == 64


def test_glob_chooses_the_files(tmp_path):
    (tmp_path / "a.rst").write_text("text", encoding="utf-8")
    (tmp_path / "b.txt").write_text("text", encoding="utf-8")
    assert [d.id for d in TextCorpus(tmp_path, patterns=["*.rst"])] == ["a.rst"]


def test_corpus_can_be_iterated_again(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(f"doc {i}", encoding="utf-8")
    corpus = TextCorpus(tmp_path)
    assert [d.id for d in corpus] == [d.id for d in corpus] == ["0.txt", "1.txt", "2.txt"]


def test_utf8_then_gb18030_then_fallback():
    assert decode("中文".encode("utf-8")) == ("中文", "utf-8-sig")
    assert decode("中文".encode("gb18030")) == ("中文", "gb18030")
    text, encoding = decode(b"\xff\xfe\xfa\x81\x30")
    assert encoding is None and "\ufffd" in text


def test_binary_empty_and_undecodable_files_are_reported(tmp_path):
    (tmp_path / "good.txt").write_text("good text", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "odd.txt").write_bytes(b"caf\xff\xfe\x81\x30 bar")
    warnings = []
    corpus = TextCorpus(tmp_path, on_warning=warnings.append)
    assert [d.id for d in corpus] == ["good.txt", "odd.txt"]
    assert sorted((s.path.rsplit("/", 1)[1], s.reason) for s in corpus.skipped) == [
        ("binary.txt", "binary"), ("empty.txt", "empty")]
    assert corpus.fallbacks == [str(tmp_path / "odd.txt")]
    assert any("odd.txt" in w for w in warnings) and any("binary.txt" in w for w in warnings)


def test_hidden_folders_are_skipped(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "y.txt").write_text("shown", encoding="utf-8")
    assert [d.id for d in TextCorpus(tmp_path)] == ["y.txt"]


def test_snippet_collapses_whitespace_and_truncates():
    assert snippet("a \n b\tc") == "a b c"
    assert len(snippet("x" * 500)) == 120


def test_only_regular_files_are_read(tmp_path, monkeypatch):
    """A FIFO or a socket named like a document is skipped, named and counted; it never blocks."""
    monkeypatch.chdir(tmp_path)  # a socket's path must be short
    (tmp_path / "good.txt").write_text("good text", encoding="utf-8")
    os.mkfifo(tmp_path / "fifo.txt")
    server = socket.socket(socket.AF_UNIX)
    server.bind("socket.txt")
    warnings = []
    corpus = TextCorpus(tmp_path, on_warning=warnings.append)
    with deadline(), server:
        assert [d.id for d in corpus] == ["good.txt"]
    assert sorted((os.path.basename(s.path), s.reason) for s in corpus.skipped) == [
        ("fifo.txt", "not a regular file: a FIFO"), ("socket.txt", "not a regular file: a socket")]
    assert any("fifo.txt: not a regular file" in warning for warning in warnings)
    with deadline(), pytest.raises(SemhashError, match=r"cannot read .*fifo\.txt: not a regular file: a FIFO; give"):
        read_text(tmp_path / "fifo.txt")
    with pytest.raises(SemhashError, match=r"not a regular file: a folder"):
        read_text(tmp_path)


def test_links_out_of_the_folder_are_skipped_unless_followed(tmp_path):
    root, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    (root / "news").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "news" / "a.txt").write_text("inside", encoding="utf-8")
    (elsewhere / "secret.txt").write_text("outside", encoding="utf-8")
    (root / "inside.txt").symlink_to(root / "news" / "a.txt")
    (root / "out.txt").symlink_to(elsewhere / "secret.txt")
    (root / "outfolder").symlink_to(elsewhere)
    (root / "news" / "loop").symlink_to(root)  # a loop, and a way back into the corpus
    (root / "news" / "self").symlink_to(root / "news")
    warnings = []
    corpus = TextCorpus(root, on_warning=warnings.append)
    assert [d.id for d in corpus] == ["inside.txt", "news/a.txt"]
    assert [d.text for d in corpus] == ["inside", "inside"]
    assert sorted((os.path.basename(s.path), s.reason.split(":")[0]) for s in corpus.skipped) == [
        ("out.txt", "link outside the folder"), ("outfolder", "link outside the folder")]
    assert any("out.txt: link outside the folder: it leads to " + str(elsewhere / "secret.txt") in warning
               and "--follow-links" in warning for warning in warnings)
    with deadline():
        followed = TextCorpus(root, follow_links=True)
        assert [d.id for d in followed] == ["inside.txt", "news/a.txt", "out.txt", "outfolder/secret.txt"]
    assert followed.skipped == []


def test_names_that_are_not_utf8_are_skipped_before_reading(tmp_path):
    root = os.fsencode(tmp_path)
    (tmp_path / "good.txt").write_text("good text", encoding="utf-8")
    with open(root + b"/caf\xe9.txt", "wb") as file:
        file.write(b"a document")
    os.mkdir(root + b"/\xe9t\xe9")
    with open(root + b"/\xe9t\xe9/doc.txt", "wb") as file:
        file.write(b"a document in a label folder")
    warnings = []
    corpus = TextCorpus(tmp_path, on_warning=warnings.append)
    assert [d.id for d in corpus] == ["good.txt"]
    assert [s.reason.split(":")[0] for s in corpus.skipped] == ["name not UTF-8"] * 2
    assert any("caf\\xe9.txt: name not UTF-8: rename it" in warning for warning in warnings)
    assert any("\\xe9t\\xe9/doc.txt" in warning for warning in warnings)
    for warning in warnings:
        warning.encode("utf-8")  # printable as it is


def test_long_files_are_read_only_up_to_the_limit_at_a_character_boundary(tmp_path):
    (tmp_path / "short.txt").write_text("short", encoding="utf-8")
    (tmp_path / "utf8.txt").write_text("中文" * 10, encoding="utf-8")
    (tmp_path / "gb.txt").write_bytes(("中文" * 10).encode("gb18030"))
    warnings = []
    corpus = TextCorpus(tmp_path, on_warning=warnings.append, max_bytes=10)
    assert {d.id: d.text for d in corpus} == {"gb.txt": "中文中文中", "short.txt": "short", "utf8.txt": "中文中"}
    assert corpus.truncated == [str(tmp_path / "gb.txt"), str(tmp_path / "utf8.txt")]
    assert corpus.fallbacks == [] and corpus.skipped == []
    assert any("utf8.txt is larger than 10 bytes; truncated" in warning for warning in warnings)
    assert read_text(tmp_path / "short.txt", max_bytes=5) == "short"
    with pytest.raises(SemhashError, match=r"utf8\.txt is larger than 10 bytes; give a shorter file"):
        read_text(tmp_path / "utf8.txt", max_bytes=10)


def test_latin1_text_is_not_taken_for_gb18030():
    """An accented letter and the ASCII letter after it decode as a GBK extension character: a
    German sentence is valid GB18030, and was read as such, garbled, without a word."""
    text = "Besuchen Sie München und Köln"
    assert text.encode("latin-1").decode("gb18030") != text
    assert decode(text.encode("latin-1")) == (text, "cp1252")
    assert decode("新华社北京电 央行宣布下调存款准备金率".encode("gb18030"))[1] == "gb18030"
