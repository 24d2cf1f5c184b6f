from reid.models.backbones import ARCHS, build_backbone, load_backbone_weights
from reid.models.reid_net import ReidNet

__all__ = ["ARCHS", "ReidNet", "build_backbone", "load_backbone_weights"]
