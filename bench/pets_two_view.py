"""One real scene as two cameras: PETS09-S2L1 cut into a left view (x < 384) and a right view
(x >= 384), ground truth clipped to each half, both run as two cameras of one site, and
multi-camera IDF1 / HOTA computed over the union with global ids (a person who walks across
must keep one id).

    python bench/pets_two_view.py --out bench/results/pets_two_view.json

A ground-truth box stays in a view when at least 30% of its width is inside it (clipped to
the view). Rows, all with the same detections (cached) and the shipped re-ID model:
- per-camera only: each camera's tracks are its own people (what a single-camera tracker
  gives a multi-camera site);
- appearance: global identities by appearance, time constraints, views marked overlapping
  (a person on the cut is in both);
- appearance + shared plane: plus each view's homography to the full frame's pixel plane,
  so that simultaneous sightings are matched by position (configs/cameras/pets_two_view.yaml
  holds the same site for `track run`).
The full frame tracked as one camera is shown for reference.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import hashlib
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
from common import read_frames, write_results

HALF = 384
LENGTH = 795
OFFSET = 1000  # right-view frames are numbered 1000 + f in the union sequence


def split_video(src: Path, folder: Path) -> dict[str, Path]:
    import cv2

    frames, _ = read_frames(src)
    paths = {"left": folder / "left.avi", "right": folder / "right.avi"}
    h = frames[0].shape[0]
    for name, path in paths.items():  # lossless, so the views hold exactly the original pixels
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (HALF, h))
        for f in frames:
            out.write(np.ascontiguousarray(f[:, :HALF] if name == "left" else f[:, HALF:]))
        out.release()
    return paths


def split_gt(gt: np.ndarray, view: str, keep: float = 0.3) -> np.ndarray:
    x1, x2 = gt[:, 2], gt[:, 2] + gt[:, 4]
    lo, hi = (0, HALF) if view == "left" else (HALF, 2 * HALF)
    c1, c2 = np.clip(x1, lo, hi), np.clip(x2, lo, hi)
    inside = (c2 - c1) >= keep * gt[:, 4]
    rows = gt[inside].copy()
    rows[:, 2], rows[:, 4] = c1[inside] - lo, (c2 - c1)[inside]
    return rows


def union_scores(pred_dir: Path, gt_views: dict[str, np.ndarray]) -> dict:
    """Both views as one sequence (right-view frames shifted by OFFSET), scored by TrackEval."""
    from tracking.evaluation import evaluate_mot

    with tempfile.TemporaryDirectory() as tmp:
        root, preds = Path(tmp) / "gt", Path(tmp) / "pred"
        (root / "union" / "gt").mkdir(parents=True)
        preds.mkdir()
        gts, rows = [], []
        for view, shift in (("left", 0), ("right", OFFSET)):
            g = gt_views[view].copy()
            g[:, 0] += shift
            gts.append(g)
            p = np.loadtxt(pred_dir / f"{view}.txt", delimiter=",", ndmin=2)
            if len(p):
                p[:, 0] += shift
                rows.append(p)
        np.savetxt(root / "union" / "gt" / "gt.txt", np.concatenate(gts), delimiter=",",
                   fmt="%g")
        np.savetxt(preds / "union.txt", np.concatenate(rows), delimiter=",", fmt="%g")
        ini = configparser.ConfigParser()
        ini["Sequence"] = {"name": "union", "seqLength": str(OFFSET + LENGTH)}
        with open(root / "union" / "seqinfo.ini", "w") as f:
            ini.write(f)
        return evaluate_mot(preds, root)["union"]


def crossers_kept(pred_dir: Path, gt_views: dict[str, np.ndarray]) -> tuple[int, int]:
    """People in both views whose most-matched predicted id is the same in both."""
    from tracking.association import assign, iou_matrix

    major = {}
    for view in ("left", "right"):
        gt = gt_views[view]
        pred = np.loadtxt(pred_dir / f"{view}.txt", delimiter=",", ndmin=2)
        counts: dict[int, dict[int, int]] = {}
        for f in np.unique(gt[:, 0]):
            g, p = gt[gt[:, 0] == f], pred[pred[:, 0] == f] if len(pred) else pred
            if not len(p):
                continue

            def xyxy(a):
                return np.c_[a[:, 2:4], a[:, 2:4] + a[:, 4:6]]

            matches, _, _ = assign(1 - iou_matrix(xyxy(g), xyxy(p)), 0.5)
            for i, j in matches:
                c = counts.setdefault(int(g[i, 1]), {})
                c[int(p[j, 1])] = c.get(int(p[j, 1]), 0) + 1
        major[view] = {gid: max(c, key=c.get) for gid, c in counts.items()}
    both = major["left"].keys() & major["right"].keys()
    return sum(major["left"][g] == major["right"][g] for g in both), len(both)


class CachedDetector:
    """The same detections for every row and every re-run: keyed by the frame's bytes, kept
    in a pickle beside the split videos."""

    def __init__(self, detector, path: Path):
        self.detector, self.path = detector, path
        self.batch = detector.batch
        self.cache = pickle.loads(path.read_bytes()) if path.is_file() else {}
        self.dirty = False

    def __call__(self, frames):
        keys = [hashlib.blake2b(f.tobytes(), digest_size=16).digest() for f in frames]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            self.dirty = True
            for i, d in zip(todo, self.detector([frames[i] for i in todo])):
                self.cache[keys[i]] = d
        return [self.cache[k] for k in keys]

    def save(self) -> None:
        if self.dirty:
            self.path.write_bytes(pickle.dumps(self.cache))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/pets_two_view.json")
    ap.add_argument("--work", default="runs/pets_two_view")
    ap.add_argument("--rows", nargs="+", help="only these rows (names as printed)")
    ap.add_argument("overrides", nargs="*", help="key=value over the site config, e.g. "
                    "identity.max_distance=0.3")
    args = ap.parse_args()
    from reid.engine.config import shared_dir
    from tracking.config import load_settings
    from tracking.multicam import Camera, IdentityConfig
    from tracking.pipeline import Outputs, build_models, track_site

    site = Path(__file__).resolve().parents[1] / "configs" / "cameras" / "pets_two_view.yaml"
    settings = load_settings(str(site), [*args.overrides, "reid.device=cpu"])
    seq = Path(shared_dir()) / "data" / "video" / "PETS09-S2L1"
    work = Path(args.work)
    views = {c.name: Path(c.source) for c in settings.cameras}
    if not all(p.is_file() for p in views.values()):
        work.mkdir(parents=True, exist_ok=True)
        split_video(seq / "PETS09-S2L1.avi", work)
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    gt_views = {v: split_gt(gt, v) for v in ("left", "right")}
    detector, embedder = build_models(settings)
    detector = CachedDetector(detector, work / "detections.pkl")
    site = settings.identity
    plain = [Camera(n, str(p)) for n, p in views.items()]
    looks = IdentityConfig(max_distance=site.max_distance, overlapping=site.overlapping,
                           bank=site.bank, min_crops=site.min_crops)
    online, offline = (dataclasses.replace(site, offline=k) for k in ("never", "always"))
    rows = {
        "per-camera only": (plain, IdentityConfig(max_distance=0.0, offline="never")),
        "appearance": (plain, dataclasses.replace(looks, offline="never")),
        "appearance + shared plane": (settings.cameras, online),
        "appearance, offline pass": (plain, dataclasses.replace(looks, offline="always")),
        "appearance + plane, offline pass": (settings.cameras, offline),
    }
    rows = {k: v for k, v in rows.items() if not args.rows or k in args.rows}

    def run(cameras, identity, out):
        return track_site(cameras, out, detector, embedder, settings.tracker, identity,
                          settings.sources, stride=settings.detector.stride,
                          outputs=Outputs(video=False, events=True))

    results = {}
    for name, (cameras, identity) in rows.items():
        out = work / name.replace(" ", "_").replace("+", "and")
        stats = run(cameras, identity, out)
        s = union_scores(out, gt_views)
        kept, crossers = crossers_kept(out, gt_views)
        results[name] = {"HOTA": s["HOTA"], "MOTA": s["MOTA"], "IDF1": s["IDF1"],
                         "IDsw": s["IDsw"], "identities": stats.identities,
                         "crossers_kept": kept, "crossers": crossers}
        print(f"{name:34s} HOTA {s['HOTA']:5.1f} MOTA {s['MOTA']:5.1f} IDF1 {s['IDF1']:5.1f} "
              f"IDsw {s['IDsw']:3d}  people {stats.identities:3d}  "
              f"crossers kept {kept}/{crossers}", flush=True)
    detector.save()
    if not args.rows or "full frame" in args.rows:
        full = work / "full_frame"
        run([Camera("PETS09-S2L1", str(seq / "PETS09-S2L1.avi"))], settings.identity, full)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(seq, Path(tmp) / "PETS09-S2L1")
            from tracking.evaluation import evaluate_mot

            s = evaluate_mot(full, tmp)["PETS09-S2L1"]
        results["full frame, one camera (reference)"] = {k: s[k] for k in
                                                          ("HOTA", "MOTA", "IDF1", "IDsw")}
        print(f"{'full frame, one camera':34s} HOTA {s['HOTA']:5.1f} MOTA {s['MOTA']:5.1f} "
              f"IDF1 {s['IDF1']:5.1f} IDsw {s['IDsw']:3d}")
    write_results(args.out, {"command": " ".join(["python bench/pets_two_view.py",
                                                   *args.overrides]), "rows": results,
                             "gt_boxes": {v: len(g) for v, g in gt_views.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
