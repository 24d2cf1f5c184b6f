"""Quadruplet loss (Chen et al., CVPR 2017) with in-batch hard mining.

Term 1 is the batch-hard triplet term. Term 2 asks the anchor-positive distance to be
smaller, by a smaller margin, than the distance of a negative pair that involves neither the
anchor nor its identity: the hardest (closest) pair of two other, different people. This
pushes inter-class distances up everywhere, not only around the anchor.

Margins are fixed or adaptive: alpha = w * (mean negative distance - mean positive distance)
over the batch, w = 1 for term 1 and 0.5 for term 2, detached from the graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.distance import euclidean_dist
from reid.losses.triplet import hardest_pairs


def hardest_foreign_negative_pair(dist: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
    """Per anchor: min d(j, k) over pairs with pid_j != pid_k and both != pid_anchor."""
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    ids, inverse = torch.unique(pids, return_inverse=True)
    # member[u, j]: sample j belongs to identity u
    member = ids.unsqueeze(1) == pids.unsqueeze(0)
    involved = member.unsqueeze(2) | member.unsqueeze(1)  # U x B x B: pair touches identity u
    pair_dist = dist.masked_fill(same, float("inf")).unsqueeze(0)
    per_identity = pair_dist.masked_fill(involved, float("inf")).flatten(1).amin(1)
    return per_identity[inverse]


def adaptive_margin(dist: torch.Tensor, pids: torch.Tensor, weight: float) -> torch.Tensor:
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    not_self = ~torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    d = dist.detach()
    gap = d[~same].mean() - d[same & not_self].mean()
    return (weight * gap).clamp_min(0)


class QuadrupletLoss(torch.nn.Module):
    def __init__(self, margin1: float = 0.3, margin2: float = 0.15, adaptive: bool = False,
                 w1: float = 1.0, w2: float = 0.5, use_triplet_term: bool = True):
        super().__init__()
        self.margin1, self.margin2, self.adaptive = margin1, margin2, adaptive
        self.w1, self.w2 = w1, w2
        self.use_triplet_term = use_triplet_term

    def margins(self, dist: torch.Tensor, pids: torch.Tensor):
        if self.adaptive:
            return adaptive_margin(dist, pids, self.w1), adaptive_margin(dist, pids, self.w2)
        return self.margin1, self.margin2

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if len(torch.unique(pids)) < 3:
            raise ValueError("the quadruplet loss needs at least 3 identities per batch")
        dist = euclidean_dist(feats, feats)
        a1, a2 = self.margins(dist, pids)
        d_pos, d_neg = hardest_pairs(dist, pids)
        d_foreign = hardest_foreign_negative_pair(dist, pids)
        loss = F.relu(d_pos - d_foreign + a2).mean()
        if self.use_triplet_term:
            loss = loss + F.relu(d_pos - d_neg + a1).mean()
        return loss
