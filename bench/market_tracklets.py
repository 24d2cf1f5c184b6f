"""Cross-camera association on Market-1501 with the global identity manager.

    python bench/market_tracklets.py --out bench/results/market_tracklets.json

The real test images (query + gallery, junk and distractors excluded) are grouped into
tracklets by (person, camera, sequence); ids are hidden; tracklets are fed to
``tracking.multicam.GlobalIdentities`` one (camera, sequence) batch at a time, in sequence
order. The offline pass (tracking.offline, what a recording gets) groups all tracklets at
once instead; each (camera, sequence) batch is given its own moment, so that, as online,
two tracklets of one batch are never one person. Scores over images: IDF1 (optimal
one-to-one matching of true and predicted ids) and pairwise precision / recall (pairs of
images put together). Swept over the distance threshold; Market has no separate validation
split, so the sweep is shown whole.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    from tracking.offline import persons

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
    results = {"images": len(records), "tracklets": len(groups), "by_threshold": {},
               "offline_by_threshold": {}}
    batches: dict = defaultdict(list)
    for key in sorted(groups):
        batches[key[:2]].append(key)
    tracklets = {k: Tracklet(f"c{k[1]}", n, None, None, mean_direction(feats[groups[k]]))
                 for keys in batches.values() for n, k in enumerate(keys)}
    true = np.array([r.pid for r in records])
    order = [k for batch in batches.values() for k in batch]
    timed = [dataclasses.replace(tracklets[k], start=10.0 * b, end=10.0 * b + 1)
             for b, batch in enumerate(batches.values()) for k in batch]
    for thr in args.thresholds:
        manager = GlobalIdentities(IdentityConfig(max_distance=thr))
        pred = np.zeros(len(records), np.int64)
        for keys in batches.values():
            for k, gid in zip(keys, manager.assign([tracklets[k] for k in keys])):
                pred[groups[k]] = gid
        report(results["by_threshold"], thr, "online", clustering_scores(true, pred))
        labels = persons(timed, np.stack([t.embedding for t in timed]),
                         IdentityConfig(max_distance=thr))
        for k, label in zip(order, labels):
            pred[groups[k]] = label
        report(results["offline_by_threshold"], thr, "offline", clustering_scores(true, pred))
    write_results(args.out, results)
    return 0


def report(table: dict, thr: float, name: str, s: dict) -> None:
    table[str(thr)] = s
    print(f"{name} threshold {thr}: IDF1 {s['IDF1']:.1f}, pair precision "
          f"{s['pair_precision']:.1f}, pair recall {s['pair_recall']:.1f}, "
          f"{s['predicted_ids']} predicted ids for {s['true_ids']} people", flush=True)


if __name__ == "__main__":
    sys.exit(main())
