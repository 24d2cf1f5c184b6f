"""ONNX and OpenVINO IR export of a checkpoint, each with the sidecar YAML that says how to
feed it (reid/runtime.py), checked against PyTorch with onnxruntime."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from reid.engine.checkpoint import load_model
from reid.io import publish
from reid.runtime import write_sidecar

EXPORT_VERSION = 1  # part of cached exports' names: bump when the exported graph changes


def _temp_beside(path: Path) -> Path:
    """A unique temporary name beside ``path`` (two processes may export at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would outlive the rename
    return Path(tmp)


def export_onnx(weights: str | Path, output: str | Path, batch: int = 4) -> float:
    """Write ``output`` (dynamic batch axis) and its sidecar; return max |onnxruntime - torch|
    on one batch."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise FileNotFoundError("ONNX export needs the extra: pip install -e '.[onnx]'") from e
    model, meta = load_model(weights)
    h, w = meta["input_size"]
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    output = Path(output)
    tmp = _temp_beside(output)
    try:
        torch.onnx.export(model, (x,), str(tmp), input_names=["images"],
                          output_names=["embeddings"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})
        write_sidecar(output, meta["input_size"], meta["mean"], meta["std"])
        publish(tmp, output)  # last: a model file present means its sidecar is too
    finally:
        tmp.unlink(missing_ok=True)
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return float(np.abs(got - want).max())


def export_openvino(weights: str | Path, output: str | Path) -> float:
    """Write an OpenVINO IR ``output`` (.xml, with its .bin) and its sidecar, by way of the
    ONNX export; return that export's max |onnxruntime - torch|."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.stem}.", dir=output.parent) as tmp:
        onnx = Path(tmp) / "model.onnx"
        diff = export_onnx(weights, onnx)
        onnx_to_openvino(onnx, output)
    return diff


def onnx_to_openvino(onnx: str | Path, output: str | Path) -> None:
    """An ONNX model with its sidecar -> OpenVINO IR ``output`` (.xml + .bin) with a copy."""
    try:
        import openvino as ov
    except ImportError as e:
        raise FileNotFoundError("OpenVINO export needs it: pip install -e '.[openvino]'") from e
    onnx, output = Path(onnx), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.stem}.", dir=output.parent) as tmp:
        ir = Path(tmp) / "model.xml"
        ov.save_model(ov.convert_model(onnx), ir, compress_to_fp16=False)
        shutil.copyfile(onnx.with_suffix(".yaml"), ir.with_suffix(".yaml"))
        publish(ir.with_suffix(".yaml"), output.with_suffix(".yaml"))
        publish(ir.with_suffix(".bin"), output.with_suffix(".bin"))  # the .xml names no path
        publish(ir, output)
