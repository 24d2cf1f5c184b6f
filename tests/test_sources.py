"""Frame sources without a camera: stream reconnects through fake captures, and file readers
over tiny videos written here."""

import logging
import os
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from tracking.sources import (
    FileReader,
    ReconnectPolicy,
    SourceConfig,
    SourceError,
    StreamReader,
    VideoFile,
    open_capture,
    open_reader,
)

FAST = SourceConfig(open_timeout_s=3, backoff_s=0.005, backoff_max_s=0.02)


class FakeCapture:
    """A stream of ``frames`` 64x48 images (None: endless), one per ``period_s``; then it is
    lost, as a camera whose server died."""

    def __init__(self, frames: int | None = None, period_s: float = 0.0):
        self.left, self.period_s, self.released = frames, period_s, False

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(self.period_s)
        if self.left is not None:
            if self.left == 0:
                return False, None
            self.left -= 1
        return True, np.zeros((48, 64, 3), np.uint8)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 64.0,
                cv2.CAP_PROP_FRAME_HEIGHT: 48.0}.get(prop, 0.0)

    def isOpened(self) -> bool:  # OpenCV's name
        return not self.released

    def release(self) -> None:
        self.released = True


def scripted(*results: FakeCapture | None) -> Callable[[], FakeCapture | None]:
    """An opener that returns ``results`` in turn, then fails for good."""
    it: Iterator[FakeCapture | None] = iter(results)
    return lambda: next(it, None)


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def write_video(path, frames: int, fps: float = 10.0, noise: bool = False) -> None:
    """MJPG AVI: each frame is filled with 5 * its 0-based index (or noise), 64x48."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(frames):
        image = (rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) if noise
                 else np.full((48, 64, 3), 5 * i, np.uint8))
        writer.write(image)
    writer.release()


def test_policy_delays_double_and_cap():
    policy = ReconnectPolicy(initial_s=0.5, max_s=4.0)
    assert [policy.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(10_000) == 4.0  # a night-long outage does not overflow
    assert not policy.gives_up(1e9)
    limited = ReconnectPolicy(initial_s=1.0, max_s=8.0, give_up_s=10.0)
    assert limited.gives_up(10.0) and not limited.gives_up(9.9)
    assert limited.wait(3, down_s=7.5) == pytest.approx(2.5)  # not past the give-up time
    cfg = SourceConfig(backoff_s=0.1, backoff_max_s=2.0, give_up_s=30.0)
    assert cfg.policy() == ReconnectPolicy(0.1, 2.0, 30.0)
    assert SourceConfig().policy() == ReconnectPolicy()


def test_stream_reconnects_after_failed_reopens(caplog):
    opener = scripted(FakeCapture(3, 0.001), None, None, FakeCapture(None, 0.001))
    reader = StreamReader("door", "rtsp://cam/door", config=FAST, opener=opener)
    assert (reader.fps, reader.width, reader.height, reader.num_frames) == (30.0, 64, 48, None)
    seen = []
    with caplog.at_level(logging.WARNING, logger="tracking.sources"):
        reader.start()
        try:
            def enough() -> bool:
                if (frame := reader.latest()) is not None:
                    seen.append(frame)
                return bool(seen) and seen[-1].index >= 10
            wait_until(enough)
        finally:
            reader.close()
    health = reader.health
    assert health.reconnects == 1 and health.down_since is None
    assert health.outage_s >= 0.01  # it waited 0.005 s, then 0.01 s, before reopening
    indices = [f.index for f in seen]
    assert indices == sorted(set(indices)), "frame numbers keep counting across the outage"
    assert np.all(np.diff([f.time for f in seen]) > 0)
    leftover = int(reader.latest() is not None)
    assert health.frames >= 10 and health.dropped + len(seen) + leftover == health.frames
    assert reader.error is None
    assert any("reconnected after" in r.getMessage() for r in caplog.records)


def test_stream_down_too_long_is_given_up(caplog):
    cfg = SourceConfig(backoff_s=0.005, backoff_max_s=0.02, give_up_s=0.1)
    reader = StreamReader("door", "rtsp://cam/door", config=cfg,
                          opener=scripted(FakeCapture(3)))
    t = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tracking.sources"):
        reader.start()
        wait_until(lambda: reader.finished)
    assert time.monotonic() - t < 1.0
    assert isinstance(reader.error, SourceError)
    assert "camera door: given up after" in str(reader.error)
    assert reader.health.outage_s >= 0.1 and reader.health.reconnects == 0
    assert reader.latest() is not None  # its last frame is still handed out
    assert reader.latest() is None  # then it is just finished: no exception, others go on
    assert sum("given up" in r.getMessage() for r in caplog.records) == 1
    reader.close()


def test_stream_that_cannot_open_at_start_is_an_error():
    with pytest.raises(SourceError, match=r"camera door: cannot open rtsp://cam/door within "
                                          r"3 s; check the URL, that the camera is on"):
        StreamReader("door", "rtsp://cam/door", config=FAST, opener=lambda: None)


def test_open_capture_keeps_the_users_rtsp_options(monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")
    assert open_capture("rtsp://127.0.0.1:1/none", 0.5, 0.5) is None
    assert open_capture("/no/such/file.mp4", 0.5, 0.5) is None
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;udp"


def test_file_reader_gives_every_frame_in_order(tmp_path):
    path = tmp_path / "cam.avi"
    write_video(path, 12, fps=10.0)
    reader = FileReader("a", path, offset_s=1.5, queue_size=2).start()
    frames = []
    try:
        while (frame := reader.get(timeout=0.5)) is not None:
            frames.append(frame)
    finally:
        reader.close()
    assert (reader.fps, reader.num_frames, reader.width, reader.height) == (10.0, 12, 64, 48)
    assert [f.index for f in frames] == list(range(1, 13))
    assert [f.time for f in frames] == pytest.approx([i / 10 + 1.5 for i in range(12)])
    means = [f.image.mean() for f in frames]
    assert np.all(np.diff(means) > 0), "frames arrive in decode order"
    assert reader.ended_early is None and reader.health.frames == 12
    with pytest.raises(RuntimeError):
        FileReader("b", path, realtime=True).get()


def test_realtime_file_is_paced_to_its_clock(tmp_path):
    path = tmp_path / "cam.avi"
    write_video(path, 10, fps=50.0)
    t0 = time.monotonic()
    reader = FileReader("a", path, realtime=True, clock_zero=t0).start()
    seen = []
    try:
        while True:
            done = reader.finished  # before latest(): the last frame comes before finished
            if (frame := reader.latest()) is not None:
                seen.append(frame)
            elif done:
                break
            else:
                time.sleep(0.001)
    finally:
        reader.close()
    assert time.monotonic() - t0 >= 9 / 50 * 0.9  # ten frames at 50 fps
    assert [f.index for f in seen] == sorted(f.index for f in seen)
    assert seen[-1].index == 10
    assert all(0 <= f.time <= f.read_at - t0 + 1e-9 for f in seen)
    assert reader.health.dropped == 10 - len(seen)


def test_truncated_file_is_reported(tmp_path, caplog):
    path = tmp_path / "cam.avi"
    write_video(path, 40, noise=True)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="tracking.sources"):
        video = VideoFile(path)
        assert video.num_frames == 40  # the header still declares the whole file
        read = sum(1 for _ in video)
    assert 0 < read < 38
    assert video.ended_early == (read, 40)
    assert video.bad_frames == 0, "frames past the end are not 'skipped' frames"
    assert f"{path}: file ended after {read} of 40 frames (truncated or damaged?)" in [
        r.getMessage() for r in caplog.records]
    reader = FileReader("a", path).start()
    while reader.get(timeout=0.5) is not None:
        pass
    reader.close()
    assert reader.ended_early == (read, 40)


def test_open_reader_picks_the_reader(tmp_path):
    path = tmp_path / "cam.avi"
    write_video(path, 3)
    cfg = SourceConfig(queue_size=3, open_timeout_s=0.5)
    offline = open_reader("a", str(path), 2.0, live=False, clock_zero=0.0, config=cfg)
    replay = open_reader("b", str(path), 0.0, live=True, clock_zero=0.0, config=cfg)
    assert isinstance(offline, FileReader) and not offline.realtime
    assert offline.offset_s == 2.0
    assert isinstance(replay, FileReader) and replay.realtime
    offline.close()
    replay.close()
    with pytest.raises(SourceError, match="camera c: cannot open"):
        open_reader("c", "rtsp://127.0.0.1:1/none", 0.0, live=True, clock_zero=0.0,
                    config=cfg)


def test_reader_crash_reaches_the_consumer():
    def opener() -> FakeCapture | None:
        if not calls:
            calls.append(1)
            return FakeCapture(1)
        raise OSError("driver fell over")

    calls: list[int] = []
    reader = StreamReader("door", "0", config=FAST, opener=opener).start()
    wait_until(lambda: reader.finished)
    assert reader.latest() is not None
    with pytest.raises(SourceError, match="camera door: driver fell over"):
        reader.latest()
    reader.close()
