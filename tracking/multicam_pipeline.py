"""Several cameras in one process: one tracker per camera, detection batched across cameras,
and one global identity per person (tracking.multicam) written into every output.

Files are read in lockstep, frame i of every camera together, each stamped with its own
time (frame index / fps + the camera's offset). A camera that ends early drops out.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracking.detector import Detector
from tracking.multicam import GlobalIdentities, IdentityConfig, Tracklet, quality_weighted_mean
from tracking.pipeline import crop_embedder
from tracking.sinks import AnnotatedVideo, MotWriter, write_json_atomic, write_text_atomic
from tracking.sources import SourceError, VideoFile
from tracking.tracker import Tracker, TrackerConfig

log = logging.getLogger(__name__)


def track_cameras(cameras: dict[str, str | Path], output_dir: str | Path, detector: Detector,
                  extractor, tracker_config: TrackerConfig | None = None,
                  identity_config: IdentityConfig | None = None,
                  offsets: dict[str, float] | None = None, video: bool = True,
                  max_frames: int | None = None, min_embeddings: int = 5) -> dict:
    """Writes <camera>.txt (MOT, global ids), <camera>.mp4, identities.json and .csv.

    A local track gets its global identity once it has ``min_embeddings`` clean crops in
    memory (a one-crop tracklet embedding is too noisy to match across cameras); until then
    it is not written."""
    if len(set(cameras)) != len(cameras):
        raise SourceError("camera names must be unique")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = {name: VideoFile(path) for name, path in cameras.items()}
    offsets = offsets or {}
    embed = crop_embedder(extractor)
    trackers = {name: Tracker(tracker_config, embed) for name in cameras}
    manager = GlobalIdentities(identity_config)
    tracklets: dict[tuple[str, int], Tracklet] = {}
    global_of: dict[tuple[str, int], int] = {}
    firsts: dict[tuple[str, int], float] = {}  # first time each local track was seen
    mots = {name: MotWriter(out / f"{name}.txt") for name in cameras}
    vids = {name: AnnotatedVideo(out / f"{name}.mp4", s.fps, (s.width, s.height))
            for name, s in sources.items()} if video else {}
    iters = {name: iter(s) for name, s in sources.items()}
    total = min((s.num_frames or 0) for s in sources.values()) or None
    bar = tqdm(total=min(total or 10 ** 9, max_frames or 10 ** 9), desc="cameras",
               unit="step", mininterval=2)
    step = 0
    while iters and (not max_frames or step < max_frames):
        batch = {}
        for name in list(iters):
            try:
                batch[name] = next(iters[name])
            except StopIteration:
                log.warning("camera %s ended after %d frames", name, step)
                del iters[name]
        if not batch:
            break
        step += 1
        names = list(batch)
        dets = detector([batch[n][1] for n in names])
        new: list[tuple[str, int]] = []
        seen: dict[str, list] = {}
        for name, d in zip(names, dets):
            index, frame = batch[name]
            now = (index - 1) / sources[name].fps + offsets.get(name, 0.0)
            seen[name] = trackers[name].update(d, frame)
            for t in seen[name]:
                key = (name, t.track_id)
                if key in tracklets:
                    tracklets[key].end = now
                    tracklets[key].frames += 1
                elif len(t.memory) >= min_embeddings:
                    first = firsts.setdefault(key, now)
                    tracklets[key] = Tracklet(name, t.track_id, first, now,
                                              quality_weighted_mean(np.stack(t.memory)))
                    new.append(key)
                else:
                    firsts.setdefault(key, now)
        for key, gid in zip(new, manager.assign([tracklets[k] for k in new])):
            global_of[key] = gid
        for name in names:
            index, frame = batch[name]
            rows = [{"id": global_of[(name, t.track_id)], "box": t.box.tolist(),
                     "score": t.score} for t in seen[name] if (name, t.track_id) in global_of]
            mots[name].write(index, rows)
            if vids:
                vids[name].write(index, frame, rows)
        bar.update(1)
    bar.close()
    for sink in [*mots.values(), *vids.values()]:
        sink.close()
    for s in sources.values():
        s.close()
    identities = [{"global_id": global_of[k], "camera": k[0], "local_id": k[1],
                   "first_s": round(t.start, 3), "last_s": round(t.end, 3), "frames": t.frames}
                  for k, t in tracklets.items() if k in global_of]
    identities.sort(key=lambda r: (r["global_id"], r["first_s"]))
    write_json_atomic(out / "identities.json", identities)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(identities[0]) if identities else
                            ["global_id", "camera", "local_id", "first_s", "last_s", "frames"])
    writer.writeheader()
    writer.writerows(identities)
    write_text_atomic(out / "identities.csv", buf.getvalue())
    people = {r["global_id"] for r in identities}
    multi = {g for g in people if len({r["camera"] for r in identities
                                        if r["global_id"] == g}) > 1}
    return {"steps": step, "identities": len(people), "seen_in_several_cameras": len(multi),
            "tracklets": len(identities)}

