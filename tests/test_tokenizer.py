import logging
import marshal
import tempfile

import numpy as np
import pytest
from conftest import TOPICS, deadline, topic_text

from semhash.errors import SemhashError
from semhash.features.tokenizer import JiebaTokenizer, Lexicon, _SortedKeys, bundled_stop_words


@pytest.fixture(scope="module")
def tokenizer():
    return JiebaTokenizer()


def test_chinese_is_segmented_into_words(tokenizer):
    assert tokenizer("我们今天发布了新款手机芯片") == ["今天", "发布", "新款手机", "芯片"]


def test_english_is_lower_cased_without_stop_words(tokenizer):
    assert tokenizer("The Central Bank RAISED interest rates") == ["central", "bank", "raised", "interest", "rates"]


def test_mixed_text_keeps_both_scripts(tokenizer):
    assert tokenizer("深度学习框架TensorFlow发布新版本") == ["深度", "学习", "框架", "tensorflow", "发布", "新", "版本"]


def test_punctuation_whitespace_and_numbers_are_dropped(tokenizer):
    assert tokenizer("  Hello,   world!!! 3.14 2024 ——「你好」…  \n\t") == ["hello", "world", "你好"]


def test_empty_and_stop_word_only_text_give_no_terms(tokenizer):
    assert tokenizer("") == []
    assert tokenizer("the and of 的 了 是") == []


def test_stop_word_lists_ship_with_the_package():
    words = bundled_stop_words()
    assert {"the", "and", "的", "了"} <= words
    assert "bank" not in words and "银行" not in words
    with pytest.raises(SemhashError, match="no stop-word list"):
        bundled_stop_words(["fr"])


def test_stop_words_can_be_kept():
    assert JiebaTokenizer(stop_words=())("the bank") == ["the", "bank"]


def test_user_dictionary_joins_new_words(tmp_path, tokenizer):
    assert "语义哈希" not in tokenizer("语义哈希很快")
    user_dict = tmp_path / "user.txt"
    user_dict.write_text("语义哈希 100 n\n", encoding="utf-8")
    assert JiebaTokenizer(user_dict=user_dict)("语义哈希很快")[0] == "语义哈希"


def test_missing_user_dictionary_names_the_file(tmp_path):
    with pytest.raises(SemhashError, match="nowhere.txt"):
        JiebaTokenizer(user_dict=tmp_path / "nowhere.txt")("文本")


def test_stored_lexicon_segments_exactly_as_jieba(tmp_path, tokenizer):
    texts = [
        "他来到了网易杭研大厦", "结婚的和尚未结婚的", "乒乓球拍卖完了", "工信处女干事每月经过下属科室",
        "Apple发布iPhone 15, 售价5999元", "永和服装饰品有限公司", "",
    ]
    tokenizer.lexicon().save(tmp_path / "lexicon.npz")
    stored = JiebaTokenizer().use_lexicon(Lexicon.load(tmp_path / "lexicon.npz"))
    assert [stored(text) for text in texts] == [tokenizer(text) for text in texts]


def test_a_long_text_is_not_one_binary_search_a_lookup(tmp_path, tokenizer, monkeypatch):
    """A 10 MB query took minutes at 2 to 3 binary searches a character: past a bounded number
    of searches the lexicon answers from a table, so twice the text costs no more searches."""
    rng = np.random.default_rng(0)
    text = "".join(topic_text(rng, topic, language) for _ in range(150) for topic in TOPICS for language in ("en", "zh"))
    tokenizer.lexicon().save(tmp_path / "lexicon.npz")
    probes = 0
    key_at = _SortedKeys.__getitem__

    def counted(keys, position):
        nonlocal probes
        probes += 1
        return key_at(keys, position)

    monkeypatch.setattr(_SortedKeys, "__getitem__", counted)
    counts = []
    with deadline(120):
        for long_text in (text, text + text):
            probes = 0
            stored = JiebaTokenizer().use_lexicon(Lexicon.load(tmp_path / "lexicon.npz"))
            assert stored(long_text) == tokenizer(long_text)
            counts.append(probes)
    assert counts[1] == counts[0]


def test_lexicon_answers_like_jiebas_table(tokenizer):
    lexicon = Lexicon.from_frequencies({"北京": 5, "北京大学": 3, "北": 0}, total=8)
    assert "北" in lexicon and "北京大" in lexicon and "南" not in lexicon
    assert lexicon.get("北京大学") == 3 and lexicon.get("北京大") == 0 and lexicon.get("南") is None
    assert "" not in lexicon and lexicon.get("") is None  # as in jieba's table, found by test_hostile_inputs
    assert lexicon["北京"] == 5
    with pytest.raises(KeyError):
        lexicon["南"]


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """The system's temporary folder, where another user has left a jieba cache that makes
    "语义哈希" one word."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    planted = {"语": 0, "语义": 0, "语义哈": 0, "语义哈希": 10**9}
    (shared / "jieba.cache").write_bytes(marshal.dumps((planted, 10**9)))
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def test_jieba_caches_its_dictionary_in_a_private_folder(tmp_path, monkeypatch, shared_tmp):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert JiebaTokenizer()("语义哈希") != ["语义哈希"]
    folder = tmp_path / "cache" / "semhash"
    assert (folder / "jieba.cache").is_file() and folder.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("unusable", ["folder under a file", "cache is a folder", "others may write"])
def test_an_unusable_cache_is_no_error(tmp_path, monkeypatch, caplog, shared_tmp, unusable):
    cache = tmp_path / "cache"
    if unusable == "folder under a file":
        cache.write_text("not a folder")
    elif unusable == "cache is a folder":
        (cache / "semhash" / "jieba.cache").mkdir(parents=True)
    else:
        (cache / "semhash").mkdir(parents=True)
        (cache / "semhash").chmod(0o777)
    (shared_tmp / "jieba.cache").unlink()
    (shared_tmp / "jieba.cache").mkdir()  # and jieba cannot write its cache there either
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with caplog.at_level(logging.DEBUG, logger="jieba"):
        assert JiebaTokenizer()("语义哈希很快") == ["语义", "哈希", "很快"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
