"""Where a site's global identity is lost: cutting tracks or matching them.

    python bench/identity_headroom.py --events runs/terrace/events.jsonl \\
        --config configs/cameras/epfl_terrace.yaml --gt data/epfl_terrace1 \\
        --out bench/results/epfl_terrace_headroom.json

From a run's tracklet events (track run --events) and per-camera ground truth, scores the
multi-camera IDF1 the run's tracks would get if every track, or every piece of the offline
pass's cuts, were given its true person (the one it covers most on the annotated frames):
the ceiling of the matching step for uncut and for cut tracks. Also counts the annotated
boxes a track (or piece) holds that belong to another person than its own. Then the
offline pass's own decisions: their multi-camera IDF1, how many of its persons hold one
person's boxes only, and over how many persons each true person is spread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from common import write_results

from tracking.association import assign, iou_matrix
from tracking.config import load_settings
from tracking.evaluation import evaluate_multi_camera
from tracking.events import Decision, Ids, read_events
from tracking.identities import OfflineIdentities
from tracking.multicam import cut_where_partners_change
from tracking.replay import rows_of


def truth_of_rows(rows: list, gt_root: Path) -> dict:
    """{(camera, frame, track): true id} where a row's box matches a ground-truth box."""
    out = {}
    for camera in {r.camera for r in rows}:
        gt = np.loadtxt(gt_root / camera / "gt" / "gt.txt", delimiter=",", ndmin=2)
        mine = defaultdict(list)
        for r in rows:
            if r.camera == camera:
                mine[r.frame].append(r)
        for frame in np.unique(gt[:, 0]).astype(int):
            g, p = gt[gt[:, 0] == frame], mine.get(frame, [])
            boxes = np.c_[g[:, 2:4], g[:, 2:4] + g[:, 4:6]]
            cost = 1 - iou_matrix(np.array([r.box for r in p]).reshape(-1, 4), boxes)
            for i, j in assign(cost, 0.5)[0]:
                out[(camera, frame, p[i].track_id)] = int(g[j, 1])
    return out


def oracle(pieces: list, service: OfflineIdentities, truth: dict) -> tuple[Ids, int]:
    """Each piece gets the true id it covers most; returns the ids and the boxes on
    another person than their piece's."""
    spans = defaultdict(list)  # track -> [(first frame, piece)]
    for p in pieces:
        spans[(p.camera, p.track_id)].append((service.first_frame(p), p))
    votes = defaultdict(Counter)
    for (camera, frame, track), true in truth.items():
        starts = sorted(spans.get((camera, track), []), key=lambda s: s[0])
        k = max((i for i, (f, _) in enumerate(starts) if f <= frame), default=None)
        if k is not None:
            votes[(camera, track, starts[k][0])][true] += 1
    ids, wrong, spare = Ids(), 0, 10 ** 6
    for (camera, track), starts in spans.items():
        for first, _ in sorted(starts, key=lambda s: s[0]):
            count = votes.get((camera, track, first))
            gid = count.most_common(1)[0][0] if count else (spare := spare + 1)
            wrong += sum(count.values()) - count[gid] if count else 0
            ids.apply(Decision(camera, track, gid, first))
    return ids, wrong


def score(rows: list, ids: Ids, gt_root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for camera in sorted({r.camera for r in rows}):
            seen, out = set(), []
            for r in sorted((r for r in rows if r.camera == camera), key=lambda r: r.frame):
                gid = ids.get(camera, r.track_id, r.frame)
                if gid is not None and (r.frame, gid) not in seen:  # one box per id and frame
                    seen.add((r.frame, gid))
                    x1, y1, x2, y2 = r.box
                    out.append([r.frame, gid, x1, y1, x2 - x1, y2 - y1, 1, -1, -1, -1])
            np.savetxt(Path(tmp) / f"{camera}.txt", np.array(out), delimiter=",", fmt="%.6g")
        return evaluate_multi_camera(tmp, gt_root)


def what_the_pass_found(service: OfflineIdentities, truth: dict, rows: list,
                        gt_root: Path) -> dict:
    """The pass's persons against the truth of the annotated boxes."""
    ids, start = Ids(), time.perf_counter()
    for d in service.finish():
        ids.apply(d)
    seconds = time.perf_counter() - start
    held = defaultdict(Counter)  # person found -> true person -> boxes
    for (camera, frame, track), true in truth.items():
        found = ids.get(camera, track, frame)
        if found is not None:  # a track never identified (too few clean crops)
            held[found][true] += 1
    spread = Counter(true for count in held.values() for true in count)
    return {"persons": len(held), "people": len(spread),
            "pure_persons": sum(len(count) == 1 for count in held.values()),
            "boxes_on_another_person": sum(sum(c.values()) - max(c.values())
                                           for c in held.values()),
            "persons_per_person": dict(sorted(spread.items())),
            "multi_camera_IDF1": round(score(rows, ids, gt_root)["IDF1"], 1),
            "seconds": round(seconds, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--out", default="bench/results/identity_headroom.json")
    args = ap.parse_args()
    cfg, gt_root = load_settings(args.config).identity, Path(args.gt)
    steps, service, last, rows = list(read_events(args.events)), OfflineIdentities(cfg), {}, []
    for step in steps:
        service.consume(step)
        rows += [r for camera_rows in rows_of(step, last).values() for r in camera_rows]
    tracks = [t for t in service.tracklets.values() if t.embedding is not None]
    truth = truth_of_rows(rows, gt_root)
    results = {"command": "python bench/identity_headroom.py", "events": args.events}
    for name, pieces in (("uncut tracks", tracks),
                         ("offline pass cuts", cut_where_partners_change(tracks, cfg))):
        ids, wrong = oracle(pieces, service, truth)
        mc = score(rows, ids, gt_root)
        results[name] = {"pieces": len(pieces), "boxes_on_another_person": wrong,
                         "boxes_matched": len(truth), "multi_camera_IDF1_if_matched_right":
                         round(mc["IDF1"], 1)}
        print(f"{name:18s} {len(pieces):4d} pieces, {wrong} of {len(truth)} matched boxes on "
              f"another person; matched right: multi-camera IDF1 {mc['IDF1']:.1f}")
    results["offline pass"] = found = what_the_pass_found(service, truth, rows, gt_root)
    print(f"offline pass       {found['persons']} persons for {found['people']} people, "
          f"{found['pure_persons']} of them pure, {found['boxes_on_another_person']} boxes "
          f"on another person than their person's; people spread over "
          f"{found['persons_per_person']} persons; multi-camera IDF1 "
          f"{found['multi_camera_IDF1']}, in {found['seconds']} s")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
