"""Text corpora read from folders: re-iterable, streamed one document at a time."""

import codecs
import dataclasses
import hashlib
from pathlib import Path

from .errors import SemhashError

DEFAULT_PATTERNS = ("*.txt", "*.md")
SNIPPET_CHARS = 120


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


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file left out of the corpus, and why."""

    path: str
    reason: str


def snippet(text, limit=SNIPPET_CHARS):
    """The first `limit` characters of `text` with its whitespace collapsed."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode(data):
    """Decode bytes as UTF-8, then GB18030, else UTF-8 with replacements.

    Returns (text, encoding); encoding is None when the fallback was needed.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace"), None


def looks_binary(data):
    """True for content with NUL bytes in its first 8 KiB, unless it is UTF-16 text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in data[:8192]


def read_text(path):
    """Read one file as text the way the corpus does, or raise SemhashError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SemhashError(f"cannot read {path}: {error.strerror}; check the path") from None
    if looks_binary(data):
        raise SemhashError(f"{path} is a binary file; give a text file")
    return decode(data)[0]


class TextCorpus:
    """The text files under `root` matching `patterns`, found recursively.

    Iterate it as often as needed: each pass reads the files again, one at a time.
    After a pass, `skipped` lists the files left out (binary, empty, unreadable) and
    `fallbacks` the files that decoded only with replacement characters.
    """

    def __init__(self, root, patterns=DEFAULT_PATTERNS, on_warning=None):
        self.root = Path(root)
        self.patterns = tuple(patterns)
        self.on_warning = on_warning
        if not self.root.exists():
            raise SemhashError(f"{self.root} does not exist; give the folder of documents to index")
        if not self.root.is_dir():
            raise SemhashError(f"{self.root} is not a folder; give the folder of documents to index")
        self.skipped = []
        self.fallbacks = []

    def paths(self):
        """The matching files, sorted, skipping hidden files and folders."""
        found = set()
        for pattern in self.patterns:
            for path in self.root.rglob(pattern):
                relative = path.relative_to(self.root)
                if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                    found.add(path)
        return sorted(found)

    def __len__(self):
        return len(self.paths())

    def __iter__(self):
        self.skipped = []
        self.fallbacks = []
        for path in self.paths():
            document = self._read(path)
            if document is not None:
                yield document

    def _skip(self, path, reason):
        self.skipped.append(Skipped(str(path), reason))
        self._warn(f"skipped {path}: {reason}")

    def _warn(self, message):
        if self.on_warning is not None:
            self.on_warning(message)

    def _read(self, path):
        try:
            data = path.read_bytes()
        except OSError as error:
            self._skip(path, f"unreadable ({error.strerror})")
            return None
        if looks_binary(data):
            self._skip(path, "binary")
            return None
        text, encoding = decode(data)
        if not text.strip():
            self._skip(path, "empty")
            return None
        if encoding is None:
            self.fallbacks.append(str(path))
            self._warn(f"{path} is neither UTF-8 nor GB18030; read with replacement characters")
        relative = path.relative_to(self.root)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        return Document(
            id=relative.as_posix(),
            path=str(path.absolute()),
            label=label,
            text=text,
            sha256=hashlib.sha256(data).hexdigest(),
        )
