"""One-call feature extraction: crops in, L2-normalised embeddings out.

    from reid.inference import FeatureExtractor
    extractor = FeatureExtractor()             # the shipped model
    feats = extractor([crop_bgr, "person.jpg"])  # N x D torch tensor, unit length rows
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from reid.data.images import read_image
from reid.data.transforms import normalize
from reid.engine.checkpoint import CheckpointError, load_model

__all__ = ["SHIPPED_WEIGHTS", "CheckpointError", "FeatureExtractor", "default_weights",
           "embed_uint8", "pick_device"]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "mcreid_osnet_x0_25_market1501.pt"


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_weights() -> Path:
    if not SHIPPED_WEIGHTS.is_file():
        raise FileNotFoundError(f"the shipped re-ID model {SHIPPED_WEIGHTS} is missing; "
                                "reinstall mcreid or pass --weights")
    return SHIPPED_WEIGHTS


@torch.inference_mode()
def embed_uint8(model: torch.nn.Module, images: torch.Tensor, size: Sequence[int],
                mean: Sequence[float], std: Sequence[float], device: torch.device,
                batch_size: int = 256, flip: bool = False) -> torch.Tensor:
    """Embeddings of an N x 3 x h x w uint8 RGB tensor; ``flip`` averages with the mirror."""
    model.eval()
    outs = []
    steps = range(0, len(images), batch_size)
    for s in tqdm(steps, desc="embed", leave=False, mininterval=2, disable=len(steps) < 20):
        x = normalize(images[s:s + batch_size].to(device), tuple(size), mean, std)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        f = model(x)
        if flip:
            f = torch.nn.functional.normalize(f + model(x.flip(3)), dim=1)
        outs.append(f.float().cpu())
    if not outs:
        return torch.empty(0, getattr(model, "embedding_dim", 0))
    return torch.cat(outs)


class FeatureExtractor:
    def __init__(self, weights: str | Path | None = None, device: str = "auto",
                 batch_size: int = 64, flip: bool = False):
        self.weights = Path(weights or default_weights())
        self.model, self.meta = load_model(self.weights)
        self.device = pick_device(device)
        self.model.to(self.device)
        self.size = tuple(self.meta["input_size"])
        self.batch_size, self.flip = batch_size, flip

    @property
    def dim(self) -> int:
        return self.meta["embedding_dim"]

    @cached_property
    def identity(self) -> dict:
        """Which model this is, for stores of its vectors that must not mix models: vectors
        of two checkpoints are not comparable even when arch and size agree, so the file's
        hash decides; the rest is for people reading the store."""
        digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()[:16]
        return {"sha256": digest, "weights": self.weights.name, "arch": self.meta["arch"],
                "embedding_dim": self.dim}

    def __call__(self, crops: Sequence[np.ndarray | str | Path]) -> torch.Tensor:
        h, w = self.size
        arrays = []
        for c in crops:
            image = read_image(str(c)) if isinstance(c, (str, Path)) else c
            if image is None or image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ValueError("each crop must be a non-empty H x W x 3 BGR image")
            arrays.append(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1])
        if not arrays:
            return torch.empty(0, self.dim)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).permute(0, 3, 1, 2)
        return embed_uint8(self.model, batch, self.size, self.meta["mean"], self.meta["std"],
                           self.device, self.batch_size, self.flip)
