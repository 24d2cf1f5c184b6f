"""Augmentations that run on whole uint8 batches on the training device.

Each trick is a few lines and switched on or off from the config (``augment:`` section),
in the manner of reid-strong-baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentConfig:
    flip: float = 0.5          # probability of a horizontal flip
    pad: int = 10              # zero padding before a random crop back to size; 0 disables
    erase: float = 0.5         # probability of random erasing
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_ratio: float = 0.3   # aspect ratios in [r, 1/r]
    jitter: float = 0.0        # probability of colour jitter (other cameras' colour casts)
    jitter_strength: float = 0.2  # brightness, contrast, saturation scaled by [1-s, 1+s]
    grey: float = 0.0          # probability of a greyscale image (colour is unreliable)


def normalize(x: torch.Tensor, size: tuple[int, int], mean=IMAGENET_MEAN,
              std=IMAGENET_STD) -> torch.Tensor:
    """uint8 N x 3 x h x w RGB -> float N x 3 x H x W, resized and normalised."""
    x = x.float().div_(255)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def _flip(x: torch.Tensor, p: float, g: torch.Generator | None) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device, generator=g) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def _pad_crop(x: torch.Tensor, pad: int, g: torch.Generator | None) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=g)
    ox = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=g)
    rows = (oy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols]


def _erase(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator | None) -> torch.Tensor:
    """Random erasing (Zhong et al.) filled with 0, i.e. the mean pixel after normalisation."""
    n, _, h, w = x.shape
    dev = x.device
    lo, hi = cfg.erase_area
    area = (lo + (hi - lo) * torch.rand(n, device=dev, generator=g)) * h * w
    log_r = torch.log(torch.tensor(cfg.erase_ratio, device=dev))
    ratio = torch.exp(log_r + (-2 * log_r) * torch.rand(n, device=dev, generator=g))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (torch.rand(n, device=dev, generator=g) * (h - eh + 1)).floor()
    left = (torch.rand(n, device=dev, generator=g) * (w - ew + 1)).floor()
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((ys >= top.view(-1, 1, 1)) & (ys < (top + eh).view(-1, 1, 1))
              & (xs >= left.view(-1, 1, 1)) & (xs < (left + ew).view(-1, 1, 1)))
    apply = torch.rand(n, device=dev, generator=g) < cfg.erase
    mask = (inside & apply.view(-1, 1, 1)).unsqueeze(1)
    return x.masked_fill(mask, 0.0)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Grey level of an RGB batch (ITU-R 601 weights), N x 1 x h x w."""
    return 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]


def _jitter(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator | None) -> torch.Tensor:
    """Colour jitter on 0-255 RGB, torchvision's order: brightness, contrast about the
    image's mean grey, saturation about each pixel's grey; one draw per image turns it on."""
    n, dev = x.shape[0], x.device
    on = (torch.rand(n, device=dev, generator=g) < cfg.jitter).view(n, 1, 1, 1)
    bright, contrast, sat = (
        torch.where(on, 1 + cfg.jitter_strength * (2 * torch.rand(
            n, 1, 1, 1, device=dev, generator=g) - 1), 1.0) for _ in range(3))
    x = (x * bright).clamp(0, 255)
    mean = _luma(x).mean(dim=(2, 3), keepdim=True)
    x = (mean + contrast * (x - mean)).clamp(0, 255)
    grey = _luma(x)
    return (grey + sat * (x - grey)).clamp(0, 255)


def _grey(x: torch.Tensor, p: float, g: torch.Generator | None) -> torch.Tensor:
    apply = torch.rand(x.shape[0], device=x.device, generator=g) < p
    return torch.where(apply.view(-1, 1, 1, 1), _luma(x).expand_as(x), x)


def augment(x: torch.Tensor, size: tuple[int, int], cfg: AugmentConfig,
            g: torch.Generator | None = None, mean=IMAGENET_MEAN,
            std=IMAGENET_STD) -> torch.Tensor:
    """Training view of a uint8 batch: colour jitter and greyscale (when on), resize, flip,
    pad + crop, normalise, erase."""
    if cfg.jitter > 0 or cfg.grey > 0:  # on 0-255 floats, which normalize takes as well
        x = x.float()
        x = _jitter(x, cfg, g) if cfg.jitter > 0 else x
        x = _grey(x, cfg.grey, g) if cfg.grey > 0 else x
    x = normalize(x, size, mean, std)
    if cfg.flip > 0:
        x = _flip(x, cfg.flip, g)
    if cfg.pad > 0:
        x = _pad_crop(x, cfg.pad, g)
    if cfg.erase > 0:
        x = _erase(x, cfg, g)
    return x
