"""Cross-camera association on Market-1501 with the global identity manager.

    python bench/market_tracklets.py --out bench/results/market_tracklets.json

The real test images (query + gallery, junk and distractors excluded) are grouped into
tracklets by (person, camera, sequence); ids are hidden; tracklets are fed to
``tracking.multicam.GlobalIdentities`` one (camera, sequence) batch at a time, in sequence
order. Scores over images: IDF1 (optimal one-to-one matching of true and predicted ids) and
pairwise precision / recall (pairs of images put together). Swept over the distance
threshold; Market has no separate validation split, so the sweep is shown whole.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import write_results

_SEQ = re.compile(r"_c(\d)s(\d)_")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/market_tracklets.json")
    ap.add_argument("--weights", default=None, help="re-ID checkpoint (default: shipped)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    args = ap.parse_args()
    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir
    from reid.inference import FeatureExtractor
    from tracking.association import mean_direction
    from tracking.evaluation import clustering_scores
    from tracking.multicam import GlobalIdentities, IdentityConfig, Tracklet

    data = market1501(resolve_data_root(Path(shared_dir()) / "data" / "market1501"),
                      splits=("query", "gallery"))
    records = [r for r in data.query + data.gallery if r.pid > 0]
    groups: dict = defaultdict(list)
    for i, r in enumerate(records):
        cam, seq = _SEQ.search(Path(r.path).name).groups()
        groups[(int(seq), int(cam), r.pid)].append(i)
    feats = FeatureExtractor(args.weights, device="auto", batch_size=32)(
        [r.path for r in records]).numpy()
    print(f"{len(records)} images, {len(groups)} tracklets", flush=True)
    results = {"images": len(records), "tracklets": len(groups), "by_threshold": {}}
    for thr in args.thresholds:
        manager = GlobalIdentities(IdentityConfig(max_distance=thr))
        pred = np.zeros(len(records), np.int64)
        batches: dict = defaultdict(list)
        for key in sorted(groups):
            batches[key[:2]].append(key)
        for batch_keys in batches.values():
            tracklets = [Tracklet(f"c{k[1]}", n, None, None,
                                  mean_direction(feats[groups[k]]))
                         for n, k in enumerate(batch_keys)]
            for k, gid in zip(batch_keys, manager.assign(tracklets)):
                pred[groups[k]] = gid
        true = np.array([r.pid for r in records])
        s = clustering_scores(true, pred)
        results["by_threshold"][str(thr)] = s
        print(f"threshold {thr}: IDF1 {s['IDF1']:.1f}, pair precision {s['pair_precision']:.1f}, "
              f"pair recall {s['pair_recall']:.1f}, {s['predicted_ids']} predicted ids for "
              f"{s['true_ids']} people", flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
