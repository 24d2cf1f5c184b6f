"""The seam between per-camera runs and the identity service.

A per-camera run (tracking.camera_run) turns frames into tracklet events; the identity
service (tracking.identities) turns events into decisions. Both are plain data: no video, no
torch, nothing a process boundary or a broker could not carry. Events of one step (one frame
of every camera) are handed over together, in camera order, each camera's updates before
its ends.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from reid.io import part_path, publish


@dataclass(frozen=True)
class TrackletStarted:
    """A local track was confirmed and got its id in its camera."""

    camera: str
    track_id: int
    time: float           # seconds: media time + offset for files, since the run began live


@dataclass(frozen=True)
class TrackletUpdated:
    """The track was seen in a frame. ``embedding`` comes once, in the first update after
    the track has enough clean crops to be matched across cameras (``identity.min_crops``).
    ``look`` comes about every ``identity.look_every_s``: the appearance of the
    ``look_crops`` clean crops since the last look, so that an offline pass that cuts a track
    knows how each piece looked, not only how the track began and ended."""

    camera: str
    track_id: int
    time: float
    frame: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the camera's pixels
    score: float
    ground: tuple[float, float] | None = None  # feet on the site's ground plane
    embedding: np.ndarray | None = None        # unit vector
    look: np.ndarray | None = None             # unit vector
    look_crops: int = 0


@dataclass(frozen=True)
class TrackletEnded:
    """The track was lost for good (or its source ended); ``embedding`` is its final
    appearance, None if it never had enough clean crops."""

    camera: str
    track_id: int
    time: float
    embedding: np.ndarray | None = None


TrackletEvent = TrackletStarted | TrackletUpdated | TrackletEnded


@dataclass(frozen=True)
class Decision:
    """Local track (camera, track_id) is person ``global_id`` from the camera's frame
    ``from_frame`` on (0: the whole track). A later decision for the same track replaces
    what an earlier one said from its frame on (a relabel), so an offline pass can cut a
    track where the person inside it changes; outputs written at the end use the last."""

    camera: str
    track_id: int
    global_id: int
    from_frame: int = 0


class Ids:
    """The decisions so far: the global id of each local track, frame by frame.

    With a ``store`` (a SQLite file), a track that ended for good can be ``settle``d: its
    spans leave memory for the file, and ``get`` reads them back (a few recent tracks
    cached), so a live run of weeks holds only its open tracks' decisions."""

    def __init__(self, store: str | Path | None = None) -> None:
        self._spans: dict[tuple[str, int], list[tuple[int, int]]] = {}  # (from frame, id)
        self.store = Path(store) if store else None
        self._db: sqlite3.Connection | None = None
        self._cache: OrderedDict = OrderedDict()  # settled tracks read back lately

    def apply(self, d: Decision) -> None:
        key = (d.camera, d.track_id)
        old = self._spans.get(key)
        if old is None and self._settled():  # a settled track decided again?
            old = self._stored(key)
            self._sql().execute("DELETE FROM spans WHERE camera = ? AND track = ?", key)
            self._cache.pop(key, None)
        kept = [s for s in old or [] if s[0] < d.from_frame]
        self._spans[key] = kept + [(d.from_frame, d.global_id)]

    def get(self, camera: str, track_id: int, frame: int) -> int | None:
        """The id of the track at this frame; None while it has none."""
        spans = self._spans.get((camera, track_id))
        if spans is None and self._settled():
            spans = self._stored((camera, track_id))
        if not spans:
            return None
        return next((g for f, g in reversed(spans) if f <= frame), spans[0][1])

    def settle(self, camera: str, track_id: int) -> None:
        """The track will get no more decisions: its spans go to the store (kept in
        memory without one). Written again after a restart, it replaces what was there."""
        spans = self._spans.get((camera, track_id))
        if spans is None or self.store is None:
            return
        self._sql().executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?)",
                                [(camera, track_id, f, g) for f, g in spans])
        del self._spans[(camera, track_id)]
        self._cache.pop((camera, track_id), None)

    def settle_ended(self, events: list[TrackletEvent]) -> None:
        """Settles the tracks these events end (a live run's: no later decision)."""
        for e in events:
            if isinstance(e, TrackletEnded):
                self.settle(e.camera, e.track_id)

    def commit(self) -> None:
        """Makes the settled spans durable (before a checkpoint that no longer holds
        them)."""
        if self._db is not None:
            self._db.commit()

    def items(self) -> list[tuple[tuple[str, int], list[tuple[int, int]]]]:
        """(camera, track id) and its spans, (from frame, global id) in frame order."""
        stored: dict[tuple[str, int], list[tuple[int, int]]] = {}
        if self._settled():
            for camera, track, f, g in self._sql().execute(
                    "SELECT camera, track, from_frame, global_id FROM spans "
                    "ORDER BY camera, track, from_frame"):
                stored.setdefault((camera, track), []).append((f, g))
        return list({**stored, **self._spans}.items())

    def __len__(self) -> int:
        """Tracks held in memory (the settled ones are in the store)."""
        return len(self._spans)

    def _settled(self) -> bool:
        """Whether some track may be in the store."""
        return self._db is not None or (self.store is not None and self.store.exists())

    def _stored(self, key: tuple[str, int]) -> list[tuple[int, int]]:
        if key not in self._cache:
            self._cache[key] = self._sql().execute(
                "SELECT from_frame, global_id FROM spans WHERE camera = ? AND track = ? "
                "ORDER BY from_frame", key).fetchall()
            if len(self._cache) > 4096:
                self._cache.popitem(last=False)
        return self._cache[key]

    def _sql(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.store)
            self._db.execute("CREATE TABLE IF NOT EXISTS spans (camera TEXT, track INTEGER, "
                             "from_frame INTEGER, global_id INTEGER, "
                             "PRIMARY KEY (camera, track, from_frame))")
        return self._db

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_db": None, "_cache": OrderedDict()}


KINDS = {"started": TrackletStarted, "updated": TrackletUpdated, "ended": TrackletEnded}
VECTORS = ("embedding", "look")  # carried as base64 float32
FIELDS = {kind: tuple(f.name for f in fields(kind)) for kind in KINDS.values()}


def to_json(e: TrackletEvent) -> dict:
    """An event as plain JSON: its kind, its fields, vectors as base64 float32 (a field
    left at its default is left out)."""
    out = {"kind": next(k for k, c in KINDS.items() if isinstance(e, c)), **asdict(e)}
    for name in VECTORS:
        if out.get(name) is not None:
            out[name] = base64.b64encode(np.asarray(out[name], "<f4").tobytes()).decode()
    if out.get("look_crops") == 0:  # most updates carry no look
        del out["look"], out["look_crops"]
    return out


def from_json(d: dict) -> TrackletEvent:
    kind = KINDS[d["kind"]]
    values = {name: d[name] for name in FIELDS[kind] if name in d}
    for name in VECTORS:
        if values.get(name) is not None:
            values[name] = np.frombuffer(base64.b64decode(values[name]), "<f4")
    for name in ("box", "ground"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return kind(**values)


class EventsFile:
    """A run's tracklet events, one JSON line per step (the events the identity service
    consumed together), so the identities can be decided again later, with other settings
    or another strategy, without detecting or tracking again (tracking.replay)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = part_path(self.path)
        self.f = open(self.tmp, "w", buffering=1)

    def write(self, events: list[TrackletEvent]) -> None:
        if events:
            self.f.write(json.dumps([to_json(e) for e in events]) + "\n")

    def close(self) -> None:
        self.f.close()
        publish(self.tmp, self.path)


def read_events(path: str | Path) -> Iterator[list[TrackletEvent]]:
    """The steps of an events file, in order."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                yield [from_json(d) for d in json.loads(line)]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path} line {n} is not a tracklet event list ({e}); "
                                 "is it an events.jsonl written by track run --events?") from e
