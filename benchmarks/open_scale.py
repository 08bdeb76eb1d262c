"""Time opening an index and answering one query, as a new process, as the index grows.

    python benchmarks/open_scale.py --items 300 1000000 10000000 --work /tmp/open_scale

Builds the bundled corpus's index (corpora/news, 300 documents) once, then for each larger size a
synthetic index through `Index.save`: that index's features and model, codes like learned ones
(`--codes learned`, the default: the news index's own codes, each copied with 0 to 3 random bits
flipped, so that they cluster as learned codes do) or random codes (`--codes random`), real-valued
codes whose signs are those bits (see `synthetic`), records
like the news index's (its snippets repeated under new ids), and the structures of the backend
chosen by size (`backends.default_backend`: the scan up to 1,000,000 codes, which stores nothing;
multi-index hashing's tables beyond). A fresh process then opens it and answers one query, three
ways: a text query by the index's default backend, the same by an exact scan, and `like ID` of
the last item. Prints the median over --runs of the process's wall
time, of open + query inside it, and its peak RSS (VmHWM: `resource.getrusage` in a child reports
the peak of the process that started it, which Linux carries across exec), warm page cache.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from mih_search import learned_like  # this folder is on the path

from semhash import Index
from semhash.codes import binary
from semhash.index import store
from semhash.index.index import chosen_backend
from semhash.index.shards import Shard

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


def synthetic(base, n, folder, codes="learned", seed=0):
    """An index of `n` codes in `folder` (`codes`: "learned", copies of `base`'s codes with a few
    bits flipped, or "random"), with `base`'s features and model, and records made from `base`'s."""
    rng = np.random.default_rng(seed)
    if codes == "learned":
        packed = learned_like(rng, np.asarray(base.packed), n, max_flips=3)
    else:
        packed = rng.integers(0, 256, (n, (base.bits + 7) // 8), dtype=np.uint8)
    # Real-valued codes, as an index stores them: each row's signs its bits, its magnitudes those of
    # a random row of the base index's (float16, made a million rows at a time).
    magnitudes = np.abs(base.projections(np.arange(len(base))))
    projections = np.empty((n, base.bits), dtype=np.float16)
    for start in range(0, n, 1_000_000):
        stop = min(start + 1_000_000, n)
        signs = binary.unpack(packed[start:stop], base.bits).astype(np.float16) * 2 - 1
        projections[start:stop] = magnitudes[rng.integers(0, len(base), stop - start)] * signs
    examples = list(base.records)

    def records():
        for row in range(n):
            example = examples[row % len(examples)]
            name = f"synthetic/{row:08d}.txt"
            yield {**example, "id": name, "path": name, "sha256": f"{row:064x}"}

    manifest = {**base.manifest, "counts": {**base.manifest["counts"], "documents": n},
                "backend": chosen_backend(n)}
    shard = Shard(packed, records(), base.bits, projections=projections)
    return Index(manifest, base.features, base.model, [shard]).save(folder)


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
    parser.add_argument("--codes", choices=["learned", "random"], default="learned")
    args = parser.parse_args()
    news = args.work / "news"
    if not news.exists():
        subprocess.run([sys.executable, "-m", "semhash.cli", "index", "corpora/news", "-o", str(news), "-q"], check=True)
    base = Index.open(news)
    print("| items | codes | backend | search | process s | open + query s | peak RSS MB | codes MB | records MB | tables MB "
          "| real-valued codes MB |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.items:
        folder = news if n == len(base) else args.work / f"synthetic-{args.codes}-{n}"
        if not folder.exists():
            started = time.perf_counter()
            synthetic(base, n, folder, args.codes)
            print(f"built {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        opened = Index.open(folder)
        last = opened.records[n - 1]["id"]
        shard = store.data_folder(folder, opened.manifest) / opened.manifest["shards"][0]["name"]
        megabytes = {path.name.split(".")[0]: path.stat().st_size / 2**20 for path in shard.iterdir()}
        tables = sum(size for name, size in megabytes.items() if name.startswith("mih"))
        for how, argument in (("default", QUERY), ("exact", QUERY), ("like", last)):
            row = measure(folder, how, argument, args.runs)
            print(f"| {n:,} | {args.codes if folder != news else 'news'} | {opened.manifest['backend']['name']} | {how} | {row['process_s']:.2f} | "
                  f"{row['open_query_s']:.3f} | {row['peak_rss_mb']:.0f} | {megabytes['codes']:.0f} | "
                  f"{megabytes['records']:.0f} | {tables:.0f} | {megabytes.get('projections', 0):.0f} |", flush=True)


if __name__ == "__main__":
    main()
