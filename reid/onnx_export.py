"""ONNX export of a checkpoint, checked against PyTorch with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reid.engine.checkpoint import load_model


def export_onnx(weights: str | Path, output: str | Path, batch: int = 4) -> float:
    """Write ``output`` (dynamic batch axis); return max |onnxruntime - torch| on one batch."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise FileNotFoundError("ONNX export needs the extra: pip install -e '.[onnx]'") from e
    model, meta = load_model(weights)
    h, w = meta["input_size"]
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    torch.onnx.export(model, (x,), str(tmp), input_names=["images"],
                      output_names=["embeddings"], opset_version=17, dynamo=False,
                      dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})
    tmp.replace(output)
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return float(np.abs(got - want).max())
