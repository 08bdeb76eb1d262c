"""Reproduce the baseline rows of ../shared/PROTOCOL.md's reference table with semhash's own
metrics (semhash.metrics) and baselines (semhash.baselines), on the protocol's features.

    python benchmarks/baselines_check.py ../shared/data --corpus 20newsgroups
    python benchmarks/baselines_check.py ../shared/data --corpus thucnews
    python benchmarks/baselines_check.py ../shared/data --corpus cifar10 --queries 2000

Features: TF-IDF of 10,000 terms (min_df 2, sublinear tf; English stop words and max_df 0.5
for 20 Newsgroups, whose posts lose their headers; jieba tokens for THUCNews headlines), or
CIFAR-10 pixels scaled to [0, 1]. Prints the table's rows, in its layout, for exact search on
the real-valued features (cosine for text, Euclidean for pixels), LSH, PCAH and PCA-ITQ at
16, 32, 64 and 128 bits; timings go to stderr.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash.codes import binary, neighbours  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.models import baselines  # noqa: E402
from semhash.sources import datasets  # noqa: E402

BITS = (16, 32, 64, 128)
HASHES = {"LSH": baselines.LSH, "PCAH": baselines.PCAH, "PCA-ITQ": baselines.PCAITQ}
NAMES = {"20newsgroups": "20 Newsgroups", "thucnews": "THUCNews headlines", "cifar10": "CIFAR-10 pixels"}


def tfidf(database, queries, **options):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=10000, min_df=2, sublinear_tf=True, **options)
    return vectorizer.fit_transform(database), vectorizer.transform(queries)


def newsgroups_features(data):
    train, test = datasets.newsgroups(data)
    database, queries = tfidf(train.items, test.items, max_df=0.5, stop_words="english")
    return database, train.labels, queries, test.labels


def jieba_tokens(text):
    import jieba

    return [token for token in jieba.lcut(text) if token.strip()]


def thucnews_features(data):
    dev, test = datasets.thucnews(data)
    database, queries = tfidf(dev.items, test.items, tokenizer=jieba_tokens, token_pattern=None)
    return database, dev.labels, queries, test.labels


def cifar10_features(data):
    def pixels(split):
        return split.items.reshape(len(split.items), -1).astype(np.float32) / 255

    train, test = datasets.cifar10(data)
    return pixels(train), train.labels, pixels(test), test.labels


FEATURES = {"20newsgroups": newsgroups_features, "thucnews": thucnews_features, "cifar10": cifar10_features}


def scores(rows, database_labels, query_labels, image):
    """{metric: value}: mAP@1000 and P@100 for images, P@100 for text, as the protocol asks."""
    relevant = metrics.relevance(rows, database_labels, query_labels)
    result = {"mAP@1000": metrics.mean_average_precision(relevant, 1000)} if image else {}
    result["P@100"] = metrics.precision_at(relevant, 100)
    return result


def short(value):
    return f"{value:.3f}".removeprefix("0")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the folder holding the corpora (../shared/data)")
    parser.add_argument("--corpus", choices=FEATURES, required=True)
    parser.add_argument("--queries", type=int, help="score a random sample of this many queries (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="fixes the hashes' random draws and the tie-breaks")
    args = parser.parse_args()

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    database, database_labels, queries, query_labels = FEATURES[args.corpus](args.data)
    if args.queries:
        chosen = np.sort(np.random.default_rng(args.seed).choice(queries.shape[0], args.queries, replace=False))
        queries, query_labels = queries[chosen], query_labels[chosen]
    log(f"features: database {database.shape}, queries {queries.shape}")
    image = args.corpus == "cifar10"
    depth = 1000 if image else 100

    rows, _ = neighbours.real_ranking(database, queries, depth, "euclidean" if image else "cosine", args.seed)
    exact = scores(rows, database_labels, query_labels, image)
    log(f"exact real-valued: {exact}")
    hashed = {name: [] for name in HASHES}
    for name, hash_class in HASHES.items():
        for bits in BITS:
            model = hash_class(bits=bits, seed=args.seed)
            database_codes = binary.pack(model.fit_encode(database))
            rows, _ = metrics.hamming_ranking(database_codes, binary.pack(model.encode(queries)), depth, args.seed)
            hashed[name].append(scores(rows, database_labels, query_labels, image))
            log(f"{name} {bits} bits: {hashed[name][-1]}")

    print(f"\n{NAMES[args.corpus]}: {queries.shape[0]} queries, {database.shape[0]} database items\n")
    print("| corpus | metric | exact real-valued | " + " | ".join(f"{n} 16/32/64/128" for n in HASHES) + " |")
    print("|---" * (3 + len(HASHES)) + "|")
    for metric in exact:
        cells = [" / ".join(short(s[metric]) for s in hashed[name]) for name in HASHES]
        print(f"| {NAMES[args.corpus]} | {metric} | {short(exact[metric])} | " + " | ".join(cells) + " |")
    log("done")


if __name__ == "__main__":
    main()
