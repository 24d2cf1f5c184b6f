"""Quadruplet loss (Chen et al., CVPR 2017) with per-anchor online hard mining.

For each anchor a the batch gives p, its farthest positive; n1, its closest negative; and
n2, the sample closest to n1 among a third identity (neither a's nor n1's). Then

    loss = mean relu(d(a,p) - d(a,n1) + m1) + w * mean relu(d(a,p) - d(n1,n2) + m2)

Term 1 is the batch-hard triplet term. Term 2 asks the anchor-positive distance to be smaller,
by the weaker margin m2 < m1, than the distance of a negative pair that does not contain the
anchor: it pushes people apart beyond the anchor's own neighbourhood.

Why n2 is mined from the anchor's n1: the first version took, per anchor identity, the closest
pair of two other people in the whole batch, so nearly every anchor pushed on the same one or
two pairs at full weight, and every ablation row lost 12-24 mAP. Tying the pair to the
anchor's own hardest negative (as the paper's quadruplet (a, p, n1, n2) shares n1 between its
terms) spreads term 2 over as many pairs as there are distinct hardest negatives.

Distances are Euclidean on the raw pre-BNNeck feature, not L2-normalised, exactly as the
triplet loss sees it; so the fixed margins live on the same scale as ``loss.triplet_margin``
(m1 = 0.3 by default, m2 = m1 / 2). The adaptive option is the paper's margin: the batch's
mean negative minus mean positive distance, times 1 (m1) or 0.5 (m2), detached; it follows
the feature scale, which nothing fixes for raw features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from reid.losses.distance import euclidean_dist


class Quadruplets(NamedTuple):
    """Per anchor, the batch indices of its p, n1 and n2."""

    pos: torch.Tensor
    neg: torch.Tensor
    neg2: torch.Tensor


def require_identities(n: int) -> None:
    """Term 2 needs a third identity besides the anchor's and its negative's."""
    if n < 3:
        raise ValueError(f"the quadruplet loss needs at least 3 identities per batch, got {n}; "
                         f"raise sampler.p")


def mine_quadruplets(dist: torch.Tensor, pids: torch.Tensor) -> Quadruplets:
    """Hardest p and n1 per anchor, then the third-identity sample n2 closest to that n1."""
    d = dist.detach()
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    pos = d.masked_fill(~same, float("-inf")).argmax(1)
    neg = d.masked_fill(same, float("inf")).argmin(1)
    third = ~same & (pids.unsqueeze(0) != pids[neg].unsqueeze(1))  # [a, k]: k is a 3rd id
    neg2 = d[neg].masked_fill(~third, float("inf")).argmin(1)
    return Quadruplets(pos, neg, neg2)


def adaptive_margin(dist: torch.Tensor, pids: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * (mean negative - mean positive distance): a margin that follows the scale."""
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    not_self = ~torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    d = dist.detach()
    gap = d[~same].mean() - d[same & not_self].mean()
    return (weight * gap).clamp_min(0)


class QuadrupletLoss(torch.nn.Module):
    """Triplet term + ``weight`` x pair term; the pair term is off for ``warmup`` epochs.

    weight = 1 is the paper's sum of the two terms; m2 < m1 already makes term 2 the weaker
    constraint. The trainer calls ``set_epoch`` at the start of every epoch.
    """

    def __init__(self, margin1: float = 0.3, margin2: float = 0.15, weight: float = 1.0,
                 adaptive: bool = False, warmup: int = 0):
        super().__init__()
        if not adaptive and margin2 >= margin1:
            raise ValueError(f"loss.quad_margin2 ({margin2}) must be smaller than "
                             f"loss.quad_margin1 ({margin1})")
        self.margin1, self.margin2, self.weight = margin1, margin2, weight
        self.adaptive, self.warmup, self.epoch = adaptive, warmup, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def margins(self, dist: torch.Tensor, pids: torch.Tensor) -> tuple:
        if self.adaptive:
            return adaptive_margin(dist, pids, 1.0), adaptive_margin(dist, pids, 0.5)
        return self.margin1, self.margin2

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        require_identities(len(torch.unique(pids)))
        dist = euclidean_dist(feats, feats)
        q = mine_quadruplets(dist, pids)
        rows = torch.arange(len(pids), device=pids.device)
        d_pos = dist[rows, q.pos]
        m1, m2 = self.margins(dist, pids)
        loss = F.relu(d_pos - dist[rows, q.neg] + m1).mean()
        weight = self.weight if self.epoch >= self.warmup else 0.0
        if weight:
            loss = loss + weight * F.relu(d_pos - dist[q.neg, q.neg2] + m2).mean()
        return loss
