"""Frame sources: video files read at full speed in decode order (``VideoFile``,
``FileReader``), and live cameras (RTSP, HTTP, webcams) read in a thread per camera that
survives outages (``StreamReader``). ``open_reader`` picks the reader a camera needs."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

import cv2
import numpy as np

log = logging.getLogger(__name__)

EARLY_END_SLACK = 2  # frames a file may end short of its declared count (counts are estimates)


class SourceError(ValueError):
    pass


@dataclass
class SourceConfig:
    """How cameras are read (the ``sources:`` section of a tracking config)."""

    open_timeout_s: float = 5.0   # a stream that does not open within this is down
    read_timeout_s: float = 5.0   # ... or that delivers no frame for this long
    backoff_s: float = 0.5        # first wait before reopening a lost stream
    backoff_max_s: float = 8.0    # the wait doubles up to this
    give_up_s: float | None = None  # a stream down this long ends its camera (None: never)
    queue_size: int = 8           # files: frames decoded ahead of the consumer

    def policy(self) -> ReconnectPolicy:
        return ReconnectPolicy(self.backoff_s, self.backoff_max_s, self.give_up_s)


@dataclass
class ReconnectPolicy:
    """When to reopen a lost stream: waits doubling from ``initial_s`` up to ``max_s`` between
    attempts, and, with ``give_up_s``, an end to one outage that lasts that long (a camera
    taken away for good should not be retried all night)."""

    initial_s: float = 0.5
    max_s: float = 8.0
    give_up_s: float | None = None

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th (0-based) failed reopen of one outage."""
        return min(self.initial_s * 2.0 ** min(attempt, 64), self.max_s)

    def gives_up(self, down_s: float) -> bool:
        return self.give_up_s is not None and down_s >= self.give_up_s

    def wait(self, attempt: int, down_s: float) -> float:
        """``delay(attempt)``, cut short so that the give-up time is not overshot."""
        if self.give_up_s is None:
            return self.delay(attempt)
        return max(0.0, min(self.delay(attempt), self.give_up_s - down_s))


class Capture(Protocol):
    """What the readers use of a ``cv2.VideoCapture`` (tests pass fakes)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def isOpened(self) -> bool: ...  # OpenCV's name
    def release(self) -> None: ...


def frame_size(cap: Capture | Any) -> tuple[int, int]:
    return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))


def open_capture(source: str | int, open_timeout_s: float,
                 read_timeout_s: float) -> cv2.VideoCapture | None:
    """An opened capture of a stream or webcam, or None. FFmpeg gets the timeouts, so a dead
    camera fails within them instead of hanging its reader."""
    text = str(source)
    if text.isdigit():
        cap = cv2.VideoCapture(int(text))
    else:
        if text.lower().startswith(("rtsp://", "rtsps://")):
            _prefer_rtsp_over_tcp()
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
        cap = cv2.VideoCapture(text, cv2.CAP_FFMPEG, params)
    if cap.isOpened():
        return cap
    cap.release()
    return None


def _prefer_rtsp_over_tcp() -> None:
    """RTP over UDP loses packets (and so whole frames) under load, so RTSP goes over TCP.
    OpenCV has no per-capture option for the transport; its FFmpeg backend reads this
    process-wide variable at each open. The only place it is set, and never over a value
    the user chose."""
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class VideoFile:
    """Frames of a video file. A frame that fails to decode mid-file is counted and skipped
    (its index still advances, so frame numbers keep matching the file). A file that stops
    well before the frame count its container declares is reported in ``ended_early``, since
    a truncated copy otherwise looks like a short video."""

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
        self.width, self.height = frame_size(self.cap)
        self.bad_frames = 0
        self.max_bad = max_bad
        self.ended_early: tuple[int, int] | None = None  # (frames read, frames declared)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (1-based frame index, BGR frame)."""
        index, bad_run, lost, decoded = 0, 0, 0, 0  # lost: failed grabs since the last good
        while True:
            grabbed = self.cap.grab()
            if not grabbed and not (self.num_frames and index < self.num_frames
                                    and bad_run < self.max_bad):
                break
            index += 1
            lost = 0 if grabbed else lost + 1
            ok, frame = self.cap.retrieve() if grabbed else (False, None)
            if not ok or frame is None:
                self.bad_frames += 1
                bad_run += 1
                continue
            bad_run = 0
            decoded += 1
            yield index, frame
        self._report_end(index - lost, lost, decoded)

    def _report_end(self, read: int, lost: int, decoded: int) -> None:
        """Failed grabs after the last frame are the end of the file, not skipped frames."""
        self.bad_frames -= lost
        if self.bad_frames:
            log.warning("%s: %d frame(s) failed to decode and were skipped", self.path,
                        self.bad_frames)
        if decoded == 0:
            raise SourceError(f"{self.path} holds no decodable frame (empty or corrupt)")
        if self.num_frames and self.num_frames - read > EARLY_END_SLACK:
            self.ended_early = (read, self.num_frames)
            log.warning("%s: file ended after %d of %d frames (truncated or damaged?)",
                        self.path, read, self.num_frames)

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


class _Reader:
    """What file and stream readers share: a thread per camera, so a slow or dead camera never
    blocks the others, and a latest-frame slot for live use, where an unread older frame is
    replaced by the newer one and counted as dropped."""

    def __init__(self, name: str, clock_zero: float | None, join_timeout_s: float):
        self.name = name
        self.clock_zero = time.monotonic() if clock_zero is None else clock_zero
        self.health = Health()
        self.finished = False
        self.error: Exception | None = None
        self._fatal = False  # error is a crash (raised to the consumer), not a planned end
        self._latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._join_timeout_s = join_timeout_s
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def bad_frames(self) -> int:
        """Frames that failed to decode and were skipped (files only)."""
        return 0

    @property
    def ended_early(self) -> tuple[int, int] | None:
        """(frames read, frames declared) once a truncated file has ended (files only)."""
        return None

    def _read(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Frees the source once the thread is gone (or was never started)."""
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self._read()
        except Exception as e:  # surfaced to the consumer by get()/latest()
            self.error, self._fatal = e, True
        finally:
            self.finished = True

    def _offer(self, frame: Frame) -> None:
        """Live: make ``frame`` the newest one, dropping an unread older frame."""
        self.health.frames += 1
        with self._lock:
            if self._latest is not None:
                self.health.dropped += 1
            self._latest = frame

    def latest(self) -> Frame | None:
        """Live: the newest frame not handed out yet, or None."""
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is None and self.finished:
            self._raise()
        return frame

    def _raise(self) -> None:
        if self._fatal and self.error is not None:
            raise SourceError(f"camera {self.name}: {self.error}") from self.error

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._join_timeout_s)
        if not self._thread.is_alive():
            self._release()


class FileReader(_Reader):
    """A video file. Offline, frames go through a bounded queue: every frame is kept and the
    reader waits for the consumer (``get``). With ``realtime`` (a file replayed next to live
    streams) it is paced to the file's own clock and only the newest frame is kept
    (``latest``)."""

    def __init__(self, name: str, path: str | Path, offset_s: float = 0.0,
                 realtime: bool = False, clock_zero: float | None = None, queue_size: int = 8):
        super().__init__(name, clock_zero, join_timeout_s=2.0)
        self.path, self.offset_s, self.realtime = Path(path), offset_s, realtime
        self._file = VideoFile(path)
        self.fps, self.num_frames = self._file.fps, self._file.num_frames
        self.width, self.height = self._file.width, self._file.height
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=queue_size)

    @property
    def ended_early(self) -> tuple[int, int] | None:
        return self._file.ended_early

    @property
    def bad_frames(self) -> int:
        return self._file.bad_frames

    def _read(self) -> None:
        start = time.monotonic()
        try:
            for index, image in self._file:
                media = (index - 1) / self.fps
                if not self.realtime:
                    self._put(Frame(index, media + self.offset_s, image, time.monotonic()))
                elif not self._stop.wait(max(0.0, start + media - time.monotonic())):
                    now = time.monotonic()
                    self._offer(Frame(index, now - self.clock_zero, image, now))
                if self._stop.is_set():
                    break
        finally:
            self._file.close()

    def _release(self) -> None:
        self._file.close()

    def _put(self, frame: Frame) -> None:
        """Offline: wait for room in the queue (or for close)."""
        self.health.frames += 1
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue

    def get(self, timeout: float = 1.0) -> Frame | None:
        """Offline: the next frame, waiting for it; None once the file is done."""
        if self.realtime:
            raise RuntimeError(f"camera {self.name}: a realtime reader is read with latest()")
        while True:
            try:
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                if self.finished and self._queue.empty():
                    self._raise()
                    return None


class StreamReader(_Reader):
    """A live camera (RTSP/HTTP URL or webcam index), newest frame only (``latest``). A stream
    that drops or stalls (read timeout) is reopened with the config's backoff, and ended if
    it stays down longer than its give-up time; one that cannot be opened at all at start is
    an error, since that is usually a wrong URL. ``opener`` replaces ``open_capture`` (tests
    pass fake captures)."""

    def __init__(self, name: str, source: str | int, clock_zero: float | None = None,
                 config: SourceConfig | None = None,
                 opener: Callable[[], Capture | None] | None = None):
        cfg = config or SourceConfig()
        super().__init__(name, clock_zero, join_timeout_s=cfg.read_timeout_s + 2)
        self.source, self.config, self.policy = source, cfg, cfg.policy()
        self._opener = opener or (lambda: open_capture(source, cfg.open_timeout_s,
                                                       cfg.read_timeout_s))
        cap = self._opener()
        if cap is None:
            raise SourceError(f"camera {name}: cannot open {source} within "
                              f"{cfg.open_timeout_s:.0f} s; check the URL, that the camera is "
                              "on, and the network")
        self._cap: Capture | None = cap
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.fps = 25.0 if fps > 200 else fps  # some streams report a time base, not a rate
        self.width, self.height = frame_size(cap)
        self.num_frames: int | None = None

    def _read(self) -> None:
        cap, index = self._cap, 0
        while not self._stop.is_set():
            if cap is None and (cap := self._reconnect()) is None:
                break
            ok, image = cap.read()
            if ok and image is not None:
                index += 1
                now = time.monotonic()
                self._offer(Frame(index, now - self.clock_zero, image, now))
                continue
            cap.release()
            cap = None
            if not self._stop.is_set():
                self.health.down_since = time.monotonic()
                log.warning("camera %s: stream lost (ended or no frame for %.0f s); "
                            "reconnecting", self.name, self.config.read_timeout_s)
        if cap is not None:
            cap.release()

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()

    def _reconnect(self) -> Capture | None:
        """Reopens the lost stream, waiting longer after each failure; None once closed or
        given up."""
        attempt, since = 0, self.health.down_since or time.monotonic()
        while not self._stop.is_set():
            cap = self._opener()
            down_s = time.monotonic() - since
            if cap is not None:
                self._back_up(down_s)
                return cap
            if self.policy.gives_up(down_s):
                self._give_up(down_s)
                return None
            self._stop.wait(self.policy.wait(attempt, down_s))
            attempt += 1
        return None

    def _back_up(self, down_s: float) -> None:
        self.health.outage_s += down_s
        self.health.down_since = None
        self.health.reconnects += 1
        log.warning("camera %s: reconnected after %.1f s", self.name, down_s)

    def _give_up(self, down_s: float) -> None:
        """Ends this camera only; the consumer sees it finished and the others go on. The
        health keeps ``down_since`` set: the camera is still down."""
        self.health.outage_s += down_s
        self.error = SourceError(f"camera {self.name}: given up after {down_s:.1f} s down "
                                 f"(give_up_s {self.policy.give_up_s:g})")
        log.warning("%s; the other cameras go on", self.error)


def open_reader(name: str, source: str, offset_s: float, live: bool, clock_zero: float,
                config: SourceConfig) -> FileReader | StreamReader:
    """The reader a camera needs: a stream reader for URLs and webcams (``offset_s`` does not
    apply: live frames are stamped on arrival), else a file reader, replayed in real time
    when ``live`` (next to streams)."""
    if is_stream(source):
        return StreamReader(name, source, clock_zero=clock_zero, config=config)
    return FileReader(name, source, offset_s=offset_s, realtime=live, clock_zero=clock_zero,
                      queue_size=config.queue_size)
