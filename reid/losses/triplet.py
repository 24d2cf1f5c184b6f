"""Batch-hard triplet loss (Hermans et al., 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.distance import euclidean_dist


def hardest_pairs(dist: torch.Tensor, pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor: distance to its farthest positive and to its closest negative."""
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    d_pos = dist.masked_fill(~same, float("-inf")).amax(1)
    d_neg = dist.masked_fill(same, float("inf")).amin(1)
    return d_pos, d_neg


def margin_or_soft(gap: torch.Tensor, margin: float | None) -> torch.Tensor:
    """Hinge max(0, gap + margin), or softplus(gap) when margin is None (soft margin)."""
    if margin is None:
        return F.softplus(gap).mean()
    return F.relu(gap + margin).mean()


class TripletLoss(torch.nn.Module):
    def __init__(self, margin: float | None = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        d_pos, d_neg = hardest_pairs(euclidean_dist(feats, feats), pids)
        return margin_or_soft(d_pos - d_neg, self.margin)
