"""Split the bundled corpus' precision@100 into hits in the query's language and hits in the other.

`corpora/news` holds, under each of its six labels, 25 English and 25 Chinese documents that share
no terms. `semhash evaluate corpora/news` scores 100 results of a 240-item database, 40 of them of the
query's label, about 20 in each language: only the 20 in the query's language can be found by its
terms, and a list of 100 must also hold documents of the other language or other labels. This script
codes the database and queries as `semhash evaluate` does (the default model and PCA-ITQ, same split,
same seed) and says, for each, how many of the 100 are of the query's label in its language, of its
label in the other, and how many are in its language at all.

    python benchmarks/bundled_languages.py --bits 64 --seeds 0,1,2

Prints one JSON line a seed and method, then their means as a Markdown table.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semhash import defaults
from semhash.codes import binary
from semhash.codes.neighbours import hamming_ranking
from semhash.evaluation import metrics
from semhash.modality import named
from semhash.models.baselines import PCAITQ
from semhash.sources import datasets

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def shares(seed, bits):
    """{method: its 100 results' shares} for the bundled corpus split and coded as `semhash evaluate` does."""
    kind, database, queries = datasets.load(str(ROOT / "corpora" / "news"), None, 0.2, seed)
    chinese = [np.array([bool(CHINESE.search(text)) for text in split.items]) for split in (database, queries)]
    (X, Q), _, read_as = named(kind).benchmark_features(database.items, queries.items)
    coders = {"semhash": defaults.model(kind, "dense", read_as, bits=bits, seed=seed), "pca-itq": PCAITQ(bits, seed=seed)}
    rows = {}
    for name, coder in coders.items():
        found, _ = hamming_ranking(binary.pack(coder.fit_encode(X)), binary.pack(coder.encode(Q)), 100, seed)
        relevant = metrics.relevance(found, database.labels, queries.labels)
        same_language = chinese[0][found] == chinese[1][:, None]
        rows[name] = {"precision_at_100": relevant.mean(), "same_language_relevant": (relevant & same_language).mean(),
                      "other_language_relevant": (relevant & ~same_language).mean(),
                      "same_language": same_language.mean()}
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seeds", default="0,1,2", help="evaluation seeds (each draws its own split)")
    args = parser.parse_args()
    measured = {}
    for seed in (int(seed) for seed in args.seeds.split(",")):
        for method, row in shares(seed, args.bits).items():
            row = {key: round(float(value), 4) for key, value in row.items()}
            print(json.dumps({"seed": seed, "method": method, "bits": args.bits, **row}), flush=True)
            measured.setdefault(method, []).append(row)
    columns = ("precision_at_100", "same_language_relevant", "other_language_relevant", "same_language")
    print(f"\n| method ({args.bits} bits, mean of seeds {args.seeds}) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for method, rows in measured.items():
        print(f"| {method} | " + " | ".join(f"{np.mean([row[c] for row in rows]):.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
