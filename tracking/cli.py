"""track command line.

    track run --source video.mp4 --output runs/track [--config configs/tracking/default.yaml]
    track run --config configs/cameras/epfl_terrace.yaml --output runs/terrace
    track run --camera door=rtsp://10.0.0.5/stream --camera hall=hall.mp4 --output runs/site
    track eval --pred runs/track --gt ../shared/data/video --json scores.json
    track identities --events runs/terrace/events.jsonl --config configs/cameras/epfl_terrace.yaml \
        --output runs/terrace_online identity.offline=never
    track worker --config configs/cameras/epfl_terrace.yaml --camera c0 --broker redis://HOST:6379
    track identities --config configs/cameras/epfl_terrace.yaml --broker redis://HOST:6379 \
        --output runs/terrace_site
    track index runs/track && track search --index runs/track --photo person.jpg
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tracking.config import Settings, UsageError, load_settings, site_cameras
from tracking.multicam import Camera
from tracking.search_cli import add_parsers as add_search_parsers

log = logging.getLogger("track")


def cli_cameras(args) -> tuple[list[Camera], list[str]]:
    """Cameras named on the command line (--camera, and stream URLs given as --source), and
    the video files given as --source, each of which is tracked on its own."""
    cameras = []
    for item in args.camera or []:
        name, sep, source = item.partition("=")
        if not sep or not name or not source:
            raise UsageError(f"--camera {item!r} must look like NAME=VIDEO_OR_URL")
        cameras.append(Camera(name, source))
    from tracking.sources import is_stream

    files = [s for s in args.source or [] if not is_stream(s)]
    streams = [s for s in args.source or [] if is_stream(s)]
    if streams:  # live sources always run together, as cameras
        cameras += [Camera(f"cam{i}", s) for i, s in enumerate(files + streams)]
        files = []
    return cameras, files


def cmd_run(args) -> int:
    cameras, files = cli_cameras(args)
    overrides = list(args.overrides)
    if args.device:
        overrides += [f"detector.device={args.device}", f"reid.device={args.device}"]
    if args.detector:
        overrides.append(f"detector.weights={args.detector}")
    if args.reid_weights:
        overrides.append(f"reid.weights={args.reid_weights}")
    settings = load_settings(args.config, overrides, cameras=cameras,
                             overlapping_views=args.overlapping_views)
    if not settings.cameras and not files:
        raise UsageError("give --source VIDEO, --camera NAME=VIDEO_OR_URL, or a camera site "
                         "with --config configs/cameras/SITE.yaml")
    if settings.cameras and files:
        raise UsageError("--source files are tracked one by one; give the other cameras as "
                         "--camera NAME=VIDEO so that all of them run together")
    from tracking.pipeline import build_models

    if args.gt:
        check_ground_truth(args.gt, [c.name for c in settings.cameras]
                           or [Path(f).stem for f in files])
    detector, embedder = build_models(settings)
    sites = ([settings.cameras] if settings.cameras
             else [[Camera(Path(f).stem, f)] for f in files])
    for cameras in sites:
        run_site(args, settings, cameras, detector, embedder)
    print(f"outputs: {args.output}")
    if args.gt:
        report_scores(args.output, args.gt, until=args.max_frames)
    return 0


def cmd_worker(args) -> int:
    from tracking.worker import run_worker

    settings = load_settings(args.config, list(args.overrides))
    return run_worker(settings, args.camera, args.broker, args.config, args.duration,
                      args.max_frames)


def cmd_identities(args) -> int:
    from tracking.events import read_events
    from tracking.replay import cameras_of, replay

    if args.broker:
        return identities_over_broker(args)
    if not args.events:
        raise UsageError("give --events RUN/events.jsonl (a recorded run) or --broker "
                         "redis://HOST:PORT (a site's workers)")
    if not Path(args.events).is_file():
        raise UsageError(f"--events {args.events} does not exist; a run writes events.jsonl "
                         "when given --events")
    try:
        steps = list(read_events(args.events))
    except ValueError as e:
        raise UsageError(str(e)) from e
    names = cameras_of(steps)
    if not names:
        raise UsageError(f"{args.events} holds no tracklet events")
    site = site_cameras(args.config)
    if site and set(names) - set(site):
        raise UsageError(f"{args.events} has cameras {sorted(set(names) - set(site))} that "
                         f"{args.config} does not list ({site}); is it the same site?")
    extra = [] if site else [Camera(n, args.events) for n in names]  # the events' cameras
    settings = load_settings(args.config, list(args.overrides), cameras=extra)
    ids = replay(steps, settings.identity, args.output)
    people = {gid for _, spans in ids.items() for _, gid in spans}
    print(f"{len(people)} people in {len(names)} camera(s); outputs: {args.output}")
    if args.gt:
        report_scores(args.output, args.gt)
    return 0


def identities_over_broker(args) -> int:
    """``track identities --broker``: the site's identity service (tracking.broker)."""
    from tracking.broker import BrokerIdentities, Keys, Link, site_name

    if args.events or not args.config:
        raise UsageError("--broker takes the site's --config and no --events")
    settings = load_settings(args.config, list(args.overrides))
    if not settings.cameras:
        raise UsageError(f"{args.config} lists no cameras: give a camera site")
    link = Link(args.broker, backoff_s=settings.sources.backoff_s,
                backoff_max_s=settings.sources.backoff_max_s)
    service = BrokerIdentities(link, Keys(site_name(args.config)), settings, args.output)
    try:
        ended = service.run(args.duration)
    finally:
        service.close()
    people = {gid for _, spans in service.state.ids.items() for _, gid in spans}
    print(f"{len(people)} people; {ended} of {len(service.names)} cameras ended; "
          f"{service.state.events} events in {service.state.steps} steps; outputs: "
          f"{args.output}")
    return 0


def check_ground_truth(gt: str, names: list[str]) -> None:
    """Before a long run: every camera (or video) needs GT/<name>/gt/gt.txt."""
    missing = [n for n in names if not (Path(gt) / n / "gt" / "gt.txt").is_file()]
    if missing:
        raise UsageError(f"--gt {gt}: no {missing[0]}/gt/gt.txt (needed for {missing}); "
                         "ground truth folders are named after the cameras or video files")


def run_site(args, settings: Settings, cameras: list[Camera], detector, embedder) -> None:
    from tracking.pipeline import Outputs, track_site

    several = len(cameras) > 1
    sheets = (Path(args.output) / "sheets" if several
              else Path(args.output) / f"{cameras[0].name}_gallery" if args.gallery else None)
    stats = track_site(cameras, args.output, detector, embedder, settings.tracker,
                       settings.identity, settings.sources, stride=settings.detector.stride,
                       outputs=Outputs(video=not args.no_video, sheets=sheets,
                                       events=args.events),
                       max_steps=args.max_frames, duration_s=args.duration)
    share = ", ".join(f"{k} {100 * v / max(sum(stats.time_s.values()), 1e-9):.0f}%"
                      for k, v in stats.time_s.items())
    if several:
        print(f"{len(cameras)} cameras, {stats.steps} steps in {stats.seconds:.0f} s (final "
              f"identity pass {stats.time_s['identities']:.1f} s, outputs written in "
              f"{stats.time_s['outputs']:.1f} s): {stats.identities} people, "
              f"{stats.seen_in_several_cameras} seen in several cameras")
    else:
        print(f"{cameras[0].name}: {stats.frames} frames, {stats.tracks} tracks, "
              f"{stats.fps:.1f} FPS end to end ({share}); {stats.crops_embedded} crops "
              "embedded")
    for name, c in stats.cameras.items():
        print(f"  {name}: {camera_line(c)}")


def camera_line(c: dict) -> str:
    """One camera's health and file figures, worded for a person."""
    parts = [f"{c['frames']} frames used"]
    if c["dropped"] or c["reconnects"]:
        parts.append(f"{c['dropped']} dropped as stale, {c['reconnects']} reconnects "
                     f"({c['outage_s']:.1f} s down)")
    if c["bad_frames"]:
        parts.append(f"{c['bad_frames']} undecodable frames skipped")
    if c["ended_early"]:
        read, declared = c["ended_early"]
        parts.append(f"the file ended early, after {read} of the {declared} frames it "
                     "declares (truncated or damaged?)")
    return "; ".join(parts)


def cmd_eval(args) -> int:
    scores = report_scores(args.pred, args.gt, args.multi_camera, args.until)
    if args.json:
        from reid.io import write_json_atomic

        write_json_atomic(args.json, scores)
    return 0


def report_scores(pred: str | Path, gt: str | Path, multi_camera: bool = False,
                  until: int | None = None) -> dict:
    """Prints and returns each camera's (sequence's) scores and, for a run of several
    cameras (or when asked), identity across cameras."""
    from tracking.evaluation import evaluate_mot, evaluate_multi_camera

    scores: dict = evaluate_mot(pred, gt, until)
    print(f"{'camera / sequence':20s} {'HOTA':>6s} {'MOTA':>6s} {'IDF1':>6s} {'IDsw':>5s}")
    for seq, s in scores.items():
        print(f"{seq:20s} {s['HOTA']:6.1f} {s['MOTA']:6.1f} {s['IDF1']:6.1f} {s['IDsw']:5d}")
    if multi_camera or (Path(pred) / "identities.json").is_file():
        m = scores["multi_camera"] = evaluate_multi_camera(pred, gt, until)
        print(f"across cameras {', '.join(m['cameras'])}: IDF1 {m['IDF1']:.1f} "
              f"(IDP {m['IDP']:.1f}, IDR {m['IDR']:.1f}); one global id must be one person "
              "in every view")
    return scores


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
    p.add_argument("--detector", default=None, metavar="WEIGHTS",
                   help="YOLO weights, .pt or OpenVINO folder (same as detector.weights=)")
    p.add_argument("--reid-weights", default=None, metavar="CHECKPOINT",
                   help="re-ID checkpoint (same as reid.weights=; default: the shipped model)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N for detection and re-ID alike (same as "
                   "detector.device= and reid.device=; default: the config's, CPU detection "
                   "and re-ID on a GPU when there is one)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated mp4")
    p.add_argument("--gallery", action="store_true", help="video files: also write "
                   "<stem>_gallery/id_NNNN.png, each track's best crops (camera runs always "
                   "write sheets/ per global identity)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many frames (steps, with several cameras)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C, or the end of "
                   "the files)")
    p.add_argument("--gt", default=None, metavar="FOLDER",
                   help="ground truth (FOLDER/<camera>/gt/gt.txt): score the run when it ends, "
                   "as track eval does")
    p.add_argument("--events", action="store_true", help="also write events.jsonl, the "
                   "tracklet events, to decide identities again later (track identities)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. tracker.max_lost_s=4")
    i = sub.add_parser("identities", help="decide a recorded run's global identities again "
                       "from its events (track run --events), with the settings given now")
    i.add_argument("--events", default=None, help="a run's events.jsonl")
    i.add_argument("--broker", default=None, metavar="redis://HOST:PORT",
                   help="decide a site's identities live from its workers (track worker)")
    i.add_argument("--duration", type=float, default=None,
                   help="--broker: stop after this many seconds (default: when every "
                   "camera of a recorded site has ended, or Ctrl-C)")
    i.add_argument("--output", required=True, help="folder for <camera>.txt and identities")
    i.add_argument("--config", default=None, help="the site's YAML (its identity section)")
    i.add_argument("--gt", default=None, metavar="FOLDER", help="score the new identities")
    i.add_argument("overrides", nargs="*", help="key=value, e.g. identity.offline=never")
    w = sub.add_parser("worker", help="run some cameras of a site and publish their "
                       "tracklet events to the site's broker (track identities --broker)")
    w.add_argument("--config", required=True, help="the camera site (configs/cameras/*.yaml)")
    w.add_argument("--camera", action="append", required=True, metavar="NAME",
                   help="a camera of the site this worker runs (repeat)")
    w.add_argument("--broker", required=True, metavar="redis://HOST:PORT")
    w.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: the files' end, or Ctrl-C)")
    w.add_argument("--max-frames", type=int, default=None, help="stop after this many steps")
    w.add_argument("overrides", nargs="*", help="key=value, e.g. detector.stride=3")
    e = sub.add_parser("eval", help="HOTA/MOTA/IDF1 against MOTChallenge ground truth")
    e.add_argument("--pred", required=True, help="folder of <SEQ>.txt (a run's output)")
    e.add_argument("--gt", required=True, help="folder of <SEQ>/gt/gt.txt and "
                   "<SEQ>/seqinfo.ini; for a camera site, <camera>/gt/gt.txt")
    e.add_argument("--json", default=None)
    e.add_argument("--until", type=int, default=None, metavar="FRAME",
                   help="score frames 1..FRAME only (a run made with --max-frames FRAME)")
    e.add_argument("--multi-camera", action="store_true",
                   help="also score identity across the run's cameras (automatic for runs "
                   "of several cameras, which write identities.json)")
    commands = {"run": cmd_run, "eval": cmd_eval, "identities": cmd_identities,
                "worker": cmd_worker,
                **add_search_parsers(sub)}  # track index, track search
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from reid.inference import CheckpointError
    from tracking.detector import DetectorError
    from tracking.evaluation import EvalError
    from tracking.sources import SourceError

    try:
        return commands[args.mode](args)
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
