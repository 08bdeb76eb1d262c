from semhash.corpus import TextCorpus, decode, snippet


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
