"""Which runtime embeds, and how a model file outside our checkpoint format is fed.

A checkpoint (.pt) records its own preprocessing; an ONNX file or an OpenVINO IR (.xml + .bin)
does not, so one sidecar YAML beside it (``model.onnx`` -> ``model.yaml``) says it, and is
the only place that does (``reid eval`` and ``track run`` both read it through
FeatureExtractor)::

    input_size: [256, 128]            # height, width the model takes
    channels: rgb                     # rgb | bgr: the order the model expects
    mean: [123.675, 116.28, 103.53]   # per channel, in that order, 0-255 pixel units
    std: [58.395, 57.12, 57.375]      # (a model fed raw pixels: mean [0, 0, 0], std [1, 1, 1])

Pixel units are OpenVINO's (mean_values / scale_values) and what model zoos publish.
No torch here: tracking's config checks ``reid.runtime`` against RUNTIMES without loading it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

# auto: torch for a checkpoint, onnxruntime for .onnx, OpenVINO for .xml
RUNTIMES = ("auto", "torch", "onnx", "openvino")
MODEL_FILES = {".onnx": "onnx", ".xml": "openvino"}
SIDECAR_KEYS = ("input_size", "channels", "mean", "std")
SIDECAR_HELP = ("input_size: [H, W], channels: rgb|bgr, mean: [3 numbers], std: [3 numbers] "
                "(0-255 pixel units, in the model's channel order)")


class ModelFileError(ValueError):
    """A model file, its sidecar or the runtime asked for cannot work together."""


def resolve_runtime(weights: Path, runtime: str) -> str:
    """The runtime that will run ``weights``: ``auto`` follows the file's kind; a choice the
    file cannot take is refused with what to use instead."""
    if runtime not in RUNTIMES:
        close = difflib.get_close_matches(runtime, RUNTIMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelFileError(f"unknown re-ID runtime {runtime!r}; {hint}known: "
                             f"{', '.join(RUNTIMES)}")
    kind = MODEL_FILES.get(weights.suffix.lower())
    if runtime == "auto":
        return kind or "torch"
    if kind == "openvino" and runtime != "openvino":
        raise ModelFileError(f"{weights.name} is an OpenVINO IR: only runtime openvino (or "
                             f"auto) runs it, not {runtime}")
    if kind == "onnx" and runtime == "torch":
        raise ModelFileError(f"{weights.name} is an ONNX file: PyTorch cannot run it; use "
                             "runtime onnx, openvino or auto")
    return runtime


def sidecar_path(model: str | Path) -> Path:
    return Path(model).with_suffix(".yaml")


def write_sidecar(model: str | Path, input_size, mean, std, channels: str = "rgb") -> Path:
    """The sidecar of an exported model; ``mean``/``std`` on the 0-1 scale (a checkpoint's)."""
    from reid.io import write_text_atomic

    path = sidecar_path(model)
    text = yaml.safe_dump({"input_size": [int(v) for v in input_size], "channels": channels,
                           "mean": [round(255 * m, 4) for m in mean],
                           "std": [round(255 * s, 4) for s in std]}, sort_keys=False)
    write_text_atomic(path, f"# preprocessing of {Path(model).name} (see reid/runtime.py)\n"
                      + text)
    return path


def read_sidecar(model: Path) -> dict:
    """A model file's preprocessing as a checkpoint records it: input_size, and mean/std on
    the 0-1 scale in RGB order (what reid.data.transforms.normalize takes), plus ``bgr``."""
    path = sidecar_path(model)
    if not path.is_file():
        raise ModelFileError(f"{model} needs its preprocessing in {path}: {SIDECAR_HELP}; "
                             "`reid export` writes one for our models")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ModelFileError(f"{path} is not valid YAML ({e.__class__.__name__})") from e
    raw = raw if isinstance(raw, dict) else {}
    missing = [k for k in SIDECAR_KEYS if k not in raw]
    if missing:
        raise ModelFileError(f"{path} lacks {', '.join(missing)}; it needs {SIDECAR_HELP}")
    unknown = sorted(set(raw) - set(SIDECAR_KEYS))
    if unknown:
        raise ModelFileError(f"{path}: unknown key {unknown[0]!r}; it holds {SIDECAR_HELP}")
    size, mean, std = (_numbers(path, k, raw[k], n) for k, n in
                       (("input_size", 2), ("mean", 3), ("std", 3)))
    if raw["channels"] not in ("rgb", "bgr"):
        raise ModelFileError(f"{path}: channels must be rgb or bgr, not {raw['channels']!r}")
    if min(size) < 1 or size != [int(v) for v in size]:
        raise ModelFileError(f"{path}: input_size must be two whole numbers [H, W] >= 1")
    if min(std) < 1:
        raise ModelFileError(f"{path}: std {std} looks like 0-1 values; the sidecar takes "
                             "0-255 pixel units (ImageNet: [58.395, 57.12, 57.375])")
    order = slice(None, None, -1) if raw["channels"] == "bgr" else slice(None)
    return {"input_size": [int(v) for v in size], "bgr": raw["channels"] == "bgr",
            "mean": [m / 255 for m in mean[order]], "std": [s / 255 for s in std[order]]}


def _numbers(path: Path, key: str, value, n: int) -> list[float]:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ModelFileError(f"{path}: {key} must be a list of {n} numbers, not {value!r}")
    return [float(v) for v in value]
