"""The loss ablation on Market-1501: train every row and seed, evaluate, print the table.

    python bench/ablation.py --runs runs/ablation --parallel 8 --deadline-min 50

Runs are launched side by side (several small models share one GPU well) and resume from
their last checkpoint when started again, so the table can be filled over several sessions.
Results go to <runs>/ablation.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROWS = [
    ("ID only", "configs/reid/ablation_id.yaml"),
    ("ID + triplet", "configs/reid/ablation_id_triplet.yaml"),
    ("ID + quadruplet", "configs/reid/ablation_id_quad.yaml"),
    ("ID + triplet + quadruplet", "configs/reid/ablation_id_triplet_quad.yaml"),
]


def run_dir(runs: Path, config: str, seed: int, tag: str) -> Path:
    return runs / f"{Path(config).stem}{tag}_s{seed}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/ablation")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--deadline-min", type=float, default=1e9,
                    help="stop launching/kill runs after this many minutes (they resume)")
    ap.add_argument("--fit-minutes", type=float, default=None,
                    help="probe the throughput first and set optim.epochs so that every run "
                         "trains in about this many minutes")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--tag", default="", help="suffix for run folders (variants)")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every run")
    args = ap.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.deadline_min * 60
    jobs = [(name, cfg, seed) for name, cfg in ROWS for seed in args.seeds]

    if args.fit_minutes and not args.eval_only:
        epochs = fit_epochs(runs, jobs, args)
        args.overrides.append(f"optim.epochs={epochs}")
        print(f"fit: optim.epochs={epochs} trains in about {args.fit_minutes} min", flush=True)
    launch(runs, [] if args.eval_only else list(jobs), args, deadline, args.tag)
    report(runs, jobs, args.tag)
    return 0


def fit_epochs(runs: Path, jobs, args) -> int:
    """Time 60 iterations of every run side by side; return the epochs that fit."""
    probe = argparse.Namespace(**vars(args))
    probe.overrides = [*args.overrides, "optim.epochs=1", "train.max_iters=60",
                       "train.eval_at_end=false"]
    launch(runs, list(jobs), probe, time.time() + 600, tag="_probe")
    rates = []
    for _, cfg, seed in jobs:
        hist = json.loads((run_dir(runs, cfg, seed, "_probe") / "history.json").read_text())
        rates.append(hist[-1]["images_per_s"])
    from reid.data.archives import resolve_data_root
    from reid.data.datasets import market1501
    from reid.data.samplers import PKSampler
    from reid.engine.config import load_config

    cfg = load_config(jobs[0][1], args.overrides)
    pids = [r.pid for r in market1501(resolve_data_root(cfg["data"]["root"]),
                                      splits=("train",)).train]
    per_epoch = len(PKSampler(pids, cfg["sampler"]["p"], cfg["sampler"]["k"])) \
        * cfg["sampler"]["p"] * cfg["sampler"]["k"]
    print(f"probe: {min(rates):.0f}-{max(rates):.0f} images/s per run, {len(jobs)} runs "
          f"side by side; {per_epoch} images per epoch", flush=True)
    return max(1, int(args.fit_minutes * 60 * min(rates) / per_epoch))


def launch(runs: Path, pending: list, args, deadline: float, tag: str) -> None:
    active: list[tuple[subprocess.Popen, Path]] = []
    while pending or active:
        while pending and len(active) < args.parallel and time.time() < deadline:
            _, cfg, seed = pending.pop(0)
            out = run_dir(runs, cfg, seed, tag)
            cmd = [sys.executable, "-m", "reid.cli", "train", "--config", cfg, "--output",
                   str(out), f"seed={seed}", *args.overrides]
            if (out / "last.pt").is_file():
                cmd.append("--resume")
            out.mkdir(parents=True, exist_ok=True)
            log = open(out / "train.log", "a")
            active.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), out))
            print(f"started {out}", flush=True)
        if time.time() >= deadline:
            pending.clear()
            for proc, out in active:
                proc.terminate()
                print(f"deadline: stopped {out} (resumable)", flush=True)
            for proc, _ in active:
                proc.wait()
            active.clear()
            break
        time.sleep(5)
        for proc, out in list(active):
            if proc.poll() is not None:
                print(f"finished {out} rc={proc.returncode}", flush=True)
                active.remove((proc, out))


def report(runs: Path, jobs, tag: str) -> None:
    results = []
    for name, cfg, seed in jobs:
        out = run_dir(runs, cfg, seed, tag)
        hist_path = out / "history.json"
        if not hist_path.is_file():
            continue
        hist = json.loads(hist_path.read_text())
        row = {"row": name, "config": cfg, "seed": seed, "epochs": len(hist),
               "train_minutes": sum(h["seconds"] for h in hist) / 60}
        evals = [h for h in hist if "eval_mAP" in h]
        if evals:
            row.update({k[5:]: evals[-1][k] for k in ("eval_mAP", "eval_rank1", "eval_rank5",
                                                       "eval_rank10", "eval_mINP")})
        results.append(row)
    from reid.io import write_json_atomic

    write_json_atomic(runs / "ablation.json", results)
    print("| row | seed | epochs | mAP | rank-1 | rank-5 | mINP | train min |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['seed']} | {r['epochs']} | {r.get('mAP', float('nan')):.1f} | "
              f"{r.get('rank1', float('nan')):.1f} | {r.get('rank5', float('nan')):.1f} | "
              f"{r.get('mINP', float('nan')):.1f} | {r['train_minutes']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
