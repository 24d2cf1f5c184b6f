"""Helpers shared by the bench scripts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from a checkout
    sys.path.insert(0, str(ROOT))


def read_frames(path: str | Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video, decoded in order, and the seconds decoding took."""
    import cv2

    start = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, time.perf_counter() - start


def write_results(path: str | Path, obj) -> None:
    """The figures as JSON, written atomically."""
    from reid.io import write_json_atomic

    write_json_atomic(path, obj)
