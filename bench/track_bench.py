"""Single-camera tracking benchmark: our tracker and peers on the same cached detections.

    python bench/track_bench.py --out bench/results/tracking.json

Per sequence (MOTChallenge layout under $MCREID_SHARED/data/video): decode every frame,
detect once (yolov8n from shared/, conf 0.05, imgsz 640), then run each tracker on exactly
those detections and score it with TrackEval (MOT15 rules). Peers: ultralytics' ByteTrack
and BoT-SORT (ReID on, fed MSMT17 OSNet x0.25 embeddings of every detection), and BoxMOT's
when installed. "mcreid" scores the rows `track run` writes (a re-found track's missed
frames filled in late); "mcreid-online" only what the tracker reports in each frame, as the
peers do.
FPS: "tracker" counts association (+ re-ID for trackers that embed inside the loop);
"end to end" adds decoding, detection and any embedding done outside the tracker.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from common import read_frames, write_results  # noqa: E402  (also puts the repo on sys.path)

from reid.engine.config import shared_dir  # noqa: E402
from tracking.evaluation import evaluate_mot  # noqa: E402

SEQUENCES = {"PETS09-S2L1": "PETS09-S2L1.avi", "TUD-Campus": "TUD-Campus.mp4",
             "TUD-Stadtmitte": "TUD-Stadtmitte.mp4"}


def msmt17_weights(cache: Path) -> Path:
    """The shared MSMT17 OSNet x0.25 wrapped in our checkpoint format (BNNeck left neutral)."""
    from reid.engine.checkpoint import atomic_save, model_meta
    from reid.engine.config import load_config
    from reid.models import ReidNet, load_backbone_weights

    out = cache / "osnet_x0_25_msmt17_mcreid.pt"
    if not out.is_file():
        model = ReidNet("osnet_x0_25", 1)
        load_backbone_weights(model.backbone,
                              os.path.join(shared_dir(), "weights/reid/osnet_x0_25_msmt17.pth"))
        meta = model_meta(model, load_config(None))
        meta.update(model=model.state_dict(), epoch=0)
        atomic_save(meta, out)
    return out


def results_like(dets: np.ndarray):
    """The Boxes-like object ultralytics' trackers read (xywh, xyxy, conf, cls)."""
    xyxy = dets[:, :4]
    xywh = np.c_[(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                 xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]]

    class R(SimpleNamespace):
        def __len__(self):
            return len(self.conf)

        def __getitem__(self, idx):
            return R(xyxy=self.xyxy[idx], xywh=self.xywh[idx], conf=self.conf[idx],
                     cls=self.cls[idx])

    return R(xyxy=xyxy, xywh=xywh, conf=dets[:, 4], cls=np.zeros(len(dets)))


def run_ultralytics(kind: str, frames, dets, feats) -> tuple[list, float]:
    from ultralytics.cfg import get_cfg
    from ultralytics.trackers import BOTSORT, BYTETracker
    from ultralytics.utils import ROOT as UROOT

    cfg = get_cfg(UROOT / "cfg" / "trackers" / f"{kind}.yaml")
    if kind == "botsort":
        cfg.with_reid, cfg.model = True, "auto"
        tracker = BOTSORT(cfg)
    else:
        tracker = BYTETracker(cfg)
    rows, start = [], time.perf_counter()
    for i, (frame, d) in enumerate(zip(frames, dets), start=1):
        f = feats[i - 1] if feats is not None else None
        out = tracker.update(results_like(d), frame, f) if len(d) else \
            tracker.update(results_like(np.zeros((0, 5), np.float32)), frame)
        for x1, y1, x2, y2, tid, score, *_ in out:
            rows.append((i, int(tid), x1, y1, x2, y2, score))
    return rows, time.perf_counter() - start


BOXMOT = {"boxmot-strongsort": "StrongSort", "boxmot-botsort": "BotSort",
          "boxmot-bytetrack": "ByteTrack", "boxmot-boosttrack": "BoostTrack"}


def run_boxmot(name: str, frames, dets, reid_weights: Path) -> tuple[list, float]:
    """BoxMOT's trackers with their defaults; those with re-ID embed inside ``update``."""
    import boxmot

    cls = getattr(boxmot, BOXMOT[name])
    kwargs = {} if name == "boxmot-bytetrack" else {"reid_weights": reid_weights,
                                                    "device": "cpu", "half": False}
    tracker = cls(**kwargs)
    rows, start = [], time.perf_counter()
    for i, (frame, d) in enumerate(zip(frames, dets), start=1):
        d6 = np.c_[d[:, :5], np.zeros(len(d))].astype(np.float32)
        for x1, y1, x2, y2, tid, score, *_ in np.asarray(tracker.update(d6, frame)):
            rows.append((i, int(tid) + 1, x1, y1, x2, y2, score))  # ids may start at 0
    return rows, time.perf_counter() - start


def run_ours(frames, dets, extractor, config, fps: float) -> tuple[list, float, int]:
    """Rows as `track run` writes them to MOT files, gap rows of re-found tracks included."""
    from tracking.camera_run import CameraRun, crop_embedder
    from tracking.multicam import Camera
    from tracking.sources import Frame
    from tracking.tracker import Tracker

    tracker = Tracker(config, crop_embedder(extractor) if extractor else None, fps=fps)
    run = CameraRun(Camera("bench", "cached"), tracker)  # what `track run` drives per camera
    rows, start = [], time.perf_counter()
    for i, (frame, d) in enumerate(zip(frames, dets), start=1):
        got, _ = run.step(Frame(i, (i - 1) / fps, frame, 0.0), d)
        rows += [(r.frame, r.track_id, *r.box, r.score) for r in got]
    return rows, time.perf_counter() - start, tracker.crops_embedded


def write_mot(path: Path, rows) -> None:
    """Every tracker's rows through the writer `track run` uses (same format and order)."""
    from tracking.camera_run import Row
    from tracking.sinks import MotFile

    mot = MotFile(path, "bench")
    for i, tid, x1, y1, x2, y2, s in rows:
        mot.write("bench", None, [Row("bench", i, 0.0, tid, [x1, y1, x2, y2], s)], {})
    mot.close({("bench", tid): tid for _, tid, *_ in rows})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/tracking.json")
    ap.add_argument("--cache", default="runs/bench_cache")
    ap.add_argument("--sequences", nargs="+", default=list(SEQUENCES))
    ap.add_argument("--trackers", nargs="+",
                    default=["mcreid", "mcreid-online", "mcreid-allreid", "mcreid-noreid",
                             "ultralytics-bytetrack",
                             "ultralytics-botsort-reid"])
    ap.add_argument("overrides", nargs="*",
                    help="our tracker's settings, e.g. tracker.max_lost_s=4")
    args = ap.parse_args()
    try:  # BoxMOT is an optional, benchmark-only extra: bash bench/install_boxmot.sh
        import boxmot  # noqa: F401

        if args.trackers == ap.get_default("trackers"):
            args.trackers += list(BOXMOT)
    except ImportError:
        print("BoxMOT not installed (bash bench/install_boxmot.sh): its trackers are skipped")
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from reid.inference import FeatureExtractor
    from tracking.camera_run import crop_embedder
    from tracking.config import load_settings
    from tracking.detector import Detector
    from tracking.sources import VideoFile

    video_root = Path(shared_dir()) / "data" / "video"
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    detector = Detector(Path(shared_dir()) / "weights/detector/yolov8n_coco_reconstructed.pt",
                        imgsz=640, conf=0.05)
    ours_extractor = FeatureExtractor(device="cpu", batch_size=32)
    msmt = FeatureExtractor(msmt17_weights(cache), device="cpu", batch_size=32)
    base_cfg = load_settings(None, args.overrides).tracker
    timing: dict = {}
    preds = {name: Path(tempfile.mkdtemp(prefix=f"{name}-")) for name in args.trackers}
    for seq in args.sequences:
        frames, t_decode = read_frames(video_root / seq / SEQUENCES[seq])
        source = VideoFile(video_root / seq / SEQUENCES[seq])  # its fps, as `track run` reads it
        fps = source.fps
        source.close()
        cached = cache / f"{seq}_detections.pkl"
        if cached.is_file():  # detection and peer embeddings are the same for every tracker
            dets, msmt_feats, t_detect, t_msmt = pickle.loads(cached.read_bytes())
        else:
            start = time.perf_counter()
            dets = detector(frames)
            t_detect = time.perf_counter() - start
            start = time.perf_counter()
            embed = crop_embedder(msmt)
            msmt_feats = [embed(f, d[:, :4]) if len(d) else None for f, d in zip(frames, dets)]
            t_msmt = time.perf_counter() - start
            cached.write_bytes(pickle.dumps((dets, msmt_feats, t_detect, t_msmt)))
        n = len(frames)
        print(f"{seq}: {n} frames, decode {n / t_decode:.0f} FPS, detect {n / t_detect:.1f} FPS, "
              f"MSMT17 embedding of all boxes {n / t_msmt:.1f} FPS", flush=True)
        for name in args.trackers:
            extra = 0.0
            if name.startswith("mcreid"):
                cfg = base_cfg
                if name == "mcreid-allreid":
                    cfg = dataclasses.replace(base_cfg, selective_reid=False)
                if name == "mcreid-online":  # only what the tracker reports in each frame
                    cfg = dataclasses.replace(base_cfg, fill_gaps=False)
                rows, t_track, crops = run_ours(frames, dets,
                                                None if name == "mcreid-noreid"
                                                else ours_extractor, cfg, fps)
            elif name in BOXMOT:
                # BoxMOT picks the architecture from a .pt file name: link the shared file
                link = cache / "osnet_x0_25_msmt17.pt"
                if not link.exists():
                    link.symlink_to(Path(shared_dir()).resolve() / "weights" / "reid"
                                    / "osnet_x0_25_msmt17.pth")
                rows, t_track = run_boxmot(name, frames, dets, link)
                crops = 0 if name in ("boxmot-bytetrack", "boxmot-boosttrack") \
                    else sum(len(d) for d in dets)
            else:
                kind = "botsort" if "botsort" in name else "bytetrack"
                feats = msmt_feats if kind == "botsort" else None
                rows, t_track = run_ultralytics(kind, frames, dets, feats)
                extra = t_msmt if kind == "botsort" else 0.0
                crops = sum(len(d) for d in dets) if kind == "botsort" else 0
            write_mot(preds[name] / f"{seq}.txt", rows)
            timing.setdefault(name, {})[seq] = {
                "tracker_fps": n / (t_track + extra),
                "end_to_end_fps": n / (t_decode + t_detect + t_track + extra),
                "crops_embedded": crops}
            print(f"  {name:26s} tracker {n / (t_track + extra):7.1f} FPS, end to end "
                  f"{n / (t_decode + t_detect + t_track + extra):5.1f} FPS, {crops} crops",
                  flush=True)
    results = {}
    for name in args.trackers:
        scores = evaluate_mot(preds[name], video_root)
        for seq, s in scores.items():
            s.update(timing[name].get(seq, {}))
        results[name] = scores
    for seq in [*args.sequences, "COMBINED"]:
        print(f"\n{seq}\n| tracker | HOTA | MOTA | IDF1 | IDsw | tracker FPS | end-to-end FPS |")
        print("|---|---|---|---|---|---|---|")
        for name in args.trackers:
            s = results[name][seq]
            tf = s.get("tracker_fps")
            ef = s.get("end_to_end_fps")
            print(f"| {name} | {s['HOTA']:.1f} | {s['MOTA']:.1f} | {s['IDF1']:.1f} | {s['IDsw']} | "
                  f"{tf if tf is None else f'{tf:.1f}'} | {ef if ef is None else f'{ef:.1f}'} |")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
