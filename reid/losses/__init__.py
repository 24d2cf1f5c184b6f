"""Losses, each switched on by a non-zero weight in the config's ``loss:`` section."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.distance import euclidean_dist
from reid.losses.quadruplet import QuadrupletLoss, require_identities
from reid.losses.triplet import TripletLoss


class CrossEntropyLabelSmooth(torch.nn.Module):
    """ID loss; label smoothing (Szegedy et al.) curbs over-confidence on 751 classes."""

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, pids, label_smoothing=self.epsilon)


__all__ = ["CrossEntropyLabelSmooth", "QuadrupletLoss", "TripletLoss", "euclidean_dist",
           "require_identities"]
