"""People detector: ultralytics YOLO loaded from an explicit file, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("YOLO_OFFLINE", "1")


class DetectorError(ValueError):
    pass


class Detector:
    """Boxes of people (COCO class 0) as N x 5 arrays: x1, y1, x2, y2, score.

    ``weights`` is a .pt checkpoint or an OpenVINO export folder (needs the ``openvino``
    package; several times faster on CPU).
    """

    def __init__(self, weights: str | Path, imgsz: int = 640, conf: float = 0.1,
                 iou: float = 0.7, device: str = "cpu", batch: int = 8):
        weights = Path(weights)
        if not weights.exists():
            raise DetectorError(f"detector weights {weights} not found; pass --detector PATH "
                                "(in this workplace: ../shared/weights/detector/)")
        is_openvino = weights.is_dir()
        if is_openvino:
            try:
                import openvino  # noqa: F401
            except ImportError as e:
                raise DetectorError(f"{weights} is an OpenVINO export; install the extra: "
                                    "pip install -e '.[openvino]'") from e
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(weights), task="detect")
        except Exception as e:  # ultralytics raises many kinds for a bad file
            raise DetectorError(f"cannot load detector weights {weights}: {e}") from e
        self.imgsz, self.conf, self.iou, self.batch = imgsz, conf, iou, batch
        self.device = "cpu" if is_openvino else device
        if is_openvino:  # the shipped export has a static batch of 1 and a fixed input size
            self.batch = 1
            self.imgsz = self._export_imgsz(weights) or imgsz

    @staticmethod
    def _export_imgsz(folder: Path) -> int | None:
        import yaml

        meta = folder / "metadata.yaml"
        if not meta.is_file():
            return None
        size = (yaml.safe_load(meta.read_text()) or {}).get("imgsz")
        return int(max(size)) if isinstance(size, list) else None

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        threads = torch.get_num_threads()
        for s in range(0, len(frames), self.batch):
            results = self.model.predict(frames[s:s + self.batch], imgsz=self.imgsz,
                                         conf=self.conf, iou=self.iou, classes=[0],
                                         device=self.device, verbose=False)
            # ultralytics' device set-up caps torch at cpu_count - 1 threads (one thread on
            # a 2-core machine), which would also slow re-ID: give the threads back
            torch.set_num_threads(threads)
            for r in results:
                b = r.boxes
                out.append(np.concatenate([b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None]],
                                          axis=1).astype(np.float32) if len(b)
                           else np.zeros((0, 5), np.float32))
        return out
