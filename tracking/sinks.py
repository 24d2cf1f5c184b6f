"""Outputs of a run, each written under a temporary name and renamed when complete."""

from __future__ import annotations

import json
import os
from collections import defaultdict, deque
from pathlib import Path

import cv2
import numpy as np


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _part(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))


def _part(path: Path) -> Path:
    return path.with_name(f".{path.stem}.part{path.suffix}")


class MotWriter:
    """MOTChallenge text: frame,id,x,y,w,h,conf,-1,-1,-1 (frames 1-based, decode order).
    Line-buffered, so a run that dies keeps every finished line in the .part file. Rows may
    be written late (a re-found track's missed frames, a track's rows from before it had a
    global id); ``close`` sorts the file by frame."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _part(self.path)
        self.f = open(self.tmp, "w", buffering=1)

    def write(self, frame: int, tracks: list[dict]) -> None:
        for t in tracks:
            x1, y1, x2, y2 = t["box"]
            self.f.write(f"{frame},{t['id']},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                         f"{t['score']:.3f},-1,-1,-1\n")

    def close(self) -> None:
        self.f.close()
        lines = self.tmp.read_text().splitlines(keepends=True)
        lines.sort(key=lambda line: int(line.split(",", 1)[0]))  # stable: same-frame order kept
        self.tmp.write_text("".join(lines))
        os.replace(self.tmp, self.path)


class JsonlWriter:
    """One JSON object per frame: {"frame": n, "time": s, "tracks": [{id, box, score}]}."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.tmp = _part(self.path)
        self.f = open(self.tmp, "w", buffering=1)

    def write(self, frame: int, tracks: list[dict], time: float | None = None) -> None:
        """``time`` defaults to the file's media time; live runs give the capture time."""
        time = (frame - 1) / self.fps if time is None else time
        self.f.write(json.dumps({"frame": frame, "time": round(time, 3),
                                 "tracks": [{"id": t["id"],
                                             "box": [round(float(v), 1) for v in t["box"]],
                                             "score": round(t["score"], 3)} for t in tracks]})
                     + "\n")

    def close(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.path)


def color_of(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


class AnnotatedVideo:
    """Boxes, ids and short trails drawn with OpenCV, written as mp4."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], trail: int = 20):
        self.path = Path(path)
        self.tmp = _part(self.path)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise RuntimeError(f"cannot write video {self.tmp}")
        self.trails: dict[int, deque] = defaultdict(lambda: deque(maxlen=trail))
        self.seen: set[int] = set()

    def write(self, frame_index: int, frame: np.ndarray, tracks: list[dict]) -> None:
        img = frame.copy()
        alive = set()
        for t in tracks:
            x1, y1, x2, y2 = (int(v) for v in t["box"])
            c = color_of(t["id"])
            alive.add(t["id"])
            self.trails[t["id"]].append(((x1 + x2) // 2, y2))
            pts = np.array(self.trails[t["id"]], np.int32)
            if len(pts) > 1:
                cv2.polylines(img, [pts], False, c, 2)
            cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
            label = str(t["id"])
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
            cv2.rectangle(img, (x1, y1 - th - 6), (x1 + tw + 4, y1), c, -1)
            cv2.putText(img, label, (x1 + 2, y1 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 0), 1, cv2.LINE_AA)
        for gone in [k for k in self.trails if k not in alive]:
            del self.trails[gone]  # bounded memory: only live tracks keep trails
        cv2.putText(img, f"frame {frame_index}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 2, cv2.LINE_AA)
        self.writer.write(img)

    def close(self) -> None:
        self.writer.release()
        os.replace(self.tmp, self.path)


class ContactSheets:
    """One PNG per global identity: a row per camera of its best crops (highest detection
    score, at most one crop per second per camera so the row is not one moment repeated).
    Crops are kept as small thumbnails, so memory per identity stays a few tens of KB."""

    def __init__(self, per_camera: int = 5, size: tuple[int, int] = (64, 128),
                 every_s: float = 1.0):
        self.per_camera, self.size, self.every_s = per_camera, size, every_s
        self.best: dict[int, dict[str, list]] = {}
        self.last: dict[tuple[int, str], float] = {}

    def offer(self, global_id: int, camera: str, time: float, frame: np.ndarray,
              box: list[float], score: float) -> None:
        key = (global_id, camera)
        if time - self.last.get(key, -np.inf) < self.every_s:
            return
        row = self.best.setdefault(global_id, {}).setdefault(camera, [])
        if len(row) >= self.per_camera and score <= row[-1][0]:
            return
        h, w = frame.shape[:2]
        x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
        x2, y2 = min(w, int(box[2])), min(h, int(box[3]))
        if x2 - x1 < 4 or y2 - y1 < 4:
            return
        self.last[key] = time
        row.append((score, cv2.resize(frame[y1:y2, x1:x2], self.size)))
        row.sort(key=lambda r: -r[0])
        del row[self.per_camera:]

    def write(self, folder: str | Path) -> int:
        folder = Path(folder)
        w, h = self.size
        for gid, cams in self.best.items():
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
            ok, png = cv2.imencode(".png", sheet)
            write_bytes_atomic(folder / f"id_{gid:04d}.png", png.tobytes())
        return len(self.best)
