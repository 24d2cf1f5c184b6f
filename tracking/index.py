"""A run's search index: RUN/index.sqlite, one record per tracklet (a stretch of a local
track under one global id) with its appearance vector and a thumbnail.

It is built from what a run already writes with ``track run --events``: events.jsonl (boxes,
frames, each track's final embedding), run.json (each camera's source, and which re-ID model
made the embeddings) and, for several cameras, identities.json (which global id each stretch
of a local track has). Thumbnails are cut from the source videos, decoding only as far as
the last frame needed.

SQLite in WAL mode, so a live run appends (``LiveIndex``, as each track ends) while others
search.
The file records the model that made its vectors and refuses vectors of another: distances
between two models' vectors mean nothing. ``track index`` writes a whole index under a
temporary name and renames it when complete.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from reid.io import atomic_path, part_path
from tracking.camera_run import Row
from tracking.config import UsageError
from tracking.events import Ids, TrackletEnded, TrackletEvent, TrackletUpdated, read_events
from tracking.sinks import crop
from tracking.sources import Frame, SourceError, VideoFile, is_stream

log = logging.getLogger(__name__)

FORMAT = "mcreid.index/1"
INDEX_NAME = "index.sqlite"
THUMB_HEIGHT = 128


class SearchError(UsageError):
    """Bad input to indexing or search: a one-line message, exit 2."""


@dataclass
class Tracklet:
    """One indexed stretch of a local track (one global id), as stored."""

    run: str
    camera: str
    track_id: int
    global_id: int
    start_s: float
    end_s: float
    first_frame: int
    last_frame: int
    thumb_frame: int                        # the frame of the best-scored box
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 of the thumbnail's crop
    thumb: bytes | None                     # PNG of the best-scored box, if the video was there
    embedding: np.ndarray                   # unit vector


COLUMNS = [f.name for f in fields(Tracklet) if f.name not in ("box", "embedding")]
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracklets (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, camera TEXT NOT NULL, track_id INTEGER,
    global_id INTEGER, start_s REAL, end_s REAL, first_frame INTEGER, last_frame INTEGER,
    thumb_frame INTEGER, thumb BLOB, x1 REAL, y1 REAL, x2 REAL, y2 REAL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS by_global_id ON tracklets (global_id);
"""


def same_model(a: dict, b: dict) -> bool:
    return a.get("sha256") == b.get("sha256")


def model_name(m: dict) -> str:
    return f"{m.get('weights')} ({m.get('arch')}, {m.get('embedding_dim')}-d, {m.get('sha256')})"


class TrackletIndex:
    """One index file: its model, its tracklets and their vectors."""

    def __init__(self, path: str | Path, model: dict | None = None):
        """Open ``path``; with ``model``, create it if it does not exist (and refuse a file
        made by another model)."""
        self.path = Path(path)
        if model is None and not self.path.is_file():
            raise SearchError(f"{self.path} not found; build it with track index RUN")
        self.db = sqlite3.connect(self.path)
        try:
            if model is not None:  # a reader changes nothing in the file
                # a new file's pages: at SQLite's 4 KB one 2 KB vector row fills a page, 4.1 KB
                # a row; at 16 KB rows pack, 2.3 KB each, and read 1.9 times as fast
                self.db.execute("PRAGMA page_size = 16384")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
            meta = dict(self.db.execute("SELECT key, value FROM meta"))
            if not meta and model is not None:
                meta = {"format": FORMAT, "model": json.dumps(model), "uid": uuid.uuid4().hex}
                with self.db:
                    self.db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise SearchError(f"{self.path} is not a search index ({e})") from e
        self.model = self._model(meta, model)
        # names this file's records: rows are only appended, so (uid, row id) always names
        # the same record, and a rebuilt index has a new uid (older files: their inode)
        self.uid: str = meta.get("uid") or f"i{self.path.stat().st_ino}"

    def _model(self, meta: dict, model: dict | None) -> dict:
        if meta.get("format") != FORMAT:
            raise SearchError(f"{self.path} is not a {FORMAT} index; rebuild it with "
                              "track index RUN")
        stored = json.loads(meta["model"])
        if model is not None and not same_model(stored, model):
            raise SearchError(f"{self.path} holds vectors of {model_name(stored)}, not "
                              f"{model_name(model)}; models cannot be mixed in one index")
        return stored

    def add(self, tracklets: Iterable[Tracklet]) -> None:
        rows = [(*(getattr(t, c) for c in COLUMNS), *t.box,
                 np.asarray(t.embedding, "<f4").tobytes()) for t in tracklets]
        marks = ", ".join("?" * (len(COLUMNS) + 5))
        with self.db:
            self.db.executemany(f"INSERT INTO tracklets ({', '.join(COLUMNS)}, x1, y1, x2, y2, "
                                f"embedding) VALUES ({marks})", rows)

    @property
    def dim(self) -> int:
        return int(self.model.get("embedding_dim") or 0)

    def vectors(self, where: str = "1", params: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and an N x D float32 matrix of their vectors, for the rows matching an
        SQL condition, in row order."""
        rows = self.db.execute(f"SELECT id, embedding FROM tracklets WHERE {where} ORDER BY id",
                               params).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        ids = np.array([r[0] for r in rows], np.int64)
        return ids, np.stack([np.frombuffer(r[1], "<f4") for r in rows])

    def last_id(self) -> int:
        return self.db.execute("SELECT MAX(id) FROM tracklets").fetchone()[0] or 0

    def tracklets(self, where: str = "1", params: tuple = ()) -> list[tuple[int, Tracklet]]:
        """(row id, tracklet) for the rows matching an SQL condition."""
        sql = (f"SELECT id, {', '.join(COLUMNS)}, x1, y1, x2, y2, embedding FROM tracklets "
               f"WHERE {where} ORDER BY id")
        out = []
        for r in self.db.execute(sql, params):
            values = dict(zip(COLUMNS, r[1:len(COLUMNS) + 1]))
            box = tuple(r[len(COLUMNS) + 1:len(COLUMNS) + 5])
            out.append((r[0], Tracklet(**values, box=box,  # type: ignore[arg-type]
                                       embedding=np.frombuffer(r[-1], "<f4"))))
        return out

    def identities(self) -> list[dict]:
        """One line per identity, in id order: how many tracklets, in which cameras, first
        and last time seen, and a tracklet row with a thumbnail (None if none has one)."""
        sql = ("SELECT global_id, COUNT(*), GROUP_CONCAT(DISTINCT camera), MIN(start_s), "
               "MAX(end_s) FROM tracklets GROUP BY global_id ORDER BY global_id")
        # apart, and in WHERE: there SQLite tests NULL without reading each thumbnail's
        # pages (a CASE in the query above made it 15 times slower: 100 ms at 2,000 rows)
        thumbs = dict(self.db.execute("SELECT global_id, MIN(id) FROM tracklets WHERE thumb "
                                      "IS NOT NULL GROUP BY global_id"))
        return [{"identity": gid, "tracklets": n, "cameras": sorted(cams.split(",")),
                 "start_s": first, "end_s": last, "thumb": thumbs.get(gid)}
                for gid, n, cams, first, last in self.db.execute(sql)]

    def state(self) -> tuple[str, int, int]:
        """Changes whenever the records do: the file (a rebuilt index is a new file), how
        many rows and the last row id (rows are only appended)."""
        count = self.db.execute("SELECT COUNT(*) FROM tracklets").fetchone()[0]
        return self.uid, count, self.last_id()

    def thumb(self, row: int) -> bytes | None:
        found = self.db.execute("SELECT thumb FROM tracklets WHERE id = ?", (row,)).fetchone()
        return found[0] if found else None

    def close(self) -> None:
        self.db.close()


# --- building an index from a run -------------------------------------------------------


def read_run(run: Path) -> tuple[dict, list[list[TrackletEvent]], list[dict] | None]:
    """A finished run's manifest, events and identities table (None for one camera)."""
    if not run.is_dir():
        raise SearchError(f"run folder {run} does not exist")
    events = run / "events.jsonl"
    if not events.is_file():
        why = ("is still being written or its run died (rerun it if it is not running)"
               if part_path(events).exists() else "is missing")
        raise SearchError(f"{events} {why}; an index needs a run made with track run --events")
    manifest_path = run / "run.json"
    if not manifest_path.is_file():
        raise SearchError(f"{run} has no run.json (which model made its vectors); rerun it "
                          "with track run --events")
    manifest = json.loads(manifest_path.read_text())
    if not manifest.get("reid"):
        raise SearchError(f"{run} was tracked without re-ID; it has no vectors to search")
    try:
        steps = list(read_events(events))
    except ValueError as e:
        raise SearchError(str(e)) from e
    table = run / "identities.json"
    return manifest, steps, json.loads(table.read_text()) if table.is_file() else None


@dataclass
class TrackSeen:
    """What the events say about one local track."""

    updates: list[TrackletUpdated]
    embedding: np.ndarray | None = None


def tracks_of(steps: list[list[TrackletEvent]]) -> dict[tuple[str, int], TrackSeen]:
    """Each local track's updates and its final embedding (else its first one)."""
    tracks: dict[tuple[str, int], TrackSeen] = {}
    for e in (e for step in steps for e in step):
        seen = tracks.setdefault((e.camera, e.track_id), TrackSeen([]))
        if isinstance(e, TrackletUpdated):
            seen.updates.append(e)
        vec = getattr(e, "embedding", None)
        if vec is not None and (isinstance(e, TrackletEnded) or seen.embedding is None):
            seen.embedding = vec
    return tracks


def stretches(tracks: dict, table: list[dict] | None) -> list[tuple[tuple[str, int], int, float,
                                                                     float]]:
    """(track, global id, first s, last s) per identified stretch: the identities table's
    rows for a site, the whole local track (its id is the global id) for one camera."""
    if table is not None:
        return [((r["camera"], r["local_id"]), r["global_id"], r["first_s"], r["last_s"])
                for r in table]
    return [(key, key[1], s.updates[0].time, s.updates[-1].time)
            for key, s in tracks.items() if s.updates]


def tracklets_of(run: str, tracks: dict, table: list[dict] | None) -> list[Tracklet]:
    """One tracklet per stretch with a vector; the thumbnail's box is its best-scored one."""
    out, skipped = [], 0
    for key, gid, first, last in stretches(tracks, table):
        seen = tracks.get(key)
        ups = [u for u in seen.updates if first - 1e-3 <= u.time <= last + 1e-3] if seen else []
        if not ups or seen.embedding is None:
            skipped += 1
            continue
        best = max(ups, key=lambda u: u.score)
        vec = np.asarray(seen.embedding, np.float32)
        out.append(Tracklet(run, key[0], key[1], gid, ups[0].time, ups[-1].time, ups[0].frame,
                            ups[-1].frame, best.frame, best.box, None, vec / np.linalg.norm(vec)))
    if skipped:
        log.info("%s: %d tracklet(s) left out: never seen clearly enough to embed", run, skipped)
    return out


def add_thumbnails(tracklets: list[Tracklet], sources: dict[str, str]) -> None:
    """Cut each tracklet's best box from its camera's video, decoding up to the last frame
    any of them needs; a camera whose video is gone (or live) keeps no thumbnails."""
    wanted: dict[str, dict[int, list[Tracklet]]] = defaultdict(lambda: defaultdict(list))
    for t in tracklets:
        wanted[t.camera][t.thumb_frame].append(t)
    for camera, frames in wanted.items():
        source = sources.get(camera)
        if source is None or is_stream(source) or not Path(source).is_file():
            log.warning("camera %s: source %s is not a video file here; no thumbnails",
                        camera, source)
            continue
        _cut(source, frames)


def _cut(source: str, frames: dict[int, list[Tracklet]]) -> None:
    try:
        video = VideoFile(source)
        for index, image in video:
            for t in frames.pop(index, []):
                t.thumb = thumbnail(image, t.box)
            if not frames:
                break
        video.close()
    except SourceError as e:
        log.warning("%s; no thumbnails from it", e)


def thumbnail(image: np.ndarray, box) -> bytes | None:
    piece = crop(image, box)
    if piece is None:
        return None
    scale = THUMB_HEIGHT / piece.shape[0]
    piece = cv2.resize(piece, (max(1, round(piece.shape[1] * scale)), THUMB_HEIGHT))
    return cv2.imencode(".png", piece)[1].tobytes()


def build_index(run: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Build (or rebuild) RUN/index.sqlite from the run's files; returns its path and how
    many tracklets it holds. The old index stays in place until the new one is complete."""
    run = Path(run)
    manifest, steps, table = read_run(run)
    tracklets = tracklets_of(run.resolve().name, tracks_of(steps), table)
    add_thumbnails(tracklets, {c["name"]: c["source"] for c in manifest["cameras"]})
    out = Path(out) if out else run / INDEX_NAME
    write_index(out, manifest["reid"], tracklets)
    return out, len(tracklets)


def write_index(path: Path, model: dict, tracklets: list[Tracklet]) -> None:
    """A new index file in place of any old one, in one step (readers see either)."""
    with atomic_path(path) as tmp:
        for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)
        index = TrackletIndex(tmp, model=model)
        index.add(tracklets)
        index.close()  # the last connection folds the WAL file into the database
        empty_wal(path)


def empty_wal(path: Path) -> None:
    """Fold an index's WAL file into it and empty it, before a new file takes its name:
    the -wal and -shm files go by that name, so the new file would read the old one's
    pages from them (they stay while a reader, a server, has the old file open)."""
    if not Path(f"{path}-wal").is_file():
        return
    busy = 1
    try:
        db = sqlite3.connect(path, timeout=10)
        try:
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:  # not a database: nothing can be reading it
        for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            side.unlink(missing_ok=True)
        return
    if busy:
        raise SearchError(f"{path} is being written (a live run still going?); stop it "
                          "before replacing its index")


# --- a live run's index, appended as it goes ---------------------------------------------


class LiveIndex:
    """RUN/index.sqlite of a live run, appended to as each track ends, so that it can be
    searched while the run goes on. A sink (tracking.sinks) that also reads the tracklet
    events: frames keep each stretch's best-scored box as its thumbnail (there is no file to
    cut it from later), events give each track's updates and vector, and a track's end
    adds its stretches, one per global id it had (the ids decided so far are final for a
    live run). The records are those ``build_index`` would make from the same run."""

    def __init__(self, folder: str | Path, model: dict):
        path = Path(folder) / INDEX_NAME
        write_index(path, model, [])  # an earlier run's records are not this run's
        self.index = TrackletIndex(path, model=model)
        self.run = Path(folder).resolve().name
        self.tracks: dict[tuple[str, int], TrackSeen] = {}
        self.thumbs: dict[tuple[str, int, int], tuple[float, int, bytes | None]] = {}

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        for r in rows:
            gid = None if r.late else ids.get(camera, r.track_id, r.frame)
            key = (camera, r.track_id, gid)
            if gid is not None and r.score > self.thumbs.get(key, (-1.0,))[0]:
                self.thumbs[key] = (r.score, r.frame, thumbnail(frame.image, r.box))

    def consume(self, events: list[TrackletEvent], ids: Ids) -> None:
        """Take a step's events (after the identity service's decisions are applied)."""
        for e in events:
            seen = self.tracks.setdefault((e.camera, e.track_id), TrackSeen([]))
            if isinstance(e, TrackletUpdated):
                seen.updates.append(e)
            if getattr(e, "embedding", None) is not None:
                seen.embedding = e.embedding
            if isinstance(e, TrackletEnded):
                self._add((e.camera, e.track_id), self.tracks.pop((e.camera, e.track_id)), ids)

    def _add(self, key: tuple[str, int], seen: TrackSeen, ids: Ids) -> None:
        table: dict[int, dict] = {}
        for u in seen.updates:
            gid = ids.get(*key, u.frame)
            if gid is not None:
                row = table.setdefault(gid, {"global_id": gid, "camera": key[0],
                                             "local_id": key[1], "first_s": u.time})
                row["last_s"] = u.time
        found = tracklets_of(self.run, {key: seen}, list(table.values()))
        for t in found:
            _, frame, thumb = self.thumbs.pop((*key, t.global_id), (0.0, -1, None))
            t.thumb = thumb if frame == t.thumb_frame else None
        self.index.add(found)

    def close(self, ids: Ids) -> None:
        self.index.close()
