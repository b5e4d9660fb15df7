"""The faiss side of `scripts/compare-faiss`: median latency of one search with faiss's exact
inner-product index (IndexFlatIP) on the vectors that `facegraph bench-search --dump FILE` wrote,
for the same collection sizes, queries, k and threshold, with the same number of threads.

Tested with faiss-cpu==1.15.1 and numpy==2.4.6 on Python 3.11:
    python3 -m venv /tmp/faiss && /tmp/faiss/bin/pip install faiss-cpu==1.15.1 numpy==2.4.6

The file holds max(sizes) base vectors, then the queries, as raw little-endian float32.
"""

import argparse
import statistics
import time

import faiss
import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


ROUNDS = 4  # the kinds of search take turns on slices of the queries, as bench-search does


class Timing:
    """Wall-clock times of searches, and their CPU time (all threads)."""

    def __init__(self):
        self.times = []
        self.cpu = 0.0

    def add(self, queries, search):
        search(queries[0:1])  # warm-up, untimed
        cpu = time.process_time()
        for i in range(len(queries)):
            t = time.perf_counter()
            search(queries[i : i + 1])
            self.times.append(time.perf_counter() - t)
        self.cpu += time.process_time() - cpu

    def cpu_per_search(self):
        return self.cpu / max(len(self.times), 1)

    def sorted(self):
        return sorted(self.times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vectors", required=True)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--cosine",
        type=float,
        required=True,
        help="the cosine cut-off of the similarity threshold, as bench-search --dump writes it",
    )
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    sizes = [int(s) for s in a.sizes.split(",")]
    n_max = max(sizes)
    data = np.fromfile(a.vectors, dtype="<f4")
    expected = (n_max + a.queries) * a.dim
    if data.size != expected:
        raise SystemExit(f"{a.vectors} holds {data.size} floats, expected {expected}")
    base = data[: n_max * a.dim].reshape(n_max, a.dim)
    queries = np.ascontiguousarray(data[n_max * a.dim :].reshape(a.queries, a.dim))
    del data
    faiss.omp_set_num_threads(a.threads)
    cos = a.cosine
    print(
        f"# faiss {faiss.__version__} IndexFlatIP, {a.threads} OpenMP threads, "
        f"top-{a.k}, range search at cosine {cos:.4f}"
    )
    print(
        f"{'faces':>9}  {'median range':>14}  {'median top-k':>14}  {'1 thread top-k':>14}  "
        f"{'p90 top-k':>11}  {'RSS/face':>10}"
    )
    for n in sizes:
        rows = np.ascontiguousarray(base[:n])
        before = rss_bytes()
        index = faiss.IndexFlatIP(a.dim)
        index.add(rows)
        per_face = (rss_bytes() - before) / n
        del rows
        def range_search(q):
            return index.range_search(q, cos)

        rng_t, topk_t, single_t = Timing(), Timing(), Timing()
        step = -(-a.queries // ROUNDS)
        for start in range(0, a.queries, step):
            qs = queries[start : start + step]
            faiss.omp_set_num_threads(a.threads)
            rng_t.add(qs, range_search)
            topk_t.add(qs, lambda q: index.search(q, a.k))
            faiss.omp_set_num_threads(1)
            single_t.add(qs, lambda q: index.search(q, a.k))
        faiss.omp_set_num_threads(a.threads)
        # Hits over the threshold, at most k per search as bench-search counts them.
        lims, _, _ = index.range_search(queries, cos)
        hits = int(np.minimum(np.diff(lims), a.k).sum())
        rng, topk, single = rng_t.sorted(), topk_t.sorted(), single_t.sorted()
        rng_cpu, topk_cpu, single_cpu = (
            rng_t.cpu_per_search(),
            topk_t.cpu_per_search(),
            single_t.cpu_per_search(),
        )
        p90 = topk[round((len(topk) - 1) * 0.9)]
        print(
            f"{n:>9}  {statistics.median(rng) * 1e3:>11.3f} ms  "
            f"{statistics.median(topk) * 1e3:>11.3f} ms  {statistics.median(single) * 1e3:>11.3f} ms  "
            f"{p90 * 1e3:>8.3f} ms  {per_face:>8.0f} B   CPU per search {rng_cpu * 1e3:.2f} / "
            f"{topk_cpu * 1e3:.2f} / {single_cpu * 1e3:.2f} ms; {hits} hits over the threshold (at most k per search)",
            flush=True,
        )
        del index


if __name__ == "__main__":
    main()
