"""Ground-plane figures behind a camera site's `ground_gate` and `ground_speed`, from a run.

    track run --config configs/cameras/epfl_terrace.yaml --output runs/terrace
    python bench/ground_check.py --site configs/cameras/epfl_terrace.yaml --run runs/terrace

Reads each camera's MOT file (global ids) and homography; prints how fast people walk on
the ground plane (per track, over 1 s windows) and, for each person seen by two cameras in
the same frame, how far apart the two views place their feet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import write_results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", default="bench/results/ground_check.json")
    args = ap.parse_args()
    from tracking.config import load_settings
    from tracking.sources import VideoFile

    cameras = [c for c in load_settings(args.site).cameras if c.homography is not None]
    placed, speeds = {}, []
    for cam in cameras:
        video = VideoFile(cam.source)
        fps = video.fps
        video.close()
        rows = np.loadtxt(Path(args.run) / f"{cam.name}.txt", delimiter=",", ndmin=2)
        for frame, gid, x, y, w, h in rows[:, :6]:
            placed[(cam.name, int(frame), int(gid))] = cam.ground([x, y, x + w, y + h])
        for gid in np.unique(rows[:, 1]):
            r = rows[rows[:, 1] == gid]
            r = r[np.argsort(r[:, 0])]
            pos = np.array([placed[(cam.name, int(f), int(gid))] for f in r[:, 0]])
            step = int(round(fps))
            if len(r) > step:
                dt = (r[step:, 0] - r[:-step, 0]) / fps
                speeds += list(np.linalg.norm(pos[step:] - pos[:-step], axis=1) / dt)
    a, b = cameras[0].name, cameras[1].name
    cross = [np.hypot(*np.subtract(p, placed[(b, f, g)]))
             for (c, f, g), p in placed.items() if c == a and (b, f, g) in placed]
    result = {"walking_speed": {"median": float(np.median(speeds)),
                                "p90": float(np.percentile(speeds, 90))},
              "same_id_two_views": {"pairs": len(cross), "median": float(np.median(cross)),
                                    "p90": float(np.percentile(cross, 90))}}
    print(f"walking speed (ground units/s): median {result['walking_speed']['median']:.1f}, "
          f"90th percentile {result['walking_speed']['p90']:.1f}")
    print(f"same global id in {a} and {b} in one frame ({len(cross)} pairs): feet "
          f"{result['same_id_two_views']['median']:.1f} apart (median), "
          f"{result['same_id_two_views']['p90']:.1f} (90th percentile)")
    write_results(args.out, {"command": f"python bench/ground_check.py --site {args.site} "
                                        f"--run {args.run}", **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
