"""Measure image feature and model settings on CIFAR-10 by mAP@1000, to choose semhash's image defaults.

The training images are the database and a seeded sample of test images the queries, as
../shared/PROTOCOL.md sets them; every score ranks the whole database exactly (Hamming
distance for codes, ties broken by a seeded permutation).

    python benchmarks/image_defaults.py --data ../shared/data --configs '[{"model": {"neighbours": 0}}, {}]'
    python benchmarks/image_defaults.py --data ../shared/data --baselines --configs '[{"features": {"kind": "pixels"}}]'

Each config is {"features": {"kind": "patches" or "pixels", ...their params}, "model": {...}}
for the dense model; {} is the defaults. Features are fitted once for the configs that share
them. --baselines adds exact Euclidean search and PCA-ITQ on each config's features. Prints
one Markdown row a measurement.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import defaults  # noqa: E402
from semhash.codes import binary, neighbours  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.modality import IMAGES  # noqa: E402
from semhash.models.baselines import PCAITQ  # noqa: E402
from semhash.sources import datasets  # noqa: E402

DEPTH = 1000


def scores(rows, db_labels, query_labels):
    relevant = metrics.relevance(rows, db_labels, query_labels)
    return f"{metrics.mean_average_precision(relevant, DEPTH):.3f} | {metrics.precision_at(relevant, 100):.3f}"


def hashed(coder, db, queries, seed):
    rows, _ = metrics.hamming_ranking(binary.pack(coder.fit_encode(db)), binary.pack(coder.encode(queries)), DEPTH, seed)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding cifar-10-python.tar.gz (../shared/data)")
    parser.add_argument("--configs", default="[{}]", help="JSON list of configs")
    parser.add_argument("--queries", type=int, default=2000, help="test images used as queries")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--baselines", action="store_true", help="also exact Euclidean search and PCA-ITQ")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (db_images, db_labels), (test_images, test_labels) = datasets.cifar10(args.data)
    chosen = np.random.default_rng(1).choice(len(test_labels), args.queries, replace=False)
    query_images, query_labels = test_images[chosen], test_labels[chosen]
    print(f"\nCIFAR-10: mAP@1000 and P@100 at {args.bits} bits, {args.queries} test images as queries\n")
    print("| config | method | mAP@1000 | P@100 | seconds |\n|---|---|---|---|---|", flush=True)
    fitted = {}
    for config in json.loads(args.configs):
        settings = {"kind": "patches", **config.get("features", {})}
        key = json.dumps(settings, sort_keys=True)
        started = time.perf_counter()
        if key not in fitted:
            features = IMAGES.features(feature_kind=settings.pop("kind"), **settings)
            flat = [x.reshape(len(x), -1) for x in (features.fit_transform(db_images), features.transform(query_images))]
            fitted[key] = features.kind, *flat  # pixels as pixel vectors
        kind, db, queries = fitted[key]
        if args.baselines:
            rows, _ = neighbours.real_ranking(db, queries, DEPTH, metric="euclidean", seed=args.seed)
            print(f"| {key} | exact-euclidean | {scores(rows, db_labels, query_labels)} | |", flush=True)
            rows = hashed(PCAITQ(bits=args.bits, seed=args.seed), db, queries, args.seed)
            print(f"| {key} | pca-itq | {scores(rows, db_labels, query_labels)} | |", flush=True)
        model = defaults.model("images", "dense", kind, bits=args.bits, seed=args.seed, **config.get("model", {}))
        rows = hashed(model, db, queries, args.seed)
        print(f"| {json.dumps(config)} | semhash | {scores(rows, db_labels, query_labels)} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
