"""Training configuration: YAML files under configs/reid/ plus ``key=value`` overrides.

Defaults live here, in one place; a config file only states what it changes.
``${MCREID_SHARED}`` in a value expands to the shared data folder: the MCREID_SHARED environment
variable, else the ``shared`` folder beside the checkout (the same wherever a command runs).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",               # auto | cpu | cuda | cuda:N
    "model": {
        "arch": "osnet_x0_25",
        "init": "random",           # random | imagenet | a weights file | one of our checkpoints
    },
    "data": {
        "name": "market1501",       # market1501 | folder | csv
        "root": "${MCREID_SHARED}/data/market1501",
        "input_size": [256, 128],   # height, width fed to the network
        "store_size": None,         # decoded size kept in memory; None = native 128x64 Market
        "subset_ids": None,         # train on the first N identities only (smoke runs)
    },
    "sampler": {"p": 16, "k": 4},
    "augment": {"flip": 0.5, "pad": 10, "erase": 0.5,
                "jitter": 0.0, "jitter_strength": 0.2, "grey": 0.0},  # colour: off
    "loss": {
        "id": 1.0,                  # cross-entropy weight; 0 disables
        "label_smooth": 0.1,
        "triplet": 1.0,             # batch-hard triplet weight
        "triplet_margin": 0.3,      # null = soft margin
        "quadruplet": 0.0,          # quadruplet weight (its first term is batch-hard triplet)
        "quad_margin1": 0.3,        # on raw features, like triplet_margin
        "quad_margin2": 0.15,       # pair term's margin; must be < quad_margin1
        "quad_weight": 1.0,         # pair term's weight inside the loss (paper: 1)
        "quad_adaptive": False,     # paper's margins from the batch's mean distance gap
        "quad_warmup": 0,           # epochs with the pair term off (triplet term only)
    },
    "optim": {
        "name": "adam",             # adam | sgd
        "lr": 3.5e-4,
        "weight_decay": 5e-4,
        "momentum": 0.9,
        "epochs": 60,
        "warmup_epochs": 5,
        "schedule": "cosine",       # cosine | step
        "milestones": [30, 50],     # step schedule, in epochs
        "gamma": 0.1,
    },
    "train": {
        "amp": "auto",              # auto (bf16 on GPU) | bf16 | off
        "channels_last": True,
        "compile": False,           # torch.compile the backbone (GPU: fewer kernel launches)
        "eval_every": 10,           # epochs; 0 = only at the end
        "eval_at_end": True,
        "max_iters": None,          # stop after this many iterations (smoke runs)
    },
    "eval": {"metric": "cosine", "flip": False, "batch_size": 256},
}


class ConfigError(ValueError):
    pass


REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> str:
    """The shared data folder (datasets, weights): MCREID_SHARED, else ``shared`` beside the
    checkout, so that a command run from any folder finds the same data."""
    return os.environ.get("MCREID_SHARED") or str(REPO_ROOT.parent / "shared")


def expand_shared(value: Any) -> Any:
    """``value`` with ``${MCREID_SHARED}`` replaced in every string, through dicts and lists;
    the one expansion the training and tracking configs share."""
    if isinstance(value, str):
        return value.replace("${MCREID_SHARED}", shared_dir())
    if isinstance(value, dict):
        return {k: expand_shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_shared(v) for v in value]
    return value


def _merge(base: dict, update: dict, where: str = "") -> dict:
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"unknown config key '{where}{key}'; known keys here: "
                              f"{', '.join(sorted(base))}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{key} must be a section, not {value!r}")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value
    return base


def parse_override(text: str) -> dict:
    """``optim.lr=1e-3`` -> {"optim": {"lr": 0.001}} (values parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. optim.epochs=30")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw else None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path} not found; see configs/reid/ for examples")
        with open(path) as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{path} is not valid YAML: {e}") from e
        _merge(cfg, data)
    for text in overrides:
        _merge(cfg, parse_override(text))
    return expand_shared(cfg)
