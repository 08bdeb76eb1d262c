"""Index a generated, labelled corpus of short documents as JSON Lines, with 1 and 2 Dask workers.

The corpus is made, seeded, from THUCNews headlines (`--source thucnews`, the default): each
document is 2 headlines of one class from dev.txt, labelled with it, and the held-out queries are
made the same way from test.txt; or from the sentences of 20 Newsgroups (`--source 20newsgroups`,
headers stripped): 2 or 3 sentences of one newsgroup's training posts, queries from its test posts.
jieba cuts Latin text a character at a time through its word graph, so English documents encode
about 20 times slower than Chinese headlines of the same count (see docs/RESULTS.md). Each run is a fresh process doing what `semhash index
corpus.jsonl --workers N` does (the default training sample, 64 bits), timed by stage; then
precision@100 of the queries is measured on the index it wrote (exact scan, the same-label share
of the first 100).

    python benchmarks/scale.py --data ../shared/data --documents 100000 --workers 1,2 --folder /tmp/scale

Prints one Markdown row a run: documents, workers, wall time, training and encoding seconds,
rows encoded a second, the peak memory of the driver and of each worker, precision@100.
"""

import argparse
import json
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash.defaults import TRAIN_SAMPLE  # noqa: E402
from semhash.sources import datasets  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
QUERIES = 500


def sentences_by_group(data, split):
    """{newsgroup: [sentence, ...]} of 20 Newsgroups' `split` ("train" or "test") posts: sentences of
    6 to 40 words, mostly letters, quoted lines dropped."""
    pools = {}
    with tarfile.open(Path(data) / datasets.NEWSGROUPS) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] != f"20news-bydate-{split}":
                continue
            post = datasets.strip_headers(tar.extractfile(member).read().decode("latin-1"))
            lines = " ".join(line for line in post.splitlines() if not line.lstrip().startswith((">", "|", ":")))
            for sentence in SENTENCE_END.split(lines):
                words = sentence.split()
                letters = sum(char.isalpha() for char in sentence)
                if 6 <= len(words) <= 40 and letters > 0.7 * len(sentence.replace(" ", "")):
                    pools.setdefault(parts[1], []).append(" ".join(words))
    return pools


def headlines_by_class(data, split):
    """{class: [headline, ...]} of THUCNews' dev ("train") or test headlines."""
    database, queries = datasets.thucnews(data)
    chosen = database if split == "train" else queries
    pools = {}
    for text, label in zip(chosen.items, chosen.labels):
        pools.setdefault(str(label), []).append(text)
    return pools


POOLS = {"thucnews": (headlines_by_class, (2, 3)), "20newsgroups": (sentences_by_group, (2, 4))}


def documents(pools, count, rng, lengths=(2, 4)):
    """`count` (text, label) pairs: from `lengths[0]` to `lengths[1] - 1` pieces drawn from one label's pool."""
    groups = sorted(pools)
    labels = rng.integers(len(groups), size=count)
    lengths = rng.integers(*lengths, size=count)
    for label, length in zip(labels, lengths):
        pool = pools[groups[label]]
        picks = rng.integers(len(pool), size=length)
        yield " ".join(pool[pick] for pick in picks), groups[label]


def generate(data, source, path, count, seed):
    """Write the corpus of `count` documents to `path`, and return the held-out queries."""
    pooled, lengths = POOLS[source]
    rng = np.random.default_rng(seed)
    if not path.exists():
        pools = pooled(data, "train")
        temporary = path.with_suffix(".partial")
        with open(temporary, "w", encoding="utf-8") as file:
            file.writelines(json.dumps({"id": f"d{number}", "text": text, "label": label}, ensure_ascii=False) + "\n"
                            for number, (text, label) in enumerate(documents(pools, count, rng, lengths)))
        temporary.rename(path)
    return list(documents(pooled(data, "test"), QUERIES, np.random.default_rng(seed + 1), lengths))


def run_one(corpus, output, workers, train_sample):
    """Index `corpus` into `output` as `semhash index --workers N --train-sample S` does (N = 0: in
    this process, no Dask); print the stage timings and peak memories as JSON."""
    from semhash import defaults
    from semhash.features.text import TextFeatures
    from semhash.index import encoding
    from semhash.index.cluster import Cluster, peak_memory
    from semhash.sources.lines import LineCorpus

    timings, started = {}, time.perf_counter()
    model = defaults.model("text", verbose=False)
    source = LineCorpus(corpus)
    if workers:
        with Cluster(workers=workers) as cluster:
            encoding.build(source, output, TextFeatures(), model, train_sample=train_sample, cluster=cluster,
                           timings=timings)
            peaks = list(cluster.worker_peaks.values())
    else:
        encoding.build(source, output, TextFeatures(), model, train_sample=train_sample, timings=timings)
        peaks = []
    print(json.dumps({"wall": time.perf_counter() - started, **timings, "driver_peak": peak_memory(),
                      "worker_peaks": peaks}))


def precision_at_100(output, queries):
    from semhash.index.index import Index

    index = Index.open(output)
    shares = [np.mean([hit["label"] == label for hit in index.query(text, k=100, backend="exact")])
              for text, label in queries]
    return float(np.mean(shares))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the folder holding 20news-bydate.tar.gz")
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--source", choices=sorted(POOLS), default="thucnews")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (0: no Dask)")
    parser.add_argument("--folder", type=Path, help="where the corpus and the indexes are written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-sample", type=int, default=None,
                        help="rows the model is fitted on [default: semhash's]; a small one times encoding quickly")
    parser.add_argument("--run-one", nargs=3, metavar=("CORPUS", "OUTPUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        corpus, output, workers = args.run_one
        run_one(corpus, output, int(workers), args.train_sample or TRAIN_SAMPLE)
        return
    if args.folder is None or args.data is None:
        parser.error("give --data and --folder")
    args.folder.mkdir(parents=True, exist_ok=True)
    corpus = args.folder / f"{args.source}-{args.documents}-seed{args.seed}.jsonl"
    started = time.perf_counter()
    queries = generate(args.data, args.source, corpus, args.documents, args.seed)
    print(f"corpus: {corpus} ({corpus.stat().st_size / 2**20:.0f} MiB), ready in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    print("| documents | workers | wall (s) | training (s) | encoding (s) | rows/s encoding | driver peak (GB) "
          "| worker peaks (GB) | P@100 |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for workers in (int(value) for value in args.workers.split(",")):
        output = args.folder / f"index-{args.source}-{args.documents}-w{workers}"
        sample = ["--train-sample", str(args.train_sample)] if args.train_sample else []
        done = subprocess.run([sys.executable, __file__, "--run-one", str(corpus), str(output), str(workers), *sample],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"the run with {workers} workers failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        peaks = ", ".join(f"{peak / 1e9:.2f}" for peak in row["worker_peaks"]) or "-"
        print(f"| {args.documents:,} | {workers or 'none (one process)'} | {row['wall']:.0f} | {row['training']:.0f} "
              f"| {row['encoding']:.0f} | {args.documents / row['encoding']:,.0f} | {row['driver_peak'] / 1e9:.2f} "
              f"| {peaks} | {precision_at_100(output, queries):.3f} |", flush=True)


if __name__ == "__main__":
    main()
