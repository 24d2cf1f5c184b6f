"""Outputs of a run. Every sink has the same two calls: ``write(camera, frame, rows, ids)``
as frames go by and ``close(ids)`` at the end, where ``ids`` (tracking.events.Ids) gives the
global id decided so far for a local track at a frame. Files written as frames go by (JSONL,
video, contact sheets) show a track from the moment it has a global id; files written at the
end (MOT, the identities table) use the final decisions, so a track's rows from before it
was identified are in them too, and a track the offline pass cut carries each person's id
on that person's frames. Each file is written under a temporary name and renamed when
complete (reid.io)."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from reid.io import part_path, publish, write_bytes_atomic, write_json_atomic, write_text_atomic
from tracking.camera_run import Row
from tracking.events import Ids
from tracking.sources import Frame, VideoFile


class Sink(Protocol):
    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None: ...

    def close(self, ids: Ids) -> None: ...


def crop(image: np.ndarray, box, min_side: int = 2) -> np.ndarray | None:
    """The part of ``image`` inside ``box`` (x1, y1, x2, y2), clipped to the image; None
    when less than ``min_side`` pixels of it are inside either way."""
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(box[2])), min(h, int(box[3]))
    if x2 - x1 < min_side or y2 - y1 < min_side:
        return None
    return image[y1:y2, x1:x2]


def identified(rows: list[Row], ids: Ids) -> list[dict]:
    """The rows seen in this frame whose track has a global id, as {id, box, score}."""
    return [{"id": gid, "box": r.box, "score": r.score} for r in rows if not r.late
            if (gid := ids.get(r.camera, r.track_id, r.frame)) is not None]


class MotFile:
    """MOTChallenge text for one camera: frame,id,x,y,w,h,conf,-1,-1,-1 (frames 1-based, in
    decode order), global ids. Rows are kept with their local ids in a line-buffered .part
    file as they come (a run that dies keeps them) and rewritten at ``close`` with the final
    global ids, sorted by frame; tracks that never got a global id are left out."""

    def __init__(self, path: str | Path, camera: str):
        self.path, self.camera = Path(path), camera
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = part_path(self.path)
        self.f = open(self.tmp, "w", buffering=1)

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        if camera != self.camera:
            return
        for r in rows:
            x1, y1, x2, y2 = r.box
            self.f.write(f"{r.frame},{r.track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},"
                         f"{y2 - y1:.2f},{r.score:.3f},-1,-1,-1\n")

    def close(self, ids: Ids) -> None:
        self.f.close()
        rows = []
        for line in self.tmp.read_text().splitlines(keepends=True):
            frame, local, rest = line.split(",", 2)
            gid = ids.get(self.camera, int(local), int(frame))
            if gid is not None:
                rows.append((int(frame), f"{frame},{gid},{rest}"))
        rows.sort(key=lambda r: r[0])  # stable: same-frame order kept
        self.tmp.write_text("".join(line for _, line in rows))
        publish(self.tmp, self.path)


class JsonlFile:
    """One JSON object per frame of one camera: {"frame": n, "time": s, "tracks": [{id,
    track, box, score}]} (id: global; track: the local track id in this camera), the time
    being media time for files and capture time for live sources. Lines go to a .part file
    as frames come, with the ids known then (a live reader can follow it), and the file is
    rewritten at ``close`` with the final ids, like the MOT file."""

    def __init__(self, path: str | Path, camera: str):
        self.path, self.camera = Path(path), camera
        self.tmp = part_path(self.path)
        self.f = open(self.tmp, "w", buffering=1)

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        if camera != self.camera:
            return
        tracks = [{"id": ids.get(camera, r.track_id, r.frame), "track": r.track_id,
                   "box": [round(float(v), 1) for v in r.box], "score": round(r.score, 3)}
                  for r in rows if not r.late]
        self.f.write(json.dumps({"frame": frame.index, "time": round(frame.time, 3),
                                 "tracks": tracks}) + "\n")

    def close(self, ids: Ids) -> None:
        self.f.close()
        lines = []
        for line in self.tmp.read_text().splitlines():
            entry = json.loads(line)
            for t in entry["tracks"]:
                t["id"] = ids.get(self.camera, t["track"], entry["frame"])
            entry["tracks"] = [t for t in entry["tracks"] if t["id"] is not None]
            lines.append(json.dumps(entry) + "\n")
        self.tmp.write_text("".join(lines))
        publish(self.tmp, self.path)


def color_of(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


class AnnotatedVideo:
    """One camera's frames with boxes, global ids and short trails drawn (OpenCV), as mp4.
    A live camera is drawn as frames come, with the ids known then. A recording (``source``,
    its file) is drawn at ``close`` with the final ids: its rows are kept (a few numbers a
    box, boxes filled in for frames a track was lost included) and the file is decoded
    again, which costs a few percent of a run."""

    def __init__(self, path: str | Path, camera: str, fps: float, size: tuple[int, int],
                 trail: int = 20, source: str | Path | None = None):
        self.path, self.camera, self.source = Path(path), camera, source
        self.tmp = part_path(self.path)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise RuntimeError(f"cannot write video {self.tmp}")
        self.trails: dict[int, deque] = defaultdict(lambda: deque(maxlen=trail))
        self.rows: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)  # recording
        self.last_frame = 0

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        if camera != self.camera:
            return
        if self.source is None:
            self._render(frame.image.copy(), frame.index, identified(rows, ids))
            return
        for r in rows:
            self.rows[r.frame].append((r.track_id, r.box))
        self.last_frame = frame.index

    def _render(self, img: np.ndarray, index: int, tracks: list[dict]) -> None:
        for t in tracks:
            self._draw(img, t["id"], [int(v) for v in t["box"]])
        alive = {t["id"] for t in tracks}
        for gone in [k for k in self.trails if k not in alive]:
            del self.trails[gone]  # bounded memory: only live tracks keep trails
        cv2.putText(img, f"frame {index}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 2, cv2.LINE_AA)
        self.writer.write(img)

    def _render_recording(self, ids: Ids) -> None:
        for index, img in VideoFile(self.source):
            if index > self.last_frame:
                break
            tracks = [{"id": gid, "box": box} for track, box in self.rows.pop(index, [])
                      if (gid := ids.get(self.camera, track, index)) is not None]
            self._render(img, index, tracks)

    def _draw(self, img: np.ndarray, gid: int, box: list[int]) -> None:
        x1, y1, x2, y2 = box
        c = color_of(gid)
        self.trails[gid].append(((x1 + x2) // 2, y2))
        pts = np.array(self.trails[gid], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, c, 2)
        cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
        label = str(gid)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(img, (x1, y1 - th - 6), (x1 + tw + 4, y1), c, -1)
        cv2.putText(img, label, (x1 + 2, y1 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)

    def close(self, ids: Ids) -> None:
        if self.source is not None and self.last_frame:
            self._render_recording(ids)
        self.writer.release()
        publish(self.tmp, self.path)


class ContactSheets:
    """One PNG per global identity in ``folder``: a row per camera of its best crops (highest
    detection score, at most one crop per second per local track so the row is not one
    moment repeated). Crops are kept per local track, as small thumbnails (a few tens of KB
    a track), and grouped by the final ids at ``close``, so a track the offline pass cut
    shows each crop under the person it belongs to."""

    def __init__(self, folder: str | Path, per_camera: int = 5, size: tuple[int, int] = (64, 128),
                 every_s: float = 1.0):
        self.folder = Path(folder)
        self.per_camera, self.size, self.every_s = per_camera, size, every_s
        self.best: dict[tuple[str, int], list] = {}  # (camera, track) -> [(score, frame, crop)]
        self.last: dict[tuple[str, int], float] = {}

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        for r in rows:
            if not r.late:
                self.offer((camera, r.track_id), frame, r.box, r.score)

    def offer(self, track: tuple[str, int], frame: Frame, box: list[float],
              score: float) -> None:
        if frame.time - self.last.get(track, -np.inf) < self.every_s:
            return
        kept = self.best.setdefault(track, [])
        if len(kept) >= self.per_camera and score <= kept[-1][0]:
            return
        piece = crop(frame.image, box, min_side=4)
        if piece is None:
            return
        self.last[track] = frame.time
        kept.append((score, frame.index, cv2.resize(piece, self.size)))
        kept.sort(key=lambda k: -k[0])
        del kept[self.per_camera:]

    def close(self, ids: Ids) -> None:
        people: dict[int, dict[str, list]] = {}
        for (camera, track), kept in self.best.items():
            for score, index, crop in kept:
                gid = ids.get(camera, track, index)
                if gid is not None:
                    people.setdefault(gid, {}).setdefault(camera, []).append((score, crop))
        for gid, cams in people.items():
            for row in cams.values():
                row.sort(key=lambda k: -k[0])
                del row[self.per_camera:]
            ok, png = cv2.imencode(".png", self._sheet(gid, cams))
            write_bytes_atomic(self.folder / f"id_{gid:04d}.png", png.tobytes())

    def _sheet(self, gid: int, cams: dict[str, list]) -> np.ndarray:
        w, h = self.size
        label_w = 70
        sheet = np.full((24 + len(cams) * (h + 4), label_w + self.per_camera * (w + 4), 3),
                        255, np.uint8)
        cv2.putText(sheet, f"id {gid}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    color_of(gid), 2, cv2.LINE_AA)
        for r, (camera, row) in enumerate(sorted(cams.items())):
            y = 24 + r * (h + 4)
            cv2.putText(sheet, camera[:8], (4, y + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1, cv2.LINE_AA)
            for c, (_, crop) in enumerate(row):
                x = label_w + c * (w + 4)
                sheet[y:y + h, x:x + w] = crop
        return sheet


class IdentitiesFile:
    """identities.json and .csv in ``folder``: one row per identified stretch of a local
    track (global id, camera, local id, first and last time seen, frames seen), by global
    id; a track cut by the offline pass has one row per person in it. A track that ended
    for good can be ``settle``d: its rows are made then and wait on disk (a .part file),
    so a long run holds only its open tracks' frames."""

    FIELDS = ["global_id", "camera", "local_id", "first_s", "last_s", "frames"]

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.seen: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
        self.order: dict[tuple[str, int], int] = {}  # when each track was first seen
        self.spill = part_path(self.folder / "identities.rows")
        self.settled = 0  # tracks settled so far (their order numbers stay taken)

    def write(self, camera: str, frame: Frame, rows: list[Row], ids: Ids) -> None:
        for r in rows:
            if not r.late:
                key = (r.camera, r.track_id)
                self.order.setdefault(key, len(self.order) + self.settled)
                self.seen[key].append((r.frame, r.time))

    def settle(self, camera: str, track_id: int, ids: Ids) -> None:
        """The track ended and its decisions are final: its rows go to disk."""
        key = (camera, track_id)
        if key not in self.seen:
            return
        rows = self._rows(key, self.seen.pop(key), self.order.pop(key), ids)
        self.settled += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.spill, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)

    @staticmethod
    def _rows(key: tuple[str, int], seen: list[tuple[int, float]], order: int,
              ids: Ids) -> list[dict]:
        """One track's rows, each with its place in first-seen order (``_order``)."""
        camera, local = key
        spans: dict[int, list] = {}  # id -> first, last, n
        for frame, time in seen:
            gid = ids.get(camera, local, frame)
            if gid is not None:
                span = spans.setdefault(gid, [time, time, 0])
                span[1], span[2] = time, span[2] + 1
        return [{"global_id": g, "camera": camera, "local_id": local,
                 "first_s": round(first, 3), "last_s": round(last, 3), "frames": n,
                 "_order": [order, k]} for k, (g, (first, last, n)) in enumerate(spans.items())]

    def table(self, ids: Ids) -> list[dict]:
        table = [r for key, seen in self.seen.items()
                 for r in self._rows(key, seen, self.order[key], ids)]
        if self.spill.exists():
            with open(self.spill) as f:
                table += [json.loads(line) for line in f]
        table.sort(key=lambda r: (r["global_id"], r["first_s"], r["_order"]))
        for r in table:
            del r["_order"]
        return table

    def close(self, ids: Ids) -> None:
        table = self.table(ids)
        write_json_atomic(self.folder / "identities.json", table)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(table)
        write_text_atomic(self.folder / "identities.csv", buf.getvalue())
        self.spill.unlink(missing_ok=True)
