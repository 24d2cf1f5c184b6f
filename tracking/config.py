"""Tracking configuration: configs/tracking/*.yaml plus ``section.key=value`` overrides.

``${MCREID_SHARED}`` in a value expands to the shared data folder (default ``../shared``).
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import yaml

from tracking.tracker import TrackerConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tracking" / "default.yaml"


class UsageError(ValueError):
    pass


def _expand(value):
    if isinstance(value, str):
        shared = os.environ.get("MCREID_SHARED", str(Path.cwd() / ".." / "shared"))
        return value.replace("${MCREID_SHARED}", shared)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


def load_tracking_config(path: str | None = None, overrides: list[str] = ()) -> dict:
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise UsageError(f"config file {path} not found; see configs/tracking/")
    with open(path) as f:
        try:
            cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"{path} is not valid YAML: {e}") from e
    for text in overrides:
        key, sep, raw = text.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise UsageError(f"override {text!r} must look like section.key=value, "
                             "e.g. tracker.max_lost=90")
        if section not in cfg or name not in cfg[section]:
            known = ", ".join(f"{s}.{k}" for s, v in cfg.items() for k in v)
            raise UsageError(f"unknown config key {key!r}; known: {known}")
        cfg[section][name] = yaml.safe_load(raw) if raw else None
    return _expand(cfg)


def tracker_config(cfg: dict) -> TrackerConfig:
    """The ``tracker:`` section as a TrackerConfig, each value coerced to its field's type
    (YAML reads ``1e9`` as a string and ``1`` as an int)."""
    known = {f.name for f in fields(TrackerConfig)}
    section = cfg.get("tracker", {})
    unknown = set(section) - known
    if unknown:
        raise UsageError(f"unknown tracker setting(s) {sorted(unknown)}; known: {sorted(known)}")
    defaults = TrackerConfig()
    values = {}
    for key, value in section.items():
        kind = type(getattr(defaults, key))
        try:
            values[key] = (value if kind is bool and isinstance(value, bool)
                           else kind(float(value)) if kind in (int, float) else kind(value))
        except (TypeError, ValueError) as e:
            raise UsageError(f"tracker.{key}={value!r} is not a {kind.__name__}") from e
    return TrackerConfig(**values)
