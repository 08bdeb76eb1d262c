"""jieba tokenization for Chinese and English alike, with the bundled stop-word lists.

A fitted index carries jieba's word-frequency table as a sorted lexicon (`lexicon.npz`).
Loading it costs milliseconds where jieba's own dictionary costs most of a second, and
it freezes the index's segmentation even if jieba or the user dictionary later change.
"""

import bisect
import contextlib
import importlib.resources
import logging
import os
from pathlib import Path

import jieba
import numpy as np

from ..errors import SemhashError

jieba.setLogLevel(logging.WARNING)

STOP_WORD_LANGUAGES = ("en", "zh")


def bundled_stop_words(languages=STOP_WORD_LANGUAGES):
    """The union of the stop-word lists shipped for `languages` ("en", "zh")."""
    words = set()
    folder = importlib.resources.files("semhash") / "stopwords"
    for language in languages:
        if language not in STOP_WORD_LANGUAGES:
            raise SemhashError(
                f"no stop-word list for {language!r}; choose from {', '.join(STOP_WORD_LANGUAGES)}"
            )
        words.update((folder / f"{language}.txt").read_text(encoding="utf-8").split())
    return frozenset(words)


def cache_folder():
    """A folder for jieba's dictionary cache that only this user can write, or None if there is none.

    jieba's own choice, the system's temporary folder, is shared: another user's cache there
    cannot be replaced (a PermissionError), and one planted there would be read as the dictionary.
    This is $XDG_CACHE_HOME/semhash or ~/.cache/semhash, made with mode 0700.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    try:
        folder = (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "semhash"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = folder.stat()
    except (OSError, RuntimeError):  # a file in the way, no permission, no home folder
        return None
    others_may_write = status.st_mode & 0o022 or (hasattr(os, "getuid") and status.st_uid != os.getuid())
    return None if others_may_write or not os.access(folder, os.W_OK) else folder


@contextlib.contextmanager
def _jieba_silenced():
    """Keep jieba from printing a traceback when it cannot write its cache: it goes on without."""
    level = jieba.default_logger.level
    jieba.setLogLevel(logging.CRITICAL)
    try:
        yield
    finally:
        jieba.setLogLevel(level)


def is_term(token):
    """True for a token worth counting: it has a letter and is not a lone Latin letter."""
    if not any(char.isalpha() for char in token):
        return False
    return not (len(token) == 1 and token.isascii())


class _SortedKeys:
    """The lexicon's words as a sorted sequence of UTF-8 bytes, for bisect."""

    def __init__(self, blob, offsets):
        self._blob = blob
        self._offsets = offsets

    def __len__(self):
        return len(self._offsets) - 1

    def __getitem__(self, i):
        return self._blob[self._offsets[i] : self._offsets[i + 1]].tobytes()


class Lexicon:
    """jieba's word frequencies, answering the `in`, `[]` and `get` that jieba asks.

    jieba only ever looks up substrings of the text it cuts: whether a fragment is a
    word or the prefix of one, and a word's frequency. A binary search over the sorted
    words answers both, so the segmentation is the one jieba makes with its full table.
    A long text asks too often for that (2 to 3 lookups a character, 6 us each): after
    SEARCHES lookups the words and their prefixes are unpacked into a dict, jieba's own
    table, which answers in a tenth of a microsecond.
    """

    # Unpacking takes 0.25 s, as long as about this many binary searches: a short query never
    # pays for it, and a long text never spends more than twice what the faster way costs.
    SEARCHES = 40_000

    def __init__(self, blob, offsets, freqs, total):
        self._keys = _SortedKeys(blob, offsets)
        self._freqs = freqs
        self.total = int(total)
        self._searches_left = self.SEARCHES
        self._table = None

    @classmethod
    def from_frequencies(cls, frequencies, total):
        """Build from jieba's table, keeping the words (prefix entries have frequency 0)."""
        words = sorted((word.encode("utf-8"), freq) for word, freq in frequencies.items() if freq)
        lengths = np.fromiter((len(word) for word, _ in words), dtype=np.int64, count=len(words))
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.frombuffer(b"".join(word for word, _ in words), dtype=np.uint8)
        freqs = np.fromiter((freq for _, freq in words), dtype=np.int64, count=len(words))
        return cls(blob, offsets, freqs, total)

    def save(self, path):
        np.savez(
            path,
            blob=self._keys._blob,
            offsets=self._keys._offsets,
            freqs=self._freqs,
            total=np.int64(self.total),
        )

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as arrays:
            return cls(arrays["blob"], arrays["offsets"], arrays["freqs"], arrays["total"])

    def _search(self, fragment):
        """The fragment's frequency by binary search: a word's, 0 for a prefix, else None. The
        empty string is neither, as in jieba's table (every word would start with it)."""
        key = fragment.encode("utf-8", "surrogatepass")  # a lone surrogate matches no word, as in the table
        if not key:
            return None
        position = bisect.bisect_left(self._keys, key)
        found = self._keys[position] if position < len(self._keys) else None
        if found is None or not found.startswith(key):
            return None
        return int(self._freqs[position]) if found == key else 0

    def _unpack(self):
        """jieba's table: each word with its frequency, and each shorter prefix of one with 0."""
        blob, offsets = self._keys._blob.tobytes(), self._keys._offsets.tolist()
        words = [blob[start:end].decode("utf-8") for start, end in zip(offsets, offsets[1:])]
        table = dict.fromkeys({word[:length] for word in words for length in range(1, len(word))}, 0)
        table.update(zip(words, self._freqs.tolist()))
        return table

    def _frequency(self, fragment):
        """The fragment's frequency, by binary search until SEARCHES are spent, then from the table."""
        if self._table is None:
            if self._searches_left:
                self._searches_left -= 1
                return self._search(fragment)
            self._table = self._unpack()
        return self._table.get(fragment)

    def __contains__(self, fragment):
        return self._frequency(fragment) is not None

    def get(self, fragment, default=None):
        freq = self._frequency(fragment)
        return default if freq is None else freq

    def __getitem__(self, fragment):
        freq = self._frequency(fragment)
        if freq is None:
            raise KeyError(fragment)
        return freq

    def __len__(self):
        return len(self._keys)


class JiebaTokenizer:
    """Callable that turns text into terms for a bag of words.

    jieba cuts in precise mode (with its HMM for unknown words); Latin words are
    lower-cased; whitespace, punctuation, numbers and stop words are dropped.
    `user_dict` is a jieba user dictionary file (one `word [freq] [tag]` a line).
    """

    def __init__(self, user_dict=None, stop_words=STOP_WORD_LANGUAGES, hmm=True):
        self.user_dict = user_dict
        self.stop_words = tuple(stop_words) if stop_words else ()
        self.hmm = hmm
        self._stop = bundled_stop_words(self.stop_words)
        self._jieba = None

    def _segmenter(self):
        """jieba's tokenizer with the full dictionary and the user dictionary, loaded once; the
        dictionary is cached in `cache_folder()`, or built afresh when there is none."""
        if self._jieba is None:
            segmenter = jieba.Tokenizer()
            folder = cache_folder()
            if folder is None:
                segmenter.FREQ, segmenter.total = segmenter.gen_pfdict(segmenter.get_dict_file())
                segmenter.initialized = True
            else:
                segmenter.tmp_dir = str(folder)
                with _jieba_silenced():
                    segmenter.initialize()
            if self.user_dict is not None:
                path = Path(self.user_dict)
                if not path.is_file():
                    raise SemhashError(f"user dictionary {path} not found; give a jieba dictionary file")
                try:
                    segmenter.load_userdict(str(path))
                except (ValueError, UnicodeDecodeError) as error:
                    raise SemhashError(
                        f"user dictionary {path} is not a jieba dictionary ({error}); "
                        "write one `word [freq] [tag]` a line in UTF-8"
                    ) from None
            self._jieba = segmenter
        return self._jieba

    def __call__(self, text):
        terms = []
        for token in self._segmenter().cut(text, HMM=self.hmm):
            term = token.strip().lower()
            if term and is_term(term) and term not in self._stop:
                terms.append(term)
        return terms

    def lexicon(self):
        """The word frequencies this tokenizer segments with, as a Lexicon to store."""
        segmenter = self._segmenter()
        if isinstance(segmenter.FREQ, Lexicon):  # read from an index: saved again as it is
            return segmenter.FREQ
        return Lexicon.from_frequencies(segmenter.FREQ, segmenter.total)

    def use_lexicon(self, lexicon):
        """Segment with a stored Lexicon instead of loading jieba's dictionary."""
        segmenter = jieba.Tokenizer()
        segmenter.FREQ = lexicon
        segmenter.total = lexicon.total
        segmenter.initialized = True
        self._jieba = segmenter
        return self

    def get_params(self):
        return {"user_dict": self.user_dict, "stop_words": list(self.stop_words), "hmm": self.hmm}
