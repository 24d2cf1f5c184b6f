"""MOT metrics with TrackEval (HOTA, CLEAR MOT, Identity), MOTChallenge layout, MOT15 rules.

Predictions ``PRED/<SEQ>.txt`` are scored against ``GT/<SEQ>/gt/gt.txt``; every sequence
needs ``GT/<SEQ>/seqinfo.ini`` (for its length). Values are percentages.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


class EvalError(ValueError):
    pass


def sequences(pred_dir: Path, gt_root: Path) -> dict[str, int]:
    seqs = {}
    for pred in sorted(pred_dir.glob("*.txt")):
        seq = pred.stem
        gt = gt_root / seq / "gt" / "gt.txt"
        ini = gt_root / seq / "seqinfo.ini"
        if not gt.is_file():
            continue
        if not ini.is_file():
            raise EvalError(f"{ini} is missing: it gives the sequence length (seqLength=)")
        info = configparser.ConfigParser()
        info.read(ini)
        seqs[seq] = int(info["Sequence"]["seqLength"])
    if not seqs:
        raise EvalError(f"no prediction in {pred_dir} has ground truth in {gt_root} "
                        "(expected PRED/<SEQ>.txt and GT/<SEQ>/gt/gt.txt)")
    return seqs


def evaluate_mot(pred_dir: str | Path, gt_root: str | Path) -> dict[str, dict[str, float]]:
    """{"<SEQ>": {"HOTA", "MOTA", "IDF1", "IDsw", ...}, ..., "COMBINED": {...}}"""
    import trackeval

    pred_dir, gt_root = Path(pred_dir), Path(gt_root)
    seqs = sequences(pred_dir, gt_root)
    with tempfile.TemporaryDirectory() as tmp:
        # TrackEval wants TRACKERS/<name>/data/<SEQ>.txt: link the predictions there.
        data = Path(tmp) / "trackers" / "mcreid" / "data"
        data.mkdir(parents=True)
        for seq in seqs:
            shutil.copy(pred_dir / f"{seq}.txt", data / f"{seq}.txt")
        dataset = trackeval.datasets.MotChallenge2DBox({
            "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(Path(tmp) / "trackers"),
            "OUTPUT_FOLDER": str(Path(tmp) / "out"), "TRACKERS_TO_EVAL": ["mcreid"],
            "BENCHMARK": "MOT15", "SKIP_SPLIT_FOL": True, "SEQ_INFO": seqs,
            "PRINT_CONFIG": False,
        })
        evaluator = trackeval.Evaluator({
            "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
            "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False, "OUTPUT_EMPTY_CLASSES": False, "DISPLAY_LESS_PROGRESS": True,
        })
        quiet = {"PRINT_CONFIG": False}
        metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet),
                   trackeval.metrics.Identity(quiet)]
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            res, _ = evaluator.evaluate([dataset], metrics)
    per_seq = res["MotChallenge2DBox"]["mcreid"]
    out = {}
    for seq, r in per_seq.items():
        p = r["pedestrian"]
        out["COMBINED" if seq == "COMBINED_SEQ" else seq] = {
            "HOTA": 100 * float(p["HOTA"]["HOTA"].mean()),
            "DetA": 100 * float(p["HOTA"]["DetA"].mean()),
            "AssA": 100 * float(p["HOTA"]["AssA"].mean()),
            "MOTA": 100 * float(p["CLEAR"]["MOTA"]),
            "IDF1": 100 * float(p["Identity"]["IDF1"]),
            "IDsw": int(p["CLEAR"]["IDSW"]),
        }
    return out


def clustering_scores(true: np.ndarray, pred: np.ndarray) -> dict:
    """How well predicted ids group items (images, boxes) by their true ids: IDF1 (optimal
    one-to-one matching of true and predicted ids; every item has one of each) and pairwise
    precision / recall (pairs of items put together)."""
    from scipy.optimize import linear_sum_assignment

    t_ids, t_inv = np.unique(true, return_inverse=True)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    table = np.zeros((len(t_ids), len(p_ids)), np.int64)
    np.add.at(table, (t_inv, p_inv), 1)
    rows, cols = linear_sum_assignment(-table)
    idf1 = table[rows, cols].sum() / len(true)  # every image has one true and one predicted id

    def pairs(n):
        return (n * (n - 1) // 2).sum()

    together = pairs(table)
    precision = together / max(pairs(table.sum(0)), 1)
    recall = together / max(pairs(table.sum(1)), 1)
    return {"IDF1": 100 * idf1, "pair_precision": 100 * precision, "pair_recall": 100 * recall,
            "true_ids": len(t_ids), "predicted_ids": len(p_ids)}
