"""Several cameras in one process: a reader thread per camera, detection batched across
cameras, one tracker per camera, and one global identity per person (tracking.multicam)
written into every output.

Offline (only files): every frame is used, and frames are aligned by timestamp (frame index
/ fps + the camera's offset): each step takes, from every camera, the frame due at the
earliest pending time, so cameras with different frame rates or start times stay in step.
Live (any stream): each step takes the newest frame of every camera that has one; files
next to streams are replayed in real time; stale frames are dropped and counted; a dead
camera contributes nothing while its reader reconnects, and never holds up the others.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracking.detector import Detector
from tracking.multicam import (
    Camera,
    GlobalIdentities,
    IdentityConfig,
    Tracklet,
    quality_weighted_mean,
)
from tracking.pipeline import crop_embedder, gap_rows
from tracking.sinks import (
    AnnotatedVideo,
    ContactSheets,
    JsonlWriter,
    MotWriter,
    write_json_atomic,
    write_text_atomic,
)
from tracking.sources import CameraReader, Frame, SourceError, is_stream
from tracking.tracker import Tracker, TrackerConfig

log = logging.getLogger(__name__)

WAIT_ROWS = 250  # rows kept per track while it waits for its global id


def write_identities(out: Path, tracklets: dict[tuple[str, int], Tracklet],
                     global_of: dict[tuple[str, int], int]) -> list[dict]:
    """identities.json and .csv: one row per identified local track, by global id."""
    identities = [{"global_id": global_of[k], "camera": k[0], "local_id": k[1],
                   "first_s": round(t.start, 3), "last_s": round(t.end, 3), "frames": t.frames}
                  for k, t in tracklets.items() if k in global_of]
    identities.sort(key=lambda r: (r["global_id"], r["first_s"]))
    write_json_atomic(out / "identities.json", identities)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["global_id", "camera", "local_id", "first_s",
                                             "last_s", "frames"])
    writer.writeheader()
    writer.writerows(identities)
    write_text_atomic(out / "identities.csv", buf.getvalue())
    return identities


def offline_steps(readers: dict[str, CameraReader]) -> Iterator[dict[str, Frame]]:
    """Frames grouped by time: the earliest pending frame and every camera's frame due
    within half a frame period of it."""
    tol = 0.5 / max(r.fps for r in readers.values())
    pending = {n: f for n, r in readers.items() if (f := r.get()) is not None}
    while pending:
        now = min(f.time for f in pending.values())
        batch = {n: f for n, f in pending.items() if f.time <= now + tol}
        yield batch
        ended = []
        for name in batch:
            nxt = readers[name].get()
            if nxt is None:
                ended.append(name)
                del pending[name]
            else:
                pending[name] = nxt
        for name in ended:
            (log.warning if pending else log.info)(
                "camera %s: file ended after %d frames%s", name, batch[name].index,
                "; the other cameras go on" if pending else "")


def live_steps(readers: dict[str, CameraReader], until: float) -> Iterator[dict[str, Frame]]:
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


def track_cameras(cameras: list[Camera], output_dir: str | Path, detector: Detector,
                  extractor, tracker_config: TrackerConfig | None = None,
                  identity_config: IdentityConfig | None = None, video: bool = True,
                  sheets: bool = True, max_steps: int | None = None,
                  duration_s: float | None = None, min_crops: int = 5, stride: int = 1,
                  status_every_s: float = 10.0) -> dict:
    """Writes <camera>.txt (MOT, global ids), <camera>.jsonl (with each frame's time),
    <camera>.mp4, identities.json/.csv and sheets/id_NNNN.png. Returns run statistics, per
    camera health included.

    A local track gets its global identity once it has ``min_crops`` clean crops in its
    appearance memory (a one-crop tracklet embedding is too noisy to match across cameras);
    its earlier rows are then added to the MOT file (written late, sorted in on close),
    while the video and JSONL, written as frames go by, show it from then on. With
    ``stride`` > 1 each camera detects every stride-th frame and the trackers coast between.
    Ctrl-C ends a live run cleanly, outputs complete."""
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise SourceError(f"camera names must be unique: {names}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    live = any(is_stream(c.source) for c in cameras)
    clock_zero = time.monotonic()
    readers: dict[str, CameraReader] = {}
    try:
        for c in cameras:
            readers[c.name] = CameraReader(c.name, c.source, c.offset_s, live=live,
                                           clock_zero=clock_zero)
    except SourceError:
        for r in readers.values():
            r.close()
        raise
    cams = {c.name: c for c in cameras}
    embed = crop_embedder(extractor)
    trackers = {n: Tracker(tracker_config, embed, fps=r.fps) for n, r in readers.items()}
    manager = GlobalIdentities(identity_config)
    tracklets: dict[tuple[str, int], Tracklet] = {}
    global_of: dict[tuple[str, int], int] = {}
    waiting: dict[tuple[str, int], deque] = {}  # rows of tracks not identified yet
    open_keys: set[tuple[str, int]] = set()     # tracklets whose track is still alive
    mots = {n: MotWriter(out / f"{n}.txt") for n in names}
    jsonls = {n: JsonlWriter(out / f"{n}.jsonl", r.fps) for n, r in readers.items()}
    vids = {n: AnnotatedVideo(out / f"{n}.mp4", r.fps, (r.width, r.height))
            for n, r in readers.items()} if video else {}
    crops = ContactSheets() if sheets else None
    lag = {n: 0.0 for n in names}
    for r in readers.values():
        r.start()
    until = clock_zero + duration_s if duration_s else np.inf
    steps = offline_steps(readers) if not live else live_steps(readers, until)
    total = None if live else min((r.num_frames or 0) for r in readers.values()) or None
    bar = tqdm(total=min(total or 10 ** 9, max_steps or 10 ** 9) if total else None,
               desc="cameras", unit="step", mininterval=2)
    count, last_status = 0, time.monotonic()

    def status() -> str:
        elapsed = time.monotonic() - clock_zero
        return " | ".join(f"{n} {r.health.line(elapsed)} lag {lag[n]:.2f}s"
                          for n, r in readers.items())

    try:
        for batch in steps:
            if max_steps and count >= max_steps:
                break
            count += 1
            order = list(batch)
            detect = [n for n in order if (batch[n].index - 1) % stride == 0]
            dets = dict(zip(detect, detector([batch[n].image for n in detect]) if detect
                            else []))
            new: list[tuple[str, int]] = []
            seen = {}
            for name in order:
                frame = batch[name]
                lag[name] = time.monotonic() - frame.read_at
                seen[name] = (trackers[name].update(dets[name], frame.image) if name in dets
                              else trackers[name].coast())
                for t in seen[name]:
                    key = (name, t.track_id)
                    tl = tracklets.get(key)
                    if tl is None:
                        tl = tracklets[key] = Tracklet(name, t.track_id, frame.time,
                                                       frame.time, None, 0)
                        open_keys.add(key)
                    tl.end = frame.time
                    tl.frames += 1
                    point = cams[name].ground(t.box)
                    if point is not None:
                        tl.place(frame.time, point)
                    if key not in global_of and len(t.memory) >= min_crops:
                        tl.embedding = quality_weighted_mean(np.stack(t.memory))
                        new.append(key)
            for key, gid in zip(new, manager.assign([tracklets[k] for k in new])):
                global_of[key] = gid
                for index, row in waiting.pop(key, ()):  # the frames before it had an id
                    mots[key[0]].write(index, [{**row, "id": gid}])
            for name in order:
                frame = batch[name]
                rows = []
                for t in seen[name]:
                    key = (name, t.track_id)
                    gid = global_of.get(key)
                    row = {"id": gid, "box": t.box.tolist(), "score": t.score}
                    late = gap_rows(t, frame.index, gid)
                    if gid is None:
                        waiting.setdefault(key, deque(maxlen=WAIT_ROWS)).extend(
                            [*late, (frame.index, row)])
                    else:
                        rows.append(row)
                        for index, gap_row in late:
                            mots[name].write(index, [gap_row])
                alive = {t.track_id for t in trackers[name].tracks}
                for key in [k for k in open_keys if k[0] == name and k[1] not in alive]:
                    # the track ended: keep what identities need, free the rest
                    open_keys.discard(key)
                    waiting.pop(key, None)
                    if key in global_of:
                        tracklets[key].close()
                    else:
                        del tracklets[key]
                mots[name].write(frame.index, rows)
                jsonls[name].write(frame.index, rows, frame.time)
                if vids:
                    vids[name].write(frame.index, frame.image, rows)
                if crops is not None:
                    for row in rows:
                        crops.offer(row["id"], name, frame.time, frame.image, row["box"],
                                    row["score"])
            bar.update(1)
            if live and time.monotonic() - last_status >= status_every_s:
                last_status = time.monotonic()
                log.info("status: %s", status())
                bar.set_postfix_str(status(), refresh=False)
    except KeyboardInterrupt:
        log.warning("interrupted: finishing the outputs")
    finally:
        bar.close()
        for r in readers.values():
            r.close()
        for sink in [*mots.values(), *jsonls.values(), *vids.values()]:
            sink.close()
    elapsed = time.monotonic() - clock_zero
    identities = write_identities(out, tracklets, global_of)
    if crops is not None:
        crops.write(out / "sheets")
    people = {r["global_id"] for r in identities}
    multi = {g for g in people if len({r["camera"] for r in identities
                                        if r["global_id"] == g}) > 1}
    return {"steps": count, "seconds": round(elapsed, 2), "live": live,
            "identities": len(people), "seen_in_several_cameras": len(multi),
            "tracklets": len(identities),
            "cameras": {n: {"frames": r.health.frames, "dropped": r.health.dropped,
                            "reconnects": r.health.reconnects,
                            "outage_s": round(r.health.outage_s, 2)}
                        for n, r in readers.items()}}
