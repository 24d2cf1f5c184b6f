"""Ranking speed on the full Market-1501 matrix, ours and torchreid's side by side.

    python bench/rank_speed.py --out bench/results/rank_speed.json

Real query/gallery labels (3,368 x 15,913), a distance matrix in which true matches are
closer on average; both evaluators score the same matrix and their mAP is compared.
torchreid's Cython extension is not built by its PyPI package, so its Python path runs.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from common import write_results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/rank_speed.json")
    args = ap.parse_args()
    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir
    from reid.metrics import evaluate_rank

    data = market1501(resolve_data_root(Path(shared_dir()) / "data" / "market1501"),
                      splits=("query", "gallery"))
    qp, qc = (np.array([getattr(r, a) for r in data.query]) for a in ("pid", "camid"))
    gp, gc = (np.array([getattr(r, a) for r in data.gallery]) for a in ("pid", "camid"))
    dist = np.random.default_rng(0).random((len(qp), len(gp)))
    dist[qp[:, None] == gp[None]] -= 0.4
    start = time.perf_counter()
    ours = evaluate_rank(dist, qp, gp, qc, gc, max_rank=50)
    t_ours = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.metrics.rank import evaluate_rank as torchreid_rank
        start = time.perf_counter()
        cmc, mAP = torchreid_rank(dist, qp, gp, qc, gc, max_rank=50, use_cython=False)
        t_peer = time.perf_counter() - start
    result = {"matrix": [len(qp), len(gp)], "mcreid_seconds": t_ours,
              "torchreid_python_seconds": t_peer,
              "mAP_abs_diff": abs(ours["mAP"] - float(mAP)),
              "cmc_max_abs_diff": float(np.abs(ours["cmc"] - cmc).max())}
    print(f"mcreid {t_ours:.2f} s, torchreid {t_peer:.1f} s; |mAP diff| "
          f"{result['mAP_abs_diff']:.1e}, max |CMC diff| {result['cmc_max_abs_diff']:.1e}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
