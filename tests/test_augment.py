"""Colour augmentations for other cameras (colour jitter, random greyscale): off by default,
switched on from the config, and each doing what it says on real Market-1501 crops."""

import pytest
import torch

from reid.data import AugmentConfig, augment, load_images
from reid.engine.config import load_config

PLAIN = {"flip": 0.0, "pad": 0, "erase": 0.0}
RAW = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # outputs are pixels / 255


@pytest.fixture(scope="module")
def crops(market):
    return load_images(market.train[:8], (128, 64))


def view(crops, seed=0, **cfg):
    g = torch.Generator().manual_seed(seed)
    return augment(crops, (256, 128), AugmentConfig(**{**PLAIN, **cfg}), g, **RAW)


def test_colour_tricks_are_off_by_default_and_switch_on_from_the_config():
    assert AugmentConfig().jitter == 0.0 and AugmentConfig().grey == 0.0
    cfg = load_config(None, ["augment.jitter=0.8", "augment.grey=0.1"])
    aug = AugmentConfig(**cfg["augment"])
    assert (aug.jitter, aug.grey, aug.jitter_strength) == (0.8, 0.1, 0.2)


def test_grey_makes_every_chosen_image_grey(crops):
    plain = view(crops)
    grey = view(crops, grey=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5)
    assert torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    assert not torch.allclose(plain[:, 0], plain[:, 2])  # real crops have colour
    some = view(crops, seed=3, grey=0.5)
    is_grey = [torch.allclose(some[i, 0], some[i, 2], atol=1e-5) for i in range(len(crops))]
    assert 0 < sum(is_grey) < len(crops)


def test_jitter_changes_colour_within_range_and_only_when_on(crops):
    plain = view(crops)
    assert torch.equal(view(crops, jitter=0.0), plain)
    assert torch.allclose(view(crops, jitter=1.0, jitter_strength=0.0), plain, atol=1e-5)
    jittered = view(crops, jitter=1.0, jitter_strength=0.4)
    assert jittered.min() >= 0 and jittered.max() <= 1
    changed = (jittered - plain).abs().mean(dim=(1, 2, 3))
    assert (changed > 1e-3).all()
    # brightness moves the mean level; contrast and saturation keep it near
    assert (jittered.mean(dim=(1, 2, 3)) - plain.mean(dim=(1, 2, 3))).abs().max() > 0.01
