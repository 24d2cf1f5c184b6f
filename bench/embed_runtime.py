"""The shipped re-ID model in each runtime: crops/s, and end-to-end `track run` FPS.

    python bench/embed_runtime.py --out bench/results/embed_runtime.json

1. Embedding alone: real Market-1501 query crops through ``FeatureExtractor(runtime=...)``
   (torch, onnx = onnxruntime CPU, openvino), batch 1 (what the tracker mostly asks for:
   it embeds only crops whose match is not obvious) and batch 32.
2. ``track run`` on PETS09-S2L1 (768x576, --max-frames, no video) with ``reid.runtime=``
   each of them, the runtimes interleaved and repeated (this CPU is shared): FPS end to end
   and the share of the tracker step (association + re-ID) in each run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write_results

RUNTIMES = ("torch", "onnx", "openvino")
LINE = re.compile(r": (\d+) frames, (\d+) tracks, ([\d.]+) FPS end to end \((.*)\); "
                  r"(\d+) crops embedded")


def crops_per_s(runtime: str, crops: list, batch: int, seconds: float) -> float:
    from reid.inference import FeatureExtractor

    ext = FeatureExtractor(runtime=runtime, device="cpu", batch_size=32)
    ext(crops[:batch])  # warm-up
    done, i, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        ext(crops[i:i + batch])
        done, i = done + batch, (i + batch) % (len(crops) - batch)
    return done / (time.perf_counter() - start)


def track_run(video: Path, runtime: str, frames: int, out: Path) -> dict:
    p = subprocess.run([sys.executable, "-m", "tracking.cli", "run", "--source", str(video),
                        "--output", str(out), "--no-video", "--max-frames", str(frames),
                        "reid.device=cpu", f"reid.runtime={runtime}"],
                       capture_output=True, text=True, cwd=ROOT)
    m = LINE.search(p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"track run ({runtime}) failed: {p.stderr[-2000:]}")
    share = dict(part.rsplit(" ", 1) for part in m.group(4).split(", "))
    return {"frames": int(m.group(1)), "tracks": int(m.group(2)), "fps": float(m.group(3)),
            "crops_embedded": int(m.group(5)), "share": share}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/embed_runtime.json")
    ap.add_argument("--frames", type=int, default=300, help="frames per track run")
    ap.add_argument("--repeats", type=int, default=2, help="track runs per runtime")
    ap.add_argument("--seconds", type=float, default=8.0, help="per embedding figure")
    args = ap.parse_args()
    import cv2

    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir

    data = market1501(resolve_data_root(Path(shared_dir()) / "data" / "market1501"),
                      splits=("query",))
    crops = [cv2.imread(r.path) for r in data.query[:256]]
    results: dict = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0],
                     "crops_per_s": {}, "track_run": {r: [] for r in RUNTIMES}}
    for runtime in RUNTIMES:  # also makes the cached export before the timed track runs
        for batch in (1, 32):
            rate = crops_per_s(runtime, crops, batch, args.seconds)
            results["crops_per_s"][f"{runtime}, batch {batch}"] = round(rate, 1)
            print(f"{runtime:9s} batch {batch:2d}: {rate:7.1f} crops/s", flush=True)
    video = Path(shared_dir()) / "data" / "video" / "PETS09-S2L1" / "PETS09-S2L1.avi"
    results["video"] = f"{video.name}, first {args.frames} frames"
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for runtime in RUNTIMES:
                r = track_run(video, runtime, args.frames, Path(tmp) / f"{runtime}{rep}")
                results["track_run"][runtime].append(r)
                print(f"track run, reid.runtime={runtime:9s}: {r['fps']:5.1f} FPS "
                      f"({r['share']})", flush=True)
    results["load_avg_at_end"] = os.getloadavg()[0]
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
