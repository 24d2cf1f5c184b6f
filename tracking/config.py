"""Tracking configuration: configs/tracking/default.yaml, then a config file given by the
user (configs/tracking/*.yaml or a camera site, configs/cameras/*.yaml) merged over it, then
``section.key=value`` overrides. Every key must exist in the defaults, so a typo is an error
that names the nearest known key.

``${MCREID_SHARED}`` in a value expands to the shared data folder (default ``../shared``).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import yaml

from tracking.multicam import Camera, IdentityConfig
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
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"config file {path} not found; see configs/tracking/ and "
                         "configs/cameras/")
    with open(path) as f:
        try:
            cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise UsageError(f"{path} must hold sections such as tracker:, cameras:")
    return cfg


def _set(cfg: dict, section: str, name: str, value, where: str) -> None:
    if section not in cfg:
        raise UsageError(f"{where}: unknown section {section!r}; {_hint(section, cfg)}"
                         f"known: {', '.join(cfg)}")
    if section == "cameras":
        cfg[section] = value
        return
    if name not in cfg[section]:
        raise UsageError(f"{where}: unknown key {section}.{name}; "
                         f"{_hint(name, cfg[section])}known: {', '.join(cfg[section])}")
    cfg[section][name] = value


def load_tracking_config(path: str | None = None, overrides: list[str] = ()) -> dict:
    cfg = _read_yaml(DEFAULT_CONFIG)
    if path:
        for section, values in _read_yaml(Path(path)).items():
            if section == "cameras" or not isinstance(values, dict):
                _set(cfg, section, "", values, str(path))
                continue
            for name, value in values.items():
                _set(cfg, section, name, value, str(path))
    for text in overrides:
        key, sep, raw = text.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise UsageError(f"override {text!r} must look like section.key=value, "
                             "e.g. tracker.max_lost_s=4")
        _set(cfg, section, name, yaml.safe_load(raw) if raw else None, "override")
    return _expand(cfg)


CAMERA_KEYS = {"name", "source", "offset_s", "homography"}


def cameras_from(cfg: dict) -> list[Camera]:
    """The ``cameras:`` list of a site config, checked: names unique, sources given,
    homographies 3 x 3."""
    entries = cfg.get("cameras") or []
    if not isinstance(entries, list):
        raise UsageError("cameras: must be a list of {name, source, ...} entries")
    cameras = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"cameras[{i}] must be a mapping with name: and source:")
        for key in entry:
            if key not in CAMERA_KEYS:
                raise UsageError(f"cameras[{i}]: unknown key {key!r}; {_hint(key, CAMERA_KEYS)}"
                                 f"known: {', '.join(sorted(CAMERA_KEYS))}")
        name, source = entry.get("name"), entry.get("source")
        if not name or source is None:
            raise UsageError(f"cameras[{i}] needs both name: and source:")
        if any(c.name == str(name) for c in cameras):
            raise UsageError(f"camera name {name!r} is used twice; names must be unique")
        h = entry.get("homography")
        if h is not None:
            h = np.asarray(h, dtype=float)
            if h.shape != (3, 3):
                raise UsageError(f"camera {name}: homography must be 3 x 3, got {h.shape}")
        try:
            offset = float(entry.get("offset_s", 0.0))
        except (TypeError, ValueError) as e:
            raise UsageError(f"camera {name}: offset_s must be seconds") from e
        cameras.append(Camera(str(name), str(source), offset, h))
    return cameras


def identity_config(cfg: dict, names: list[str]) -> tuple[IdentityConfig, int]:
    """The ``identity:`` section as (IdentityConfig, min_crops), with camera names in
    overlapping views and transit windows checked against the cameras of the run."""
    section = dict(cfg.get("identity", {}))

    def camera(name) -> str:
        if str(name) not in names:
            raise UsageError(f"identity: camera {name!r} is not among the cameras {names}; "
                             f"{_hint(str(name), names)}")
        return str(name)

    overlapping = set()
    for group in section.pop("overlapping", None) or []:
        group = [camera(n) for n in group]
        overlapping |= {frozenset((a, b)) for a in group for b in group if a != b}
    transit = {}
    for w in section.pop("transit", None) or []:
        try:
            transit[(camera(w["from"]), camera(w["to"]))] = (float(w["min_s"]),
                                                             float(w["max_s"]))
        except (KeyError, TypeError) as e:
            raise UsageError("identity.transit entries look like {from: c0, to: c1, "
                             "min_s: 0, max_s: 60}") from e
    min_crops = int(section.pop("min_crops", 5))
    try:
        for key in ("ground_gate", "ground_speed"):
            section[key] = None if section.get(key) is None else float(section[key])
        for key in ("max_distance", "ground_gap_s"):
            section[key] = float(section[key])
        section["bank"] = int(section["bank"])
    except (TypeError, ValueError) as e:
        raise UsageError(f"identity: {e}; distances, speeds and times are numbers") from e
    return IdentityConfig(overlapping=overlapping, transit=transit, **section), min_crops


def detector_stride(cfg: dict) -> int:
    value = cfg["detector"]["stride"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"detector.stride={value!r} must be a whole number >= 1")
    return value


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
