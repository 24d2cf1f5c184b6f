"""reid command line: train, eval, export.

    reid train --config configs/reid/osnet_x0_25_market.yaml optim.epochs=30
    reid eval --data-root ../shared/data/market1501 --flip --json results.json
    reid export --output model.onnx && reid eval --weights model.onnx   # or model.xml (OpenVINO)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from reid.io import write_json_atomic
from reid.runtime import RUNTIMES

log = logging.getLogger("reid")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a re-ID model")
    p.add_argument("--config", help="YAML file (configs/reid/*.yaml)")
    p.add_argument("--output", default=None, help="run folder (default runs/reid/<config>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/last.pt")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. optim.epochs=30")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate on Market-1501 (single query)")
    p.add_argument("--weights", default=None,
                   help="checkpoint (default: the shipped model), or an ONNX / OpenVINO IR "
                        "file with its sidecar YAML (reid/runtime.py)")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES,
                   help="auto: torch for a checkpoint, the file's own for .onnx / .xml")
    p.add_argument("--data-root", default=None,
                   help="Market-1501 folder or folder with its .tar.gz archives "
                        "(default $MCREID_SHARED/data/market1501)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument("--flip", action="store_true", help="average with the mirrored image")
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    p.add_argument("--visualize", default=None,
                   help="folder for ranked-list grids and the CMC curve (PNG)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default 32 on CPU (fastest there), 256 on GPU")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write an inference checkpoint (fp16), ONNX or "
                       "OpenVINO IR (each with a sidecar YAML of its preprocessing)")
    p.add_argument("--weights", default=None)
    p.add_argument("--output", required=True,
                   help=".pt (inference checkpoint), .onnx or .xml (OpenVINO IR)")



def cmd_train(args) -> int:
    from reid.engine.config import load_config
    from reid.engine.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    name = Path(args.config).stem if args.config else "default"
    out = args.output or os.path.join("runs", "reid", name)
    metrics = Trainer(cfg, out, resume=args.resume).fit()
    if metrics:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                          for k, v in metrics.items()}))
    print(f"checkpoint: {Path(out) / 'last.pt'}")
    return 0


def cmd_eval(args) -> int:
    import numpy as np

    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.engine.config import shared_dir
    from reid.engine.evaluator import evaluate
    from reid.inference import FeatureExtractor

    ext = FeatureExtractor(args.weights, device=args.device, runtime=args.runtime)
    weights = ext.weights
    root = args.data_root or os.path.join(shared_dir(), "data", "market1501")
    dataset = market1501(resolve_data_root(root), splits=("query", "gallery"))
    r = evaluate(ext.model, dataset, ext.size, ext.meta["mean"], ext.meta["std"], ext.device,
                 flip=args.flip, rerank=args.rerank,
                 batch_size=args.batch_size or (256 if ext.device.type == "cuda" else 32))
    print(f"weights: {weights} (runtime {ext.runtime})")
    print(f"mAP {r['mAP']:.1f}  rank-1 {r['rank1']:.1f}  rank-5 {r['rank5']:.1f}  "
          f"rank-10 {r['rank10']:.1f}  mINP {r['mINP']:.1f}  "
          f"({r['num_query']} queries, {r['num_gallery']} gallery)")
    if args.json:
        write_json_atomic(args.json, {"weights": str(weights), **{
            k: v for k, v in r.items() if not k.startswith("_")}})
    if args.visualize:
        from reid.visualize import cmc_curve, ranked_grid, write_png

        rng = np.random.default_rng(0)
        for n in range(3):
            rows = rng.choice(len(dataset.query), 8, replace=False)
            write_png(Path(args.visualize) / f"ranked_{n}.png",
                      ranked_grid(r["_distmat"], dataset.query, dataset.gallery, rows))
        write_png(Path(args.visualize) / "cmc.png", cmc_curve({Path(weights).stem: r["cmc"]}))
        print(f"pictures: {args.visualize}")
    return 0


def cmd_export(args) -> int:
    from reid.engine.checkpoint import export_inference
    from reid.inference import default_weights

    weights = args.weights or default_weights()
    suffix = Path(args.output).suffix.lower()
    if suffix in (".onnx", ".xml"):
        from reid.onnx_export import export_onnx, export_openvino

        diff = (export_onnx if suffix == ".onnx" else export_openvino)(weights, args.output)
        print(f"wrote {args.output} and {Path(args.output).with_suffix('.yaml')}; "
              f"max |onnxruntime - torch| = {diff:.2e}")
    else:
        export_inference(weights, args.output)
        print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="mode", required=True)
    _add_train(sub)
    _add_eval(sub)
    _add_export(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from reid.data.datasets import DatasetError
    from reid.engine.checkpoint import CheckpointError
    from reid.engine.config import ConfigError

    handlers = {"train": cmd_train, "eval": cmd_eval, "export": cmd_export}
    try:
        return handlers[args.mode](args)
    except (DatasetError, ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        if args.verbose:
            raise
        print(f"reid {args.mode}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
