"""How semhash's codes compare with PCA-ITQ's as the corpus shrinks: seeded subsets of 20 Newsgroups'
train posts as the database, a seeded sample of the test posts as queries.

    python benchmarks/corpus_size.py --data ../shared/data --sizes 250 1000 4000 --bits 32 64
    python benchmarks/corpus_size.py --data ../shared/data --sizes 250 1000 4000 --bits 32 64 --model '{"min_steps": 400, "min_pretrain_steps": 0}' --no-baseline

Prints one JSON line a size and length: for each coder, precision at depth n/40 (at most 100; a
newsgroup holds about n/20 posts) and mAP over the whole database, and its fitting seconds.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import StackedAutoencoder, TextFeatures
from semhash.codes import binary
from semhash.evaluation import metrics
from semhash.models.baselines import PCAITQ
from semhash.sources import datasets


def scores(model, X, Q, labels, query_labels):
    """(precision at depth n/40, mAP over the whole database, fitting seconds) of `model`'s codes."""
    started = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - started
    n = X.shape[0]
    rows, _ = metrics.hamming_ranking(binary.pack(model.encode(X)), binary.pack(model.encode(Q)), n, seed=0)
    relevant = metrics.relevance(rows, labels, query_labels)
    return (round(float(metrics.precision_at(relevant, min(100, n // 40))), 3),
            round(float(metrics.mean_average_precision(relevant, n)), 3), round(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding the benchmark data (../shared/data)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--model", default="{}", help="JSON of StackedAutoencoder settings over the defaults")
    parser.add_argument("--no-baseline", action="store_true", help="skip PCA-ITQ")
    args = parser.parse_args()
    settings = json.loads(args.model)
    _, (train, train_labels), (test, test_labels) = datasets.load("20newsgroups", args.data)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    chosen = np.random.default_rng(1).choice(len(test), min(args.queries, len(test)), replace=False)
    for size in args.sizes:
        picked = np.sort(np.random.default_rng(0).choice(len(train), size, replace=False))
        features = TextFeatures(min_df=2)
        X = features.fit_transform([train[i] for i in picked])
        Q = features.transform([test[i] for i in chosen])
        for bits in args.bits:
            coders = {"semhash": StackedAutoencoder(bits=bits, **settings)}
            if not args.no_baseline:
                coders["pca-itq"] = PCAITQ(bits=bits)
            row = {"posts": size, "bits": bits, **settings}
            for name, coder in coders.items():
                row[name] = scores(coder, X, Q, train_labels[picked], test_labels[chosen])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
