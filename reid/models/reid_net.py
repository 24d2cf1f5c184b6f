"""The re-ID network: backbone, then a BNNeck (Luo et al., 2019).

Metric losses see the pooled feature before the BatchNorm; the ID classifier and inference
use the feature after it, which inference L2-normalises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.models.backbones import build_backbone


class ReidNet(nn.Module):
    def __init__(self, arch: str, num_classes: int):
        super().__init__()
        self.arch = arch
        self.backbone = build_backbone(arch)
        self.embedding_dim = self.backbone.out_dim
        self.bnneck = nn.BatchNorm1d(self.embedding_dim)
        self.bnneck.bias.requires_grad_(False)  # a shift-free BN keeps the space centred
        self.classifier = nn.Linear(self.embedding_dim, max(num_classes, 1), bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """Training: (pre-BN feature, logits). Eval: L2-normalised post-BN embedding."""
        feat = self.backbone(x)
        neck = self.bnneck(feat)
        if self.training:
            return feat, self.classifier(neck)
        return F.normalize(neck, dim=1)
