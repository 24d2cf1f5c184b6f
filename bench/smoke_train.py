"""CPU smoke training: a few hundred iterations on 64 Market identities (128 x 64 input).

    python bench/smoke_train.py --out bench/results/smoke_train.json

Prints the training loss of the first and last epochs and Market-1501 mAP / rank-1 of the
untrained and the trained model (same random initialisation), and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from common import ROOT, write_results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "configs/reid/smoke_cpu.yaml"))
    ap.add_argument("--out", default="bench/results/smoke_train.json")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    from reid.engine.config import load_config
    from reid.engine.trainer import Trainer

    cfg = load_config(args.config, [*args.overrides, "device=cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp)
        before = trainer.evaluate()
        print(f"untrained: mAP {before['mAP']:.1f} rank-1 {before['rank1']:.1f}", flush=True)
        after = trainer.fit()
        hist = trainer.history
    iters = len(hist) * trainer.steps_per_epoch
    result = {
        "iterations": iters, "epochs": len(hist),
        "loss_first_epoch": hist[0]["loss"], "loss_last_epoch": hist[-1]["loss"],
        "untrained": {"mAP": before["mAP"], "rank1": before["rank1"]},
        "trained": {"mAP": after["mAP"], "rank1": after["rank1"]},
        "train_images_per_s": sum(h["images_per_s"] for h in hist) / len(hist),
    }
    print(json.dumps(result, indent=2))
    write_results(args.out, result)
    return 0 if after["mAP"] > before["mAP"] and result["loss_last_epoch"] < \
        result["loss_first_epoch"] else 1


if __name__ == "__main__":
    sys.exit(main())
