"""Does the label-free self-check choose the coder with the higher labelled precision, must its check
items be held out, and how many are enough? For each code length: the default autoencoder and
PCA-ITQ are fitted on the protocol's database less the self-check's held-out check items (as
`semhash index` fits them), then

- both are scored by the self-check on the held-out items (what the index decides by), and on as
  many fitted items ("in-sample": what the check would say without holding out);
- the scores' spread over 20 seeded draws of smaller samples of the held-out items, and how often
  such a sample chooses as the whole does;
- both are scored by labels: precision@100 of the protocol's queries against the whole database
  (check items included), exact Hamming ranking, ties by seed 0.

    python benchmarks/self_check.py --data ../shared/data --corpus 20newsgroups --bits 64
    python benchmarks/self_check.py --corpus /tmp/unbalanced-news --bits 32,64   # a labelled folder

Prints one JSON line a code length.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash import defaults  # noqa: E402
from semhash.codes import binary  # noqa: E402
from semhash.codes.neighbours import hamming_ranking, real_ranking  # noqa: E402
from semhash.evaluation import metrics  # noqa: E402
from semhash.modality import named  # noqa: E402
from semhash.models.selfcheck import AUTOENCODER, exact_neighbours, neighbours_kept, split_rows  # noqa: E402
from semhash.sources import datasets  # noqa: E402

SMALLER = (50, 100, 250, 500)
DRAWS = 20


def precision(coder, X, queries, database, seed):
    rows, _ = metrics.hamming_ranking(binary.pack(coder.encode(X)), binary.pack(coder.encode(queries)), 100, seed)
    return round(metrics.precision_at(metrics.relevance(rows, *database), 100), 4)


def halves(X, rows, seed):
    """Each of X's `rows` split in two by its terms at random (seeded): (half A scaled to the row's
    length, as a query a new user would type is scaled, half B), both CSR."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X[rows])
    in_a = np.random.default_rng(seed).random(X.nnz) < 0.5
    A, B = X.copy(), X.copy()
    A.data = np.where(in_a, A.data, 0)
    B.data = np.where(in_a, 0, B.data)
    A.eliminate_zeros()
    B.eliminate_zeros()
    lengths = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    a_lengths = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    A = sp.diags(np.divide(lengths, a_lengths, out=np.zeros_like(lengths), where=a_lengths > 0)) @ A
    return A.tocsr(), B


def completion(coder, X, held, fitted, seed):
    """Label-free, for bag-of-words rows: each held-out item's half A (a random half of its terms) is
    coded and its 100 nearest fitted items by Hamming distance found; the score is their mean cosine to
    the other half B, which the coder never saw: whether it retrieves what the rest of the document is
    about, rather than what it literally shares with it. With coder None, exact cosine search on A."""
    import scipy.sparse as sp

    A, B = halves(X, held, seed)
    keep = (np.diff(A.indptr) > 0) & (np.diff(B.indptr) > 0)
    A, B = A[keep], B[keep]
    if coder is None:
        found, _ = real_ranking(X[fitted], A, 100, "cosine", seed)
    else:
        found, _ = hamming_ranking(binary.pack(coder.encode(X[fitted])), binary.pack(coder.encode(A)), 100, seed)
    D = sp.csr_matrix(X[fitted])
    unit = lambda M: sp.diags(1 / np.maximum(np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel()), 1e-12)) @ M  # noqa: E731
    D, B = unit(D).tocsr(), unit(B).tocsr()
    return round(float(np.mean([(B[i] @ D[found[i]].T).toarray().mean() for i in range(B.shape[0])])), 4)


def chosen(scores):
    return max(scores, key=lambda name: (scores[name], name == AUTOENCODER))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the benchmark data folder (for 20newsgroups, thucnews, cifar10)")
    parser.add_argument("--corpus", required=True, help="20newsgroups, thucnews, cifar10, or a labelled folder")
    parser.add_argument("--bits", default="64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="also write each candidate's codes, the split and the features "
                                                  "here (.npz), to score other label-free measures without training")
    args = parser.parse_args()
    kind, database, queries = datasets.load(args.corpus, args.data, seed=args.seed)
    (X, Q), _, read_as = named(kind).benchmark_features(database.items, queries.items)
    labels = database.labels, queries.labels
    for bits in [int(b) for b in args.bits.split(",")]:
        started = time.perf_counter()
        model = defaults.model(kind, features=read_as, bits=bits, seed=args.seed)
        checked = defaults.coder(kind, model, defaults.SELF_CHECK).fit(X)
        seconds = time.perf_counter() - started
        check = checked.check_
        candidates = checked.candidates_
        rng = np.random.default_rng(args.seed)
        n_check = check["check_items"]
        held, fitted = split_rows(X.shape[0], checked.sample, checked.holdout, args.seed)  # as the check split them
        exact, own = exact_neighbours(X, held, fitted, checked.metric, args.seed)
        per_item = {name: neighbours_kept(coder, X, held, fitted, exact, own, args.seed)
                    for name, coder in candidates.items()}
        in_sample = np.sort(rng.choice(fitted, n_check, replace=False))
        exact_in, own_in = exact_neighbours(X, in_sample, fitted, checked.metric, args.seed)
        inside = {name: round(float(neighbours_kept(coder, X, in_sample, fitted, exact_in, own_in, args.seed).mean()), 4)
                  for name, coder in candidates.items()}
        spread = {}
        for size in (s for s in SMALLER if s < n_check):
            draws = [rng.choice(n_check, size, replace=False) for _ in range(DRAWS)]
            scores = [{name: float(kept[draw].mean()) for name, kept in per_item.items()} for draw in draws]
            spread[size] = {
                **{f"{name}_sd": round(float(np.std([s[name] for s in scores])), 4) for name in per_item},
                "same_choice": sum(chosen(s) == check["chosen"] for s in scores) / DRAWS,
            }
        row = {"corpus": args.corpus, "bits": bits, "database": X.shape[0], "queries": Q.shape[0],
               "check": check, "in_sample_scores": inside, "smaller_samples": spread,
               **({"completion": {**{name: completion(coder, X, held, fitted, args.seed)
                                     for name, coder in candidates.items()},
                                  "exact-cosine": completion(None, X, held, fitted, args.seed)}} if kind == "text" else {}),
               "precision_at_100": {name: precision(coder, X, Q, labels, args.seed) for name, coder in candidates.items()},
               "seconds": round(seconds, 1)}
        print(json.dumps(row), flush=True)
        if args.keep:
            kept(args.keep / f"{Path(args.corpus).name}-{bits}.npz", candidates, X, Q, held, fitted, labels)


def kept(path, candidates, X, Q, held, fitted, labels):
    """Write the candidates' packed codes of the database and the queries, the split, the labels and the
    features (dense rows where they are not sparse) into one .npz."""
    import scipy.sparse as sp

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{name}_{split}": binary.pack(coder.encode(rows)) for name, coder in candidates.items()
              for split, rows in (("database", X), ("queries", Q))}
    X = sp.csr_matrix(X)
    np.savez(path, **arrays, held=held, fitted=fitted, database_labels=labels[0].astype(str),
             query_labels=labels[1].astype(str), data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape)


if __name__ == "__main__":
    main()
