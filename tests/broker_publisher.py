"""A worker without models, for the broker tests and benchmarks: publishes one camera's
events from a recorded run (track run --events) as ``track worker`` would have published
them, frame by frame, through tracking.broker.Publisher (claims, model check, seq).

    python tests/broker_publisher.py redis://127.0.0.1:6379 SITE RUN/events.jsonl CAMERA \\
        --fps 10 [--delay 0.05]

The recorded run's last step (its open tracks ended by the end of the run) is the camera's
end; a frame's seq is its frame number (time * fps + 1), as for a recording.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tracking.broker import Entry, Keys, Link, Publisher
from tracking.events import TrackletEnded, TrackletEvent, read_events


def step_entries(step: list[TrackletEvent], fps: float, model: str,
                 cameras: Sequence[str] = ()) -> list[Entry]:
    """One recorded step's entries: one per camera that has events in it, and one (empty)
    for each of ``cameras`` that has none, as a worker publishes every frame; the seq is
    the frame number (time * fps + 1), as for a recording."""
    by_camera: dict[str, list[TrackletEvent]] = {c: [] for c in cameras}
    for e in step:
        by_camera.setdefault(e.camera, []).append(e)
    entries = []
    for camera, events in by_camera.items():
        at = events[0].time if events else step[0].time
        entries.append(Entry(camera, round(at * fps) + 1, at, fps, model, events))
    return entries


def camera_entries(path: Path, camera: str, fps: float, model: str) -> list[Entry]:
    """The camera's entries of a recorded run, its end last."""
    steps = list(read_events(path))
    assert all(isinstance(e, TrackletEnded) for e in steps[-1]), "the last step is the end"
    entries = [e for step in steps[:-1] for e in step_entries(step, fps, model)
               if e.camera == camera]
    ends = [e for e in steps[-1] if e.camera == camera]
    last = entries[-1]
    entries.append(Entry(camera, last.seq + 1, ends[0].time if ends else last.time, fps, model,
                         ends, end=True))
    return entries


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("site")
    ap.add_argument("events", type=Path)
    ap.add_argument("camera")
    ap.add_argument("--fps", type=float, required=True)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds between frames")
    args = ap.parse_args()
    model = json.loads((args.events.parent / "run.json").read_text())["reid"]
    publisher = Publisher(Link(args.url), Keys(args.site), [args.camera])
    publisher.claim()
    publisher.check_model(model)
    try:
        for entry in camera_entries(args.events, args.camera, args.fps, publisher.model):
            publisher.publish(entry)
            time.sleep(args.delay)
    finally:
        publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
