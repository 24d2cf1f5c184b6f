"""Market-1501 through the search path: the gallery stored in a search index (one record per
image: its person as the identity, its camera), every query searched against it exactly
(faiss through tracking.search.VectorSearch, every gallery image ranked), and the ranking
scored under the Market protocol (reid.metrics.evaluate_rank). The mAP and rank-1 should be
those of ``reid eval`` (bench/results/eval_shipped.json) for the same model.

    python bench/search_market.py --out bench/results/search_market.json

Embeddings are computed once per model (tracking's FeatureExtractor, as track search embeds
a photo) and cached in runs/search_market/.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from common import ROOT, write_results


def embeddings(extractor, records, cache: Path) -> np.ndarray:
    if cache.is_file():
        return np.load(cache)
    out = np.concatenate([extractor([r.path for r in records[s:s + 256]]).numpy()
                          for s in range(0, len(records), 256)])
    np.save(cache, out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/search_market.json")
    ap.add_argument("--reference", default="bench/results/eval_shipped.json",
                    help="reid eval --json of the same model")
    ap.add_argument("--work", default="runs/search_market")
    args = ap.parse_args()
    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir
    from reid.inference import FeatureExtractor
    from reid.metrics import evaluate_rank
    from tracking.index import INDEX_NAME, Tracklet, TrackletIndex
    from tracking.search import VectorSearch, open_indexes

    os.environ.setdefault("MCREID_CACHE", str(ROOT / "runs" / "cache"))
    data = market1501(resolve_data_root(Path(shared_dir()) / "data" / "market1501"),
                      splits=("query", "gallery"))
    extractor = FeatureExtractor(device="cpu")
    work = ROOT / args.work / extractor.identity["sha256"]
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    qf = embeddings(extractor, data.query, work / "query.npy")
    gf = embeddings(extractor, data.gallery, work / "gallery.npy")
    embed_s = time.perf_counter() - t

    (work / INDEX_NAME).unlink(missing_ok=True)
    t = time.perf_counter()
    index = TrackletIndex(work / INDEX_NAME, model=extractor.identity)
    index.add(Tracklet("market1501", f"c{r.camid + 1}", i, r.pid, 0.0, 0.0, 0, 0, 0,
                       (0, 0, 0, 0), None, gf[i]) for i, r in enumerate(data.gallery))
    index.close()
    store_s = time.perf_counter() - t

    (index,) = open_indexes([work])  # what track search opens
    rows, vectors = index.vectors()
    pids = {row: t.global_id for row, t in index.tracklets()}
    cams = {row: int(t.camera[1:]) - 1 for row, t in index.tracklets()}
    t = time.perf_counter()
    found = VectorSearch(vectors)
    dist = np.empty((len(qf), len(rows)), np.float32)
    for s in range(0, len(qf), 256):  # every gallery image ranked: exact search, k = all
        d, r = found(qf[s:s + 256], len(rows))
        np.put_along_axis(dist[s:s + 256], r, d, axis=1)
    search_s = time.perf_counter() - t
    scores = evaluate_rank(dist, np.array([q.pid for q in data.query]),
                           np.array([pids[r] for r in rows]),
                           np.array([q.camid for q in data.query]),
                           np.array([cams[r] for r in rows]))
    ref = json.loads((ROOT / args.reference).read_text())
    result = {
        "model": extractor.identity, "index": type(found.index).__name__,
        "num_query": len(qf), "num_gallery": len(rows),
        "mAP": round(100 * scores["mAP"], 2), "rank1": round(100 * float(scores["cmc"][0]), 2),
        "reid_eval": {"file": args.reference, "mAP": round(ref["mAP"], 2),
                      "rank1": round(ref["rank1"], 2)},
        "embed_s": round(embed_s, 1), "store_s": round(store_s, 2),
        "search_all_queries_s": round(search_s, 2),
    }
    result["mAP_gap"] = round(abs(result["mAP"] - result["reid_eval"]["mAP"]), 2)
    result["rank1_gap"] = round(abs(result["rank1"] - result["reid_eval"]["rank1"]), 2)
    write_results(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
