"""``track`` command line.

    track run --source video.mp4 --output runs/track [--config configs/tracking/default.yaml]
    track eval --pred runs/track --gt ../shared/data/video --json scores.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tracking.config import UsageError, load_tracking_config, tracker_config

log = logging.getLogger("track")


def cmd_run(args) -> int:
    from reid.inference import FeatureExtractor
    from tracking.detector import Detector
    from tracking.pipeline import track_video

    cfg = load_tracking_config(args.config, args.overrides)
    d = cfg["detector"]
    detector = Detector(args.detector or d["weights"], imgsz=d["imgsz"], conf=d["conf"],
                        iou=d["iou"], batch=d["batch"], device=args.device)
    extractor = None
    if cfg["reid"]["enabled"]:
        extractor = FeatureExtractor(cfg["reid"]["weights"], device=cfg["reid"]["device"])
    if args.camera:
        return run_cameras(args, cfg, detector, extractor)
    if not args.source:
        raise UsageError("give --source VIDEO (one camera per file) or --camera NAME=VIDEO")
    for source in args.source:
        stats = track_video(source, args.output, detector, extractor, tracker_config(cfg),
                            video=not args.no_video, batch=d["batch"],
                            max_frames=args.max_frames)
        share = {k: f"{100 * v / max(sum(stats.seconds.values()), 1e-9):.0f}%"
                 for k, v in stats.seconds.items()}
        print(f"{Path(source).name}: {stats.frames} frames, {stats.tracks} tracks, "
              f"{stats.fps:.1f} FPS end to end (time: {share}); {stats.crops_embedded} crops "
              f"embedded; {stats.bad_frames} undecodable frames skipped")
    print(f"outputs: {args.output}")
    return 0


def run_cameras(args, cfg, detector, extractor) -> int:
    from tracking.multicam import IdentityConfig
    from tracking.multicam_pipeline import track_cameras

    if extractor is None:
        raise UsageError("several cameras need re-ID: leave reid.enabled on")
    cameras = {}
    for item in args.camera:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--camera {item!r} must look like NAME=VIDEO")
        if name in cameras:
            raise UsageError(f"camera name {name!r} is given twice")
        cameras[name] = path
    names = list(cameras)
    overlapping = ({frozenset((a, b)) for a in names for b in names if a != b}
                   if args.overlapping_views else set())
    stats = track_cameras(cameras, args.output, detector, extractor, tracker_config(cfg),
                          IdentityConfig(overlapping=overlapping), video=not args.no_video,
                          max_frames=args.max_frames)
    print(f"{len(cameras)} cameras, {stats['steps']} frames each: {stats['identities']} people, "
          f"{stats['seen_in_several_cameras']} seen in several cameras")
    print(f"outputs: {args.output} (<camera>.txt/.mp4 with global ids, identities.json/.csv)")
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
    p = sub.add_parser("run", help="track people in video files")
    p.add_argument("--source", nargs="+", help="video file(s), each tracked on its own")
    p.add_argument("--camera", action="append", metavar="NAME=VIDEO",
                   help="several cameras in one run with global identities (repeat)")
    p.add_argument("--overlapping-views", action="store_true",
                   help="the cameras see the same area: one person may be in several at once")
    p.add_argument("--output", required=True, help="folder for <stem>.txt/.jsonl/.mp4")
    p.add_argument("--config", default=None, help="YAML (default configs/tracking/default.yaml)")
    p.add_argument("--detector", default=None, help="YOLO weights (overrides the config)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-video", action="store_true", help="skip the annotated mp4")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("overrides", nargs="*", help="key=value, e.g. tracker.max_lost=90")
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
