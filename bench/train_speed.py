"""Training throughput (images/s) of the re-ID trainer under several settings.

    python bench/train_speed.py --config configs/reid/osnet_x0_25_market.yaml

Each setting trains ``--iters`` iterations twice on the real Market-1501 train set and
reports the second pass (the first warms up cuDNN and the allocator).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from reid.engine.config import load_config
from reid.engine.trainer import Trainer

SETTINGS = {
    "fp32": ["train.amp=off", "train.channels_last=false"],
    "fp32+cl": ["train.amp=off", "train.channels_last=true"],
    "bf16": ["train.amp=bf16", "train.channels_last=false"],
    "bf16+cl": ["train.amp=bf16", "train.channels_last=true"],
    "bf16+cl+p32": ["train.amp=bf16", "train.channels_last=true", "sampler.p=32"],
    "fp32+p32": ["train.amp=off", "train.channels_last=false", "sampler.p=32"],
    "bf16+compile": ["train.amp=bf16", "train.channels_last=false", "train.compile=true"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/reid/osnet_x0_25_market.yaml")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--json", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    results = {}
    for name in args.settings:
        cfg = load_config(args.config, [*args.overrides, *SETTINGS[name],
                                        f"train.max_iters={args.iters}", "train.eval_at_end=false"])
        trainer = Trainer(cfg, f"/tmp/train_speed_{name}")
        start = time.perf_counter()
        trainer.train_epoch(0)
        warm = time.perf_counter() - start
        stats = trainer.train_epoch(1)
        results[name] = round(stats["images_per_s"], 1)
        print(f"{name:16s} {stats['images_per_s']:8.1f} images/s (warm-up pass {warm:.1f}s)",
              flush=True)
        del trainer
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name() if torch.cuda.is_available()
                       else "cpu", "images_per_s": results}, f, indent=2)


if __name__ == "__main__":
    main()
