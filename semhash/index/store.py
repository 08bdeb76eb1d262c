"""The index folder on disk: a manifest that names one generation folder of data files.

    INDEX/manifest.json        format, settings, and the size and sha256 of every data file
    INDEX/generation-000007/   the data files of the index the manifest describes
    INDEX/.semhash.lock        held by a writer, so two writers take turns

A writer fills a new generation folder, then replaces manifest.json by one atomic rename: at
every moment the manifest names a whole generation, so a crash, kill -9 or Ctrl-C at any point
leaves the previous index as it was, and a reader sees the old index or the new one, never a mix.
The generation before the current one is kept for readers that opened it a moment ago; older
ones, and generations a killed writer left unfinished, are removed by the next writer. Format-1
indexes, whose files lie beside their manifest, are still read, and replaced the same way.

semhash writes only into a folder that is empty, absent, or holds its own manifest, and removes
only what it wrote: the files a manifest lists and its generation folders.
"""

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from .. import __version__
from ..errors import SemhashError

FORMAT = "semhash-index"
FORMAT_VERSION = 5
# 1: the data files beside the manifest, checked by size alone; 2: records.jsonl, not records.sqlite;
# 3: one set of codes and records, and Annoy's file always, not shards (see `shards`); 4: no joined code
# layer squashed before it is cut (`scales` in encoder.npz), which a semhash reading 4 at most would ignore
READABLE_VERSIONS = (1, 2, 3, 4, 5)
MANIFEST = "manifest.json"
LOCK = ".semhash.lock"
GENERATION = re.compile(r"generation-(\d{6,})")
SHARD = re.compile(r"shard-\d{6}")
MANIFEST_TEMPORARY = re.compile(re.escape(MANIFEST) + r"\.tmp-\d+")
HASH_CHUNK = 1 << 22
MAX_BITS = 1024
SHARD_FILE = re.compile(r"shard-\d{6}/[^/]+")
REBUILD = "rebuild it with `semhash index`"


def sha256(path):
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _own_entry(name):
    """True for what a semhash writer leaves in an index folder besides the manifest."""
    return name == LOCK or bool(GENERATION.fullmatch(name) or MANIFEST_TEMPORARY.fullmatch(name))


def _inside(path, folder):
    """True when `path` is `folder` or lies below it (both resolved)."""
    return path == folder or folder in path.parents


def check_destination(folder, source=None):
    """Raise SemhashError unless an index may be written to `folder`: absent, an empty folder, a
    semhash index of a format this version reads, or a folder a killed writer left holding only
    semhash's own entries. `source`, the corpus, may neither hold the folder nor lie inside it.
    Called before training, so that no run fails after minutes of work for a reason known at
    the start."""
    folder = Path(folder)
    choose = "choose another --output"
    if source is not None:
        where, corpus = folder.resolve(), Path(source).resolve()
        if _inside(where, corpus) and corpus.is_dir():
            raise SemhashError(f"{folder} lies inside the corpus {source}; {choose} outside it")
        if _inside(corpus, where):
            raise SemhashError(f"the corpus {source} lies inside {folder}; {choose}")
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise SemhashError(f"{folder} is not a folder; {choose}")
    if folder.is_dir():
        entries = [entry.name for entry in folder.iterdir()]
        if MANIFEST in entries:
            read_manifest(folder, check_files=False, purpose=f"; {choose}", whole=False)
        elif not all(_own_entry(name) for name in entries):
            raise SemhashError(f"{folder} exists and is not a semhash index; {choose}")
    existing = next(parent for parent in (folder, *folder.absolute().parents) if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SemhashError(f"cannot write in {existing}; {choose} in a folder you can write to")


def _identified(manifest, path, purpose):
    """`manifest` if it is a semhash manifest of a readable format, else SemhashError."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SemhashError(f"{path.parent} is not a semhash index (its {MANIFEST} is not semhash's){purpose}")
    version = manifest.get("format_version")
    if type(version) is not int:
        raise SemhashError(f"{path} has format_version {version!r}, not a whole number: it is damaged{purpose}")
    if version not in READABLE_VERSIONS:
        raise SemhashError(
            f"{path.parent} has index format {version}; this semhash {__version__} reads formats "
            f"{', '.join(map(str, READABLE_VERSIONS))}{purpose}"
        )
    return manifest


def _validated(manifest, path, purpose):
    """`manifest` if it is a whole semhash manifest of a readable format, else SemhashError."""
    version = _identified(manifest, path, purpose)["format_version"]
    expected = {"kind": str, "bits": int, "counts": dict, "source": dict, "features": dict, "model": dict,
                **({"shards": list, "backend": dict} if version >= 4 else {"annoy": dict})}
    wrong = [key for key, kind in expected.items() if type(manifest.get(key)) is not kind]
    if wrong or not 1 <= manifest["bits"] <= MAX_BITS or type(manifest["counts"].get("documents")) is not int:
        raise SemhashError(f"{path} lacks or garbles {', '.join(wrong) or 'bits or counts'}: it is damaged{purpose}")
    files = manifest.get("files")
    entry = int if version == 1 else dict
    if not isinstance(files, dict) or not all(isinstance(value, entry) for value in files.values()):
        raise SemhashError(f"{path} does not list the index's files{purpose}")
    for name, value in files.items():
        if not name or ("/" in name and not SHARD_FILE.fullmatch(name)) or name in (".", "..") or name.endswith("/.."):
            raise SemhashError(f"{path} lists a file {name!r} outside the index{purpose}")
        if version > 1 and not (type(value.get("bytes")) is int and isinstance(value.get("sha256"), str)):
            raise SemhashError(f"{path} gives no size or sha256 for {name}{purpose}")
    if version > 1 and not (isinstance(manifest.get("data"), str) and GENERATION.fullmatch(manifest["data"])):
        raise SemhashError(f"{path} names no generation folder{purpose}")
    if version >= 4:
        entries = manifest["shards"]
        if not all(isinstance(entry, dict) and isinstance(entry.get("name"), str) and SHARD.fullmatch(entry["name"])
                   and type(entry.get("items")) is int and type(entry.get("deleted")) is int
                   and 0 <= entry["deleted"] <= entry["items"] and isinstance(entry.get("backends"), dict)
                   for entry in entries):
            raise SemhashError(f"{path} garbles its list of shards{purpose}")
        live = sum(entry["items"] - entry["deleted"] for entry in entries)
        if live != manifest["counts"]["documents"]:
            raise SemhashError(f"{path} counts {manifest['counts']['documents']} items where its shards hold {live}"
                               f"{purpose}")
    return manifest


def read_manifest(folder, check_files=True, purpose=f"; {REBUILD}", whole=True):
    """The checked manifest of the index in `folder`; with `check_files`, every file it lists must
    be there with its size; without `whole`, only its format is checked. Any problem is a
    SemhashError saying what to do (`purpose`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SemhashError(f"no index at {folder}; build one with `semhash index DIR`")
    path = folder / MANIFEST
    if not path.is_file():
        raise SemhashError(f"{folder} is not a semhash index (no {MANIFEST}){purpose}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise SemhashError(f"{path} is corrupt ({error}){purpose}") from None
    manifest = (_validated if whole else _identified)(manifest, path, purpose)
    if check_files:
        data = data_folder(folder, manifest)
        for name, entry in manifest["files"].items():
            file = data / name
            size = entry if isinstance(entry, int) else entry["bytes"]
            if not file.is_file():
                raise SemhashError(f"{file} is missing{purpose}")
            if file.stat().st_size != size:
                raise SemhashError(f"{file} has {file.stat().st_size} bytes, the manifest says {size}{purpose}")
    return manifest


def data_folder(folder, manifest):
    """Where the data files of the index in `folder` lie."""
    return Path(folder) / manifest["data"] if manifest["format_version"] > 1 else Path(folder)


def verify(folder, manifest, names):
    """Check the files `names` of an index against the sha256 its manifest records (format 1
    records none), so that a damaged or swapped file gives a message before anything parses it."""
    if manifest["format_version"] == 1:
        return
    data = data_folder(folder, manifest)
    for name in names:
        if name in manifest["files"] and sha256(data / name) != manifest["files"][name]["sha256"]:
            raise SemhashError(f"{data / name} does not match the sha256 in its manifest: it is damaged; {REBUILD}")


@contextlib.contextmanager
def _locked(folder):
    """Hold the folder's writer lock: a second writer waits for the first."""
    with open(folder / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fsynced(path):
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _sync_folder(folder):
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _current(folder):
    """The manifest now in `folder`, checked for its format alone (a damaged index may be
    replaced), or None where there is none yet."""
    return read_manifest(folder, check_files=False, whole=False) if (folder / MANIFEST).is_file() else None


def _remove_unused(folder, keep):
    """Remove generation folders and manifest temporaries not in `keep`: left by killed writers,
    or superseded."""
    for entry in folder.iterdir():
        if entry.name not in keep and entry.name != LOCK and _own_entry(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _remove_legacy_leftovers(folder):
    """Remove the staging and old folders that semhash before format 2 made beside an index, and
    the folders of shards a distributed build stages there (see `encoding`), that a kill could
    leave behind (`.NAME.tmp-*`, `.NAME.old-*`, `.NAME.shards-*`)."""
    pattern = re.compile(re.escape(f".{folder.name}.") + r"(tmp|old|shards)-[A-Za-z0-9_]{8}")
    for entry in folder.parent.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _listed(data, folder, previous):
    """The manifest's `files` for the generation folder `data` (its files, and those of its shard
    folders, each synced): size and sha256, read again from the previous manifest for a file
    that is the very file (a hard link) it lists, since published files never change."""
    known = {}
    if previous.get("format_version", 0) > 1 and isinstance(previous.get("files"), dict):
        known = {name: (folder / previous["data"] / name, entry) for name, entry in previous["files"].items()}
    files = {}
    for path in sorted(data.rglob("*")):
        if path.is_dir():
            _sync_folder(path)
            continue
        name = path.relative_to(data).as_posix()
        _fsynced(path)
        status = path.stat()
        earlier, entry = known.get(name, (None, None))
        try:
            same = earlier is not None and os.path.samefile(earlier, path) and entry.get("bytes") == status.st_size
        except OSError:
            same = False
        files[name] = entry if same else {"bytes": status.st_size, "sha256": sha256(path)}
    _sync_folder(data)
    return files


def write(folder, manifest, write_files):
    """Write an index to `folder`: `write_files(data)` fills a new generation folder and returns
    what it adds to `manifest`; the manifest naming it then replaces the current one atomically.
    Returns the manifest written."""
    folder = Path(folder)
    check_destination(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        manifest = _write_held(folder, manifest, write_files)
    _remove_legacy_leftovers(folder)
    return manifest


@contextlib.contextmanager
def writing(folder):
    """Hold the writer lock of the index in `folder` for a change made of what it holds now (read
    it inside, so that no other writer's change is lost): yields `write(manifest, write_files)`,
    which publishes the next generation as `write` does."""
    folder = Path(folder)
    read_manifest(folder, check_files=False)
    with _locked(folder):
        yield functools.partial(_write_held, folder)


def _write_held(folder, manifest, write_files):
    """`write`, the writer lock held."""
    previous = _current(folder) or {}
    keep = {previous["data"]} if isinstance(previous.get("data"), str) else set()
    _remove_unused(folder, keep)
    used = [int(match[1]) for match in map(GENERATION.fullmatch, (path.name for path in folder.iterdir())) if match]
    generation = 1 + max(used, default=0)
    name = f"generation-{generation:06d}"
    data = folder / name
    data.mkdir()
    temporary = folder / f"{MANIFEST}.tmp-{os.getpid()}"
    try:
        current = {"format": FORMAT, "format_version": FORMAT_VERSION, "semhash_version": __version__}
        manifest = {**current, **manifest, **write_files(data), **current, "generation": generation, "data": name}
        manifest.pop("annoy", None)  # what format 3 recorded of Annoy lies in the shards now
        manifest["files"] = _listed(data, folder, previous)
        temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _fsynced(temporary)
        os.replace(temporary, folder / MANIFEST)
        _sync_folder(folder)
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)
        temporary.unlink(missing_ok=True)
        raise
    _remove_unused(folder, keep={name, *keep})
    if previous.get("format_version") == 1 and isinstance(previous.get("files"), dict):
        for old in previous["files"]:
            if isinstance(old, str) and "/" not in old and (folder / old).is_file() and not (folder / old).is_symlink():
                (folder / old).unlink()
    return manifest

