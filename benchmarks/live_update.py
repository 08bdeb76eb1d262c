"""What an update in place costs beside a full build, and what it gives up in quality.

    python benchmarks/live_update.py --data ../shared/data --work /tmp/live_update

The 11,314 training posts of 20 Newsgroups are written as a folder (one file a post, in label
subfolders, headers stripped as the protocol strips them) under --work, never in the project,
and indexed with semhash's defaults. Then 1% of the files are changed (each gets a paragraph of
another post of its newsgroup appended), 1% of the test posts are added to the folder and 1% of
the files deleted, and the index is brought up to date (`Index.update`), timed beside the full
build; an unchanged folder is updated again (timed), and the changed folder is indexed again from
scratch. Precision@100 of the protocol's queries (the test posts not added to the folder) is
measured on the updated index and on the full rebuild, by exact Hamming ranking with the
protocol's seeded tie-break.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semhash import Index, TextCorpus
from semhash.evaluation import metrics
from semhash.sources import datasets


def write_folder(folder, split):
    """The posts of `split` as files: FOLDER/<newsgroup>/<position>.txt."""
    for position, (text, label) in enumerate(zip(split.items, split.labels)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{position:05d}.txt").write_text(text, encoding="utf-8")


def precision(index, queries):
    """Precision@100 of the query posts against the items the index holds."""
    live = index.live_rows()
    db_packed = index.codes(live)
    labels = np.array([index.records[row]["label"] for row in live])
    query_packed = index.encode(queries.items)
    rows, _ = metrics.hamming_ranking(db_packed, query_packed, 100, seed=0)
    return metrics.precision_at(metrics.relevance(rows, labels, queries.labels), 100)


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="the folder holding 20news-bydate.tar.gz")
    parser.add_argument("--work", required=True, type=Path, help="a scratch folder for the corpus and the indexes")
    parser.add_argument("--share", type=float, default=0.01, help="share of files changed, added and deleted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unchanged-only", action="store_true",
                        help="only time --runs updates of the folder and index an earlier run left in --work")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.unchanged_only:
        for _ in range(args.runs):
            report, seconds = timed(lambda: Index.open(args.work / "index").update(TextCorpus(args.work / "corpus")))
            print(json.dumps({"unchanged_update_s": round(seconds, 2), "unchanged": report["unchanged"],
                              "written": report["added"] + report["changed"] + report["removed"]}))
        return
    train, test = datasets.newsgroups(args.data)
    shutil.rmtree(args.work, ignore_errors=True)
    corpus, index_dir = args.work / "corpus", args.work / "index"
    write_folder(corpus, train)
    built, build_s = timed(lambda: Index.build(TextCorpus(corpus), show_progress=False).save(index_dir))
    print(f"full build: {len(built)} posts in {build_s:.1f} s", file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    files = sorted(corpus.rglob("*.txt"))
    count = round(args.share * len(files))
    picked = rng.permutation(len(files))
    changed, deleted = [files[i] for i in picked[:count]], [files[i] for i in picked[count: 2 * count]]
    for path in changed:
        sibling = rng.choice(sorted(path.parent.glob("*.txt")))
        path.write_text(path.read_text(encoding="utf-8") + "\n\n" + sibling.read_text(encoding="utf-8")[:1000],
                        encoding="utf-8")
    for path in deleted:
        path.unlink()
    added = rng.permutation(len(test.items))[:count]
    for position in added:
        label = test.labels[position]
        (corpus / label / f"test-{position:05d}.txt").write_text(test.items[position], encoding="utf-8")
    queries = test.subset(np.setdiff1d(np.arange(len(test.items)), added))

    opened = Index.open(index_dir)
    report, update_s = timed(lambda: opened.update(TextCorpus(corpus)))
    unchanged_s = [timed(lambda: Index.open(index_dir).update(TextCorpus(corpus)))[1] for _ in range(args.runs)]
    updated_precision = precision(Index.open(index_dir), queries)
    rebuilt, rebuild_s = timed(lambda: Index.build(TextCorpus(corpus)).save(args.work / "rebuilt"))
    rebuilt_precision = precision(rebuilt, queries)
    result = {
        "posts": len(files), "changed": report["changed"], "added": report["added"], "removed": report["removed"],
        "full_build_s": round(build_s, 1), "update_s": round(update_s, 2),
        "update_share_of_build": round(update_s / build_s, 4), "unchanged_update_s": [round(seconds, 2) for seconds in unchanged_s],
        "rebuild_s": round(rebuild_s, 1), "precision_at_100_updated": round(updated_precision, 4),
        "precision_at_100_rebuilt": round(rebuilt_precision, 4), "drift": report["drift"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
