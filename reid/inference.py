"""One-call feature extraction: crops in, L2-normalised embeddings out.

    from reid.inference import FeatureExtractor
    extractor = FeatureExtractor()             # the shipped model
    feats = extractor([crop_bgr, "person.jpg"])  # N x D torch tensor, unit length rows
    FeatureExtractor(runtime="onnx")           # same model, exported once, run by onnxruntime
    FeatureExtractor("my_reid.onnx")           # any ONNX / OpenVINO IR file + my_reid.yaml

Whatever runs the model, ``extractor.model`` is a torch module taking the normalised batch,
so ``embed_uint8`` and ``reid eval`` treat every runtime alike.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from reid.data.images import read_image
from reid.data.transforms import normalize
from reid.engine.checkpoint import CheckpointError, load_model, read_checkpoint
from reid.runtime import MODEL_FILES, ModelFileError, read_sidecar, resolve_runtime, sidecar_path

__all__ = ["SHIPPED_WEIGHTS", "CheckpointError", "FeatureExtractor", "default_weights",
           "embed_uint8", "pick_device"]

log = logging.getLogger(__name__)

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "mcreid_osnet_x0_25_market1501.pt"


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_weights() -> Path:
    if not SHIPPED_WEIGHTS.is_file():
        raise FileNotFoundError(f"the shipped re-ID model {SHIPPED_WEIGHTS} is missing; "
                                "reinstall mcreid or pass --weights")
    return SHIPPED_WEIGHTS


@torch.inference_mode()
def embed_uint8(model: torch.nn.Module, images: torch.Tensor, size: Sequence[int],
                mean: Sequence[float], std: Sequence[float], device: torch.device,
                batch_size: int = 256, flip: bool = False) -> torch.Tensor:
    """Embeddings of an N x 3 x h x w uint8 RGB tensor; ``flip`` averages with the mirror."""
    model.eval()
    outs = []
    steps = range(0, len(images), batch_size)
    for s in tqdm(steps, desc="embed", leave=False, mininterval=2, disable=len(steps) < 20):
        x = normalize(images[s:s + batch_size].to(device), tuple(size), mean, std)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        f = model(x)
        if flip:
            f = torch.nn.functional.normalize(f + model(x.flip(3)), dim=1)
        outs.append(f.float().cpu())
    if not outs:
        return torch.empty(0, getattr(model, "embedding_dim", 0))
    return torch.cat(outs)


def file_sha256(*paths: Path) -> str:
    """The first 16 hex digits of the sha256 of the files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


class ExternalNet(torch.nn.Module):
    """A model file run by another runtime, behind a checkpoint network's forward():
    normalised RGB N x 3 x H x W float batch in, L2-normalised N x D embeddings out."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], batch: int | None, bgr: bool):
        super().__init__()
        self.run, self.batch, self.bgr = run, batch, bgr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.flip(1) if self.bgr else x).float().cpu().contiguous().numpy()
        if self.batch is None:
            out = self.run(x)
        else:  # a model with a fixed batch size: whole chunks, the last one padded
            b, n = self.batch, len(x)
            x = np.concatenate([x, np.zeros((-n % b, *x.shape[1:]), x.dtype)])
            out = np.concatenate([self.run(x[i:i + b]) for i in range(0, len(x), b)])[:n]
        out = torch.from_numpy(np.ascontiguousarray(out))
        return torch.nn.functional.normalize(out.reshape(len(out), -1).float(), dim=1)


def _open_onnxruntime(path: Path) -> tuple[Callable, list]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise FileNotFoundError("runtime onnx needs onnxruntime: pip install -e '.[onnx]'") from e
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for unreadable files
        raise ModelFileError(f"{path} is not a readable ONNX model ({e.__class__.__name__})") from e
    inp = session.get_inputs()[0]  # dynamic dims are names or None: both become None
    dims = [d if isinstance(d, int) else None for d in inp.shape]
    return (lambda a: session.run(None, {inp.name: a})[0]), dims


def _open_openvino(path: Path) -> tuple[Callable, list]:
    try:
        import openvino as ov
    except ImportError as e:
        raise FileNotFoundError("runtime openvino needs it: pip install -e '.[openvino]'") from e
    core = ov.Core()
    try:
        model = core.read_model(str(path))
    except Exception as e:  # OpenVINO raises RuntimeError for any unreadable file
        kind = "OpenVINO IR (.xml with its .bin)" if path.suffix == ".xml" else "model"
        raise ModelFileError(f"{path} is not a readable {kind} ({e.__class__.__name__})") from e
    dims = [d.get_length() if d.is_static else None for d in model.input(0).get_partial_shape()]
    if len(dims) == 4 and dims[0] is not None:
        try:  # most models take any batch once asked to; those that cannot keep theirs
            model.reshape({model.input(0): [-1, *[d if d is not None else -1 for d in dims[1:]]]})
            dims[0] = None
        except Exception:
            pass
    compiled = core.compile_model(model, "CPU")
    output = compiled.output(0)
    return (lambda a: compiled(a)[output]), dims


def open_model_file(path: Path, runtime: str) -> tuple[ExternalNet, dict]:
    """An ONNX or OpenVINO IR re-ID model with its sidecar's preprocessing, as (model,
    metadata in a checkpoint's terms); a shape that disagrees with the sidecar is refused."""
    pre = read_sidecar(path)
    run, dims = (_open_onnxruntime if runtime == "onnx" else _open_openvino)(path)
    h, w = pre["input_size"]
    if len(dims) != 4 or dims[1] not in (3, None) or any(
            d not in (want, None) for d, want in zip(dims[2:], (h, w), strict=True)):
        raise ModelFileError(f"{path.name} takes inputs of shape {dims} (N, C, H, W) but "
                             f"{sidecar_path(path).name} says input_size {[h, w]}; "
                             "make them agree")
    net = ExternalNet(run, dims[0], pre["bgr"])
    try:
        net.embedding_dim = net(torch.zeros(1, 3, h, w)).shape[1]
    except Exception as e:  # the runtime's own error types
        raise ModelFileError(f"{path.name} failed on a 1 x 3 x {h} x {w} input "
                             f"({e.__class__.__name__}); check input_size in its sidecar") from e
    return net, {"arch": f"{runtime} model file", "embedding_dim": net.embedding_dim,
                 "input_size": [h, w], "mean": pre["mean"], "std": pre["std"]}


def exported_onnx(weights: Path) -> Path:
    """Our checkpoint as ONNX (with sidecar), exported once into the user cache, keyed by the
    checkpoint's hash: a new checkpoint is a new file, never a stale one."""
    from reid.data.archives import cache_dir
    from reid.onnx_export import EXPORT_VERSION, export_onnx

    path = cache_dir() / "exports" / f"{file_sha256(weights)}-v{EXPORT_VERSION}.onnx"
    if not path.is_file():
        diff = export_onnx(weights, path)
        log.info("exported %s to %s once (max |onnxruntime - torch| %.1e)", weights.name, path,
                 diff)
    return path


class FeatureExtractor:
    def __init__(self, weights: str | Path | None = None, device: str = "auto",
                 batch_size: int = 64, flip: bool = False, runtime: str = "auto"):
        """``weights``: a checkpoint (default the shipped one), or an ONNX / OpenVINO IR file
        with its sidecar YAML. ``runtime``: torch, onnx (onnxruntime), openvino, or auto (the
        file's own: torch for a checkpoint); onnx and openvino run a checkpoint through its
        ONNX export and run on the CPU."""
        self.weights = Path(weights or default_weights())
        try:
            self.runtime = resolve_runtime(self.weights, runtime)
            self.model, self.meta = self._load(self.runtime, device)
        except ModelFileError as e:  # tracking and the CLIs know a bad model as this
            raise CheckpointError(str(e)) from None
        self.model.to(self.device)
        self.size = tuple(self.meta["input_size"])
        self.batch_size, self.flip = batch_size, flip

    def _load(self, runtime: str, device: str) -> tuple[torch.nn.Module, dict]:
        if runtime == "torch":
            self.device = pick_device(device)
            return load_model(self.weights)
        if device not in ("auto", "cpu"):
            raise ModelFileError(f"runtime {runtime} runs on the CPU, not {device}; use device "
                                 "cpu (or auto), or runtime torch for a GPU")
        self.device = torch.device("cpu")
        if not self.weights.is_file():
            raise ModelFileError(f"re-ID model {self.weights} not found")
        if self.weights.suffix.lower() in MODEL_FILES:
            return open_model_file(self.weights, runtime)
        net, meta = open_model_file(exported_onnx(self.weights), runtime)
        return net, {**meta, "arch": read_checkpoint(self.weights)["arch"]}

    @property
    def dim(self) -> int:
        return self.meta["embedding_dim"]

    @cached_property
    def identity(self) -> dict:
        """Which model this is, for stores of its vectors that must not mix models: vectors
        of two checkpoints are not comparable even when arch and size agree, so the file's
        hash decides (a checkpoint's vectors are the same whichever runtime ran it: parity
        is tested); the rest is for people reading the store."""
        files = [self.weights]
        if self.weights.suffix.lower() == ".xml":  # an IR's weights are in its .bin
            files.append(self.weights.with_suffix(".bin"))
        return {"sha256": file_sha256(*files), "weights": self.weights.name,
                "arch": self.meta["arch"], "embedding_dim": self.dim, "runtime": self.runtime}

    def __call__(self, crops: Sequence[np.ndarray | str | Path]) -> torch.Tensor:
        h, w = self.size
        arrays = []
        for c in crops:
            image = read_image(str(c)) if isinstance(c, (str, Path)) else c
            if image is None or image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ValueError("each crop must be a non-empty H x W x 3 BGR image")
            arrays.append(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1])
        if not arrays:
            return torch.empty(0, self.dim)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).permute(0, 3, 1, 2)
        return embed_uint8(self.model, batch, self.size, self.meta["mean"], self.meta["std"],
                           self.device, self.batch_size, self.flip)
