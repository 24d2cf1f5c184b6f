"""Self-search: for each identity of an indexed run, a crop of that person cut from the run's
own source video is searched; is the identity the first hit?

    python bench/search_selfsearch.py RUN --out bench/results/search_selfsearch_SITE.json

The crop is the box of the identity's longest sighting at the middle frame of that sighting
(from the camera's <camera>.jsonl, final ids), cut from the source video at full size and
embedded like track search embeds a person crop. The run must have been indexed (track
index RUN). Identities of one run are searched against that run only.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from common import write_results


def middle_boxes(run: Path, sightings: dict) -> dict:
    """identity -> (camera, frame, box): the middle row of its longest sighting."""
    wanted = {}
    for gid, t in sightings.items():
        rows = [(e["frame"], tr["box"])
                for e in map(json.loads, (run / f"{t.camera}.jsonl").read_text().splitlines())
                if t.first_frame <= e["frame"] <= t.last_frame
                for tr in e["tracks"] if tr["track"] == t.track_id and tr["id"] == gid]
        if rows:
            frame, box = rows[len(rows) // 2]
            wanted[gid] = (t.camera, frame, box)
    return wanted


def cut(sources: dict[str, str], wanted: dict) -> dict:
    """identity -> the crop, decoding each camera's video once up to its last wanted frame."""
    from tracking.sinks import crop
    from tracking.sources import VideoFile

    by_camera: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for gid, (camera, frame, box) in wanted.items():
        by_camera[camera][frame].append((gid, box))
    crops = {}
    for camera, frames in by_camera.items():
        last = max(frames)
        for index, image in VideoFile(sources[camera]):
            for gid, box in frames.get(index, []):
                piece = crop(image, box, min_side=8)
                if piece is not None:
                    crops[gid] = piece.copy()
            if index >= last:
                break
    return crops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="an indexed run folder (track run --events; track index)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="", help="how the run was made, for the record")
    args = ap.parse_args()
    from reid.inference import FeatureExtractor
    from tracking.search import open_indexes, search

    run = Path(args.run)
    (index,) = open_indexes([run])
    sightings: dict[int, object] = {}
    for _, t in index.tracklets():
        best = sightings.get(t.global_id)
        if best is None or t.end_s - t.start_s > best.end_s - best.start_s:
            sightings[t.global_id] = t
    manifest = json.loads((run / "run.json").read_text())
    crops = cut({c["name"]: c["source"] for c in manifest["cameras"]},
                middle_boxes(run, sightings))
    extractor = FeatureExtractor(device="cpu")
    firsts, misses = 0, []
    for gid, piece in sorted(crops.items()):
        hits = search([index], extractor([piece]).numpy(), top=5)
        if hits and hits[0].identity == gid:
            firsts += 1
        else:
            misses.append({"identity": gid, "found": [h.identity for h in hits],
                           "distances": [round(h.distance, 3) for h in hits]})
    result = {"run": str(run), "note": args.note, "identities": len(sightings),
              "searched": len(crops), "first": firsts,
              "rate": round(firsts / max(1, len(crops)), 4), "misses": misses}
    write_results(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "misses"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
