"""One camera's run: its frames and detections in, rows for the outputs and tracklet events
for the identity service out. The same object serves a single video, each camera of a site,
and a live stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.association import mean_direction
from tracking.events import TrackletEnded, TrackletEvent, TrackletStarted, TrackletUpdated
from tracking.multicam import Camera
from tracking.sources import Frame
from tracking.tracker import Embedder, Track, Tracker


@dataclass
class Row:
    """One box of one local track in one frame, as the outputs need it. ``late`` rows are
    boxes filled in for frames a re-found track missed (only files written late use them)."""

    camera: str
    frame: int
    time: float
    track_id: int
    box: list[float]
    score: float
    late: bool = False


def crop_embedder(extractor) -> Embedder:
    """Adapt reid's FeatureExtractor to the tracker: (frame, boxes) -> N x D numpy."""

    def embed(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        crops = []
        for x1, y1, x2, y2 in boxes:
            x1, y1 = int(max(0, x1)), int(max(0, y1))
            x2, y2 = int(min(w, max(x2, x1 + 2))), int(min(h, max(y2, y1 + 2)))
            crops.append(frame[y1:y2, x1:x2])
        return extractor(crops).numpy()

    embed.model = getattr(extractor, "identity", None)  # type: ignore[attr-defined]  # run.json
    return embed


class CameraRun:
    """Tracks one camera and describes what it sees as tracklet events: started when a
    track is confirmed, updated every frame it is seen (with its ground position, and its
    embedding once it has ``min_crops`` clean crops, and every ``look_every_s`` the look of
    its clean crops since the last one), ended when the tracker drops it."""

    def __init__(self, camera: Camera, tracker: Tracker, min_crops: int = 5,
                 look_every_s: float = 1.0):
        self.camera, self.tracker, self.min_crops = camera, tracker, min_crops
        self.look_every_s = look_every_s
        self._started: set[int] = set()
        self._embedded: set[int] = set()
        self._looked: dict[int, tuple[int, float]] = {}  # track -> (crops memorised, time)
        self.last_time = 0.0  # of the last frame stepped

    def step(self, frame: Frame, dets: np.ndarray | None) -> tuple[list[Row], list[TrackletEvent]]:
        """One frame; ``dets`` None means not detected (detection stride): the tracker
        coasts on its motion model."""
        self.last_time = frame.time
        seen = (self.tracker.update(dets, frame.image) if dets is not None
                else self.tracker.coast())
        rows: list[Row] = []
        events: list[TrackletEvent] = []
        for t in seen:
            events += self._seen(t, frame)
            box = t.box.tolist()
            rows.append(Row(self.camera.name, frame.index, frame.time, t.track_id, box, t.score))
            first = frame.index - len(t.gap)
            rows += [Row(self.camera.name, first + k, frame.time, t.track_id, b.tolist(),
                         t.score, late=True) for k, b in enumerate(t.gap)]
        events += self._ended(self.tracker.pop_ended(), frame.time)
        return rows, events

    def finish(self, time: float) -> list[TrackletEvent]:
        """The source ended: every track still alive ends."""
        return self._ended(self.tracker.finish(), time)

    def _seen(self, t: Track, frame: Frame) -> list[TrackletEvent]:
        name, events = self.camera.name, []
        if t.track_id not in self._started:
            self._started.add(t.track_id)
            events.append(TrackletStarted(name, t.track_id, frame.time))
        embedding = None
        if t.track_id not in self._embedded:
            embedding = t.embedding(self.min_crops)
            if embedding is not None:
                self._embedded.add(t.track_id)
        box = tuple(float(v) for v in t.box)
        look, crops = self._look(t, frame.time)
        events.append(TrackletUpdated(name, t.track_id, frame.time, frame.index, box, t.score,
                                      self.camera.ground(t.box), embedding, look, crops))
        return events

    def _look(self, t: Track, time: float) -> tuple[np.ndarray | None, int]:
        """The mean direction of the clean crops memorised since the track's last look,
        once ``look_every_s`` has passed since it (0: never)."""
        count, since = self._looked.get(t.track_id, (0, -np.inf))
        if not self.look_every_s or time - since < self.look_every_s:
            return None, 0
        crops = t.crops_since(count)
        if not len(crops):
            return None, 0
        self._looked[t.track_id] = (t.memorised, time)
        return mean_direction(crops), len(crops)

    def _ended(self, tracks: list[Track], time: float) -> list[TrackletEvent]:
        for t in tracks:
            self._started.discard(t.track_id)
            self._embedded.discard(t.track_id)
            self._looked.pop(t.track_id, None)
        return [TrackletEnded(self.camera.name, t.track_id, time, t.embedding(self.min_crops))
                for t in tracks]
