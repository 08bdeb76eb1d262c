"""Does ranking codes at equal Hamming distance by the asymmetric distance help retrieval?

    python benchmarks/tie_rerank.py --data ../shared/data --corpora 20newsgroups thucnews --bits 64

For each corpus, as ../shared/PROTOCOL.md fixes it: semhash's default model is trained on the
database split, and every query ranks the whole database by Hamming distance, its ties broken
(1) by the protocol's seeded permutation, (2) by the asymmetric distance to each item's bits
(`binary.asymmetric`: each disagreeing bit weighted by how far the query's real-valued code lies
from that bit's cut), which cannot tell identical codes apart, (3) by the Euclidean distance
between the query's and each item's real-valued codes, and (4) the same with the items' codes
stored as int8, (5) by the asymmetric distance, then among identical codes by the cosine
distance between the real-valued codes (as `semhash query` does where an index stores them);
then by the permutation. Prints precision@100 of each, and how often the top 10
holds the query's exact nearest database item by cosine on TF-IDF.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semhash import defaults  # noqa: E402
from semhash.codes import binary, neighbours  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.modality import named  # noqa: E402
from semhash.sources import datasets  # noqa: E402


def reranked_ranking(db_packed, query_packed, tie_distance, depth, seed):
    """The first `depth` rows for each query by Hamming distance, ties by `tie_distance(chunk)`
    (queries of the chunk by database rows, scaled below one bit so that it only orders codes at
    equal Hamming distance), then the permutation."""
    def blocks():
        for chunk, hamming in neighbours.hamming_blocks(db_packed, query_packed):
            ties = tie_distance(chunk)
            yield chunk, hamming + 0.999 * ties / (ties.max(axis=1, keepdims=True) + 1e-9)

    return neighbours.rank(blocks(), len(query_packed), len(db_packed), depth, seed, np.float64)


def squared_distances(queries, db):
    """Squared Euclidean distances between real-valued codes (queries by database rows)."""
    return (queries**2).sum(axis=1)[:, None] - 2 * queries @ db.T + (db**2).sum(axis=1)[None]


def cosine_distances(queries, db):
    """1 - cosine between real-valued codes (queries by database rows)."""
    unit = db / (np.linalg.norm(db, axis=1, keepdims=True) + 1e-12)
    return 1 - (queries / (np.linalg.norm(queries, axis=1, keepdims=True) + 1e-12)) @ unit.T


def quantized(projections):
    """Real-valued codes as int8 would store them, one scale a bit, back as float64."""
    scale = np.abs(projections).max(axis=0) / 127 + 1e-12
    return np.round(projections / scale).astype(np.int8) * scale


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--corpora", nargs="+", default=["20newsgroups", "thucnews"])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| corpus | bits | ties broken by | P@100 | exact cosine NN in top 10 |\n|---|---|---|---|---|", flush=True)
    for corpus in args.corpora:
        started = time.perf_counter()
        kind, database, queries = datasets.load(corpus, args.data)
        ours, plain, read_as = named(kind).benchmark_features(database.items, queries.items)
        model = defaults.model(kind, features=read_as, bits=args.bits, seed=args.seed)
        db_packed = binary.pack(model.fit_encode(ours[0]))
        projections = model.projections(ours[1])
        query_packed = binary.pack(projections > 0)
        assert np.array_equal(query_packed, binary.pack(model.encode(ours[1])))
        labels = database.labels, queries.labels
        db_projections = model.projections(ours[0]).astype(np.float64)
        q = projections.astype(np.float64)
        stored = quantized(db_projections)
        rankings = {
            "the protocol's permutation": metrics.hamming_ranking(db_packed, query_packed, 100, args.seed)[0],
            "asymmetric distance to the items' bits": reranked_ranking(
                db_packed, query_packed, lambda chunk: binary.asymmetric(q[chunk], db_packed, args.bits), 100, args.seed)[0],
            "distance to the items' real-valued codes": reranked_ranking(
                db_packed, query_packed, lambda chunk: squared_distances(q[chunk], db_projections), 100, args.seed)[0],
            "the same, codes stored as int8": reranked_ranking(
                db_packed, query_packed, lambda chunk: squared_distances(q[chunk], stored), 100, args.seed)[0],
            "asymmetric distance, then cosine to identical items' real-valued codes": reranked_ranking(
                db_packed, query_packed, lambda chunk: binary.asymmetric(q[chunk], db_packed, args.bits)
                + 1e-6 * cosine_distances(q[chunk], db_projections), 100, args.seed)[0],
        }
        (db_tfidf, query_tfidf), metric = plain[""]
        nearest, _ = neighbours.real_ranking(db_tfidf, query_tfidf, 1, metric=metric, seed=args.seed)
        for name, rows in rankings.items():
            precision = metrics.precision_at(metrics.relevance(rows, *labels), 100)
            found = np.mean(np.any(rows[:, :10] == nearest, axis=1))
            print(f"| {corpus} | {args.bits} | {name} | {precision:.4f} | {found:.3f} |", flush=True)
        print(f"({corpus}: {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

if __name__ == "__main__":
    main()
