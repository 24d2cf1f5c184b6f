"""Market-1501 evaluation of a model: embed query and gallery, rank, score."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from reid.data.datasets import ReidDataset
from reid.data.images import load_images
from reid.inference import embed_uint8
from reid.metrics import compute_distance_matrix, evaluate_rank, re_ranking

log = logging.getLogger(__name__)


def labels(records) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r.pid for r in records]), np.array([r.camid for r in records])


def evaluate(model: torch.nn.Module, dataset: ReidDataset, size: Sequence[int],
             mean: Sequence[float], std: Sequence[float], device: torch.device,
             flip: bool = False, rerank: bool = False, metric: str = "cosine",
             batch_size: int = 256, cache: dict | None = None) -> dict:
    """Returns percentages: mAP, rank1/5/10, mINP, plus num_query/num_gallery, the CMC curve
    and the distance matrix (under ``_distmat``, for visualisation).

    ``cache`` keeps decoded query/gallery images between calls (periodic eval in training).
    """
    cache = cache if cache is not None else {}
    if "query" not in cache:
        cache["query"] = load_images(dataset.query, (128, 64), "decode query")
        cache["gallery"] = load_images(dataset.gallery, (128, 64), "decode gallery")
    start = time.perf_counter()
    qf = embed_uint8(model, cache["query"], size, mean, std, device, batch_size, flip)
    gf = embed_uint8(model, cache["gallery"], size, mean, std, device, batch_size, flip)
    embed_s = time.perf_counter() - start
    distmat = re_ranking(qf, gf) if rerank else compute_distance_matrix(qf, gf, metric)
    q_pids, q_cams = labels(dataset.query)
    g_pids, g_cams = labels(dataset.gallery)
    start = time.perf_counter()
    r = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    rank_s = time.perf_counter() - start
    log.info("embedded %d images in %.1fs; ranking took %.2fs", len(qf) + len(gf), embed_s,
             rank_s)
    return {
        "mAP": 100 * r["mAP"], "rank1": 100 * r["cmc"][0], "rank5": 100 * r["cmc"][4],
        "rank10": 100 * r["cmc"][9], "mINP": 100 * r["mINP"],
        "num_query": len(dataset.query), "num_gallery": len(dataset.gallery),
        "cmc": [100 * float(c) for c in r["cmc"]], "flip": flip, "rerank": rerank,
        "embed_seconds": embed_s, "rank_seconds": rank_s, "_distmat": distmat,
    }
