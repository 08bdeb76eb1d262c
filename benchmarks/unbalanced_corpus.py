"""Write a very unbalanced corpus from 20 Newsgroups (English posts) or THUCNews (Chinese
headlines) as a labelled folder (one subfolder a label, one UTF-8 .txt file a document, 20
Newsgroups' headers stripped), for `semhash evaluate FOLDER`: every document (both splits) of
`--major` seeded labels, which then hold `--major-share` of the documents, and an even seeded sample
of each other label for the rest.

    python benchmarks/unbalanced_corpus.py --data ../shared/data --output /tmp/unbalanced-news
    python benchmarks/unbalanced_corpus.py --data ../shared/data --corpus thucnews --output /tmp/unbalanced-thucnews

Prints one JSON line: the documents per label.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semhash.sources import datasets  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the benchmark data folder")
    parser.add_argument("--corpus", choices=("20newsgroups", "thucnews"), default="20newsgroups")
    parser.add_argument("--output", required=True, type=Path, help="an absent or empty folder to write")
    parser.add_argument("--major", type=int, default=2, help="groups kept whole")
    parser.add_argument("--major-share", type=float, default=0.75, help="their share of the documents")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"{args.output} is not empty")
    _, train, test = datasets.load(args.corpus, args.data)
    texts, labels = train.items + test.items, np.concatenate([train.labels, test.labels])
    rng = np.random.default_rng(args.seed)
    groups = sorted(set(labels.tolist()))
    major = sorted(rng.choice(groups, args.major, replace=False).tolist())
    minor = [group for group in groups if group not in major]
    n_major = int(np.isin(labels, major).sum())
    per_minor = round(n_major * (1 - args.major_share) / args.major_share / len(minor))
    counts = {}
    for group in groups:
        rows = np.flatnonzero(labels == group)
        if group in minor:
            rows = np.sort(rng.choice(rows, min(per_minor, len(rows)), replace=False))
        folder = args.output / group
        folder.mkdir(parents=True)
        for number, row in enumerate(rows):
            (folder / f"{number:05d}.txt").write_text(texts[row], encoding="utf-8")
        counts[group] = len(rows)
    print(json.dumps({"documents": sum(counts.values()), "major": major, "per_label": counts}))


if __name__ == "__main__":
    main()
