"""Time `semhash query` as a new process, the way a user runs it, warm and fully cold.

    python benchmarks/query_latency.py --index indexes/news --runs 10 [--drop-caches]

Warm: the files are in the page cache from the previous run. Cold (--drop-caches, needs
root on Linux): the page cache is emptied before each run, so Python, numpy, jieba and the
index are all read from disk again. Prints the seconds of each run and their median.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def drop_caches():
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="indexes/news")
    parser.add_argument("--query", default="the central bank raised interest rates as inflation climbed")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    semhash = shutil.which("semhash") or str(Path(sys.executable).with_name("semhash"))
    command = [semhash, "query", args.query, "--index", args.index, "-k", "10"]
    seconds = []
    for _ in range(args.runs):
        if args.drop_caches:
            drop_caches()
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - started)
    kind = "cold (page cache dropped)" if args.drop_caches else "warm page cache"
    print(f"{kind}: " + " ".join(f"{s:.3f}" for s in seconds))
    print(f"median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
