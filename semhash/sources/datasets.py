"""The benchmark corpora of the evaluation protocol, read as their sites ship them.

Each reader takes the data folder (never copied into the project) and returns the
database and the query split as `Split`s: texts (a list) or uint8 images (an array),
with one label each. 20 Newsgroups posts lose their header block, which names the
newsgroup and would leak the label.
"""

import collections
import tarfile
from pathlib import Path

import numpy as np

from ..errors import SemhashError
from .cifar import CifarPython
from .text import TextCorpus


class Split(collections.namedtuple("Split", "items labels")):
    """A split of a benchmark: its items (texts in a list, or images in an array) and their labels."""

    def subset(self, rows):
        """The split's items and labels at `rows`, in that order."""
        items = self.items[rows] if isinstance(self.items, np.ndarray) else [self.items[row] for row in rows]
        return Split(items, self.labels[rows])
BENCHMARKS = ("20newsgroups", "thucnews", "cifar10")
NEWSGROUPS = "20news-bydate.tar.gz"
HEADLINES = "thucnews-headlines"
CIFAR = "cifar-10-python.tar.gz"


def _required(data_dir, name):
    path = Path(data_dir) / name
    if not path.exists():
        raise SemhashError(f"{path} not found; give --data the folder that holds {name}")
    return path


def strip_headers(post):
    """A post without its header block: everything before the first blank line."""
    _, blank, body = post.partition("\n\n")
    return body if blank else post


def newsgroups(data_dir):
    """20 Newsgroups by date: the 11,314 training posts as the database, the 7,532 test posts as queries."""
    archive = _required(data_dir, NEWSGROUPS)
    splits = {"train": ([], []), "test": ([], [])}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or not parts[0].startswith("20news-bydate-"):
                continue
            texts, labels = splits[parts[0].removeprefix("20news-bydate-")]
            texts.append(strip_headers(tar.extractfile(member).read().decode("latin-1")))
            labels.append(parts[1])
    return tuple(Split(texts, np.array(labels)) for texts, labels in splits.values())


def thucnews(data_dir):
    """THUCNews headlines: the 10,000 lines of dev.txt as the database, test.txt's as queries."""
    folder = _required(data_dir, HEADLINES)
    names_file = folder / "class.txt"
    names = names_file.read_text(encoding="utf-8").split() if names_file.is_file() else None

    def lines(name):
        texts, labels = [], []
        for number, line in enumerate(_required(folder, name).read_text(encoding="utf-8").splitlines(), 1):
            text, tab, label = line.rpartition("\t")
            if not tab or not label.strip().isdigit():
                raise SemhashError(f"{folder / name}:{number} is not `headline<TAB>label`")
            texts.append(text)
            labels.append(names[int(label)] if names else label.strip())
        return Split(texts, np.array(labels))

    return lines("dev.txt"), lines("test.txt")


def cifar10(data_dir):
    """CIFAR-10: the 50,000 training images as the database, the 10,000 test images as queries."""
    archive = _required(data_dir, CIFAR)

    def read(split):
        batches = list(CifarPython(archive, split))
        return Split(np.concatenate([batch.pixels for batch in batches]),
                     np.array([label for batch in batches for label in batch.labels]))

    return read("train"), read("test")


def labelled_folder(path, query_share=0.2, seed=0):
    """A folder of text files whose first-level subfolders are their labels, split at random
    (seeded) into a database and a query share of each label."""
    documents = [document for document in TextCorpus(path) if document.label]
    if not documents:
        raise SemhashError(f"no labelled documents under {path}; put each label's files in a subfolder of its own")
    rng = np.random.default_rng(seed)
    database, queries = Split([], []), Split([], [])
    by_label = collections.defaultdict(list)
    for document in documents:
        by_label[document.label].append(document.text)
    for label, texts in sorted(by_label.items()):
        order = rng.permutation(len(texts))
        n_queries = int(round(query_share * len(texts)))
        for rank, index in enumerate(order):
            split = queries if rank < n_queries else database
            split.items.append(texts[index])
            split.labels.append(label)
    if not queries.items:
        raise SemhashError(f"{path} is too small to hold out queries; add documents or raise the query share")
    return tuple(Split(split.items, np.array(split.labels)) for split in (database, queries))


def load(corpus, data_dir=None, query_share=0.2, seed=0):
    """(kind, database, queries) for a benchmark's name, read from `data_dir`, or a labelled folder."""
    readers = {"20newsgroups": newsgroups, "thucnews": thucnews, "cifar10": cifar10}
    if corpus in readers:
        if data_dir is None:
            raise SemhashError(f"{corpus} is read from a data folder; give it with --data")
        database, queries = readers[corpus](data_dir)
        return ("images" if corpus == "cifar10" else "text"), database, queries
    if not Path(corpus).is_dir():
        raise SemhashError(f"{corpus} is neither a benchmark ({', '.join(BENCHMARKS)}) nor a folder")
    return ("text", *labelled_folder(corpus, query_share, seed))
