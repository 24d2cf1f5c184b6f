"""Pictures of results: ranked-list grids and CMC curves, drawn with OpenCV only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from reid.data.datasets import Record
from reid.data.images import read_image

GREEN, RED, GREY = (0, 170, 0), (0, 0, 220), (160, 160, 160)


def _tile(path: str, color: tuple[int, int, int], size=(128, 64), border=4) -> np.ndarray:
    img = cv2.resize(read_image(path), (size[1], size[0]))
    return cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT,
                              value=color)


def ranked_grid(distmat: np.ndarray, query: Sequence[Record], gallery: Sequence[Record],
                rows: Sequence[int], topk: int = 10) -> np.ndarray:
    """One row per query: the query (grey border), then its top-k gallery images with a green
    border for a true match and red otherwise; same-camera matches are skipped, as in scoring."""
    lines = []
    for qi in rows:
        q = query[qi]
        tiles = [_tile(q.path, GREY), np.full((136, 12, 3), 255, np.uint8)]
        for gi in np.argsort(distmat[qi]):
            g = gallery[gi]
            if g.pid == q.pid and g.camid == q.camid:
                continue
            tiles.append(_tile(g.path, GREEN if g.pid == q.pid else RED))
            if len(tiles) == topk + 2:
                break
        lines.append(np.hstack(tiles))
    return np.vstack(lines)


def cmc_curve(curves: dict[str, Sequence[float]], max_rank: int = 20,
              size=(480, 640)) -> np.ndarray:
    """CMC curves (percent per rank) on one chart."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 20, 20, 50
    ys = [v for c in curves.values() for v in c[:max_rank]]
    lo = max(0.0, np.floor(min(ys) / 10) * 10)

    def pt(rank: int, value: float) -> tuple[int, int]:
        x = left + (rank - 1) / (max_rank - 1) * (w - left - right)
        y = top + (100 - value) / (100 - lo) * (h - top - bottom)
        return int(x), int(y)

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for v in np.arange(lo, 100.1, 10):
        cv2.putText(img, f"{v:.0f}", (15, pt(1, v)[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1)
    for r in (1, 5, 10, 15, 20):
        if r <= max_rank:
            cv2.putText(img, str(r), (pt(r, lo)[0] - 5, h - bottom + 20),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "rank", (w // 2 - 20, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    palette = [(200, 80, 0), (0, 120, 0), (0, 0, 200), (150, 0, 150)]
    for n, (name, c) in enumerate(curves.items()):
        color = palette[n % len(palette)]
        pts = np.array([pt(r + 1, c[r]) for r in range(min(max_rank, len(c)))], np.int32)
        cv2.polylines(img, [pts], False, color, 2)
        cv2.putText(img, f"{name}: R1 {c[0]:.1f}", (left + 10, h - bottom - 15 - 20 * n),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1)
    return img


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Atomic: encode in memory, write a temp file, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)
