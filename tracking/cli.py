"""``track`` command line.

    track run --source video.mp4 --output runs/track [--config configs/tracking/default.yaml]
    track run --config configs/cameras/epfl_terrace.yaml --output runs/terrace
    track run --camera door=rtsp://10.0.0.5/stream --camera hall=hall.mp4 --output runs/site
    track eval --pred runs/track --gt ../shared/data/video --json scores.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tracking.config import (
    UsageError,
    cameras_from,
    detector_stride,
    identity_config,
    load_tracking_config,
    tracker_config,
)
from tracking.multicam import Camera

log = logging.getLogger("track")


def cmd_run(args) -> int:
    from reid.inference import FeatureExtractor
    from tracking.detector import Detector
    from tracking.pipeline import track_video
    from tracking.sources import is_stream

    cfg = load_tracking_config(args.config, args.overrides)
    cameras = cameras_from(cfg)
    for item in args.camera or []:
        name, sep, source = item.partition("=")
        if not sep or not name or not source:
            raise UsageError(f"--camera {item!r} must look like NAME=VIDEO_OR_URL")
        if any(c.name == name for c in cameras):
            raise UsageError(f"camera name {name!r} is given twice")
        cameras.append(Camera(name, source))
    sources = args.source or []
    if any(is_stream(s) for s in sources):  # live sources always go through the camera runner
        cameras += [Camera(f"cam{i}", s) for i, s in enumerate(sources)]
        sources = []
    if not cameras and not sources:
        raise UsageError("give --source VIDEO, --camera NAME=VIDEO_OR_URL, or a camera site "
                         "with --config configs/cameras/SITE.yaml")
    if cameras and sources:
        raise UsageError("--source files are tracked one by one; give the other cameras as "
                         "--camera NAME=VIDEO so that all of them run together")
    d = cfg["detector"]
    detector = Detector(args.detector or d["weights"], imgsz=d["imgsz"], conf=d["conf"],
                        iou=d["iou"], batch=d["batch"], device=args.device)
    extractor = None
    if cfg["reid"]["enabled"]:
        extractor = FeatureExtractor(cfg["reid"]["weights"], device=cfg["reid"]["device"])
    if cameras:
        return run_cameras(args, cfg, cameras, detector, extractor)
    for source in sources:
        stats = track_video(source, args.output, detector, extractor, tracker_config(cfg),
                            video=not args.no_video, batch=d["batch"],
                            max_frames=args.max_frames, stride=detector_stride(cfg),
                            gallery=args.gallery)
        share = {k: f"{100 * v / max(sum(stats.seconds.values()), 1e-9):.0f}%"
                 for k, v in stats.seconds.items()}
        print(f"{Path(source).name}: {stats.frames} frames, {stats.tracks} tracks, "
              f"{stats.fps:.1f} FPS end to end (time: {share}); {stats.crops_embedded} crops "
              f"embedded; {stats.bad_frames} undecodable frames skipped")
    print(f"outputs: {args.output}")
    return 0


def run_cameras(args, cfg, cameras, detector, extractor) -> int:
    from tracking.multicam_pipeline import track_cameras

    if extractor is None:
        raise UsageError("several cameras need re-ID: leave reid.enabled on")
    names = [c.name for c in cameras]
    if args.overlapping_views:
        cfg["identity"]["overlapping"] = [names]
    identity, min_crops = identity_config(cfg, names)
    if any(c.homography is not None for c in cameras) and not identity.ground_gate:
        raise UsageError("cameras have homographies but identity.ground_gate is not set: "
                         "give the ground-plane distance within which two views see one person")
    stats = track_cameras(cameras, args.output, detector, extractor, tracker_config(cfg),
                          identity, video=not args.no_video, max_steps=args.max_frames,
                          duration_s=args.duration, min_crops=min_crops,
                          stride=detector_stride(cfg))
    print(f"{len(cameras)} cameras, {stats['steps']} steps in {stats['seconds']:.0f} s: "
          f"{stats['identities']} people, {stats['seen_in_several_cameras']} seen in several "
          "cameras")
    for name, h in stats["cameras"].items():
        print(f"  {name}: {h['frames']} frames read, {h['dropped']} dropped as stale, "
              f"{h['reconnects']} reconnects ({h['outage_s']:.1f} s down)")
    print(f"outputs: {args.output} (<camera>.txt/.mp4 with global ids, identities.json/.csv, "
          "sheets/)")
    return 0


def cmd_eval(args) -> int:
    from tracking.evaluation import evaluate_mot

    scores = evaluate_mot(args.pred, args.gt)
    print(f"{'sequence':20s} {'HOTA':>6s} {'MOTA':>6s} {'IDF1':>6s} {'IDsw':>5s}")
    for seq, s in scores.items():
        print(f"{seq:20s} {s['HOTA']:6.1f} {s['MOTA']:6.1f} {s['IDF1']:6.1f} {s['IDsw']:5d}")
    if args.json:
        from tracking.sinks import write_json_atomic

        write_json_atomic(args.json, scores)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="track", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("run", help="track people in video files and live streams")
    p.add_argument("--source", nargs="+", help="video file(s), each tracked on its own; "
                   "stream URLs (rtsp://...) or webcam indices run together as cameras")
    p.add_argument("--camera", action="append", metavar="NAME=VIDEO_OR_URL",
                   help="several cameras in one run with global identities (repeat)")
    p.add_argument("--overlapping-views", action="store_true",
                   help="the cameras see the same area: one person may be in several at once")
    p.add_argument("--output", required=True, help="folder for <stem>.txt/.jsonl/.mp4")
    p.add_argument("--config", default=None, help="YAML merged over configs/tracking/"
                   "default.yaml; a camera site (configs/cameras/*.yaml) lists its cameras")
    p.add_argument("--detector", default=None, help="YOLO weights (overrides the config)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-video", action="store_true", help="skip the annotated mp4")
    p.add_argument("--gallery", action="store_true", help="video files: also write "
                   "<stem>_gallery/id_NNNN.png, each track's best crops (camera runs always "
                   "write sheets/ per global identity)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many frames (steps, with several cameras)")
    p.add_argument("--duration", type=float, default=None,
                   help="live streams: stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. tracker.max_lost_s=4")
    e = sub.add_parser("eval", help="HOTA/MOTA/IDF1 against MOTChallenge ground truth")
    e.add_argument("--pred", required=True, help="folder of <SEQ>.txt")
    e.add_argument("--gt", required=True, help="folder of <SEQ>/gt/gt.txt")
    e.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from reid.engine.checkpoint import CheckpointError
    from tracking.detector import DetectorError
    from tracking.evaluation import EvalError
    from tracking.sources import SourceError

    try:
        return {"run": cmd_run, "eval": cmd_eval}[args.mode](args)
    except (UsageError, CheckpointError, DetectorError, EvalError, SourceError,
            FileNotFoundError) as e:
        if args.verbose:
            raise
        print(f"track {args.mode}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
