"""End-to-end tracking speed and memory on this machine.

    python bench/track_speed.py --out bench/results/track_speed.json

1. Frames/s and the share of time in decoding, detection, tracking + re-ID and writing for
   PETS09-S2L1 (768x576) and clips/people-crowd-1080p.mp4 (15-17 people per frame).
2. Peak RSS of a 1x and a 10x looped TUD-Campus (71 and 710 frames): flat memory means no
   per-track history grows with the length of the video.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, read_frames, write_results

CHILD = """
import json, resource, sys
from pathlib import Path
from tracking.pipeline import build_models
from tracking.config import load_settings
from tracking.multicam import Camera
from tracking.pipeline import track_site
s = load_settings(None, ["reid.device=cpu"])
det, embedder = build_models(s)
camera = Camera(Path(sys.argv[1]).stem, sys.argv[1])
stats = track_site([camera], sys.argv[2], det, embedder, s.tracker, s.identity, s.sources,
                   stride=s.detector.stride, max_steps=int(sys.argv[3]) or None)
total = sum(stats.time_s.values())
print(json.dumps({"frames": stats.frames, "fps": stats.fps, "tracks": stats.tracks,
                  "crops_embedded": stats.crops_embedded,
                  "share": {k: round(100 * v / total, 1) for k, v in stats.time_s.items()},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(video: Path, out: Path, max_frames: int = 0) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, str(video), str(out), str(max_frames)],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def looped(video: Path, times: int, dst: Path) -> Path:
    import cv2

    frames, _ = read_frames(video)
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for _ in range(times):
        for f in frames:
            out.write(f)
    out.release()
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/track_speed.json")
    ap.add_argument("--frames", type=int, default=200, help="frames per speed run")
    args = ap.parse_args()
    from reid.engine.config import shared_dir

    video = Path(shared_dir()) / "data" / "video"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, path in (("PETS09-S2L1 768x576", video / "PETS09-S2L1" / "PETS09-S2L1.avi"),
                           ("people-crowd 1920x1080", video / "clips" / "people-crowd-1080p.mp4")):
            results[name] = run(path, tmp / "o", args.frames)
            print(name, json.dumps(results[name]), flush=True)
        campus = video / "TUD-Campus" / "TUD-Campus.mp4"
        for times in (1, 10):
            r = run(looped(campus, times, tmp / f"campus_x{times}.mp4"), tmp / "o")
            results[f"TUD-Campus looped x{times}"] = r
            print(f"TUD-Campus x{times}", json.dumps(r), flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
