"""Time tokenizing long mixed English/Chinese query text with the stored lexicon, side by side.

    python benchmarks/query_tokenizing.py --sizes 1,10 [--corpus corpora/news]

The text is the corpus' documents, shuffled and repeated up to each size (MB of UTF-8).
"binary search" is the lexicon as it was: one binary search a lookup; "stored lexicon"
is the lexicon as queries use it now; "jieba's table" is jieba with its own dictionary,
for reference. Each prints seconds, and every way must give the same terms.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semhash.features.tokenizer import JiebaTokenizer, Lexicon


class BinarySearchOnly(Lexicon):
    """The lexicon before it learned to unpack itself: every lookup a binary search."""

    SEARCHES = sys.maxsize


def mixed_text(corpus, megabytes, seed=0):
    """The corpus' documents in a seeded random order, repeated up to `megabytes` of UTF-8."""
    documents = [path.read_text(encoding="utf-8") for path in sorted(Path(corpus).rglob("*.txt"))]
    rng = np.random.default_rng(seed)
    pieces, size = [], 0
    while size < megabytes * 1_000_000:
        for index in rng.permutation(len(documents)):
            pieces.append(documents[index])
            size += len(documents[index].encode("utf-8"))
    return "".join(pieces)


def timed(tokenize, text):
    started = time.perf_counter()
    terms = tokenize(text)
    return time.perf_counter() - started, terms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10", help="Text sizes in MB, separated by commas.")
    parser.add_argument("--corpus", default="corpora/news")
    args = parser.parse_args()
    jieba_tokenizer = JiebaTokenizer()
    folder = tempfile.TemporaryDirectory()
    stored = Path(folder.name) / "lexicon.npz"
    jieba_tokenizer.lexicon().save(stored)
    ways = {  # each size gets a freshly loaded lexicon, as each query does
        "binary search": lambda: JiebaTokenizer().use_lexicon(BinarySearchOnly.load(stored)),
        "stored lexicon": lambda: JiebaTokenizer().use_lexicon(Lexicon.load(stored)),
        "jieba's table": lambda: jieba_tokenizer,
    }
    for megabytes in (float(size) for size in args.sizes.split(",")):
        text = mixed_text(args.corpus, megabytes)
        results = {name: timed(make(), text) for name, make in ways.items()}
        terms = {name: result[1] for name, result in results.items()}
        same = all(found == terms["jieba's table"] for found in terms.values())
        print(f"{megabytes:g} MB ({len(text):,} characters): "
              + ", ".join(f"{name} {seconds:.2f} s" for name, (seconds, _) in results.items())
              + f"; same terms: {same}", flush=True)
    folder.cleanup()


if __name__ == "__main__":
    main()
