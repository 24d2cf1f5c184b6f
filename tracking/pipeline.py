"""One camera, end to end: source -> detect -> embed -> track -> sinks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracking.detector import Detector
from tracking.sinks import AnnotatedVideo, ContactSheets, JsonlWriter, MotWriter
from tracking.sources import VideoFile
from tracking.tracker import Track, Tracker, TrackerConfig

log = logging.getLogger(__name__)


def crop_embedder(extractor):
    """Adapt reid's FeatureExtractor to the tracker: (frame, boxes) -> N x D numpy."""

    def embed(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        crops = []
        for x1, y1, x2, y2 in boxes:
            x1, y1 = int(max(0, x1)), int(max(0, y1))
            x2, y2 = int(min(w, max(x2, x1 + 2))), int(min(h, max(y2, y1 + 2)))
            crops.append(frame[y1:y2, x1:x2])
        return extractor(crops).numpy()

    return embed


def gap_rows(track: Track, index: int, track_id: int) -> list[tuple[int, dict]]:
    """MOT rows for the frames a re-found track missed (``Track.gap``), as (frame, row)."""
    first = index - len(track.gap)
    return [(first + k, {"id": track_id, "box": box.tolist(), "score": track.score})
            for k, box in enumerate(track.gap)]


@dataclass
class RunStats:
    frames: int = 0
    bad_frames: int = 0
    seconds: dict = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0,
                                                   "track+reid": 0.0, "write": 0.0})
    crops_embedded: int = 0
    tracks: int = 0

    @property
    def fps(self) -> float:
        return self.frames / max(sum(self.seconds.values()), 1e-9)


def track_video(source: str | Path, output_dir: str | Path, detector: Detector,
                extractor=None, config: TrackerConfig | None = None, video: bool = True,
                batch: int = 4, max_frames: int | None = None, stride: int = 1,
                gallery: bool = False) -> RunStats:
    """Track one video file; writes <stem>.txt (MOT), <stem>.jsonl and <stem>.mp4, and with
    ``gallery`` <stem>_gallery/id_NNNN.png (each track's best crops, at most one a second).
    With ``stride`` > 1 only every stride-th frame is detected; the tracker coasts between."""
    src = VideoFile(source)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(source).stem
    tracker = Tracker(config, crop_embedder(extractor) if extractor is not None else None,
                      fps=src.fps)
    mot = MotWriter(out / f"{stem}.txt")
    jsonl = JsonlWriter(out / f"{stem}.jsonl", src.fps)
    vid = AnnotatedVideo(out / f"{stem}.mp4", src.fps, (src.width, src.height)) if video \
        else None
    sheets = ContactSheets(per_camera=8) if gallery else None
    stats = RunStats()
    total = min(src.num_frames or 0, max_frames or 10 ** 9) or None
    bar = tqdm(total=total, desc=stem, unit="frame", mininterval=2)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        t0 = time.perf_counter()
        keyframes = [i for i, (index, _) in enumerate(pending) if (index - 1) % stride == 0]
        dets = dict(zip(keyframes, detector([pending[i][1] for i in keyframes])
                        if keyframes else []))
        t1 = time.perf_counter()
        stats.seconds["detect"] += t1 - t0
        for i, (index, frame) in enumerate(pending):
            t1 = time.perf_counter()
            seen = tracker.update(dets[i], frame) if i in dets else tracker.coast()
            tracks = [{"id": t.track_id, "box": t.box.tolist(), "score": t.score}
                      for t in seen]
            t2 = time.perf_counter()
            mot.write(index, tracks)
            for t in seen:
                for gap_index, row in gap_rows(t, index, t.track_id):
                    mot.write(gap_index, [row])
            jsonl.write(index, tracks)
            if vid:
                vid.write(index, frame, tracks)
            if sheets:
                for t in tracks:
                    sheets.offer(t["id"], stem, index / src.fps, frame, t["box"], t["score"])
            stats.seconds["track+reid"] += t2 - t1
            stats.seconds["write"] += time.perf_counter() - t2
        stats.frames += len(pending)
        bar.update(len(pending))
        bar.set_postfix(fps=f"{stats.fps:.1f}", refresh=False)
        pending.clear()

    try:
        t = time.perf_counter()
        for index, frame in src:
            stats.seconds["decode"] += time.perf_counter() - t
            if max_frames and index > max_frames:
                break
            pending.append((index, frame))
            if len(pending) == batch:
                flush()
            t = time.perf_counter()
        if pending:
            flush()
    finally:
        bar.close()
        src.close()
    for sink in (mot, jsonl, vid):
        if sink:
            sink.close()
    if sheets:
        sheets.write(out / f"{stem}_gallery")
    stats.bad_frames = src.bad_frames
    stats.crops_embedded = tracker.crops_embedded
    stats.tracks = tracker.ids_issued
    return stats
