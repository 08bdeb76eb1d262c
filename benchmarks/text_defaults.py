"""Measure text feature and model settings by retrieval precision, to choose semhash's defaults.

Two measures, each against exact Hamming ranking with ties broken by a seeded permutation:

- a labelled folder (default: the bundled corpus): leave-one-out precision@10 with each
  document as the query, and with a short query of 4 of its terms, as users type them;
- 20 Newsgroups (or, with --corpus thucnews, THUCNews headlines) from ../shared/PROTOCOL.md
  (train posts indexed, headers stripped; a sample of test posts as queries): precision@100.
  Needs --data, the folder holding the archive.

    python benchmarks/text_defaults.py --configs '[{}, {"features": {"norm": null}}]'
    python benchmarks/text_defaults.py --data ../shared/data --skip-folder --queries 1000
    python benchmarks/text_defaults.py --data ../shared/data --corpus thucnews --skip-folder --queries 10000

Each config is {"features": {...TextFeatures params}, "model": {...StackedAutoencoder params}};
{} is the defaults. Prints one Markdown row a config.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import StackedAutoencoder, TextCorpus, TextFeatures  # noqa: E402
from semhash.codes import binary, neighbours  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.sources import datasets  # noqa: E402


def precision_at(database, labels, queries, query_labels, k, leave_out_self=False):
    """Mean share of same-label items among each query's k nearest codes (ties by seed 0).

    leave_out_self: query i is database row i, left out of its own k nearest: rank k + 1
    deep and drop the query's own row, or the last row where its own is not among them.
    """
    rows, _ = metrics.hamming_ranking(database, queries, k + 1 if leave_out_self else k, seed=0)
    if leave_out_self:
        rows = neighbours.without_self(rows)
    return metrics.precision_at(metrics.relevance(rows, labels, query_labels), k)


def fit(config, texts, min_df):
    features = TextFeatures(**{"min_df": min_df, **config.get("features", {})})
    X = features.fit_transform(texts)
    model = StackedAutoencoder(**config.get("model", {})).fit(X)
    return features, model, binary.pack(model.encode(X))


def folder_row(config, root, k=10):
    documents = list(TextCorpus(root))
    texts = [d.text for d in documents]
    labels = np.array([d.label for d in documents])
    started = time.perf_counter()
    features, model, database = fit(config, texts, min_df=2)
    rng = np.random.default_rng(0)
    short = []
    for text in texts:
        terms = [t for t in features.tokenizer(text) if t in features.vocabulary_]
        short.append(" ".join(rng.choice(terms, size=min(4, len(terms)), replace=False)))
    short_codes = binary.pack(model.encode(features.transform(short)))
    whole = precision_at(database, labels, database, labels, k, leave_out_self=True)
    brief = precision_at(database, labels, short_codes, labels, k)
    return f"| {json.dumps(config)} | {whole:.3f} | {brief:.3f} | {time.perf_counter() - started:.0f} s |"


def benchmark_row(config, data, n_queries, k=100):
    (train, train_labels), (test, test_labels) = data
    chosen = np.random.default_rng(1).choice(len(test), n_queries, replace=False)
    started = time.perf_counter()
    features, model, database = fit(config, train, min_df=2)
    queries = binary.pack(model.encode(features.transform([test[i] for i in chosen])))
    precision = precision_at(database, train_labels, queries, test_labels[chosen], k)
    return f"| {json.dumps(config)} | {precision:.3f} | {time.perf_counter() - started:.0f} s |"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="[{}]", help="JSON list of configs")
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parents[1] / "corpora" / "news"))
    parser.add_argument("--skip-folder", action="store_true")
    parser.add_argument("--data", help="folder holding the benchmark data (../shared/data)")
    parser.add_argument("--corpus", choices=("20newsgroups", "thucnews"), default="20newsgroups")
    parser.add_argument("--queries", type=int, default=1000, help="test items used as queries (at most all)")
    args = parser.parse_args()
    configs = json.loads(args.configs)
    if not args.skip_folder:
        print(f"\n{args.folder}: leave-one-out precision@10\n")
        print("| config | document query | 4-term query | time |\n|---|---|---|---|", flush=True)
        for config in configs:
            print(folder_row(config, args.folder), flush=True)
    if args.data:
        _, database, queries = datasets.load(args.corpus, args.data)
        n_queries = min(args.queries, len(queries.items))
        print(f"\n{args.corpus}: precision@100, {n_queries} test items as queries\n")
        print("| config | P@100 | time |\n|---|---|---|", flush=True)
        for config in configs:
            print(benchmark_row(config, (database, queries), n_queries), flush=True)


if __name__ == "__main__":
    main()
