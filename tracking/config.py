"""Tracking settings, from one place: configs/tracking/default.yaml, then a file given by the
user (configs/tracking/*.yaml or a camera site, configs/cameras/*.yaml) merged over it, then
``section.key=value`` overrides, read into typed dataclasses. Every key must be a field of its
section's dataclass, so a typo is an error that names the nearest known key, and every value
is coerced to its field's type, so a wrong one fails here rather than deep in a run.

``${MCREID_SHARED}`` in a value expands to the shared data folder (reid.engine.config).
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import yaml

from reid.engine.config import expand_shared
from reid.runtime import RUNTIMES
from tracking.multicam import Camera, IdentityConfig
from tracking.sources import SourceConfig
from tracking.tracker import TrackerConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tracking" / "default.yaml"


class UsageError(ValueError):
    pass


@dataclass
class DetectorConfig:
    weights: str                 # YOLO weights, .pt or an OpenVINO folder
    imgsz: int = 640
    conf: float = 0.1            # low boxes are kept: the tracker's second stage uses them
    iou: float = 0.7
    batch: int = 4
    stride: int = 1              # detect every Nth frame, Kalman prediction between
    device: str = "cpu"


@dataclass
class ReidConfig:
    weights: str | None = None   # None: the shipped model; or .onnx / .xml + sidecar YAML
    device: str = "auto"
    enabled: bool = True
    runtime: str = "auto"        # reid.runtime.RUNTIMES: auto | torch | onnx | openvino


SECTIONS: dict[str, type] = {"detector": DetectorConfig, "reid": ReidConfig,
                             "tracker": TrackerConfig, "identity": IdentityConfig,
                             "sources": SourceConfig}


@dataclass
class Settings:
    detector: DetectorConfig
    reid: ReidConfig = field(default_factory=ReidConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    sources: SourceConfig = field(default_factory=SourceConfig)
    cameras: list[Camera] = field(default_factory=list)


def load_settings(path: str | None = None, overrides: Sequence[str] = (),
                  cameras: Sequence[Camera] = (), overlapping_views: bool = False) -> Settings:
    """The settings of a run: defaults, then the file at ``path``, then ``overrides``
    (``section.key=value``); ``cameras`` (given on the command line) join the file's, and
    ``overlapping_views`` makes all cameras one group of views of the same area."""
    raw: dict[str, Any] = {"cameras": [], **{s: {} for s in SECTIONS}}
    _merge(raw, _read_yaml(DEFAULT_CONFIG), str(DEFAULT_CONFIG))
    if path:
        _merge(raw, _read_yaml(Path(path)), str(path))
    for text in overrides:
        _merge(raw, _parse_override(text), "override")
    raw = expand_shared(raw)
    site = _cameras(raw["cameras"]) + list(cameras)
    names = _unique_names(site)
    if overlapping_views:
        raw["identity"]["overlapping"] = [names]
    settings = Settings(detector=_build(DetectorConfig, "detector", raw["detector"]),
                        reid=_build(ReidConfig, "reid", raw["reid"]),
                        tracker=_build(TrackerConfig, "tracker", raw["tracker"]),
                        identity=_identity(raw["identity"], names),
                        sources=_build(SourceConfig, "sources", raw["sources"]),
                        cameras=site)
    _check(settings)
    return settings


def site_cameras(path: str | None) -> list[str]:
    """The camera names a site file lists (none without a file)."""
    return [c.name for c in _cameras(_read_yaml(Path(path)).get("cameras"))] if path else []


def field_names(cls: type) -> list[str]:
    """The keys a section (or a camera entry) may hold: its dataclass's fields."""
    return [f.name for f in fields(cls)]


def _hint(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown(what: str, key: str, known: Sequence[str]) -> UsageError:
    return UsageError(f"unknown {what} {key}; {_hint(key.rpartition('.')[2], known)}"
                      f"known: {', '.join(known)}")


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


def _merge(raw: dict, update: dict, where: str) -> None:
    """Sets each ``section: {key: value}`` of ``update`` in ``raw``, refusing unknown names
    (``cameras:`` is replaced whole)."""
    for section, values in update.items():
        if section not in raw:
            raise UsageError(f"{where}: {_unknown('section', str(section), list(raw))}")
        if section == "cameras":
            raw[section] = values
            continue
        if not isinstance(values, dict):
            raise UsageError(f"{where}: {section}: must hold key: value lines, not {values!r}")
        known = field_names(SECTIONS[section])
        for key, value in values.items():
            if key not in known:
                raise UsageError(f"{where}: {_unknown('key', f'{section}.{key}', known)}")
            raw[section][key] = value


def _parse_override(text: str) -> dict:
    """``tracker.max_lost_s=4`` -> {"tracker": {"max_lost_s": 4}} (the value read as YAML)."""
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or section == "cameras":
        raise UsageError(f"override {text!r} must look like section.key=value, e.g. "
                         "tracker.max_lost_s=4 (cameras come from --camera or a site file)")
    try:
        return {section: {name: yaml.safe_load(value) if value else None}}
    except yaml.YAMLError as e:
        raise UsageError(f"override {text!r}: the value is not valid YAML") from e


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _to_float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _to_float(value: Any) -> float:
    """YAML reads ``1e9`` as a string and ``1`` as an int: both are numbers here."""
    if isinstance(value, bool):
        raise TypeError(value)
    return float(value)


def _to_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(value)
    return str(value)


CONVERTERS: dict[type, Callable[[Any], Any]] = {bool: _to_bool, int: _to_int,
                                                float: _to_float, str: _to_str}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (``X | None`` allows null); other types pass as given."""
    kinds = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None and type(None) in kinds:
        return None
    kind = next(k for k in kinds if k is not type(None))
    if kind not in CONVERTERS:
        return value
    try:
        return CONVERTERS[kind](value)
    except (TypeError, ValueError):
        expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise UsageError(f"{key}={value!r} is not valid: expected {expected}") from None


def _build(cls: type, where: str, values: dict, **ready: Any) -> Any:
    """``cls`` from ``values``, each coerced to its field's type; ``ready`` are given as is."""
    hints = get_type_hints(cls)
    return cls(**{k: _coerce(f"{where}.{k}", v, hints[k]) for k, v in values.items()}, **ready)


def _cameras(entries: Any) -> list[Camera]:
    """The ``cameras:`` list of a site: entries with name:, source:, optional offset_s: and a
    3 x 3 homography:."""
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise UsageError("cameras: must be a list of {name, source, ...} entries")
    return [_camera(i, entry) for i, entry in enumerate(entries)]


def _camera(i: int, entry: Any) -> Camera:
    if not isinstance(entry, dict):
        raise UsageError(f"cameras[{i}] must be a mapping with name: and source:")
    known = field_names(Camera)
    for key in entry:
        if key not in known:
            raise UsageError(f"cameras[{i}]: {_unknown('key', str(key), known)}")
    if not entry.get("name") or entry.get("source") is None:
        raise UsageError(f"cameras[{i}] needs both name: and source:")
    values = {k: v for k, v in entry.items() if k != "homography"}
    return _build(Camera, f"cameras[{i}]", values,
                  homography=_homography(entry["name"], entry.get("homography")))


def _homography(camera: str, value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        h = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as e:
        raise UsageError(f"camera {camera}: homography must be 3 x 3 numbers") from e
    if h.shape != (3, 3):
        raise UsageError(f"camera {camera}: homography must be 3 x 3, got {h.shape}")
    return h


def _unique_names(cameras: Sequence[Camera]) -> list[str]:
    names: list[str] = []
    for camera in cameras:
        if camera.name in names:
            raise UsageError(f"camera name {camera.name!r} is used twice; names must be unique")
        names.append(camera.name)
    return names


def _identity(section: dict, names: list[str]) -> IdentityConfig:
    """The ``identity:`` section, with the camera names of overlapping groups and transit
    windows checked against the cameras of the run."""
    values = dict(section)
    overlapping = _overlapping(values.pop("overlapping", None) or [], names)
    transit = _transit(values.pop("transit", None) or [], names)
    identity = _build(IdentityConfig, "identity", values, overlapping=overlapping,
                      transit=transit)
    choices = ("auto", "always", "never")
    if identity.offline not in choices:
        raise UsageError(f"identity.offline={identity.offline!r} must be one of {choices}; "
                         f"{_hint(str(identity.offline), choices)}")
    return identity


def _camera_name(name: Any, names: list[str]) -> str:
    if str(name) not in names:
        raise UsageError(f"identity: camera {name!r} is not among the cameras {names}; "
                         f"{_hint(str(name), names)}")
    return str(name)


def _overlapping(groups: Any, names: list[str]) -> set[frozenset[str]]:
    """[[c0, c1, c2]] -> every pair of the group, as frozensets."""
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise UsageError("identity.overlapping is a list of camera groups, e.g. [[c0, c1]]")
    pairs = set()
    for group in groups:
        group = [_camera_name(n, names) for n in group]
        pairs |= {frozenset((a, b)) for a in group for b in group if a != b}
    return pairs


def _transit(windows: Any, names: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """[{from: c0, to: c1, min_s: 0, max_s: 60}] -> {(c0, c1): (0.0, 60.0)}."""
    try:
        parsed = [(w["from"], w["to"], float(w["min_s"]), float(w["max_s"])) for w in windows]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError("identity.transit entries look like {from: c0, to: c1, "
                         "min_s: 0, max_s: 60}") from e
    return {(_camera_name(a, names), _camera_name(b, names)): (lo, hi)
            for a, b, lo, hi in parsed}


def _check(settings: Settings) -> None:
    """Checks that span fields or sections."""
    if settings.detector.stride < 1:
        raise UsageError(f"detector.stride={settings.detector.stride} must be a whole number "
                         ">= 1")
    if settings.reid.runtime not in RUNTIMES:
        raise UsageError(f"reid.runtime={settings.reid.runtime!r} must be one of {RUNTIMES}; "
                         f"{_hint(settings.reid.runtime, RUNTIMES)}")
    if len(settings.cameras) > 1 and not settings.reid.enabled:
        raise UsageError("several cameras need re-ID: leave reid.enabled on")
    if (any(c.homography is not None for c in settings.cameras)
            and not settings.identity.ground_gate):
        raise UsageError("cameras have homographies but identity.ground_gate is not set: "
                         "give the ground-plane distance within which two views see one person")
