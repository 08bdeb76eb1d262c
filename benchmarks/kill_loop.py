"""Kill `semhash index` at random moments, again and again, and check the index after each kill.

    python benchmarks/kill_loop.py --corpus corpora/news --kills 20 [--work /tmp/kill-loop]

The first run builds the index whole and is timed; each later run rebuilds it over that index
(`--retrain`: trained anew, not updated) and is killed at a random moment, most with SIGKILL, some with SIGTERM
or SIGINT: every other kill anywhere in the run, the others in its last fifth and a little past
it, where the index is written. A run's length is the median of the runs that finished so far
(a kill that comes after the run ended kills nothing, and says so). After every kill the destination must hold a whole index, the
previous one or the new one: it opens (manifest, sizes and sha256 of every file checked), every
file matches its sha256 (`verify`), a query answers as the first index did, and nothing but semhash's own
entries lies in or beside the folder. Prints one line a kill and a summary; exits 1 on a failure.
"""

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from semhash import Index

SIGNALS = [signal.SIGKILL] * 3 + [signal.SIGTERM, signal.SIGINT]


def index_command(corpus, output):
    return [str(Path(sys.executable).parent / "semhash"), "index", str(corpus), "-o", str(output), "--quiet",
            "--retrain"]


def check(output, query, expected):
    """Problems with the index at `output` after a kill, as a list of sentences."""
    opened = Index.open(output)
    opened.verify()
    problems = []
    if [hit["id"] for hit in opened.query(query, k=10, exact=True)] != expected:
        problems.append("the query's answer changed")
    exact = opened.search(opened.packed[0], 10, exact=True)[1].tolist()
    if opened.search(opened.packed[0], 10, exact=False)[1].tolist() != exact:
        problems.append("Annoy and the exact scan disagree")
    beside = sorted(path.name for path in output.parent.iterdir() if path.name != output.name)
    if beside:
        problems.append(f"left beside the index: {beside}")
    return opened, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="corpora/news")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--query", default="the central bank raised interest rates as inflation climbed")
    parser.add_argument("--work", type=Path, help="Folder for the index [default: a new temporary one].")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="semhash-kill-loop-"))
    output = work / "index"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(index_command(args.corpus, output), check=True, stdout=subprocess.DEVNULL)
    full = time.perf_counter() - started
    expected = [hit["id"] for hit in Index.open(output).query(args.query, k=10, exact=True)]
    print(f"full build: {full:.1f} s; killing rebuilds at random moments up to {1.3 * full:.1f} s", flush=True)
    rng = random.Random(args.seed)
    failures, published, leftovers, durations = 0, 0, 0, [full]
    for kill in range(args.kills):
        full = statistics.median(durations)
        before = Index.open(output).manifest["generation"]
        moment = rng.uniform(0, 1.1 * full) if kill % 2 else rng.uniform(0.8 * full, 1.3 * full)
        sent = rng.choice(SIGNALS)
        begun = time.perf_counter()
        writer = subprocess.Popen(index_command(args.corpus, output), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            writer.wait(timeout=moment)
            durations.append(time.perf_counter() - begun)
        except subprocess.TimeoutExpired:
            writer.send_signal(sent)
            writer.wait()
        stale = sorted(path.name for path in output.iterdir() if path.name.startswith("generation-"))
        try:
            opened, problems = check(output, args.query, expected)
        except Exception as error:  # anything at all is a failure of the loop's promise
            opened, problems = None, [f"{type(error).__name__}: {error}"]
        after = opened.manifest["generation"] if opened else None
        published += after != before
        leftovers += len(stale) > 2
        failures += bool(problems)
        missed = " (the run had ended)" if writer.returncode == 0 else ""
        print(f"kill {kill + 1:2d}: {signal.Signals(sent).name:7s} at {moment:5.1f} s{missed}, exit {writer.returncode:4d}, "
              f"generation {before} -> {after}, folders {len(stale)}: {'; '.join(problems) or 'ok'}", flush=True)
    print(f"{args.kills} kills: {failures} failures; the new index had been published at {published} of them "
          f"(the run ended first at {len(durations) - 1}); {leftovers} left an unfinished generation, removed by "
          "the next run")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
