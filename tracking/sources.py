"""Frame sources: video files read at full speed in decode order, and live cameras (RTSP,
HTTP, webcams) read in a thread per camera that survives outages."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


def is_stream(source: str | int) -> bool:
    """RTSP/HTTP URLs and webcam indices are live; anything else is a file path."""
    text = str(source)
    return text.isdigit() or text.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http",
                                                                   "https", "udp", "tcp"}


@dataclass
class Frame:
    index: int            # 1-based: decode order for files, received order for streams
    time: float           # seconds: media time + offset for files, since the run began for live
    image: np.ndarray
    read_at: float        # time.monotonic() when read, for lag


@dataclass
class Health:
    frames: int = 0
    dropped: int = 0      # live: frames replaced by a newer one before they were used
    reconnects: int = 0
    down_since: float | None = None
    outage_s: float = 0.0

    def line(self, seconds: float) -> str:
        state = " DOWN" if self.down_since is not None else ""
        return (f"{self.frames / max(seconds, 1e-9):.1f}fps drop {self.dropped} "
                f"reconn {self.reconnects}{state}")


class CameraReader:
    """Reads one camera in its own thread, so a slow or dead camera never blocks the others.

    Offline files go through a bounded queue: every frame is kept and the reader waits for the
    consumer. Live sources (streams, or files replayed in real time next to streams) keep only
    the newest frame: an unread older frame is dropped and counted. A stream that drops or
    stalls (read timeout) is reopened with exponential backoff, forever; one that cannot be
    opened at all at start is an error, since that is usually a wrong URL.
    """

    def __init__(self, name: str, source: str | int, offset: float = 0.0, live: bool = False,
                 clock_zero: float | None = None, open_timeout_s: float = 5.0,
                 read_timeout_s: float = 5.0, backoff_s: tuple[float, float] = (0.5, 8.0),
                 queue_size: int = 8):
        self.name, self.source, self.offset = name, source, offset
        self.stream = is_stream(source)
        self.live = live or self.stream
        self.timeouts = (open_timeout_s, read_timeout_s)
        self.backoff = backoff_s
        self.health = Health()
        self.clock_zero = time.monotonic() if clock_zero is None else clock_zero
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.finished = False
        self.error: Exception | None = None
        if self.stream:
            cap = self._open()
            if cap is None:
                raise SourceError(f"camera {name}: cannot open {source} within "
                                  f"{open_timeout_s:.0f} s; check the URL, that the camera is "
                                  "on, and the network")
            self._cap = cap
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            if self.fps > 200:  # some streams report a time base, not a frame rate
                self.fps = 25.0
        else:
            self._file = VideoFile(source)
            self.fps = self._file.fps
        self.width, self.height = self._size()
        self.num_frames = None if self.stream else self._file.num_frames
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def _size(self) -> tuple[int, int]:
        cap = self._cap if self.stream else self._file.cap
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def _open(self):
        # TCP: RTP over UDP loses packets (and so whole frames) under load
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        text = str(self.source)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.timeouts[0] * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.timeouts[1] * 1000)]
        cap = (cv2.VideoCapture(int(text)) if text.isdigit()
               else cv2.VideoCapture(text, cv2.CAP_FFMPEG, params))
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def start(self) -> CameraReader:
        self._thread.start()
        return self

    def _publish(self, frame: Frame) -> None:
        self.health.frames += 1
        if not self.live:
            while not self._stop.is_set():
                try:
                    self._queue.put(frame, timeout=0.2)
                    return
                except queue.Full:
                    continue
            return
        with self._lock:
            if self._latest is not None:
                self.health.dropped += 1
            self._latest = frame

    def _run(self) -> None:
        try:
            self._read_stream() if self.stream else self._read_file()
        except Exception as e:  # surfaced to the consumer by get()/latest()
            self.error = e
        finally:
            self.finished = True

    def _read_file(self) -> None:
        start = time.monotonic()
        for index, image in self._file:
            if self._stop.is_set():
                break
            media = (index - 1) / self.fps
            if self.live:  # replayed next to live streams: pace to the file's own clock
                time.sleep(max(0.0, start + media - time.monotonic()))
                stamp = time.monotonic() - self.clock_zero
            else:
                stamp = media + self.offset
            self._publish(Frame(index, stamp, image, time.monotonic()))
        self._file.close()

    def _read_stream(self) -> None:
        cap, index, delay = self._cap, 0, self.backoff[0]
        while not self._stop.is_set():
            if cap is None:
                cap = self._open()
                if cap is None:
                    self._stop.wait(delay)
                    delay = min(2 * delay, self.backoff[1])
                    continue
                outage = time.monotonic() - self.health.down_since
                self.health.outage_s += outage
                self.health.down_since = None
                self.health.reconnects += 1
                delay = self.backoff[0]
                log.warning("camera %s: reconnected after %.1f s", self.name, outage)
            ok, image = cap.read()
            if ok and image is not None:
                index += 1
                now = time.monotonic()
                self._publish(Frame(index, now - self.clock_zero, image, now))
                continue
            cap.release()
            cap = None
            if not self._stop.is_set():
                self.health.down_since = time.monotonic()
                log.warning("camera %s: stream lost (ended or no frame for %.0f s); "
                            "reconnecting", self.name, self.timeouts[1])
        if cap is not None:
            cap.release()

    def get(self, timeout: float = 1.0) -> Frame | None:
        """Offline: the next frame, waiting for it; None once the file is done."""
        while True:
            try:
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                if self.finished and self._queue.empty():
                    self._raise()
                    return None

    def latest(self) -> Frame | None:
        """Live: the newest frame not handed out yet, or None."""
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is None and self.finished:
            self._raise()
        return frame

    def _raise(self) -> None:
        if self.error is not None:
            raise SourceError(f"camera {self.name}: {self.error}") from self.error

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeouts[1] + 2)
