"""Embedding throughput on real Market-1501 crops, ours and torchreid's side by side.

    python bench/embed_speed.py --out bench/results/embed_speed.json

Both extractors take the same BGR crops (numpy) and return embeddings at 256 x 128:
``reid.inference.FeatureExtractor`` with the shipped model, and
``torchreid.utils.FeatureExtractor`` with osnet_x0_25 (MSMT17 weights from shared/).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import torch
from common import write_results


def rate(fn, crops, batch: int, seconds: float) -> float:
    fn(crops[:batch])  # warm-up
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = crops[i:i + batch] or crops[:batch]
        fn(chunk)
        done += len(chunk)
        i = (i + batch) % len(crops)
    return done / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/embed_speed.json")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir
    from reid.inference import FeatureExtractor

    data = market1501(resolve_data_root(Path(shared_dir()) / "data" / "market1501"),
                      splits=("query",))
    crops = [cv2.imread(r.path) for r in data.query[:256]]
    ours = FeatureExtractor(device=args.device, batch_size=32)

    from torchreid.reid.utils import FeatureExtractor as TorchreidExtractor

    peer = TorchreidExtractor("osnet_x0_25", device=args.device, model_path=os.path.join(
        shared_dir(), "weights", "reid", "osnet_x0_25_msmt17.pth"), verbose=False)

    def peer_fn(batch):  # torchreid wants RGB numpy arrays
        return peer([c[:, :, ::-1].copy() for c in batch])

    results = {"device": args.device, "threads": torch.get_num_threads(), "crops_per_s": {}}
    for name, fn in (("mcreid (shipped osnet_x0_25)", ours), ("torchreid osnet_x0_25", peer_fn)):
        for batch in (1, 32):
            r = rate(fn, crops, batch, args.seconds)
            results["crops_per_s"][f"{name}, batch {batch}"] = round(r, 1)
            print(f"{name:30s} batch {batch:3d}: {r:7.1f} crops/s", flush=True)
    try:  # the ONNX export run by onnxruntime, same crops and preprocessing
        import tempfile

        import numpy as np
        import onnxruntime as ort

        from reid.data.transforms import normalize
        from reid.inference import default_weights
        from reid.onnx_export import export_onnx

        path = Path(tempfile.mkdtemp()) / "model.onnx"
        results["onnx_max_abs_diff"] = export_onnx(default_weights(), path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        h, w = ours.size

        def onnx_fn(batch):
            arr = np.stack([cv2.resize(c, (w, h))[:, :, ::-1] for c in batch])
            x = normalize(torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2),
                          (h, w), ours.meta["mean"], ours.meta["std"])
            return session.run(None, {"images": x.numpy()})[0]

        for batch in (1, 32):
            r = rate(onnx_fn, crops, batch, args.seconds)
            results["crops_per_s"][f"mcreid ONNX (onnxruntime), batch {batch}"] = round(r, 1)
            print(f"{'mcreid ONNX (onnxruntime)':30s} batch {batch:3d}: {r:7.1f} crops/s",
                  flush=True)
    except ImportError:
        print("onnxruntime not installed: ONNX rows skipped (pip install -e '.[onnx]')")
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
