"""Property-based tests (hypothesis) of what a hostile or careless user can feed semhash.

Each property holds for every input hypothesis generates, and the whole file runs in well under a
minute, so it stays in CI (no example database is written; a failure prints how to reproduce it):

- corpus.decode and looks_binary on arbitrary bytes never raise; UTF-8 text round-trips, and
  GB18030-encoded Chinese decodes back unless its bytes are valid UTF-8 too.
- The tokenizer as queries use it (JiebaTokenizer on the stored Lexicon), on arbitrary unicode,
  never raises and gives non-empty, lower-case terms without whitespace; on generated mixed text it
  gives jieba's own terms, both while the lexicon binary-searches and once it has unpacked its table.
- Lexicon's `in`, `get` and `[]` agree with jieba's kind of table (words, and their prefixes at 0)
  on arbitrary fragments: words, prefixes, the empty string, any other text, lone surrogates too.
- The CIFAR-10 parsers (python and binary versions, batches and meta files), on arbitrary bytes,
  pickles of generated objects, and hand-made pickles that ask for os.system, eval and the like,
  either return what a batch holds or raise SemhashError, and never run anything.
- read_image, on arbitrary bytes and on truncated or corrupted PNG, JPEG, GIF, BMP and TIFF files,
  returns pixels or raises SemhashError.
- TextFeatures.transform, fitted on a small corpus, never raises on arbitrary texts and gives finite rows.
"""

import io
import os
import pickle
import string
import subprocess

import numpy as np
import pytest
from conftest import TOPICS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from semhash.errors import SemhashError
from semhash.features.text import TextFeatures
from semhash.features.tokenizer import JiebaTokenizer, Lexicon
from semhash.sources.cifar import CIFAR_PIXELS, CifarBinary, CifarPython
from semhash.sources.images import read_image
from semhash.sources.text import decode, looks_binary


def hostile(examples):
    """Settings for a property: `examples` of them, no deadline (2 shared cores), no database."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def unicode_text(max_size):
    """Any text, lone surrogates too (which st.text never gives)."""
    return st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=max_size).map("".join)


any_text = unicode_text(200)
chinese = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
common_chinese = chinese.filter(lambda char: len(char.encode("gb2312", errors="replace")) == 2)  # GB2312's
# Mixed text as queries come: dictionary words run together, English words, digits, punctuation.
pieces = st.sampled_from([word for topic in TOPICS.values() for words in topic.values() for word in words]
                         + list("的了是在中国人民大学生活动") + list(string.ascii_letters + string.digits)
                         + [" ", "  ", "\n", ",", "。", "，", "Apple", "iPhone", "3.14", "-", "_", "#", "%"])
mixed_text = st.one_of(st.lists(pieces, max_size=60).map("".join), any_text)


# corpus.decode and looks_binary

@hostile(300)
@given(st.binary(max_size=3000))
def test_decode_and_looks_binary_take_any_bytes(data):
    text, encoding = decode(data)
    assert isinstance(text, str) and encoding in ("utf-16", "utf-8-sig", "gb18030", "cp1252", None)
    assert isinstance(looks_binary(data), bool)


@hostile(200)
@given(st.text())
def test_utf8_text_round_trips(text):
    assert decode(text.encode("utf-8"))[0] == text.removeprefix("\ufeff")  # a byte-order mark is dropped


@hostile(200)
@given(st.text(st.one_of(common_chinese, st.sampled_from(string.ascii_letters + " ,.\n")), min_size=1))
def test_gb18030_chinese_decodes_back(text):
    """Chinese in GB2312's common characters, as real text is (see corpus.plausibly_chinese)."""
    data = text.encode("gb18030")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)  # "一一" in GB18030 is valid UTF-8 too, and UTF-8 is tried first
    assert decode(data) == (text, "gb18030")


# The tokenizer and its stored lexicon

@pytest.fixture(scope="module")
def lexicon_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lexicon") / "lexicon.npz"
    JiebaTokenizer().lexicon().save(path)
    return path


@pytest.fixture(scope="module")
def jieba_tokenizer():
    return JiebaTokenizer()


class TableFirst(Lexicon):
    """A lexicon that unpacks its table at the first lookup instead of binary-searching first."""

    SEARCHES = 0


@pytest.fixture(scope="module")
def stored_tokenizers(lexicon_file):
    """A fresh stored-lexicon tokenizer for each example (binary search), and one on the table."""
    table = JiebaTokenizer().use_lexicon(TableFirst.load(lexicon_file))
    return lambda: (JiebaTokenizer().use_lexicon(Lexicon.load(lexicon_file)), table)


@hostile(150)
@given(any_text)
def test_the_query_tokenizer_takes_any_text(stored_tokenizers, text):
    for tokenizer in stored_tokenizers():
        for term in tokenizer(text):
            assert term and term == term.lower() and not any(char.isspace() for char in term), term


@hostile(60)
@given(mixed_text)
def test_the_stored_lexicon_segments_as_jieba(stored_tokenizers, jieba_tokenizer, text):
    expected = jieba_tokenizer(text)
    for tokenizer in stored_tokenizers():
        assert tokenizer(text) == expected


def jieba_table(frequencies):
    """The table jieba builds from a dictionary file: each word, and each shorter prefix of one at 0."""
    table = {word[:end]: 0 for word in frequencies for end in range(1, len(word))}
    table.update(frequencies)
    return table


@hostile(150)
@given(st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6),
                       st.integers(1, 10**9), max_size=30), st.data())
def test_lexicon_answers_as_jiebas_table(frequencies, data):
    table = jieba_table(frequencies)
    fragments = data.draw(st.lists(st.one_of(st.sampled_from(sorted(table) or [""]), st.just(""),
                                             unicode_text(8)), max_size=20))
    for lexicon in (Lexicon.from_frequencies(frequencies, 1), TableFirst.from_frequencies(frequencies, 1)):
        for fragment in fragments:
            assert (fragment in lexicon) == (fragment in table), fragment
            assert lexicon.get(fragment) == table.get(fragment) and lexicon.get(fragment, -1) == table.get(fragment, -1)
            if fragment in table:
                assert lexicon[fragment] == table[fragment]
            else:
                with pytest.raises(KeyError):
                    lexicon[fragment]


# The CIFAR-10 parsers

def parsed_or_refused(parse, data):
    """What `parse` makes of `data`, checked to be a batch's or meta file's; None if refused."""
    try:
        parsed = parse(data, "hostile")
    except SemhashError as error:
        assert "\n" not in str(error)
        return None
    if isinstance(parsed, tuple):
        rows, labels = parsed
        assert isinstance(rows, np.ndarray) and rows.dtype == np.uint8 and rows.shape == (len(rows), CIFAR_PIXELS)
        assert isinstance(labels, list) and len(labels) == len(rows) and all(isinstance(x, int) for x in labels)
    else:
        assert isinstance(parsed, list) and parsed and all(isinstance(name, str) for name in parsed)
    return parsed


PARSERS = [CifarPython.parse_batch, CifarPython.parse_meta, CifarBinary.parse_batch, CifarBinary.parse_meta]


@hostile(200)
@given(st.one_of(st.binary(max_size=4000),
                 st.integers(1, 3).flatmap(lambda n: st.binary(min_size=n * 3073, max_size=n * 3073))))
def test_cifar_parsers_take_any_bytes(data):
    for parse in PARSERS:
        parsed_or_refused(parse, data)


leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20)
          | arrays(st.sampled_from([np.uint8, np.int64, np.float32, object]), st.sampled_from([(0,), (2, 3), (1, CIFAR_PIXELS)]),
                   elements=st.integers(0, 255)))
objects = st.recursive(leaves, lambda children: st.lists(children, max_size=4)
                       | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), children, max_size=4)
                       | st.tuples(children, children) | st.frozensets(st.integers(), max_size=3), max_leaves=12)
batches = st.fixed_dictionaries({
    b"data": objects | arrays(np.uint8, st.tuples(st.integers(0, 3), st.just(CIFAR_PIXELS))),
    b"labels": objects | st.lists(st.integers(-2, 12), max_size=3),
    b"label_names": objects | st.lists(st.binary(max_size=8) | st.text(max_size=8), max_size=3),
})


@hostile(150)
@given(st.one_of(objects, batches), st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_cifar_parsers_take_any_pickle(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    for parse in PARSERS:
        parsed_or_refused(parse, data)


class Attack:
    """Pickles as a call of `function` on `args`: what a planted batch would run on loading."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_that_ask_to_run_something_are_refused(tmp_path, protocol):
    marker = tmp_path / "ran"
    command = f"touch {marker}"
    attacks = [
        Attack(os.system, command),
        Attack(subprocess.call, ["touch", str(marker)]),
        Attack(eval, f"open({str(marker)!r}, 'w')"),
        Attack(exec, f"open({str(marker)!r}, 'w')"),
        Attack(getattr, Attack(__import__, "os"), "system"),
        Attack(np.load, str(marker)),
        Attack(np.ndarray, (0,)),  # a global a batch may name, called as a batch never does
    ]
    for attack in attacks:
        payloads = [pickle.dumps(attack, protocol=protocol),
                    pickle.dumps({b"data": attack, b"labels": [0]}, protocol=protocol)]
        for data in payloads:
            for parse in (CifarPython.parse_batch, CifarPython.parse_meta):
                assert parsed_or_refused(parse, data) is None
    assert not marker.exists()


# read_image

@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    return tmp_path_factory.mktemp("images") / "hostile.img"


def pixels_or_refused(path):
    try:
        pixels = read_image(path, (8, 8))
    except SemhashError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(pixels, np.ndarray) and pixels.shape == (8, 8, 3) and pixels.dtype == np.uint8


@hostile(150)
@given(st.binary(max_size=3000))
def test_read_image_takes_any_bytes(image_file, data):
    image_file.write_bytes(data)
    pixels_or_refused(image_file)


def encoded(image_format):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8))
    out = io.BytesIO()
    picture.save(out, format=image_format)
    return out.getvalue()


IMAGES = {image_format: encoded(image_format) for image_format in ("PNG", "JPEG", "GIF", "BMP", "TIFF")}


@pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow warns of the damage it reads past
@hostile(200)
@given(st.sampled_from(sorted(IMAGES)), st.data())
def test_read_image_takes_truncated_and_corrupted_images(image_file, image_format, data):
    image = bytearray(IMAGES[image_format])
    image = image[: data.draw(st.integers(0, len(image)), label="kept")]
    for position, value in data.draw(st.lists(st.tuples(st.integers(0, max(len(image) - 1, 0)), st.integers(0, 255)),
                                              max_size=4), label="changes"):
        if position < len(image):
            image[position] = value
    image_file.write_bytes(bytes(image))
    pixels_or_refused(image_file)


# Text features

@pytest.fixture(scope="module")
def fitted_features():
    texts = ["bank rates bank", "bank stocks", "football goal", "football goal coach", "银行 利率", "银行 股票"]
    return [TextFeatures(min_df=1, max_df=1.0, weighting=weighting).fit(texts)
            for weighting in ("tfidf", "log1p", "binary", "counts")]


@hostile(60)
@given(st.lists(mixed_text, max_size=3))
def test_features_take_any_text(fitted_features, texts):
    for features in fitted_features:
        rows = features.transform(texts)
        assert rows.shape == (len(texts), len(features.terms_)) and np.isfinite(rows.data).all()
