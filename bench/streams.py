"""How many cameras one machine keeps up with, and what batching across cameras buys.

    python bench/streams.py --out bench/results/streams.json

Each row runs the whole multi-camera pipeline (reader threads, detection, re-ID, trackers,
global identities, MOT/JSONL outputs; no video) on N copies of one real clip for a fixed
number of steps and reports camera-frames per second. "Streams in real time" divides that by
the clip's own frame rate (EPFL terrace 360x288 at 25 fps, PETS09 768x576 at 10 fps): the
number of such live cameras the machine would process without dropping frames. Rows with
"one at a time" call the detector once per camera frame instead of once per step; the
speed-up of batching is measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import write_results

CLIPS = {"360x288": ("EPFL-terrace1/terrace1-c0.mp4", 25.0),
         "768x576": ("PETS09-S2L1/PETS09-S2L1.avi", 10.0)}
ROWS = [(1, True, 1), (4, True, 1), (4, False, 1), (4, True, 3)]  # cameras, batched, stride


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/streams.json")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("overrides", nargs="*", help="key=value over the tracking config, e.g. "
                    "detector.weights=.../yolo11n_int8_openvino_model detector.imgsz=640")
    args = ap.parse_args()
    import torch

    from reid.engine.config import shared_dir
    from tracking.config import load_settings
    from tracking.multicam import Camera
    from tracking.pipeline import Outputs, build_models, track_site

    torch.set_num_threads(os.cpu_count() or 2)
    s = load_settings(None, [*args.overrides, "reid.device=cpu"])
    detector, embedder = build_models(s)

    class OneAtATime:
        batch = 1

        def __call__(self, frames):
            return [detector([f])[0] for f in frames]

    video = Path(shared_dir()) / "data" / "video"

    def run(clip: str, n: int, batched: bool, stride: int, steps: int) -> float:
        cams = [Camera(f"cam{i}", str(video / clip)) for i in range(n)]
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            track_site(cams, tmp, detector if batched else OneAtATime(), embedder, s.tracker,
                       s.identity, s.sources, stride=stride, outputs=Outputs(video=False),
                       max_steps=steps)
            return time.perf_counter() - start

    results = []
    for size, (clip, fps) in CLIPS.items():
        run(clip, 1, True, 1, 10)  # warm-up
        for n, batched, stride in ROWS:
            rate = n * args.steps / run(clip, n, batched, stride, args.steps)
            results.append({"size": size, "cameras": n, "batched": batched, "stride": stride,
                            "camera_frames_per_s": round(rate, 1), "clip_fps": fps,
                            "streams_in_real_time": round(rate / fps, 2)})
            print(f"{size} {n} camera(s) {'batched' if batched else 'one at a time':13s} "
                  f"stride {stride}: {rate:5.1f} camera-frames/s = {rate / fps:4.2f} streams "
                  f"at {fps:.0f} fps", flush=True)
    for size in CLIPS:
        rows = {(r["cameras"], r["batched"], r["stride"]): r["camera_frames_per_s"]
                for r in results if r["size"] == size}
        print(f"{size}: batching 4 cameras is {rows[(4, True, 1)] / rows[(4, False, 1)]:.2f}x "
              "one at a time")
    write_results(args.out, {"command": " ".join(["python bench/streams.py", *args.overrides]),
                             "detector": s.detector.weights, "steps": args.steps,
                             "cpu_threads": torch.get_num_threads(), "rows": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
