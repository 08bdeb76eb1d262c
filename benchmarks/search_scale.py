"""Exact and approximate search over many codes: semhash's backends beside faiss, one thread.

    python benchmarks/search_scale.py --sizes 100000 1000000 --bits 32 64 128 [--ten-million]
        [--queries 200] [--annoy-max 1000000] [--chunk-bytes 131072 524288] [--json out.json]

For each size, code length and kind of codes (random; or "learned": a few thousand random
centres, each copied with up to three random bit flips, so that many codes repeat exactly, as
learned codes do), it times per query (the median over --queries queries, one query at a time)
top-1, 10 and 100 by: semhash's exact scan, as the compiled loop that a process uses once its scans
repay loading it (`binary.scan(..., compiled=True)`) and as the numpy scan (`compiled=False`),
taking turns with faiss' `IndexBinaryFlat` query by query; the previous scan, kept below as
`previous_nearest` (the byte-by-byte scan that argpartitioned every distance; skipped past
1,000,000 codes); multi-index hashing (`MultiIndexHashing` at its default substrings, with the time
to build its tables); Annoy (`AnnoyBackend` at its defaults, up to --annoy-max codes, with its
build time); and, where faiss is installed (it is no dependency of semhash), faiss'
`IndexBinaryFlat` and `IndexBinaryMultiHash` (the same substrings as semhash's, --faiss-nflip
bits flipped per substring when probing: approximate, so its recall is reported).
Recall is against the exact answer, counting an item whose distance is no worse than the exact
k-th (`metrics.recall_at_k`). The scan's answers are checked identical to the numpy scan's and the
previous scan's. --chunk-bytes times the numpy scan again with other chunk sizes. Prints a Markdown table.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy and faiss load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from semhash.codes import binary  # noqa: E402
from semhash.evaluation.metrics import recall_at_k  # noqa: E402
from semhash.index.backends import AnnoyBackend, ExactScan, MultiIndexHashing  # noqa: E402

try:
    import faiss
except ImportError:
    faiss = None

KS = (1, 10, 100)
CENTRES = 3000
PREVIOUS_MAX = 1_000_000


def previous_nearest(packed, query, k):
    """The previous version of `binary.nearest`, kept as the reference the new scan is timed
    against: XOR and popcount byte by byte, then argpartition every distance."""
    distances = np.bitwise_count(np.bitwise_xor(packed, query)).sum(axis=1, dtype=np.int64)
    k = min(k, len(distances))
    if k < len(distances):
        candidates = np.argpartition(distances, k - 1)[:k]
        cutoff = distances[candidates].max()
        candidates = np.flatnonzero(distances <= cutoff)
    else:
        candidates = np.arange(len(distances))
    order = candidates[np.argsort(distances[candidates], kind="stable")][:k]
    return order, distances[order]


def generate(kind, n, n_bits, n_queries, rng):
    """Packed codes and queries: uniformly random, or copies of CENTRES random centres with up to
    three random bits flipped (the queries are drawn the same way)."""
    n_bytes = n_bits // 8
    if kind == "random":
        return rng.integers(0, 256, (n, n_bytes), dtype=np.uint8), rng.integers(0, 256, (n_queries, n_bytes), dtype=np.uint8)
    centres = rng.integers(0, 256, (CENTRES, n_bytes), dtype=np.uint8)

    def copies(count):
        codes = centres[rng.integers(0, CENTRES, count)]
        for _ in range(3):
            flip = rng.random(count) < 0.5
            bit = rng.integers(0, n_bits, count)
            codes[flip, bit[flip] // 8] ^= (128 >> (bit[flip] % 8)).astype(np.uint8)
        return codes

    return copies(n), copies(n_queries)


def timed_together(searches, queries):
    """{name: (median ms per query, the answers)} for each search in `searches` by name, taking
    turns query by query, so that the host's load, which moves from second to second here,
    weighs on each of them alike."""
    seconds = {name: [] for name in searches}
    answers = {name: [] for name in searches}
    for query in queries:
        for name, search in searches.items():
            started = time.perf_counter()
            answers[name].append(search(query))
            seconds[name].append(time.perf_counter() - started)
    return {name: (1000 * statistics.median(seconds[name]), answers[name]) for name in searches}


def timed(search, queries):
    """(median ms per query, the answers)."""
    return timed_together({"search": search}, queries)["search"]


def measure(kind, n, n_bits, args, rng):
    packed, queries = generate(kind, n, n_bits, args.queries, rng)
    row = {"kind": kind, "codes": n, "bits": n_bits, "distinct": len(np.unique(packed, axis=0)), "ks": {}}
    scan = ExactScan(packed)
    faiss_index = None
    if faiss is not None:
        faiss_index = faiss.IndexBinaryFlat(n_bits)
        faiss_index.add(packed)
    started = time.perf_counter()
    mih = MultiIndexHashing().over(packed, n_bits)
    row["mih_build_s"] = round(time.perf_counter() - started, 2)
    faiss_mih = None
    if faiss is not None:
        started = time.perf_counter()
        faiss_mih = faiss.IndexBinaryMultiHash(n_bits, mih.substrings, n_bits // mih.substrings)
        faiss_mih.nflip = args.faiss_nflip
        faiss_mih.add(packed)
        row["faiss_mih_build_s"] = round(time.perf_counter() - started, 2)
    annoy = None
    if n <= args.annoy_max:
        started = time.perf_counter()
        annoy = AnnoyBackend().build(binary.unpack(packed, n_bits))
        row["annoy_build_s"] = round(time.perf_counter() - started, 1)
    for k in KS:
        cell = {}
        searches = {"scan": lambda q: binary.scan(scan.words, q, k, compiled=True),
                    "numpy_scan": lambda q: binary.scan(scan.words, q, k, compiled=False)}
        if faiss_index is not None:
            searches["faiss"] = lambda q: faiss_index.search(q[None], k)[0][0]
        together = timed_together(searches, queries)
        cell["scan_ms"], exact = together["scan"]
        cell["numpy_scan_ms"], numpy_answers = together["numpy_scan"]
        for (rows, distances), (numpy_rows, numpy_distances) in zip(exact, numpy_answers, strict=True):
            assert np.array_equal(rows, numpy_rows) and np.array_equal(distances, numpy_distances)
        exact_distances = np.array([distances for _, distances in exact])
        for chunk_bytes in args.chunk_bytes:
            cell[f"scan_ms_chunk_{chunk_bytes}"], _ = timed(
                lambda q: binary.scan(scan.words, q, k, chunk_bytes, compiled=False), queries)
        if n <= PREVIOUS_MAX and not args.no_previous:
            cell["previous_ms"], previous = timed(lambda q: previous_nearest(packed, q, k), queries)
            for (rows, distances), (old_rows, old_distances) in zip(exact, previous, strict=True):
                assert np.array_equal(rows, old_rows) and np.array_equal(distances, old_distances)
        if faiss_index is not None:
            cell["faiss_ms"], found = together["faiss"]
            cell["faiss_recall"] = round(recall_at_k(exact_distances, found), 4)
            cell["scan_over_faiss"] = round(cell["scan_ms"] / cell["faiss_ms"], 2)
            cell["numpy_scan_over_faiss"] = round(cell["numpy_scan_ms"] / cell["faiss_ms"], 2)
        cell["mih_ms"], found = timed(lambda q: mih.search(q, k)[1], queries)
        cell["mih_recall"] = round(recall_at_k(exact_distances, found), 4)
        cell["scan_over_mih"] = round(cell["scan_ms"] / cell["mih_ms"], 1)
        if faiss_mih is not None:
            cell["faiss_mih_ms"], found = timed(lambda q: faiss_mih.search(q[None], k)[0][0], queries)
            cell["faiss_mih_recall"] = round(recall_at_k(exact_distances, found), 4)
        if annoy is not None:
            cell["annoy_ms"], found = timed(lambda q: annoy.search(q, k)[1], queries)
            cell["annoy_recall"] = round(recall_at_k(exact_distances, found), 4)
        row["ks"][k] = cell
        print(f"  {kind} {n:,} x {n_bits} bits, top-{k}: {cell}", flush=True)
    return row


def number(value, digits=2):
    """A table cell: `value` rounded, or empty where it was not measured."""
    return "" if value is None else f"{value:.{digits}f}"


def first_cells(row, k, cell):
    """The cells every table starts a line with: codes, bits, kind (distinct), k, the scan's ms."""
    return f"| {row['codes']:,} | {row['bits']} | {row['kind']} ({row['distinct']:,}) | {k} | {number(cell['scan_ms'])} "


def mih_markdown(rows):
    """The multi-index hashing columns: semhash's beside faiss' and the scan."""
    lines = ["| codes | bits | kind (distinct) | k | scan ms | MIH ms | scan / MIH | MIH recall | MIH build s "
             "| faiss flat ms | faiss MultiHash ms | faiss MultiHash recall | faiss MultiHash build s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for k, cell in row["ks"].items():
            lines.append(
                first_cells(row, k, cell)
                + f"| {number(cell['mih_ms'], 3)} | {number(cell['scan_over_mih'], 1)} | {number(cell['mih_recall'], 3)} "
                f"| {row['mih_build_s']} | {number(cell.get('faiss_ms'))} | {number(cell.get('faiss_mih_ms'), 3)} "
                f"| {number(cell.get('faiss_mih_recall'), 3)} | {row.get('faiss_mih_build_s', '')} |"
            )
    return "\n".join(lines)


def markdown(rows, chunk_bytes):
    lines = ["| codes | bits | kind (distinct) | k | scan ms | numpy scan ms | previous scan ms | faiss ms | scan / faiss "
             "| numpy scan / faiss | faiss recall | Annoy ms | Annoy recall | Annoy build s |"
             + "".join(f" numpy scan ms, {c // 1024} KiB chunks |" for c in chunk_bytes),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(chunk_bytes)]
    for row in rows:
        for k, cell in row["ks"].items():
            lines.append(
                first_cells(row, k, cell)
                + f"| {number(cell['numpy_scan_ms'])} | {number(cell.get('previous_ms'))} | {number(cell.get('faiss_ms'))} "
                f"| {number(cell.get('scan_over_faiss'))} | {number(cell.get('numpy_scan_over_faiss'))} "
                f"| {number(cell.get('faiss_recall'), 3)} | {number(cell.get('annoy_ms'))} | {number(cell.get('annoy_recall'), 3)} | {row.get('annoy_build_s', '')} |"
                + "".join(f" {number(cell[f'scan_ms_chunk_{c}'])} |" for c in chunk_bytes)
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ten-million", action="store_true", help="also 10,000,000 codes (mind memory and time)")
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128], choices=[32, 64, 128])
    parser.add_argument("--kinds", nargs="+", default=["random", "learned"], choices=["random", "learned"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--annoy-max", type=int, default=1_000_000, help="build Annoy up to this many codes")
    parser.add_argument("--chunk-bytes", type=int, nargs="*", default=[], help="also time the scan at these chunk sizes")
    parser.add_argument("--faiss-nflip", type=int, default=1, help="IndexBinaryMultiHash's bits flipped per substring")
    parser.add_argument("--no-previous", action="store_true", help="skip the previous scan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    if faiss is None:
        print("faiss is not installed: no IndexBinaryFlat reference in this run (pip install faiss-cpu)")
    else:
        faiss.omp_set_num_threads(1)
    sizes = args.sizes + ([10_000_000] if args.ten_million else [])
    rng = np.random.default_rng(args.seed)
    rows = []
    with threadpool_limits(1):
        for n in sizes:
            for n_bits in args.bits:
                for kind in args.kinds:
                    rows.append(measure(kind, n, n_bits, args, rng))
    print(markdown(rows, args.chunk_bytes))
    print()
    print(mih_markdown(rows))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"faiss": getattr(faiss, "__version__", None), "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
