"""``track index``, ``track search`` and ``track serve``, kept out of tracking/cli.py's way: it
only asks ``add_parsers`` for the subcommands and their handlers. Heavy imports wait until a
command runs.

    track index runs/terrace
    track search --index runs/terrace runs/hall --photo person.jpg --top 10 --json hits.json
    track search --index runs/terrace --identity 7
    track serve runs/terrace runs/hall --port 8080
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from tracking.config import UsageError, load_settings


def add_parsers(sub) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Register the subcommands on ``sub`` (argparse subparsers); returns their handlers."""
    i = sub.add_parser("index", help="build RUN/index.sqlite for track search from a run "
                       "made with --events")
    i.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) (track run --output)")
    s = sub.add_parser("search", help="find a person in indexed runs by photo or identity")
    s.add_argument("--index", nargs="+", required=True, metavar="RUN",
                   help="run folder(s) with an index.sqlite (track index)")
    query = s.add_mutually_exclusive_group(required=True)
    query.add_argument("--photo", help="a person crop, or a frame (its largest person is "
                       "taken, or the --box)")
    query.add_argument("--identity", type=int, help="an identity of the first --index RUN")
    s.add_argument("--box", default=None, metavar="X,Y,W,H", help="the person in --photo")
    s.add_argument("--top", type=int, default=10, help="identities to list (default 10)")
    s.add_argument("--json", default=None, help="write the hits here; the sheet goes beside")
    s.add_argument("--reid-weights", default=None, metavar="CHECKPOINT",
                   help="query model (default: the shipped one); must be the index's")
    s.add_argument("--detector", default=None, metavar="WEIGHTS",
                   help="YOLO weights for a frame (default: the config's detector.weights)")
    w = sub.add_parser("serve", help="a local web page over indexed runs: identities, "
                       "timelines, videos and search by photo")
    w.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) with an index.sqlite")
    w.add_argument("--port", type=int, default=8080)
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: "
                   "this machine only); any other needs --token")
    w.add_argument("--token", default=None, help="a secret every request must carry (open "
                   "the page as /?token=TOKEN)")
    w.add_argument("--reid-weights", default=None, metavar="CHECKPOINT",
                   help="query model (default: the shipped one); must be the index's")
    w.add_argument("--detector", default=None, metavar="WEIGHTS",
                   help="YOLO weights for uploaded frames (default: the config's)")
    return {"index": cmd_index, "search": cmd_search, "serve": cmd_serve}


def cmd_index(args: argparse.Namespace) -> int:
    from tracking.index import build_index

    for run in args.runs:
        path, n = build_index(run)
        print(f"{path}: {n} tracklets")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from reid.io import write_bytes_atomic, write_json_atomic
    from tracking.search import identity_tracklets, open_indexes, results_sheet, search, timeline

    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.box and not args.photo:
        raise UsageError("--box marks the person in --photo; an --identity needs none")
    indexes = open_indexes(args.index)
    crop, queries, skip = photo_query(args, indexes) if args.photo else identity_query(args,
                                                                                      indexes)
    hits = search(indexes, queries, args.top, skip)
    print_hits(hits)
    sheet = Path(args.json).with_suffix(".png") if args.json else Path("search_results.png")
    write_bytes_atomic(sheet, png(results_sheet(crop, hits)))
    when = sheet.with_name(f"{sheet.stem}_timeline.png")
    write_bytes_atomic(when, png(timeline([(h.identity, identity_tracklets(indexes[h.index],
                                                                           h.identity))
                                           for h in hits])))
    if args.json:
        write_json_atomic(args.json, {"hits": [h.to_json() for h in hits]})
    print(f"results sheet: {sheet.resolve()}; timeline: {when.name} beside it"
          + (f"; hits: {args.json}" if args.json else ""))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tracking.serve import serve

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port number (1-65535)")
    serve(args.runs, args.host, args.port, args.token, args.reid_weights, args.detector)
    return 0


def photo_query(args: argparse.Namespace, indexes: list) -> tuple:
    """The query crop and its vector, from the index's own model."""
    from reid.inference import FeatureExtractor
    from tracking.search import check_query_model, parse_box, person_crop, read_photo

    box = parse_box(args.box) if args.box else None
    image = read_photo(args.photo)
    extractor = FeatureExtractor(args.reid_weights, device="cpu")
    check_query_model(indexes, extractor.identity)
    crop = person_crop(image, box, lambda img: detector(args)([img])[0], args.photo)
    return crop, extractor([crop]).numpy(), None


def identity_query(args: argparse.Namespace, indexes: list) -> tuple:
    from tracking.search import identity_vectors

    return None, identity_vectors(indexes[0], args.identity), (0, args.identity)


def detector(args: argparse.Namespace):
    from tracking.detector import Detector

    settings = load_settings(None, [f"detector.weights={args.detector}"] if args.detector else [])
    return Detector(settings.detector.weights, imgsz=settings.detector.imgsz, device="cpu")


def print_hits(hits: list) -> None:
    if not hits:
        print("no tracklets in the index")
        return
    print(f"{'rank':>4s} {'identity':>8s}  {'camera(s)':20s} {'first_s':>8s} {'last_s':>8s} "
          f"{'distance':>8s}  run")
    for rank, h in enumerate(hits, 1):
        print(f"{rank:4d} {h.identity:8d}  {','.join(h.cameras)[:20]:20s} {h.start_s:8.2f} "
              f"{h.end_s:8.2f} {h.distance:8.3f}  {h.run}")


def png(image) -> bytes:
    import cv2

    return cv2.imencode(".png", image)[1].tobytes()
