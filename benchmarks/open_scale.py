"""Time opening an index and answering one query, as a new process, as the index grows.

    python benchmarks/open_scale.py --items 300 1000000 10000000 --work /tmp/open_scale

Builds the bundled corpus's index (corpora/news, 300 documents) once, then for each larger size a
synthetic index through `Index.save`: that index's features and model, random codes, records like
the news index's (its snippets repeated under new ids) and Annoy over the codes with the default
trees. Each index is also rewritten as format 2 (records.jsonl, every file but Annoy's and Keras'
hashed on open) beside it. A fresh process then opens it and answers one query, three ways: a
text query by the default search (an exact scan up to 100,000 codes, Annoy beyond), the same by
an exact scan, and `like ID` of the last item. Prints the median over --runs of the process's wall
time, of open + query inside it, and its peak RSS (VmHWM: `resource.getrusage` in a child reports
the peak of the process that started it, which Linux carries across exec), warm page cache.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from semhash import Index
from semhash.codes import binary
from semhash.index import records as item_records
from semhash.index import store
from semhash.index.backends import AnnoyBackend

QUERY = "the central bank raised interest rates as inflation climbed"
CHILD = """
import json, sys, time
started = time.perf_counter()
from semhash import Index
imported = time.perf_counter()
index = Index.open(sys.argv[1])
if sys.argv[2] == "like":
    hits = index.like(sys.argv[3], k=10)
else:
    hits = index.query(sys.argv[3], k=10, exact=True if sys.argv[2] == "exact" else None)
done = time.perf_counter()
assert len(hits) == 10
with open("/proc/self/status") as status:  # this process's peak RSS; getrusage's ru_maxrss would
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))  # keep the parent's
print(json.dumps({"open_query_s": done - imported, "import_s": imported - started, "peak_rss_mb": peak / 1024}))
"""


def synthetic(base, n, folder, seed=0):
    """An index of `n` random codes in `folder`, with `base`'s features and model, and records
    made from `base`'s."""
    packed = np.random.default_rng(seed).integers(0, 256, (n, (base.bits + 7) // 8), dtype=np.uint8)
    bits = binary.unpack(packed, base.bits)
    examples = list(base.records)

    def records():
        for row in range(n):
            example = examples[row % len(examples)]
            name = f"synthetic/{row:08d}.txt"
            yield {**example, "id": name, "path": name, "sha256": f"{row:064x}"}

    manifest = {**base.manifest, "counts": {**base.manifest["counts"], "documents": n}}
    annoy = AnnoyBackend(base.manifest["annoy"]["trees"], base.manifest["annoy"]["seed"]).build(bits)
    return Index(manifest, base.features, base.model, packed, records(), annoy).save(folder)


def as_format_2(folder, target):
    """A copy of the format-3 index in `folder` as format 2 wrote it: records.jsonl in place of
    records.sqlite, with its size and sha256 (the other files hard-linked)."""
    shutil.copytree(folder, target, copy_function=os.link)
    manifest = json.loads((target / store.MANIFEST).read_text())
    data = target / manifest["data"]
    records = item_records.SqliteRecords(data / item_records.SQLITE, manifest["counts"]["documents"])
    with open(data / item_records.JSONL, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    (data / item_records.SQLITE).unlink()
    del manifest["files"][item_records.SQLITE]
    jsonl = data / item_records.JSONL
    manifest["files"][item_records.JSONL] = {"bytes": jsonl.stat().st_size, "sha256": store.sha256(jsonl)}
    (target / store.MANIFEST).unlink()  # a link to the format-3 manifest: write a file of its own
    (target / store.MANIFEST).write_text(json.dumps({**manifest, "format_version": 2}, indent=2))
    return target


def measure(folder, how, argument, runs):
    """Medians over `runs` fresh processes (after one to warm the page cache)."""
    rows = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), how, argument], check=True,
                             capture_output=True, text=True).stdout
        rows.append({**json.loads(out), "process_s": time.perf_counter() - started})
    return {key: statistics.median(row[key] for row in rows[1:]) for key in rows[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[300, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/open_scale"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args()
    news = args.work / "news"
    if not news.exists():
        subprocess.run([sys.executable, "-m", "semhash.cli", "index", "corpora/news", "-o", str(news), "-q"], check=True)
    base = Index.open(news)
    print("| items | format | search | process s | open + query s | peak RSS MB | codes MB | records MB | annoy MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in args.items:
        folder = news if n == len(base) else args.work / f"synthetic-{n}"
        if not folder.exists():
            started = time.perf_counter()
            synthetic(base, n, folder)
            print(f"built {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        last = Index.open(folder).records[n - 1]["id"]
        for version in args.formats:
            target = folder if version == 3 else args.work / f"{folder.name}-format-2"
            if version == 2 and not target.exists():
                as_format_2(folder, target)
            data = target / json.loads((target / store.MANIFEST).read_text())["data"]
            megabytes = {path.name.split(".")[0]: path.stat().st_size / 2**20 for path in data.iterdir()}
            for how, argument in (("default", QUERY), ("exact", QUERY), ("like", last)):
                row = measure(target, how, argument, args.runs)
                print(f"| {n:,} | {version} | {how} | {row['process_s']:.2f} | {row['open_query_s']:.3f} | "
                      f"{row['peak_rss_mb']:.0f} | {megabytes['codes']:.0f} | {megabytes['records']:.0f} | "
                      f"{megabytes['annoy']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
