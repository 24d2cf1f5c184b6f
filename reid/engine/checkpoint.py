"""One checkpoint format for training, resume, evaluation and the tracker.

A checkpoint records everything needed to rebuild and feed the model (architecture,
embedding size, input size, normalisation, training config), so ``--weights X`` is enough.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reid.io import atomic_path
from reid.models import ReidNet

FORMAT = "mcreid.reid/1"


class CheckpointError(ValueError):
    pass


def atomic_save(obj: Any, path: str | Path) -> None:
    """Write to a temp file beside ``path`` and rename: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def model_meta(model: ReidNet, cfg: dict) -> dict:
    return {
        "format": FORMAT,
        "arch": model.arch,
        "num_classes": model.classifier.out_features,
        "embedding_dim": model.embedding_dim,
        "input_size": list(cfg["data"]["input_size"]),
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "config": cfg,
    }


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path} is not a readable checkpoint ({e.__class__.__name__}); "
                              "it may be truncated — re-download or re-train it") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mcreid re-ID checkpoint (format {FORMAT}); "
                              "initialisation files from other projects go in model.init")
    return ckpt


def load_model(path: str | Path, expect_arch: str | None = None) -> tuple[ReidNet, dict]:
    """Rebuild the network from a checkpoint; returns (model in eval mode, metadata)."""
    ckpt = read_checkpoint(path)
    if expect_arch and ckpt["arch"] != expect_arch:
        raise CheckpointError(f"{path} holds a {ckpt['arch']} model, not {expect_arch}; "
                              f"set model.arch={ckpt['arch']} or choose another checkpoint")
    state = ckpt["model"]
    has_classifier = "classifier.weight" in state
    model = ReidNet(ckpt["arch"], ckpt["num_classes"] if has_classifier else 1)
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if has_classifier or not k.startswith("classifier.")]
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match architecture {ckpt['arch']}: "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    return model.eval(), meta


def export_inference(src: str | Path, dst: str | Path, half: bool = True) -> None:
    """A small deployable checkpoint: no optimizer, no classifier, fp16 weights."""
    ckpt = read_checkpoint(src)
    state = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in ckpt["model"].items() if not k.startswith("classifier.")}
    out = {k: v for k, v in ckpt.items() if k not in ("optimizer", "model", "rng")}
    out["model"] = state
    atomic_save(out, dst)
