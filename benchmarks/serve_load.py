"""Latency and throughput of `semhash serve` under a bounded local load loop, beside the same
queries asked of the index in process (no HTTP), so the server's own cost shows as a ratio.

    python benchmarks/serve_load.py INDEX [--requests 10000] [--clients 8] [--k 10]

Starts `semhash serve INDEX --quiet` on 127.0.0.1 at a free port as its own process, waits until it
answers, warms it with 200 requests, then has CLIENTS threads (each with one kept-alive HTTP
connection) send REQUESTS text searches in all, GET /search?q=...&k=K, and times each from send to
last byte. The queries are the first 3 to 8 words of the snippets of 500 items sampled with a fixed
seed, less those of only unknown words. The clients share the machine's cores with the server, as a
local load loop does. Prints one JSON line: p50, p90, p99 and max in ms, requests per second,
failures, and the in-process p50 of Index.query on the same queries. Then stops the server.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def queries_of(index, count=500, seed=0):
    """The first 3 to 8 words of sampled items' snippets, those with a word the index knows."""
    from semhash.errors import SemhashError

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(index), min(count, len(index)), replace=False)
    found = []
    for row in rows:
        words = index.records[int(row)].get("snippet", "").split()
        query = " ".join(words[: int(rng.integers(3, 9))])
        try:
            index.query(query)
        except SemhashError:  # only unknown words
            continue
        found.append(query)
    return found


def percentiles(milliseconds):
    ordered = np.sort(np.asarray(milliseconds))
    return {name: round(float(np.percentile(ordered, share)), 3) for name, share in
            (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("max_ms", 100))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    from semhash.index.index import Index

    index = Index.open(args.index)
    queries = queries_of(index)
    timed = [queries[n % len(queries)] for n in range(300)]
    in_process = []
    for query in timed * 2:  # the first pass warms, the second is timed
        started = time.perf_counter()
        index.query(query, args.k)
        in_process.append(1000 * (time.perf_counter() - started))
    in_process = in_process[len(timed):]

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "semhash.cli", "serve", str(args.index), "--port", str(port),
                               "--quiet"], env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/indexes")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("semhash serve did not start")
        paths = [f"/search?q={quote(query)}&k={args.k}" for query in queries]
        latencies, failures, lock = [], [0], threading.Lock()
        counter = iter(range(args.requests + 200))

        def client(warm):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            own, failed = [], 0
            for n in counter if not warm else range(200 // args.clients):
                started = time.perf_counter()
                connection.request("GET", paths[n % len(paths)])
                response = connection.getresponse()
                body = response.read()
                elapsed = 1000 * (time.perf_counter() - started)
                if response.status != 200 or b'"hits"' not in body:
                    failed += 1
                own.append(elapsed)
            connection.close()
            if not warm:
                with lock:
                    latencies.extend(own)
                    failures[0] += failed

        for warm in (True, False):
            counter = iter(range(args.requests))
            threads = [threading.Thread(target=client, args=(warm,)) for _ in range(args.clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    row = {"index": str(args.index), "items": len(index), "requests": len(latencies), "clients": args.clients,
           "cores": os.cpu_count(), **percentiles(latencies), "requests_per_second": round(len(latencies) / seconds, 1),
           "failures": failures[0], "in_process_p50_ms": round(statistics.median(in_process), 3),
           "in_process_p99_ms": round(float(np.percentile(in_process, 99)), 3)}
    row["p50_over_in_process"] = round(row["p50_ms"] / row["in_process_p50_ms"], 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
