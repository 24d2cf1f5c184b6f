"""A site run, in the order data flows: sources -> detect -> track (tracking.camera_run) ->
identities (tracking.identities) -> sinks. One video file is a site with one camera; several
files, live streams and mixes of both run the same way.

Offline (only files): every frame is used, and frames are aligned by timestamp (frame index
/ fps + the camera's offset): each step takes, from every camera, the frame due at the
earliest pending time, so cameras with different frame rates or start times stay in step.
Steps are detected in batches of ``detector.batch`` frames (across cameras and time).
Live (any stream): each step takes the newest frame of every camera that has one and is
detected at once; files next to streams are replayed in real time; stale frames are dropped
and counted; a dead camera contributes nothing while its reader reconnects, and never holds
up the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reid.io import write_json_atomic
from tracking.camera_run import CameraRun, Row, crop_embedder
from tracking.config import Settings
from tracking.detector import Detector
from tracking.events import EventsFile, Ids, TrackletEvent
from tracking.identities import identity_service
from tracking.index import LiveIndex
from tracking.multicam import Camera, IdentityConfig
from tracking.sinks import (
    AnnotatedVideo,
    ContactSheets,
    IdentitiesFile,
    JsonlFile,
    MotFile,
    Sink,
)
from tracking.sources import Frame, SourceConfig, SourceError, is_stream, open_reader
from tracking.tracker import Embedder, Tracker, TrackerConfig

log = logging.getLogger(__name__)

Step = dict[str, Frame]  # camera name -> its frame in this step


def offline_steps(readers: dict) -> Iterator[Step]:
    """Frames grouped by time: the earliest pending frame and every camera's frame due
    within half a frame period of it."""
    tol = 0.5 / max(r.fps for r in readers.values())
    pending = {n: f for n, r in readers.items() if (f := r.get()) is not None}
    while pending:
        now = min(f.time for f in pending.values())
        batch = {n: f for n, f in pending.items() if f.time <= now + tol}
        yield batch
        for name in batch:
            nxt = readers[name].get()
            if nxt is not None:
                pending[name] = nxt
                continue
            del pending[name]
            if len(readers) > 1:
                (log.warning if pending else log.info)(
                    "camera %s: file ended after %d frames%s", name, batch[name].index,
                    "; the other cameras go on" if pending else "")


def live_steps(readers: dict, until: float) -> Iterator[Step]:
    """The newest unused frame of every camera that has one, until the deadline (monotonic
    seconds) or until every source has finished."""
    while time.monotonic() < until:
        batch = {n: f for n, r in readers.items() if (f := r.latest()) is not None}
        if batch:
            yield batch
        elif all(r.finished for r in readers.values()):
            return
        else:
            time.sleep(0.005)


def detection_batches(steps: Iterator[Step], frames: int) -> Iterator[list[Step]]:
    """Consecutive steps holding about ``frames`` frames, to be detected in one call."""
    group: list[Step] = []
    for step in steps:
        group.append(step)
        if sum(len(s) for s in group) >= frames:
            yield group
            group = []
    if group:
        yield group


@dataclass
class Outputs:
    """What a run writes besides the per-camera MOT and JSONL files."""

    video: bool = True                 # <camera>.mp4
    sheets: Path | None = None         # a contact sheet per identity in this folder
    events: bool = False               # events.jsonl: the tracklet events (tracking.replay)


@dataclass
class RunStats:
    steps: int = 0
    seconds: float = 0.0
    live: bool = False
    time_s: dict = field(default_factory=lambda: {"read": 0.0, "detect": 0.0,
                                                  "track+reid": 0.0, "write": 0.0,
                                                  "identities": 0.0, "outputs": 0.0})
    cameras: dict = field(default_factory=dict)  # name -> health and file figures
    tracks: int = 0                    # local tracks confirmed, all cameras
    crops_embedded: int = 0
    identities: int = 0
    seen_in_several_cameras: int = 0

    @property
    def frames(self) -> int:
        return sum(c["frames"] for c in self.cameras.values())

    @property
    def fps(self) -> float:
        return self.frames / max(sum(self.time_s.values()), 1e-9)


class SiteRun:
    """Reads, detects, tracks, identifies and writes one site until its sources end, a step
    limit, a deadline, or Ctrl-C; outputs are complete in every case."""

    def __init__(self, cameras: list[Camera], output_dir: str | Path, detector: Detector,
                 embedder: Embedder | None, tracker: TrackerConfig, identity: IdentityConfig,
                 sources: SourceConfig, stride: int = 1, outputs: Outputs | None = None,
                 clock_zero: float | None = None):
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise SourceError(f"camera names must be unique: {names}")
        if len(cameras) > 1 and embedder is None:
            raise SourceError("several cameras need re-ID to match people across them")
        self.out = Path(output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.detector, self.stride = detector, stride
        self.live = any(is_stream(c.source) for c in cameras)
        # live times count from here; workers of one site share it (tracking.worker)
        self.clock_zero = time.monotonic() if clock_zero is None else clock_zero
        self.readers = self._open(cameras, sources)
        self.runs = {c.name: CameraRun(c, Tracker(tracker, embedder, fps=self.readers[c.name].fps),
                                       identity.min_crops, identity.look_every_s)
                     for c in cameras}
        self.service = identity_service(identity, names, recorded=not self.live)
        self.ids = Ids()
        self.used = {n: 0 for n in names}     # frames processed per camera
        self.lag = {n: 0.0 for n in names}    # seconds from read to use, last frame
        outputs = outputs or Outputs()
        self.sinks = self._sinks(outputs)
        self.events_file = EventsFile(self.out / "events.jsonl") if outputs.events else None
        if outputs.events:
            write_json_atomic(self.out / "run.json", run_manifest(cameras, embedder, self.live))
        model = getattr(embedder, "model", None)  # a live run is searchable while it goes on
        self.live_index = LiveIndex(self.out, model) if outputs.events and self.live and model \
            else None
        self.sinks += [self.live_index] if self.live_index else []
        self.stats = RunStats(live=self.live)

    def _open(self, cameras: list[Camera], config: SourceConfig) -> dict:
        readers = {}
        try:
            for c in cameras:
                readers[c.name] = open_reader(c.name, c.source, c.offset_s, self.live,
                                              self.clock_zero, config)
        except SourceError:
            for r in readers.values():
                r.close()
            raise
        return readers

    def _sinks(self, outputs: Outputs) -> list[Sink]:
        sinks: list[Sink] = []
        for name, r in self.readers.items():
            sinks += [MotFile(self.out / f"{name}.txt", name),
                      JsonlFile(self.out / f"{name}.jsonl", name)]
            if outputs.video:
                sinks.append(AnnotatedVideo(self.out / f"{name}.mp4", name, r.fps,
                                            (r.width, r.height),
                                            source=None if self.live else r.path))
        if outputs.sheets is not None:
            sinks.append(ContactSheets(outputs.sheets))
        if len(self.readers) > 1:  # a site's identities table (one camera: ids are local)
            sinks.append(IdentitiesFile(self.out))
        return sinks

    def run(self, max_steps: int | None = None, duration_s: float | None = None,
            status_every_s: float = 10.0) -> RunStats:
        until = time.monotonic() + duration_s if duration_s else np.inf
        steps = live_steps(self.readers, until) if self.live else offline_steps(self.readers)
        group = 1 if self.live else self.detector.batch
        bar = self._progress(max_steps)
        last_status = time.monotonic()
        for r in self.readers.values():
            r.start()
        try:
            t = time.perf_counter()
            for batch in detection_batches(steps, group):
                self.stats.time_s["read"] += time.perf_counter() - t
                batch = batch[:max(0, max_steps - self.stats.steps)] if max_steps else batch
                self._process(batch)
                bar.update(len(batch))
                if (max_steps and self.stats.steps >= max_steps) or time.monotonic() >= until:
                    break
                if self.live and time.monotonic() - last_status >= status_every_s:
                    last_status = time.monotonic()
                    log.info("status: %s", self.status())
                    bar.set_postfix_str(self.status(), refresh=False)
                t = time.perf_counter()
        except KeyboardInterrupt:
            log.warning("interrupted: finishing the outputs")
        finally:
            bar.close()
            self._finish()
        return self.stats

    def _progress(self, max_steps: int | None) -> tqdm:
        total = None if self.live else min(r.num_frames or 0 for r in self.readers.values())
        if total and max_steps:
            total = min(total, max_steps)
        desc = next(iter(self.readers)) if len(self.readers) == 1 else "cameras"
        return tqdm(total=total or None, desc=desc, unit="step", mininterval=2)

    def _process(self, batch: list[Step]) -> None:
        """Detect every due frame of the batch in one call, then track, identify and write
        step by step."""
        t0 = time.perf_counter()
        due = [(i, n) for i, step in enumerate(batch) for n, f in step.items()
               if (f.index - 1) % self.stride == 0]
        boxes = self.detector([batch[i][n].image for i, n in due]) if due else []
        dets = dict(zip(due, boxes))
        self.stats.time_s["detect"] += time.perf_counter() - t0
        for i, step in enumerate(batch):
            t1 = time.perf_counter()
            rows, events = {}, {}
            for name, frame in step.items():
                self.lag[name] = time.monotonic() - frame.read_at
                self.used[name] += 1
                rows[name], events[name] = self.runs[name].step(frame, dets.get((i, name)))
            self._decide(step, events)
            t2 = time.perf_counter()
            for name, frame in step.items():
                self._write(name, frame, rows[name])
            self.stats.time_s["track+reid"] += t2 - t1
            self.stats.time_s["write"] += time.perf_counter() - t2
            self.stats.steps += 1

    def _decide(self, step: Step | None, by_camera: dict[str, list[TrackletEvent]]) -> None:
        """One step's events (each camera's, in camera order) to the identity service;
        ``step`` None: the tracks the end of the run closed. A worker publishes them instead
        (tracking.worker)."""
        events = [e for camera_events in by_camera.values() for e in camera_events]
        if self.events_file:
            self.events_file.write(events)
        for d in self.service.consume(events):
            self.ids.apply(d)
        if self.live_index:
            self.live_index.consume(events, self.ids)

    def _write(self, camera: str, frame: Frame, rows: list[Row]) -> None:
        for sink in self.sinks:
            sink.write(camera, frame, rows, self.ids)

    def status(self) -> str:
        elapsed = time.monotonic() - self.clock_zero
        return " | ".join(f"{n} {r.health.line(elapsed)} lag {self.lag[n]:.2f}s"
                          for n, r in self.readers.items())

    def _finish(self) -> None:
        """Close readers, end every track, close sinks with the final ids, sum up."""
        for r in self.readers.values():
            r.close()
        now = time.monotonic() - self.clock_zero  # live: the run's clock; files: media time
        self._decide(None, {name: run.finish(now if self.live else run.last_time)
                            for name, run in self.runs.items()})
        t = time.perf_counter()
        for d in self.service.finish():  # the offline pass, for a recording
            self.ids.apply(d)
        self.stats.time_s["identities"] = time.perf_counter() - t
        if self.events_file:
            self.events_file.close()
        for sink in self.sinks:  # a recording's video is drawn here
            sink.close(self.ids)
        self.stats.time_s["outputs"] = time.perf_counter() - t - self.stats.time_s["identities"]
        self._summarise()

    def _summarise(self) -> None:
        s = self.stats
        s.seconds = round(time.monotonic() - self.clock_zero, 2)
        s.tracks = sum(run.tracker.ids_issued for run in self.runs.values())
        s.crops_embedded = sum(run.tracker.crops_embedded for run in self.runs.values())
        cameras_of: dict[int, set] = {}
        for (camera, _), spans in self.ids.items():
            for _, gid in spans:
                cameras_of.setdefault(gid, set()).add(camera)
        s.identities = len(cameras_of)
        s.seen_in_several_cameras = sum(len(c) > 1 for c in cameras_of.values())
        for name, r in self.readers.items():
            h = r.health
            s.cameras[name] = {"frames": self.used[name], "read": h.frames,
                               "dropped": h.dropped,
                               "reconnects": h.reconnects, "outage_s": round(h.outage_s, 2),
                               "bad_frames": r.bad_frames, "ended_early": r.ended_early}


def run_manifest(cameras: list[Camera], embedder: Embedder | None, live: bool) -> dict:
    """run.json, beside events.jsonl: what a later reader of the events needs and they do not
    say: each camera's source (a file's absolute path, to cut thumbnails from) and which
    re-ID model made their embeddings (tracking.index refuses to mix models)."""
    return {"cameras": [{"name": c.name, "offset_s": c.offset_s,
                         "source": c.source if is_stream(c.source)
                         else str(Path(c.source).resolve())} for c in cameras],
            "reid": getattr(embedder, "model", None), "live": live}


def build_models(settings: Settings) -> tuple[Detector, Embedder | None]:
    """The detector and, unless re-ID is off, the crop embedder, from the settings."""
    from reid.inference import FeatureExtractor

    d = settings.detector
    detector = Detector(d.weights, imgsz=d.imgsz, conf=d.conf, iou=d.iou, batch=d.batch,
                        device=d.device)
    if not settings.reid.enabled:
        return detector, None
    r = settings.reid
    extractor = FeatureExtractor(r.weights, device=r.device, runtime=r.runtime)
    return detector, crop_embedder(extractor)


def track_site(cameras: list[Camera], output_dir: str | Path, detector: Detector,
               embedder: Embedder | None, tracker: TrackerConfig, identity: IdentityConfig,
               sources: SourceConfig, stride: int = 1, outputs: Outputs | None = None,
               max_steps: int | None = None, duration_s: float | None = None) -> RunStats:
    """Run a site to its end (see SiteRun) and return its figures."""
    site = SiteRun(cameras, output_dir, detector, embedder, tracker, identity, sources, stride,
                   outputs)
    return site.run(max_steps=max_steps, duration_s=duration_s)
