"""Time multi-index hashing against the exact scan on learned-like codes, one thread (numpy's
element-wise operations use one; `taskset` keeps the process on one core).

    PYTHONPATH=. taskset -c 0 python benchmarks/mih_search.py --codes 1000000 --bits 64 --queries 200 -k 10

The codes imitate learned ones, which cluster: a few thousand random centres, each code a copy
of one with 0 to 3 random bits flipped (a flip may land twice on a bit). Queries are drawn the
same way and are not in the database. `--random` draws every code and query uniformly instead:
the worst case, whose nearest codes lie far, where probing gives way to the scan. Prints the build time of the tables, the median ms per
query of each search, and checks that every answer is the exact scan's (rows and distances).
"""

import argparse
import time

import numpy as np
from search_scale import timed  # the same timing as the scan's benchmark (this folder is on the path)

from semhash.index.backends import ExactScan, MultiIndexHashing


def learned_like(rng, centres, n_codes, max_flips):
    """`n_codes` packed copies of random rows of `centres`, each with 0 to `max_flips` bits flipped."""
    codes = centres[rng.integers(0, len(centres), n_codes)]
    flips = rng.integers(0, max_flips + 1, n_codes)
    n_bits = 8 * centres.shape[1]
    for flip in range(1, max_flips + 1):
        rows = np.flatnonzero(flips >= flip)
        bit = rng.integers(0, n_bits, len(rows))
        codes[rows, bit // 8] ^= (np.uint8(128) >> (bit % 8)).astype(np.uint8)
    return codes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--bits", type=int, default=64, help="a multiple of 8")
    parser.add_argument("--centres", type=int, default=4000)
    parser.add_argument("--max-flips", type=int, default=3)
    parser.add_argument("--random", action="store_true", help="uniformly random codes and queries instead")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--substrings", type=int, help="MIH's m [default: bits / log2(codes), rounded]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.random:
        packed = rng.integers(0, 256, (args.codes, args.bits // 8), dtype=np.uint8)
        queries = rng.integers(0, 256, (args.queries, args.bits // 8), dtype=np.uint8)
    else:
        centres = rng.integers(0, 256, (args.centres, args.bits // 8), dtype=np.uint8)
        packed = learned_like(rng, centres, args.codes, args.max_flips)
        queries = learned_like(rng, centres, args.queries, args.max_flips)
    started = time.perf_counter()
    mih = MultiIndexHashing.load(None, {"substrings": args.substrings}, packed, args.bits)
    build = time.perf_counter() - started
    scan = ExactScan(packed)
    mih_ms, found = timed(lambda query: mih.search(query, args.k), queries)
    scan_ms, expected = timed(lambda query: scan.search(query, args.k), queries)
    same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(found, expected))
    kind = "random" if args.random else f"{args.centres:,} centres, 0-{args.max_flips} flips"
    print(f"{args.codes:,} codes of {args.bits} bits ({kind}), "
          f"top-{args.k}, {args.queries} queries, m = {mih.substrings}: build {build:.2f} s; "
          f"MIH {mih_ms:.3f} ms, exact scan {scan_ms:.2f} ms per query (median), "
          f"{scan_ms / mih_ms:.1f}x; same answers: {same}")


if __name__ == "__main__":
    main()
