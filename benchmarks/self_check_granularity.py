"""Which coder keeps what: label-free "labels" at several granularities for the codes that
`benchmarks/self_check.py --keep DIR` wrote. The database's TF-IDF rows (unit length, 100 LSA
dimensions) are clustered by k-means into k groups (k = 5, 10, 20, 50; seeded), and each coder's
precision@100 of the held-out check items is scored against those groups and against the true labels.
A coder ahead at small k keeps coarse topics; one ahead at large k keeps finer neighbourhoods.

    python benchmarks/self_check_granularity.py /tmp/self-check/*.npz

Prints one JSON line a file.
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash.codes.neighbours import hamming_ranking  # noqa: E402

GROUPS = (5, 10, 20, 50)
CODERS = ("autoencoder", "pca-itq")


def precision(groups, found, held, fitted):
    """Each coder's precision@100 of the held-out items against `groups` (a group per database item)."""
    return {name: round(float((groups[fitted][rows] == groups[held][:, None]).mean()), 4) for name, rows in found.items()}


def main():
    for path in sys.argv[1:]:
        with np.load(path, allow_pickle=False) as kept:
            z = dict(kept)
        X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        held, fitted, labels = z["held"], z["fitted"], z["database_labels"]
        unit = sp.diags(1 / np.maximum(np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()), 1e-12)) @ X
        lsa = TruncatedSVD(100, random_state=0).fit_transform(unit)
        lsa /= np.maximum(np.linalg.norm(lsa, axis=1, keepdims=True), 1e-12)
        found = {name: hamming_ranking(z[f"{name}_database"][fitted], z[f"{name}_database"][held], 100)[0]
                 for name in CODERS}
        row = {"file": Path(path).name, "labels": precision(labels, found, held, fitted)}
        for k in GROUPS:
            row[f"kmeans_{k}"] = precision(KMeans(k, n_init=3, random_state=0).fit(lsa).labels_, found, held, fitted)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
