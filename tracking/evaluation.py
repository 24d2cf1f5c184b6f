"""MOT metrics with TrackEval (HOTA, CLEAR MOT, Identity), MOTChallenge layout, MOT15 rules.

Predictions ``PRED/<SEQ>.txt`` are scored against ``GT/<SEQ>/gt/gt.txt``; every sequence
needs ``GT/<SEQ>/seqinfo.ini`` (for its length). A ground truth annotated on every Nth frame
only says so with ``annotatedEvery=N`` there, and is scored on those frames only. For a run of
several cameras, ``evaluate_multi_camera`` scores identity across all of them at once.
Values are percentages.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class EvalError(ValueError):
    pass


@dataclass
class Sequence:
    """One camera's ground truth: its boxes and the frames that were annotated (all of
    them, or every ``annotatedEvery``-th from frame 1 when seqinfo.ini says so)."""

    name: str
    gt: np.ndarray          # MOT rows
    pred: np.ndarray        # MOT rows of the run, on the annotated frames only
    frames: np.ndarray      # annotated frame numbers, ascending


def _rows(path: Path) -> np.ndarray:
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as e:
        raise EvalError(f"{path} is not MOTChallenge text (frame,id,x,y,w,h,...): {e}") from e
    return rows if len(rows) else np.zeros((0, 10))


def _read(seq: str, pred_dir: Path, gt_root: Path, until: int | None = None) -> Sequence:
    ini, gt_file = gt_root / seq / "seqinfo.ini", gt_root / seq / "gt" / "gt.txt"
    if not ini.is_file():
        raise EvalError(f"{ini} is missing: it gives the sequence length (seqLength=)")
    info = configparser.ConfigParser()
    info.read(ini)
    length = int(info["Sequence"]["seqLength"])
    every = int(info["Sequence"].get("annotatedEvery", 1))
    gt, pred = _rows(gt_file), _rows(pred_dir / f"{seq}.txt")
    for rows, path in ((gt, gt_file), (pred, pred_dir / f"{seq}.txt")):
        if len(rows) and not 1 <= rows[:, 0].min() <= rows[:, 0].max() <= length:
            raise EvalError(f"{path} has frames outside 1..{length}, the length {ini} gives; "
                            "is it the right video or ground truth?")
    if every > 1 and not ((gt[:, 0] - 1) % every == 0).all():
        raise EvalError(f"{gt_file} has boxes on frames that are not every {every}th from 1, "
                        f"as annotatedEvery={every} in {ini} says")
    frames = np.arange(1, min(length, until or length) + 1, every)
    return Sequence(seq, gt[np.isin(gt[:, 0], frames)], pred[np.isin(pred[:, 0], frames)],
                    frames)


def sequences(pred_dir: Path, gt_root: Path, until: int | None = None) -> list[Sequence]:
    """Every prediction PRED/<SEQ>.txt that has ground truth GT/<SEQ>/gt/gt.txt (frames up
    to ``until`` only, for a run that stopped early)."""
    seqs = [_read(p.stem, pred_dir, gt_root, until) for p in sorted(pred_dir.glob("*.txt"))
            if (gt_root / p.stem / "gt" / "gt.txt").is_file()]
    if not seqs:
        raise EvalError(f"no prediction in {pred_dir} has ground truth in {gt_root} "
                        "(expected PRED/<SEQ>.txt and GT/<SEQ>/gt/gt.txt)")
    return seqs


def _stage(seqs: list[Sequence], folder: Path) -> dict[str, int]:
    """Writes the sequences in TrackEval's layout, annotated frames renumbered 1..K (so a
    sampled ground truth is scored on its samples only); returns {name: K}."""
    lengths = {}
    for s in seqs:
        renumber = {int(f): k + 1 for k, f in enumerate(s.frames)}
        for rows, path in ((s.gt, folder / "gt" / s.name / "gt" / "gt.txt"),
                           (s.pred, folder / "trackers" / "mcreid" / "data" / f"{s.name}.txt")):
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = rows.copy()
            rows[:, 0] = [renumber[int(f)] for f in rows[:, 0]]
            np.savetxt(path, rows, delimiter=",", fmt="%.6g")
        lengths[s.name] = len(s.frames)
    return lengths


def _trackeval(seqs: list[Sequence], metrics: list[str]) -> dict:
    import trackeval

    quiet = {"PRINT_CONFIG": False}
    with tempfile.TemporaryDirectory() as tmp:
        lengths = _stage(seqs, Path(tmp))
        dataset = trackeval.datasets.MotChallenge2DBox({
            "GT_FOLDER": str(Path(tmp) / "gt"), "TRACKERS_FOLDER": str(Path(tmp) / "trackers"),
            "OUTPUT_FOLDER": str(Path(tmp) / "out"), "TRACKERS_TO_EVAL": ["mcreid"],
            "BENCHMARK": "MOT15", "SKIP_SPLIT_FOL": True, "SEQ_INFO": lengths,
            "PRINT_CONFIG": False,
        })
        evaluator = trackeval.Evaluator({
            "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
            "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False, "OUTPUT_EMPTY_CLASSES": False, "DISPLAY_LESS_PROGRESS": True,
        })
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            res, _ = evaluator.evaluate([dataset], [getattr(trackeval.metrics, m)(quiet)
                                                    for m in metrics])
    return res["MotChallenge2DBox"]["mcreid"]


def evaluate_mot(pred_dir: str | Path, gt_root: str | Path,
                 until: int | None = None) -> dict[str, dict[str, float]]:
    """{"<SEQ>": {"HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDsw"}, ..., "COMBINED": {...}}"""
    seqs = sequences(Path(pred_dir), Path(gt_root), until)
    out = {}
    for seq, r in _trackeval(seqs, ["HOTA", "CLEAR", "Identity"]).items():
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


def evaluate_multi_camera(pred_dir: str | Path, gt_root: str | Path,
                          until: int | None = None) -> dict[str, float]:
    """Identity across cameras (the multi-camera IDF1/IDP/IDR of DukeMTMC and the AI City
    Challenge): the cameras' annotated frames are laid end to end as one sequence, so a
    global id must stay one person in every view to keep its matches. The run's global ids
    and the ground truth's ids must each mean one person in all cameras."""
    pred_dir, gt_root = Path(pred_dir), Path(gt_root)
    cams = sorted(p.stem for p in pred_dir.glob("*.txt"))
    missing = [c for c in cams if not (gt_root / c / "gt" / "gt.txt").is_file()]
    if missing:
        have = sorted(p.parent.parent.name for p in gt_root.glob("*/gt/gt.txt"))
        raise EvalError(f"camera(s) {missing} of {pred_dir} have no ground truth in {gt_root} "
                        f"(it has {have}); camera names must match the run's <camera>.txt")
    if len(cams) < 2:
        raise EvalError(f"{pred_dir} holds {len(cams)} camera(s); multi-camera scoring needs "
                        "a run of two or more cameras (track run --config SITE)")
    seqs = [_read(c, pred_dir, gt_root, until) for c in cams]
    joined, offset = [], 0
    for s in seqs:
        shift = lambda rows, o=offset: np.c_[rows[:, :1] + o, rows[:, 1:]]  # noqa: E731
        joined.append((shift(s.gt), shift(s.pred), s.frames + offset))
        offset += int(s.frames[-1])
    one = Sequence("multi_camera", *(np.concatenate(parts) for parts in zip(*joined)))
    p = _trackeval([one], ["Identity"])["multi_camera"]["pedestrian"]["Identity"]
    return {"IDF1": 100 * float(p["IDF1"]), "IDP": 100 * float(p["IDP"]),
            "IDR": 100 * float(p["IDR"]), "cameras": cams}


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
