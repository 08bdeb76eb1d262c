"""Time semhash's training against a reference commit's, side by side, and score both codes.

The features of a benchmark corpus are made once (as `semhash evaluate` makes them) and saved
in a temporary folder; then for each seed the same model is trained on the database twice, in a
new process each: once with the reference commit's code (extracted with `git archive`) and once
with this checkout's, in alternating order, so that both meet the same load on a shared machine.
Each training reports its seconds, the sha256 of its database codes (so: does one seed give the
same codes every time, and does the new code give the reference's?) and precision@100 of the
queries' codes against the database's, ranked as `semhash evaluate` ranks them.

    python benchmarks/training_speed.py --data ../shared/data --corpus thucnews --rows 4000
    python benchmarks/training_speed.py --data ../shared/data --corpus 20newsgroups --seeds 0,1,2
    python benchmarks/training_speed.py --data ../shared/data --corpus 20newsgroups --labels --reference 45d4a36

Prints one JSON line per training, then a Markdown row: the median seconds of each, their ratio,
and the mean precision@100 of each over the seeds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Run in a child process, with either checkout first on its path: the API both share.
TRAIN = """
import hashlib, json, sys, time
import numpy as np, scipy.sparse as sp
from semhash.models.autoencoder import StackedAutoencoder
X = sp.load_npz(sys.argv[1] + "/database.npz")
y = np.load(sys.argv[1] + "/labels.npy", allow_pickle=False) if sys.argv[4] == "labels" else None
model = StackedAutoencoder(**json.loads(sys.argv[2]))
started = time.perf_counter()
bits = model.fit_encode(X, y)
seconds = time.perf_counter() - started
np.save(sys.argv[3] + "-database.npy", np.packbits(bits, axis=1))
np.save(sys.argv[3] + "-queries.npy", np.packbits(model.encode(sp.load_npz(sys.argv[1] + "/queries.npz")), axis=1))
print(json.dumps({"seconds": round(seconds, 2), "codes_sha256": hashlib.sha256(np.packbits(bits, axis=1)).hexdigest()}))
"""


def features(corpus, data, rows, folder):
    """Save semhash's features of the database (its first `rows` rows, or all) and the queries, as
    the evaluation makes them, into `folder`; return the labels of both."""
    import numpy as np
    import scipy.sparse as sp

    from semhash.modality import named
    from semhash.sources import datasets

    kind, database, queries = datasets.load(corpus, data)
    (ours, asked), _, _ = named(kind).benchmark_features(database.items, queries.items)
    rows = rows or ours.shape[0]
    sp.save_npz(folder / "database.npz", ours[:rows])
    sp.save_npz(folder / "queries.npz", asked)
    np.save(folder / "labels.npy", np.asarray(database.labels[:rows]).astype(str), allow_pickle=False)
    return database.labels[:rows], queries.labels


def train(code_root, folder, params, codes, labels):
    """Train with the code under `code_root` in a new process, on the database's labels where `labels`
    says; its report, with its codes' precision@100."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    ran = subprocess.run([sys.executable, "-c", TRAIN, str(folder), json.dumps(params), str(codes),
                          "labels" if labels else "none"],
                         capture_output=True, text=True, env=env, cwd=code_root, check=False)
    if ran.returncode:
        sys.exit(f"training with {code_root} failed:\n{ran.stderr[-2000:]}")
    return json.loads(ran.stdout.strip().splitlines()[-1])


def precision(codes, labels):
    """precision@100 of the queries' codes against the database's, ties broken as the evaluation does."""
    import numpy as np

    from semhash.evaluation import metrics

    database, queries = (np.load(f"{codes}-{split}.npy") for split in ("database", "queries"))
    rows, _ = metrics.hamming_ranking(database, queries, 100, seed=0)
    return round(metrics.precision_at(metrics.relevance(rows, *labels), 100), 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the benchmark data folder (../shared/data)")
    parser.add_argument("--corpus", default="thucnews", help="20newsgroups or thucnews")
    parser.add_argument("--rows", type=int, default=0, help="train on the database's first ROWS rows (0: all)")
    parser.add_argument("--reference", default="7e53d21", help="the commit to compare against")
    parser.add_argument("--seeds", default="0", help="train once with each of these seeds, e.g. 0,1,2")
    parser.add_argument("--model", default="{}", help='StackedAutoencoder settings as JSON, e.g. \'{"bits": 32}\'')
    parser.add_argument("--labels", action="store_true", help="train on the database's labels too (supervised)")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    params = {"bits": 64, **json.loads(args.model)}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        reference = work / "reference"
        reference.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.reference, "semhash"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(reference)], input=archive, check=True)
        labels = features(args.corpus, args.data, args.rows, work)
        runs = {"reference": [], "this": []}
        for turn, seed in enumerate(seeds):
            for which in ["reference", "this"][:: 1 if turn % 2 == 0 else -1]:
                codes = work / f"{which}-{seed}"
                result = train(reference if which == "reference" else ROOT, work, {**params, "seed": seed}, codes,
                               args.labels)
                result["precision_at_100"] = precision(codes, labels)
                runs[which].append(result)
                print(json.dumps({"code": which, "corpus": args.corpus, "rows": len(labels[0]), "labels": args.labels,
                                  **params, "seed": seed, **result}), flush=True)
    median = {which: statistics.median(run["seconds"] for run in found) for which, found in runs.items()}
    mean = {which: statistics.mean(run["precision_at_100"] for run in found) for which, found in runs.items()}
    same = [old["codes_sha256"] == new["codes_sha256"] for old, new in zip(runs["reference"], runs["this"])]
    print(f"| {args.corpus} | {len(labels[0])} | {params['bits']} | {args.seeds} | {median['reference']:.1f} s | "
          f"{median['this']:.1f} s | {median['reference'] / median['this']:.2f}x | {mean['reference']:.4f} | "
          f"{mean['this']:.4f} | {'yes' if all(same) else 'no'} |")


if __name__ == "__main__":
    main()
