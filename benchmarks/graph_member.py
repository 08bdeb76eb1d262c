"""Does the neighbour graph itself, as self-taught hashing uses it, add to the joined members' codes?

The default unsupervised model without its graph member (four members and the principal axes, trained
once at 32 bits, `graph_eigenvectors=0`) is fitted on the protocol's database; its squashed joined code
layer, cut by PCA-ITQ at each length, is the reference row. Beside it, for each neighbour count k:

- a graph member: the top `--eigenvectors` eigenvectors of the database's symmetric k-nearest-neighbour
  graph (normalized adjacency, the constant one left out), as self-taught hashing (Zhang et al., 2010)
  takes them, regressed by ridge (weight `--alpha`) from the joined encoder's hidden layer, so that a
  query is coded from its own terms; scored alone and joined (squashed as a member) to the members and
  axes. `--spaces` says where each row's k neighbours are found: `input` (idf-cosine on the features,
  as the members' targets find them), `codes` (cosine on the members' and axes' joined layer, squashed
  and centred) or `both` (the two lists joined). Joined, `both` with k the model's `neighbours` (10) and
  64 eigenvectors is what `StackedAutoencoder`'s graph member now computes by default
  (`graph_eigenvectors`); `input` is what it computed before. Comma-separated `--eigenvectors`,
  `--alpha`, `--codes-weights` (the joined layer's edges counted more than once in `both`) and
  `--graph-weights` (the graph member's squashed units multiplied by it before the cut) add rows;
- with `--network-epochs`, the same eigenvectors learned by a small network instead (input dropout .2,
  256 relu units, squared error), from the TF-IDF rows;
- with `--clusters`, a cluster member beside each joined graph member (the first `--alpha`'s): a model
  trained as `semhash evaluate --labels` trains one (seed `--seed` x 4 + 4, as the model seeds it), with the
  graph's spectral clusters (k-means of its eigenvectors, `spectral_clusters`), as many as each of
  `--clusters`, for labels; its squashed units multiplied by each of `--cluster-weights` before the cut.
  `--spaces both --clusters 64 --cluster-weights 0.5` is the model's first cluster member by default
  (`clusters`), which adds a second, of 16 clusters, beside it;
- with `--smooth`, each database row's joined layer mixed (.3) with the mean of its k neighbours' before
  the cut, the queries left as they are.

Precision@100 of the protocol's queries (all of them), exact Hamming ranking, ties by the seed; with
`--real-valued`, also of each row's layer itself, ranked by cosine.

    python benchmarks/graph_member.py --data ../shared/data --neighbours 10,20,50 --network-epochs 20 --smooth
    python benchmarks/graph_member.py --data ../shared/data --neighbours 10 --spaces input,codes,both
    python benchmarks/graph_member.py --data ../shared/data --neighbours 10 --spaces both --alpha 20,100,500 \
        --codes-weights 1,2 --graph-weights 1,1.25,1.5,2 --real-valued
    python benchmarks/graph_member.py --data ../shared/data --neighbours 10 --spaces both --clusters 20,40,64,100 \
        --cluster-weights 1,0.7,0.5

Prints one JSON line a row, then the rows as a markdown table.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import defaults
from semhash.codes import binary
from semhash.codes.binarize import ITQ_ITERATIONS, cut, pca_itq
from semhash.codes.neighbours import (
    nearest_others,
    neighbour_graph_eigenvectors,
    neighbour_space,
    real_ranking,
    spectral_clusters,
)
from semhash.evaluation import metrics
from semhash.modality import named
from semhash.models.autoencoder import ridge_readout, squash_scales
from semhash.sources import datasets


def precisions(database, queries, labels, bits, seed, real_valued=False):
    """Precision@100 at each length in `bits` (no more than the layer is wide) of the layers cut by PCA-ITQ;
    with `real_valued`, also ("cosine") of the layers themselves ranked by cosine, centred on the database's mean."""
    scores = {}
    if real_valued:
        mean = database.mean(axis=0)
        rows, _ = real_ranking(database - mean, queries - mean, 100, "cosine", seed)
        scores["cosine"] = round(metrics.precision_at(metrics.relevance(rows, *labels), 100), 4)
    for n_bits in (b for b in bits if b <= database.shape[1]):
        mean, components, rotation, _ = pca_itq(database, n_bits, ITQ_ITERATIONS, seed)
        codes = [binary.pack(cut(layer, mean, components @ rotation)) for layer in (database, queries)]
        rows, _ = metrics.hamming_ranking(*codes, 100, seed)
        scores[n_bits] = round(metrics.precision_at(metrics.relevance(rows, *labels), 100), 4)
    return scores


def ridge(features, targets, queries, alpha):
    """The targets regressed by ridge on `features` (`ridge_readout`, as the model reads its graph member):
    the fitted values and the queries' predictions."""
    coefficients, intercept = ridge_readout([features], targets, alpha)
    return features @ coefficients + intercept, queries @ coefficients + intercept


def network(X, targets, queries, epochs, seed):
    """The targets learned from X by a small network: the fitted values and the queries' predictions."""
    import keras

    keras.utils.set_random_seed(seed)
    net = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dropout(0.2),
                            keras.layers.Dense(256, activation="relu"), keras.layers.Dense(targets.shape[1])])
    net.compile(keras.optimizers.Adam(1e-3), "mean_squared_error")
    dense = [np.asarray(rows.todense() if sp.issparse(rows) else rows, dtype=np.float32) for rows in (X, queries)]
    net.fit(dense[0], targets.astype(np.float32), batch_size=128, epochs=epochs, verbose=0)
    return [net.predict(rows, batch_size=4096, verbose=0) for rows in dense]


def squashed(database, queries):
    """Both layers squashed as the model squashes a member, by the database's spread (`squash_scales`)."""
    scale = squash_scales(database)
    return np.tanh(database / scale), np.tanh(queries / scale)


def numbers(values, kind=float):
    """A comma-separated option's values."""
    return [kind(value) for value in values.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--corpus", default="20newsgroups")
    parser.add_argument("--bits", default="16,32,64,128")
    parser.add_argument("--neighbours", default="10,20,50", help="neighbour counts of the graph, comma-separated")
    parser.add_argument("--spaces", default="input", help="where each row's neighbours are found for the graph, "
                        "comma-separated: input (idf-cosine), codes (the joined layer, by cosine), both")
    parser.add_argument("--codes-weights", default="1", help="how many times the joined layer's list counts in "
                        "the graph `both` joins, comma-separated (twice: its edges weigh double)")
    parser.add_argument("--eigenvectors", default="64", help="how many eigenvectors, comma-separated")
    parser.add_argument("--alpha", default="100", help="ridge weights, comma-separated")
    parser.add_argument("--graph-weights", default="1", help="what the graph member's squashed units are multiplied "
                        "by beside the members' and axes' before the cut, comma-separated")
    parser.add_argument("--clusters", default="", help="spectral clusters of each graph that a cluster member "
                        "learns as labels, comma-separated (none by default)")
    parser.add_argument("--cluster-weights", default="0.7", help="what the cluster member's squashed units are "
                        "multiplied by before the cut, comma-separated")
    parser.add_argument("--real-valued", action="store_true", help="also rank each row's layers by cosine")
    parser.add_argument("--network-epochs", type=int, default=0, help="also learn the eigenvectors by a network")
    parser.add_argument("--smooth", action="store_true", help="also smooth the database's joined layer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bits = [int(b) for b in args.bits.split(",")]
    kind, database, queries = datasets.load(args.corpus, args.data, 0.2, args.seed)
    (X, Q), _, read_as = named(kind).benchmark_features(database.items, queries.items)
    labels = database.labels, queries.labels
    started = time.perf_counter()
    model = defaults.model(kind, "dense", read_as, bits=32, graph_eigenvectors=0, seed=args.seed).fit(X)
    trained = round(time.perf_counter() - started)
    joined = [model._squashed(model._logits(rows)) for rows in (X, Q)]
    hidden = [model._chunked(model._hidden_layer, rows, model.weights_[0]) for rows in (X, Q)]
    table = []

    def row(name, layers, **extra):
        table.append({"corpus": args.corpus, "row": name, **extra,
                      "precision_at_100": precisions(*layers, labels, bits, args.seed, args.real_valued)})
        print(json.dumps(table[-1]), flush=True)

    row("members and axes (the defaults before the graph member)", joined, train_seconds=trained)
    counts, spaces = numbers(args.neighbours, int), args.spaces.split(",")
    space, metric = neighbour_space(X, "idf-cosine")
    by_input = nearest_others(space, max(counts), metric, args.seed)
    by_codes = (nearest_others(joined[0] - joined[0].mean(axis=0), max(counts), "cosine", args.seed)
                if {"codes", "both"} & set(spaces) else None)
    graphs = [(k, found_by, weight) for k in counts for found_by in spaces
              for weight in (numbers(args.codes_weights, int) if found_by == "both" else [1])]
    for k, found_by, weight in graphs:
        lists = {"input": [by_input], "codes": [by_codes], "both": [by_input] + [by_codes] * weight}[found_by]
        graph = np.hstack([nearest[:, :k] for nearest in lists])
        for eigenvectors in numbers(args.eigenvectors, int):
            targets = neighbour_graph_eigenvectors(graph, eigenvectors, args.seed)
            learned = {f"ridge {alpha:g}": ridge(hidden[0], targets, hidden[1], alpha)
                       for alpha in numbers(args.alpha)}
            if args.network_epochs:
                learned["network"] = network(X, targets, Q, args.network_epochs, args.seed)
            for how, member in learned.items():
                name = (f"graph member ({how}, {eigenvectors} eigenvectors, neighbours by {found_by}"
                        f"{f', its joined-layer list x{weight}' if weight != 1 else ''})")
                row(f"{name} alone, k {k}", member)
                parts = squashed(*member)
                for times in numbers(args.graph_weights):
                    row(f"members, axes and {name}{f' x{times:g}' if times != 1 else ''}, k {k}",
                        [np.hstack([layer, times * part]) for layer, part in zip(joined, parts)])
            graph_layers = [np.hstack([layer, part]) for layer, part in zip(joined, squashed(*next(iter(learned.values()))))]
            for count in numbers(args.clusters, int) if args.clusters else []:
                clusters = spectral_clusters(targets, count, args.seed)
                member = defaults.model(kind, "dense", read_as, bits=32, seed=args.seed * 4 + 4).fit(X, clusters)
                parts = squashed(*(member._logits(rows) for rows in (X, Q)))
                for times in numbers(args.cluster_weights):
                    row(f"members, axes, graph member ({eigenvectors} eigenvectors, neighbours by {found_by}) and a "
                        f"cluster member of {count} clusters x{times:g}, k {k}",
                        [np.hstack([layer, times * part]) for layer, part in zip(graph_layers, parts)])
    for k in counts if args.smooth else []:
        smoothed = 0.7 * joined[0] + 0.3 * joined[0][by_input[:, :k]].mean(axis=1)
        row(f"members and axes, database smoothed (.3), k {k}", [smoothed, joined[1]])
    columns = [*bits, *(["cosine"] if args.real_valued else [])]
    print(f"\n| row | {' | '.join(f'{c} bits' if c != 'cosine' else 'real-valued, cosine' for c in columns)} |")
    print(f"|---|{'---|' * len(columns)}")
    for entry in table:
        print(f"| {entry['row']} | {' | '.join(str(entry['precision_at_100'].get(c, '')) for c in columns)} |")


if __name__ == "__main__":
    main()
