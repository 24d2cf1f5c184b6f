"""``track worker``: some cameras of a site, read, detected and tracked as ``track run`` does
(tracking.pipeline.SiteRun), their tracklet events published to the site's broker
(tracking.broker) instead of decided here; ``track identities --broker`` decides them.

A worker claims its cameras before it loads a model (a camera another worker runs is an
error, exit 2), checks that its re-ID model is the site's, publishes each camera frame's
events with its seq (see tracking.broker), and logs one health line every ``status_s``.
When the broker goes away it retries with backoff; at ``--duration`` it ends cleanly
either way, its cameras' ends published when the broker can take them.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from tracking.broker import Entry, Keys, Link, Publisher, site_name
from tracking.config import Settings, UsageError
from tracking.events import TrackletEvent
from tracking.pipeline import Outputs, SiteRun, Step, build_models
from tracking.sources import is_stream

log = logging.getLogger(__name__)


class WorkerRun(SiteRun):
    """A site run of some cameras whose events go to the broker: no outputs, no identity
    service. A live camera's seq and track ids go on from what the site's broker has from
    it already (a restarted worker reuses none); a recording's are its frame numbers and
    its tracker's ids (a restarted worker re-makes them, and publishes only the new)."""

    def __init__(self, publisher: Publisher, settings: Settings, cameras, detector, embedder,
                 output_dir: Path, clock_zero: float | None):
        super().__init__(cameras, output_dir, detector, embedder, settings.tracker,
                         settings.identity, settings.sources, settings.detector.stride,
                         Outputs(video=False), clock_zero)
        self.publisher = publisher
        self.base = {c: publisher.published[c] if self.live else 0 for c in self.runs}
        self.track_base = {c: publisher.max_track[c] if self.live else 0 for c in self.runs}
        self.last = {c: 0 for c in self.runs}  # seq of the last frame per camera
        self.started = time.monotonic()

    def _sinks(self, outputs: Outputs) -> list:
        return []

    def _decide(self, step: Step | None, by_camera: dict[str, list[TrackletEvent]]) -> None:
        for name, events in by_camera.items():
            events = [dataclasses.replace(e, track_id=e.track_id + self.track_base[name])
                      for e in events] if self.track_base[name] else events
            if step is None:  # the end: one seq after the last frame
                end = max((e.time for e in events), default=self.runs[name].last_time)
                entry = Entry(name, self.last[name] + 1, end,
                              self.readers[name].fps, self.publisher.model, events, end=True)
            else:
                frame = step[name]
                self.last[name] = self.base[name] + frame.index
                entry = Entry(name, self.last[name], frame.time, self.readers[name].fps,
                              self.publisher.model, events)
            self.publisher.publish(entry)

    def health(self) -> dict:
        elapsed = time.monotonic() - self.started
        return {"cameras": {n: {"up": r.health.down_since is None, "frames": self.used[n],
                                "fps": round(self.used[n] / max(elapsed, 1e-9), 1),
                                "lag_s": round(self.lag[n], 3), "seq": self.last[n]}
                            for n, r in self.readers.items()},
                "unpublished": self.publisher.unpublished}


def run_worker(settings: Settings, names: list[str], url: str, config: str,
               duration_s: float | None, max_frames: int | None, status_s: float = 5.0) -> int:
    """Runs these cameras of the site until their sources end, ``max_frames``, the deadline
    or Ctrl-C; 1 when some events could not be published (the broker stayed away)."""
    started = time.monotonic()
    site = {c.name: c for c in settings.cameras}
    unknown = [n for n in names if n not in site]
    if unknown:
        raise UsageError(f"camera {unknown[0]} is not in {config} (its cameras: "
                         f"{', '.join(site)})")
    until = started + duration_s if duration_s else float("inf")
    link = Link(url, until, settings.sources.backoff_s, settings.sources.backoff_max_s)
    publisher = Publisher(link, Keys(site_name(config)), names)
    try:
        return _run(publisher, settings, [site[n] for n in names], until, max_frames, status_s)
    finally:
        publisher.close()


def _run(publisher: Publisher, settings: Settings, cameras, until: float,
         max_frames: int | None, status_s: float) -> int:
    from tracking.broker import BrokerGone

    try:
        publisher.claim()
    except BrokerGone as e:
        log.error("%s for the whole --duration: nothing ran", e)
        return 1
    detector, embedder = build_models(settings)
    publisher.check_model(getattr(embedder, "model", None))
    clock = publisher.live_clock() if any(is_stream(c.source) for c in cameras) else None
    with tempfile.TemporaryDirectory(prefix="mcreid_worker_") as scratch:  # no outputs
        run = WorkerRun(publisher, settings, cameras, detector, embedder, Path(scratch), clock)
        publisher.status = run.health
        logger = _StatusLog(run, publisher, status_s)
        try:
            stats = run.run(max_steps=max_frames, duration_s=max(0.0, until - time.monotonic()))
        finally:
            logger.stop()
    frames = ", ".join(f"{n} {c['frames']} frames" for n, c in stats.cameras.items())
    if publisher.unpublished:
        log.error("the broker %s stayed away: %d frames' events not published (%s)",
                  publisher.link.url, publisher.unpublished, frames)
        return 1
    print(f"worker {publisher.me}: {frames} published, {stats.fps:.1f} camera-frames/s")
    return 0


class _StatusLog:
    """One health line every ``every_s`` seconds, in the log and the broker's status hash
    (the publisher's heartbeat writes the hash)."""

    def __init__(self, run: WorkerRun, publisher: Publisher, every_s: float):
        import threading

        self.run, self.publisher, self.every_s = run, publisher, every_s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            h = self.run.health()
            cams = " | ".join(f"{n} {'up' if c['up'] else 'DOWN'} {c['fps']} fps lag "
                              f"{c['lag_s']}s seq {c['seq']}" for n, c in h["cameras"].items())
            log.info("worker %s: %s | backlog %s%s", self.publisher.me, cams,
                     self.publisher.backlog(),
                     f" | {h['unpublished']} unpublished" if h["unpublished"] else "")

    def stop(self) -> None:
        self._stop.set()
