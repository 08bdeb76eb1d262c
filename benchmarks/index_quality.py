"""Score a built index on a benchmark's queries, as ../shared/PROTOCOL.md does.

The index's own features and encoder code the benchmark's query split; its stored codes and
labels are the database. So the numbers are those of exactly the index `semhash index` wrote:

    semhash index ../shared/data/cifar-10-python.tar.gz -o indexes/cifar
    python benchmarks/index_quality.py indexes/cifar cifar10 --data ../shared/data

Prints one JSON line: precision@100, mAP@1000, and the seconds taken to code the queries.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import Index  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.sources import datasets  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index")
    parser.add_argument("corpus", choices=datasets.BENCHMARKS)
    parser.add_argument("--data", required=True, help="the benchmark data folder (../shared/data)")
    parser.add_argument("--seed", type=int, default=0, help="the tie-breaking permutation")
    args = parser.parse_args()
    index = Index.open(args.index)
    kind, _, queries = datasets.load(args.corpus, args.data)
    started = time.perf_counter()
    query_codes = index.encode(queries.items)
    coded = time.perf_counter() - started
    labels = np.array([record["label"] for record in index.records])
    rows, _ = metrics.hamming_ranking(index.packed, query_codes, 1000, seed=args.seed)
    relevant = metrics.relevance(rows, labels, queries.labels)
    print(json.dumps({
        "index": args.index, "corpus": args.corpus, "arch": index.manifest["model"].get("arch", "dense"),
        "bits": index.bits, "queries": len(queries.labels),
        "precision_at_100": round(metrics.precision_at(relevant, 100), 4),
        "map_at_1000": round(metrics.mean_average_precision(relevant, 1000), 4),
        "query_coding_seconds": round(coded, 1),
    }))


if __name__ == "__main__":
    main()
