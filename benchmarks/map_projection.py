"""Which 2-D projection shows an index's labels more clearly: PCA of the bits, or t-SNE?

    python benchmarks/map_projection.py INDEX [INDEX...] [--points 2000]

For each index, a seeded sample of at most --points items (as `semhash map` draws) is projected
by `codemap.CodeMap` (PCA of the bits, as -1 or +1) and by scikit-learn's t-SNE (Hamming metric,
perplexity 30, seeded). Clarity is measured as a reader of the map sees it: for each point, the
share of its 10 nearest points on the map that carry its label (10-NN label agreement), and the
silhouette of the labels in 2-D; beside it, the seconds each projection took.
"""

import argparse
import time

import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from semhash import Index
from semhash.codemap import CodeMap
from semhash.codes import binary


def agreement(points, labels, k=10):
    """The mean share of each point's k nearest others on the map that share its label."""
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return float((labels[neighbours[:, 1:]] == labels[:, None]).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("indexes", nargs="+")
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| index | items shown | projection | 10-NN label agreement | silhouette | seconds |")
    print("|---|---:|---|---:|---:|---:|")
    for folder in args.indexes:
        index = Index.open(folder)
        started = time.perf_counter()
        drawn = CodeMap(args.points, args.seed).fit(index)
        pca_s = time.perf_counter() - started
        labels = np.array([str(label) for label in drawn.labels_])
        bits = binary.unpack(index.codes(drawn.rows_), index.bits)
        started = time.perf_counter()
        tsne = TSNE(2, metric="hamming", init="random", perplexity=min(30, len(bits) - 1),
                    random_state=args.seed).fit_transform(bits.astype(np.float32))
        tsne_s = time.perf_counter() - started
        for name, points, seconds in (("PCA of the bits", drawn.points_, pca_s), ("t-SNE", tsne, tsne_s)):
            print(f"| {folder} | {len(labels):,} | {name} | {agreement(points, labels):.3f} | "
                  f"{silhouette_score(points, labels):.3f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
