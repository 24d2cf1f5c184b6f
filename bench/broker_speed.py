"""The identity service and the workers over Redis Streams (issue #14's benchmark), with a
real redis-server started here on 127.0.0.1 (AOF on, fsync every second, in a temp folder).

    python bench/broker_speed.py --events runs/terrace/events.jsonl \\
        --config configs/cameras/epfl_terrace.yaml --cameras 100 1000 --seconds 10 \\
        --frames 150

1. The identity service (tracking.broker.BrokerIdentities, what ``track identities --broker``
   runs, online matching, state saved every second) in this process, fed a real run's
   tracklet events copied as N cameras (bench/identity_service_speed.py's copies), one stream
   entry per camera frame as workers publish them:
   - throughput: every entry published first, then the service drains the stream (events/s);
   - latency: a publisher process publishes each recorded step at its recorded time while
     the service runs: publish-to-decision latency per step (p50, p99), and the recorded
     seconds published and decided per second of wall time (1: real time).
2. Workers: the site's cameras (``--config``) for ``--frames`` frames each, tracked in this
   process (tracking.pipeline.track_site, as ``track run``) and by 1 and 2 ``track worker``
   processes publishing to the broker while the service runs here. Camera-frames/s as
   ``RunStats.fps`` counts them (frames over the time spent reading, detecting, tracking,
   deciding and writing, once the models are loaded), summed over the workers, which run
   side by side; also, for the workers, frames over the time from the first frame
   published to the last.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, write_results
from identity_service_speed import SiteCopies, recorded_steps

from tests.broker_publisher import step_entries
from tests.redis_server import RedisServer
from tracking.broker import BrokerIdentities, Entry, Keys, Link, site_name
from tracking.config import Settings, load_settings
from tracking.multicam import Camera

FPS = 25.0  # the recorded run's frame rate (EPFL terrace)
# the workers' environment, taken before ultralytics is imported here: it sets
# OMP_NUM_THREADS=1 in os.environ, which child processes would inherit (one torch thread)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Measured(BrokerIdentities):
    """The service, noting when it applied its last step, when each frame applied was
    published, and each step's publish-to-decision lag (the service keeps the last few)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[float] = []
        self.lags: list[float] = []
        self.applied_at = 0.0

    def _apply(self, entries: list[Entry]) -> None:
        super()._apply(entries)
        self.sent += [e.sent for e in entries if not e.end]
        self.lags.append(time.time() - max(e.sent for e in entries))
        self.applied_at = time.perf_counter()


def publish(url: str, site: str, steps: list, copies: SiteCopies, real_time: bool) -> None:
    """Every recorded step's entries for all copies (one pipeline per step), at the step's
    recorded time when ``real_time``; then each camera's end."""
    import redis

    r, key = redis.Redis.from_url(url), Keys(site).events
    last: dict[str, Entry] = {}
    start = time.monotonic()
    for step in steps:
        if real_time:
            time.sleep(max(0.0, start + step[0].time - steps[0][0].time - time.monotonic()))
        pipe = r.pipeline(transaction=False)
        for entry in step_entries(copies.step(step), FPS, "bench", copies.cameras):
            pipe.xadd(key, entry.fields())
            last[entry.camera] = entry
        pipe.execute()
    pipe = r.pipeline(transaction=False)
    for camera in copies.cameras:
        end = last.get(camera, Entry(camera, 0, 0.0, FPS, "bench", []))
        pipe.xadd(key, Entry(camera, end.seq + 1, end.time, FPS, "bench", [], end=True).fields())
    pipe.execute()


def service_row(steps: list, copies: SiteCopies, settings: Settings, real_time: bool) -> dict:
    """One run of the service on a fresh broker (see the module docstring)."""
    site = f"bench{len(copies.cameras)}"
    with tempfile.TemporaryDirectory(prefix="broker_speed_") as tmp:
        server = RedisServer(Path(tmp) / "redis", fsync="everysec")
        try:
            publisher = multiprocessing.get_context("fork").Process(
                target=publish, args=(server.url, site, steps, copies, real_time))
            publisher.start()
            if not real_time:  # the whole backlog first
                publisher.join()
            svc = Measured(Link(server.url), Keys(site), settings, Path(tmp) / "out")
            start = time.perf_counter()
            svc.run(duration_s=3600)
            svc.close()
            publisher.join()
        finally:
            server.kill()
    busy = svc.applied_at - start
    recorded = steps[-1][0].time - steps[0][0].time
    row = {"cameras": len(copies.cameras), "mode": "real time" if real_time else "backlog",
           "steps": svc.state.steps, "events": svc.state.events,
           "events_per_s": round(svc.state.events / busy),
           "recorded_s_per_s": round(recorded / busy, 2)}
    if real_time:
        lag = 1e3 * np.asarray(svc.lags)
        row |= {"latency_ms_p50": round(float(np.percentile(lag, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(lag, 99)), 1),
                "latency_ms_max": round(float(lag.max()), 1)}
    print(row, flush=True)
    return row


def in_process(settings: Settings, frames: int) -> dict:
    """The site tracked in this process, as ``track run`` does (no video)."""
    from tracking.pipeline import Outputs, build_models, track_site

    detector, embedder = build_models(settings)
    with tempfile.TemporaryDirectory(prefix="broker_speed_") as tmp:
        start = time.perf_counter()
        stats = track_site(settings.cameras, tmp, detector, embedder, settings.tracker,
                           settings.identity, settings.sources, stride=settings.detector.stride,
                           outputs=Outputs(video=False), max_steps=frames)
        elapsed = time.perf_counter() - start
    row = {"how": "in process (track run)", "processes": 1, "camera_frames": stats.frames,
           "camera_frames_per_s": round(stats.fps, 1),
           "camera_frames_per_wall_s": round(stats.frames / elapsed, 1)}
    print(row, flush=True)
    return row


def over_redis(config: str, settings: Settings, groups: list[list[str]], frames: int) -> dict:
    """The site's cameras split among ``track worker`` processes, one per group."""
    with tempfile.TemporaryDirectory(prefix="broker_speed_") as tmp:
        server = RedisServer(Path(tmp) / "redis", fsync="everysec")
        try:
            workers = [subprocess.Popen(
                [sys.executable, "-m", "tracking.cli", "worker", "--config", config,
                 *[a for c in group for a in ("--camera", c)], "--broker", server.url,
                 "--max-frames", str(frames)], env=ENV, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True) for group in groups]
            svc = Measured(Link(server.url), Keys(site_name(config)), settings,
                           Path(tmp) / "out")
            svc.run(duration_s=1800)
            svc.close()
            rates = []
            for w in workers:
                out, _ = w.communicate(timeout=300)
                if w.returncode != 0:
                    raise RuntimeError(f"worker failed:\n{out}")
                rates += [float(r) for r in re.findall(r"([0-9.]+) camera-frames/s", out)]
        finally:
            server.kill()
    sent = sorted(svc.sent)
    row = {"how": f"{len(groups)} worker process(es) over Redis", "processes": len(groups),
           "camera_frames": len(sent), "camera_frames_per_s": round(sum(rates), 1),
           "camera_frames_per_publish_s": round((len(sent) - 1) / (sent[-1] - sent[0]), 1)}
    print(row, flush=True)
    return row


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True, help="a recorded run's events.jsonl")
    ap.add_argument("--config", required=True, help="its site")
    ap.add_argument("--cameras", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--seconds", type=float, default=10.0, help="recorded seconds replayed")
    ap.add_argument("--frames", type=int, default=150, help="frames per camera (workers)")
    ap.add_argument("--skip", choices=["service", "workers"], default=None)
    ap.add_argument("--out", default="bench/results/broker_speed.json")
    args = ap.parse_args()
    settings = load_settings(args.config, ["identity.offline=never"])
    result = {"command": "python " + " ".join(sys.argv), "load_before": load(),
              "service": [], "workers": []}
    if args.skip != "service":
        steps = recorded_steps(args.events, args.seconds)
        for n in args.cameras:
            copies = SiteCopies(steps, n, settings.identity)
            site = dataclasses.replace(settings, identity=copies.identity, cameras=[
                Camera(c, f"{c}.mp4") for c in copies.cameras])
            for real_time in (False, True):
                result["service"].append(service_row(steps, copies, site, real_time)
                                         | {"load": load()})
    if args.skip != "workers":
        site = load_settings(args.config)
        names = [c.name for c in site.cameras]
        result["workers"].append(in_process(site, args.frames) | {"load": load()})
        for groups in ([names], [[n] for n in names]):
            result["workers"].append(over_redis(args.config, site, groups, args.frames)
                                     | {"load": load()})
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
