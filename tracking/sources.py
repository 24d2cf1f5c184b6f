"""Frame sources. A video file is read at full speed, frame by frame, in decode order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


class SourceError(ValueError):
    pass


class VideoFile:
    """Frames of a video file. A frame that fails to decode mid-file is counted and skipped
    (its index still advances, so frame numbers keep matching the file)."""

    def __init__(self, path: str | Path, max_bad: int = 25):
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video {self.path} not found")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise SourceError(f"cannot open {self.path} as a video (unsupported or corrupt "
                              "file); convert it with ffmpeg to H.264 mp4")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.num_frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        self.width = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.bad_frames = 0
        self.max_bad = max_bad

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (1-based frame index, BGR frame)."""
        index, bad_run = 0, 0
        while True:
            ok = self.cap.grab()
            if not ok:
                if self.num_frames and index < self.num_frames and bad_run < self.max_bad:
                    index += 1
                    bad_run += 1
                    self.bad_frames += 1
                    continue
                break
            index += 1
            ok, frame = self.cap.retrieve()
            if not ok or frame is None:
                self.bad_frames += 1
                bad_run += 1
                continue
            bad_run = 0
            yield index, frame
        if self.bad_frames:
            log.warning("%s: %d frame(s) failed to decode and were skipped", self.path,
                        self.bad_frames)
        if index == 0:
            raise SourceError(f"{self.path} holds no decodable frame (empty or corrupt)")

    def close(self) -> None:
        self.cap.release()
