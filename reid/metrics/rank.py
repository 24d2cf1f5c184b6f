"""CMC, mAP and mINP under the Market-1501 protocol, without sorting the gallery.

For each query the gallery images of the same person seen by the same camera are removed;
queries with no remaining true match are skipped (as torchreid does).

Only the ranks of the true matches matter. With a query's m true-match distances sorted,
p_1 <= ... <= p_m, every kept gallery item falls in the bucket "number of p_j below it"
(one binary search each); the rank of p_j is the number of items in buckets 0..j-1. This is
O(G log m) per query instead of the O(G log G) of a full sort, and about 5x faster on the
3,368 x 15,913 Market matrix.
"""

from __future__ import annotations

import numpy as np
import torch


def evaluate_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                  q_camids: np.ndarray, g_camids: np.ndarray, max_rank: int = 50,
                  chunk: int = 256) -> dict:
    """Returns ``{"mAP", "cmc" (array of max_rank), "mINP", "num_valid"}``, fractions in [0, 1]."""
    dist = torch.as_tensor(np.asarray(distmat))
    num_q, num_g = dist.shape
    if num_q != len(q_pids) or num_g != len(g_pids):
        raise ValueError(f"distmat is {num_q} x {num_g} but there are {len(q_pids)} query and "
                         f"{len(g_pids)} gallery labels")
    max_rank = min(max_rank, num_g)
    qp, gp = torch.as_tensor(np.asarray(q_pids)), torch.as_tensor(np.asarray(g_pids))
    qc, gc = torch.as_tensor(np.asarray(q_camids)), torch.as_tensor(np.asarray(g_camids))

    cmc_sum = torch.zeros(max_rank, dtype=torch.float64)
    ap_sum = inp_sum = 0.0
    num_valid = 0
    for s in range(0, num_q, chunk):
        d = dist[s:s + chunk]
        same_pid = gp[None] == qp[s:s + chunk, None]
        removed = same_pid & (gc[None] == qc[s:s + chunk, None])
        match = same_pid & ~removed
        m = match.sum(1)
        ok = m > 0
        if not ok.any():
            continue
        d, match, removed, m = d[ok], match[ok], removed[ok], m[ok]
        num_valid += len(m)
        top = int(m.max())
        p_sorted = torch.topk(d.masked_fill(~match, float("inf")), top, dim=1,
                              largest=False, sorted=True).values.contiguous()
        kept = d.masked_fill(removed, float("inf")).contiguous()
        bucket = torch.searchsorted(p_sorted, kept)  # how many true matches lie closer
        counts = torch.zeros(len(m), top + 1, dtype=torch.int64)
        counts.scatter_add_(1, bucket, torch.ones_like(bucket))
        rank = counts.cumsum(1)[:, :top].double()  # 1-based rank of the j-th true match
        j = torch.arange(1, top + 1, dtype=torch.float64)
        real = j[None] <= m[:, None]
        ap_sum += float(((j / rank) * real).sum(1).div(m).sum())
        first = rank[:, 0]
        cmc_sum += (first[:, None] <= torch.arange(1, max_rank + 1)[None]).double().sum(0)
        last = rank.gather(1, (m - 1)[:, None]).squeeze(1)
        inp_sum += float((m / last).sum())

    if num_valid == 0:
        raise ValueError("no query has a true match in the gallery")
    return {"mAP": ap_sum / num_valid, "cmc": (cmc_sum / num_valid).numpy(),
            "mINP": inp_sum / num_valid, "num_valid": num_valid}
