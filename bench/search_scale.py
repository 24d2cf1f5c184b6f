"""One million vectors: the approximate index tracking.search chooses above EXACT_MAX (an HNSW
graph), its top-100 query latency and recall@100 against exact search, build time and size.

    python bench/search_scale.py --out bench/results/search_scale.json

The vectors are real Market-1501 embeddings of the shipped model (query and gallery, cached
by bench/search_market.py, 19,281 of them) replicated with noise to N: each copy is a real
vector plus Gaussian noise of norm about --noise, renormalised, so the set keeps the real
clusters (people) with many near neighbours each. Queries are fresh noisy copies of real
query images, not in the set. Latency is one query per call (as a person searches), on
this machine's cores; recall@100 is the share of the exact top 100 found.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import ROOT, write_results


def noisy(base: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, base.shape[1]), np.float32)
    for s in range(0, n, 100_000):
        rows = base[rng.integers(0, len(base), min(100_000, n - s))]
        rows = rows + rng.normal(0, noise / np.sqrt(base.shape[1]), rows.shape)
        out[s:s + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/search_scale.json")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--work", default="runs/search_market", help="bench/search_market.py's cache")
    args = ap.parse_args()
    import faiss

    from reid.inference import FeatureExtractor
    from tracking import search

    work = ROOT / args.work / FeatureExtractor(device="cpu").identity["sha256"]
    if not (work / "gallery.npy").is_file():
        raise SystemExit(f"no embeddings in {work}: run bench/search_market.py first")
    query, gallery = np.load(work / "query.npy"), np.load(work / "gallery.npy")
    rng = np.random.default_rng(0)
    vectors = noisy(np.concatenate([query, gallery]), args.n, args.noise, rng)
    queries = noisy(query, args.queries, args.noise, rng)

    t = time.perf_counter()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 100)
    exact_s = time.perf_counter() - t
    del exact

    assert args.n >= search.EXACT_MAX, "below EXACT_MAX the search is exact"
    t = time.perf_counter()
    found = search.VectorSearch(vectors)
    build_s = time.perf_counter() - t
    path = ROOT / args.work / "scale.faiss"
    faiss.write_index(found.index, str(path))
    size = path.stat().st_size
    path.unlink()
    rows = []
    for ef in args.ef:
        found.index.hnsw.efSearch = ef
        times, recall = [], []
        for q, want in zip(queries, truth):
            t = time.perf_counter()
            _, got = found(q[None], 100)
            times.append(time.perf_counter() - t)
            recall.append(len(set(got[0]) & set(want)) / 100)
        rows.append({"efSearch": ef, "recall_at_100": round(float(np.mean(recall)), 4),
                     "ms_median": round(1000 * float(np.median(times)), 2),
                     "ms_p95": round(1000 * float(np.percentile(times, 95)), 2)})
        print(rows[-1], flush=True)
    result = {"n": args.n, "dim": int(vectors.shape[1]), "queries": args.queries,
              "noise": args.noise, "index": type(found.index).__name__,
              "hnsw_M": found.index.hnsw.nb_neighbors(1), "threads": faiss.omp_get_max_threads(),
              "build_s": round(build_s, 1), "size_bytes": size,
              "exact_100_s_per_query": round(exact_s / args.queries, 4), "sweep": rows}
    write_results(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
