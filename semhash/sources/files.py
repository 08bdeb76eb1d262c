"""Input files found and opened safely, for text and image folders alike: a walk that names what
it must skip (names that are not UTF-8, links out of the folder) and cannot loop, and regular
files opened so that a FIFO or a device never blocks a run and a huge file is never read whole."""

import collections
import copy
import dataclasses
import errno
import hashlib
import os
import stat
from pathlib import Path

from ..errors import SemhashError

Found = collections.namedtuple("Found", "path target problem")
Found.__doc__ = """A file met by `walk`: `path` as found under the root (its id), `target` the file to
open (a link's target), and `problem`, the reason it is to be skipped, else None."""

FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
              (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


class NotRegularFile(OSError):
    """A FIFO, socket, device or folder where a file was expected."""


class FileTooLarge(OSError):
    """A file larger than the reader's limit."""


def printable(path):
    """`path` as text that can always be printed or stored as UTF-8: the bytes of a name that is
    not UTF-8 (Python holds them as surrogate escapes) shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _kind(mode):
    return next((name for test, name in FILE_KINDS if test(mode)), "of an unknown kind")


def open_regular(path, max_bytes=None, follow_links=True):
    """The regular file at `path`, open for reading in binary, or NotRegularFile; FileTooLarge if it
    holds more than `max_bytes`. It is checked on the open descriptor, so nothing can be swapped in
    between check and read, and opened non-blocking, so a FIFO cannot hang the open."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ENXIO:  # what opening a socket gives
            raise NotRegularFile(errno.ENXIO, "not a regular file: a socket", str(path)) from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file: {_kind(info.st_mode)}", str(path))
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooLarge(errno.EFBIG, f"too large: {info.st_size:,} bytes, over the limit of {max_bytes:,}",
                               str(path))
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path, max_bytes, follow_links=True):
    """(data, truncated): the first `max_bytes` bytes of the regular file at `path`, never more read,
    and whether the file held more."""
    with open_regular(path, follow_links=follow_links) as file:
        data = file.read(max_bytes + 1)
    return data[:max_bytes], len(data) > max_bytes


def folder_root(root, what):
    """`root` as a Path if it is a folder whose path is UTF-8, else SemhashError saying to give `what`."""
    root = Path(root)
    if not root.exists():
        raise SemhashError(f"{printable(root)} does not exist; give the folder of {what} to index")
    if not root.is_dir():
        raise SemhashError(f"{printable(root)} is not a folder; give the folder of {what} to index")
    if printable(root.absolute()) != str(root.absolute()):
        raise SemhashError(f"{printable(root.absolute())} is not a UTF-8 path; rename it, as the index stores "
                           "paths as UTF-8")
    return root


def walk(root, accept, follow_links=False):
    """Found for every file under `root` whose path relative to it `accept`s, hidden files and folders
    left out, folder by folder in sorted order. A link into `root` is read; a link out of it is
    reported, or followed when `follow_links`. Links to folders are followed only when `follow_links`,
    and never into a folder met before, so a loop of links ends. Names that are not UTF-8 are reported,
    for the index could not store them; so are folders that cannot be listed."""
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    seen, waiting = set(), [root]
    while waiting:
        folder = waiting.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted((entry for entry in listing if not entry.name.startswith(".")),
                                 key=lambda entry: entry.name)
        except OSError as error:
            yield Found(folder, None, f"unreadable folder: {error.strerror}")
            continue
        folders = []
        for entry in entries:
            path = Path(entry.path)
            link = entry.is_symlink()
            target = Path(os.path.realpath(path)) if link else path
            outside = link and not target.is_relative_to(real_root)
            if entry.is_dir():
                if outside and not follow_links:
                    yield Found(path, None, _outside(target))
                elif follow_links or not link:  # a link to a folder inside is read through that folder
                    folders.append(path)
                continue
            relative = path.relative_to(root)
            if not accept(relative):
                continue
            if printable(relative) != str(relative):
                yield Found(path, None, "name not UTF-8: rename it, as the index stores names as UTF-8")
            elif outside and not follow_links:
                yield Found(path, None, _outside(target))
            else:
                yield Found(path, target, None)
        waiting.extend(reversed(folders))


def _outside(target):
    return f"link outside the folder: it leads to {printable(target)}; give --follow-links to follow it"


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file left out of the corpus, and why."""

    path: str
    reason: str

    @property
    def key(self):
        """The reason's first part, before any ":", under which a manifest counts the file."""
        return self.reason.split(":")[0]


class FolderSource:
    """What a reader of a folder of files shares, text and images alike: the walk of `root` for
    the files it `accepts`, their count, and the files it skips, named through `on_warning` and
    listed in `skipped`. A subclass sets root, follow_links, on_warning and skipped, and says which
    files it `accepts` by their path relative to the root."""

    def accepts(self, relative):
        raise NotImplementedError

    wanted = None  # the ids a pass is limited to (see `only`), or None for every file

    def _found(self):
        """What a walk of the folder finds: the files accepted, and what a pass will skip, sorted."""
        found = sorted(walk(self.root, self.accepts, self.follow_links))
        if self.wanted is not None:
            found = [item for item in found if self.id_of(item.path) in self.wanted]
        return found

    def id_of(self, path):
        """The id of the file at `path` under the root: its path relative to the root (cut from
        the text where it starts with the root's: pathlib's relative_to took a third of an
        unchanged update's time at 11,314 files)."""
        text, root = os.fspath(path), os.path.join(os.fspath(self.root), "")
        if text.startswith(root) and os.sep == "/":
            return text[len(root):]
        return Path(path).relative_to(self.root).as_posix()

    def only(self, ids):
        """The same source, its passes limited to the files whose ids are among `ids`."""
        limited = copy.copy(self)
        limited.wanted = frozenset(ids)
        limited.skipped = []
        return limited

    def fingerprints(self):
        """(id, sha256) of each file a pass would read, from its bytes as a pass reads them (at most
        `max_bytes`), without decoding it: what an index compares to tell new and changed files.
        Files that cannot be read are left out, as a pass leaves them out."""
        for path, target, problem in self._found():
            if problem is None:
                try:
                    data, _ = read_regular(target, self.max_bytes, follow_links=False)
                except OSError:
                    continue
                yield self.id_of(path), hashlib.sha256(data).hexdigest()

    def paths(self):
        """The candidate files, sorted, hidden files and folders left out; a pass skips some of them."""
        return [found.path for found in self._found()]

    def __len__(self):
        """The number of candidate files, counting those a pass will skip."""
        return len(self.paths())

    def _skip(self, path, reason):
        self.skipped.append(Skipped(str(path), reason))
        self._warn(f"skipped {printable(path)}: {reason}")

    def _warn(self, message):
        if self.on_warning is not None:
            self.on_warning(message)
