"""Text corpora read from folders: re-iterable, streamed one document at a time."""

import codecs
import dataclasses
import hashlib
import re

from ..errors import SemhashError
from .files import FolderSource, NotRegularFile, folder_root, printable, read_regular

DEFAULT_PATTERNS = ("*.txt", "*.md")
SNIPPET_CHARS = 120
# Files are read up to this many bytes. 4 MiB is 25 times the longest 20 Newsgroups post, a novel's
# length; jieba takes about 5 s on it, and a bag of words hardly changes further on, while a 200 MB
# file read whole took gigabytes and tens of minutes.
MAX_DOCUMENT_BYTES = 4 * 2**20
ASCII_RUNS = re.compile(r"[\x00-\x7f]+")


@dataclasses.dataclass(frozen=True)
class Document:
    """One text file: its id is the path relative to the corpus root."""

    id: str
    path: str
    label: str | None
    text: str
    sha256: str

    def record(self):
        """The JSON-ready description stored beside the document's code."""
        return {
            "id": self.id,
            "path": self.path,
            "label": self.label,
            "snippet": snippet(self.text),
            "sha256": self.sha256,
        }


def snippet(text, limit=SNIPPET_CHARS):
    """The first `limit` characters of `text` with its whitespace collapsed."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode(data, complete=True):
    """Decode bytes as UTF-8 (or UTF-16 after its byte-order mark), then GB18030 if the text it
    gives is plausibly Chinese, then cp1252, else UTF-8 with replacements.

    Returns (text, encoding); encoding is None when the replacements were needed. `complete=False`
    is for the first bytes of a longer file: a character cut off at their end is dropped.
    """

    def attempt(encoding, errors="strict"):
        return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=complete)

    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return attempt("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030", "cp1252"):
        try:
            text = attempt(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != "gb18030" or plausibly_chinese(text):
            return text, encoding
    return attempt("utf-8", "replace"), None


def plausibly_chinese(text):
    """True when most of the non-ASCII characters of `text` are in GB2312, the common Chinese set.

    Chinese text is: at least 83% of them in every THUCNews headline. Latin-1 or cp1252 text that
    GB18030 decodes at all is not: an accented letter and the ASCII letter after it make one of
    GBK's extension characters, outside GB2312 (32 of the 33 non-UTF-8 20 Newsgroups posts that
    decode as GB18030 have most of them outside).
    """
    foreign = ASCII_RUNS.sub("", text)
    return foreign.encode("gb2312", errors="replace").count(b"?") * 2 < len(foreign)


def looks_binary(data):
    """True for content with NUL bytes in its first 8 KiB, unless it is UTF-16 text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in data[:8192]


def read_text(path, max_bytes=MAX_DOCUMENT_BYTES):
    """Read one file as text the way the corpus does, or raise SemhashError naming it.

    A file over `max_bytes` is refused rather than cut short: a query is what the user gave, whole.
    """
    try:
        data, truncated = read_regular(path, max_bytes)
    except NotRegularFile as error:
        raise SemhashError(f"cannot read {printable(path)}: {error.strerror}; give a text file") from None
    except OSError as error:
        raise SemhashError(f"cannot read {printable(path)}: {error.strerror}; check the path") from None
    if truncated:
        raise SemhashError(f"{printable(path)} is larger than {max_bytes:,} bytes; give a shorter file to query with")
    if looks_binary(data):
        raise SemhashError(f"{printable(path)} is a binary file; give a text file")
    return decode(data)[0]


class TextCorpus(FolderSource):
    """The text files under `root` matching `patterns`, found recursively.

    Iterate it as often as needed: each pass reads the files again, one at a time, each up to
    `max_bytes` (the rest of a longer one is left out, with a warning). Links that lead out of
    `root` are skipped unless `follow_links`. After a pass, `skipped` lists the files left out
    (binary, empty, unreadable, not regular files, names that are not UTF-8, links out),
    `fallbacks` the files that decoded only with replacement characters and `truncated` those
    cut at `max_bytes`.
    """

    def __init__(self, root, patterns=DEFAULT_PATTERNS, on_warning=None, max_bytes=MAX_DOCUMENT_BYTES,
                 follow_links=False):
        self.root = folder_root(root, "documents")
        self.patterns = tuple(patterns)
        self.on_warning = on_warning
        self.max_bytes = max_bytes
        self.follow_links = follow_links
        self.skipped = []
        self.fallbacks = []
        self.truncated = []

    def accepts(self, relative):
        """Whether a file at the path `relative` to the root matches one of the patterns."""
        return any(relative.match(pattern) for pattern in self.patterns)

    def __iter__(self):
        self.skipped = []
        self.fallbacks = []
        self.truncated = []
        for found in self._found():
            if found.problem is not None:
                self._skip(found.path, found.problem)
                continue
            document = self._read(found.path, found.target)
            if document is not None:
                yield document


    def _read(self, path, target):
        try:
            data, truncated = read_regular(target, self.max_bytes, follow_links=False)
        except NotRegularFile as error:
            self._skip(path, error.strerror)
            return None
        except OSError as error:
            self._skip(path, f"unreadable ({error.strerror})")
            return None
        if looks_binary(data):
            self._skip(path, "binary")
            return None
        text, encoding = decode(data, complete=not truncated)
        if not text.strip():
            self._skip(path, "empty")
            return None
        if truncated:
            self.truncated.append(str(path))
            self._warn(f"{path} is larger than {self.max_bytes:,} bytes; truncated, indexed up to there "
                       "(--max-document-bytes sets the limit)")
        if encoding is None:
            self.fallbacks.append(str(path))
            self._warn(f"{path} is neither UTF-8 nor GB18030; read with replacement characters")
        elif encoding == "cp1252":
            self._warn(f"{path} is neither UTF-8 nor GB18030; read as cp1252 (Western European), a guess")
        relative = path.relative_to(self.root)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        return Document(
            id=relative.as_posix(),
            path=str(path.absolute()),
            label=label,
            text=text,
            sha256=hashlib.sha256(data).hexdigest(),
        )
