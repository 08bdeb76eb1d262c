"""What training on a sample costs in retrieval quality: the features and the model fitted on a
seeded share of the database (as `semhash index --train-sample` does), every database item then
encoded, against the same fitted on all of it. The protocol's split and measures
(../shared/PROTOCOL.md): precision@100 and mAP@1000 of the test queries, exact Hamming ranking,
ties by seed 0, 64 bits, the default model and features.

    python benchmarks/train_sample.py --data ../shared/data --corpus 20newsgroups --shares 1,0.2
    python benchmarks/train_sample.py --data ../shared/data --corpus cifar10 --shares 1,0.2

Prints one Markdown row a share.
"""

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import defaults  # noqa: E402
from semhash.codes import binary  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.features.text import TextFeatures  # noqa: E402
from semhash.features.tokenizer import JiebaTokenizer  # noqa: E402
from semhash.modality import IMAGES  # noqa: E402
from semhash.sources import datasets  # noqa: E402


def scored(database_codes, query_codes, database, queries):
    rows, _ = metrics.hamming_ranking(database_codes, query_codes, 1000, seed=0)
    relevant = metrics.relevance(rows, database.labels, queries.labels)
    return metrics.precision_at(relevant, 100), metrics.mean_average_precision(relevant, 1000)


def text_codes(database, queries, sample, seed):
    tokenizer = functools.lru_cache(maxsize=None)(JiebaTokenizer())  # each text cut once over the shares
    features = TextFeatures(tokenizer)
    started = time.perf_counter()
    X = features.fit_transform([database.items[row] for row in sample])
    model = defaults.model("text", seed=seed).fit(X[np.diff(X.indptr) > 0])
    seconds = time.perf_counter() - started
    return [binary.pack(model.encode(features.transform(split.items))) for split in (database, queries)], seconds


def image_codes(database, queries, sample, seed):
    features = IMAGES.features(size=database.items.shape[1:3])
    started = time.perf_counter()
    X = features.fit_transform(database.items[sample])
    model = defaults.model("images", features="patches", seed=seed).fit(X)
    seconds = time.perf_counter() - started
    return [binary.pack(model.encode(features.transform(split.items))) for split in (database, queries)], seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the folder holding the benchmark data")
    parser.add_argument("--corpus", choices=("20newsgroups", "cifar10", "thucnews"), default="20newsgroups")
    parser.add_argument("--shares", default="1,0.2", help="shares of the database to train on, e.g. 1,0.2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kind, database, queries = datasets.load(args.corpus, args.data)
    n = len(database.labels)
    print("| corpus | trained on | P@100 | mAP@1000 | fitting (s) |\n|---|---|---|---|---|", flush=True)
    for share in (float(value) for value in args.shares.split(",")):
        size = n if share >= 1 else round(share * n)
        sample = np.sort(np.random.default_rng(args.seed).choice(n, size, replace=False)) if size < n else np.arange(n)
        coder = text_codes if kind == "text" else image_codes
        (database_codes, query_codes), seconds = coder(database, queries, sample, args.seed)
        precision, average = scored(database_codes, query_codes, database, queries)
        print(f"| {args.corpus} | {size:,} of {n:,} ({share:.0%}) | {precision:.3f} | {average:.3f} | {seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
