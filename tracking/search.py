"""Find a person in indexed runs (tracking.index): a photo (a person crop, or a whole frame
whose largest detected person is taken) or a known identity's vectors in, the closest
identities out, ranked by cosine distance, with a results sheet to look at.

Each index is searched exactly below EXACT_MAX vectors, else through an HNSW graph that is
saved beside it (RUN/index.hnsw) and read by the next search instead of being built again.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reid.io import part_path, publish
from tracking.index import (
    INDEX_NAME,
    SearchError,
    Tracklet,
    TrackletIndex,
    model_name,
    same_model,
)
from tracking.sinks import color_of

log = logging.getLogger(__name__)

EXACT_MAX = 20_000   # below this many vectors exact search is fast enough; above, HNSW
QUERY_CONF = 0.4     # a query frame's person must be a confident detection, not clutter
FRAME_ASPECT = 0.75  # an image wider than this times its height is a frame, not a person crop
FRAME_SIZE = 1000    # ... and so is one with a side longer than this (pixels)


@dataclass
class Hit:
    """One identity of one run, at its best tracklet's distance from the query."""

    run: str
    identity: int
    camera: str
    distance: float
    track_id: int
    thumb: bytes | None
    cameras: list[str] = field(default_factory=list)
    start_s: float = 0.0
    end_s: float = 0.0
    index: int = 0  # which of the searched indexes, and the tracklet's row in it
    row: int = 0

    def to_json(self) -> dict:
        return {"run": self.run, "identity": self.identity, "camera": self.camera,
                "cameras": self.cameras, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "distance": round(self.distance, 4),
                "track_id": self.track_id}


def _faiss():
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs each CPU probe
    import faiss

    return faiss


class VectorSearch:
    """Nearest unit vectors by cosine distance (1 - inner product) through faiss: exact
    below EXACT_MAX vectors, an HNSW graph above (approximate, but sub-linear); or a given
    faiss index (a saved graph)."""

    def __init__(self, vectors: np.ndarray | None = None, index=None):
        faiss = _faiss()
        if index is None:
            dim = vectors.shape[1]
            if len(vectors) < EXACT_MAX:
                index = faiss.IndexFlatIP(dim)
            else:
                index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.add(np.ascontiguousarray(vectors, np.float32))
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = 4096  # bench/search_scale.py: recall@100 0.99, 15 ms at 1 M
        self.index = index

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, np.float32))

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances and row numbers (-1: none), each Q x k, nearest first."""
        sims, rows = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        return 1.0 - sims, rows


def open_indexes(paths: Sequence[str | Path]) -> list[TrackletIndex]:
    """The indexes of the given runs (or index files); all must share one model."""
    indexes = []
    for p in map(Path, paths):
        file = p / INDEX_NAME if p.is_dir() else p
        if not file.is_file():
            raise SearchError(missing_index(p))
        indexes.append(TrackletIndex(file))
    first = indexes[0]
    for other in indexes[1:]:
        if not same_model(first.model, other.model):
            raise SearchError(f"{first.path} and {other.path} were made by different re-ID "
                              f"models ({model_name(first.model)} vs "
                              f"{model_name(other.model)}); search them separately")
    return indexes


def missing_index(run: Path) -> str:
    """Why a run cannot be searched, and what to do."""
    if not run.exists():
        return f"{run} does not exist"
    if (run / part_path(INDEX_NAME)).exists() or (run / part_path("events.jsonl")).exists():
        return (f"{run} is half-written (its run or index is still being written, or died); "
                f"wait for it, or rerun it, then track index {run}")
    return f"{run} has no {INDEX_NAME}; build it with track index {run}"


def check_query_model(indexes: list[TrackletIndex], model: dict) -> None:
    if not same_model(indexes[0].model, model):
        raise SearchError(f"{indexes[0].path} was made by {model_name(indexes[0].model)}, the "
                          f"query model is {model_name(model)}; pass --reid-weights with the "
                          "index's model")


def search(indexes: list[TrackletIndex], queries: np.ndarray, top: int = 10,
           skip: tuple[int, int] | None = None) -> list[Hit]:
    """The ``top`` identities nearest any query vector, best first; ``skip`` is an (index
    number, identity) to leave out (the query's own). Each index is searched apart (its
    own graph) and the nearest tracklets of all are merged."""
    best: dict[tuple[int, int], float] = {}
    for n, index in enumerate(indexes):
        ids, found = vector_search(index)
        if found is None:
            continue
        dist, rows = found(queries, min(len(ids), max(100, 20 * top)))
        for d, r in zip(dist.ravel(), rows.ravel()):
            if r >= 0:
                key = (n, int(ids[r]))
                best[key] = min(best.get(key, np.inf), float(d))
    return group(indexes, best, top, skip)


_KEPT: dict[str, tuple] = {}  # index file -> (its state, its search), while it stays the same


def vector_search(index: TrackletIndex) -> tuple[np.ndarray, VectorSearch | None]:
    """The row ids of an index's vectors, and the search over them (None: no rows). Kept
    while the index stays the same (same file, same rows), so that a server does not
    rebuild a large graph for every query; a live run's new rows make a new one."""
    path = str(index.path.resolve())
    state = index.state()
    if _KEPT.get(path, (None,))[0] != state:
        _KEPT.pop(path, None)  # the old graph goes before the new one is built
        if state[1] < EXACT_MAX:  # how many rows
            ids, vectors = index.vectors()
            _KEPT[path] = (state, (ids, VectorSearch(vectors) if len(ids) else None))
        else:
            _KEPT[path] = (state, saved_graph(index))
    return _KEPT[path][1]


# --- the approximate graph, saved beside its index ---------------------------------------

GRAPH_FORMAT = "mcreid.graph/1"


def graph_path(index: TrackletIndex) -> Path:
    return index.path.with_suffix(".hnsw")


def saved_graph(index: TrackletIndex) -> tuple[np.ndarray, VectorSearch]:
    """An index's HNSW graph, from RUN/index.hnsw when that file was made from this index
    file by its model (the graph of a 1 M index takes minutes to build, seconds to read);
    rows appended since (a live run) are added to it, and the file is written again. A
    graph of another index file or model is rebuilt; a damaged one too, with a warning."""
    path = graph_path(index)
    ids, found = read_graph(path, index) if path.is_file() else (None, None)
    built = found is None
    if built:
        ids, vectors = index.vectors()
        log.info("building the search graph of %d vectors for %s (saved as %s)", len(ids),
                 index.path, path.name)
        found = VectorSearch(vectors)
    newer, vectors = index.vectors("id > ?", (int(ids[-1]),))
    if len(newer):
        found.add(vectors)
        ids = np.concatenate([ids, newer])
    if built or len(newer):
        write_graph(path, index, ids, found)
    return ids, found


def graph_header(index: TrackletIndex, rows: int) -> dict:
    """What a graph file covers: which index file (its uid), which model, how many rows."""
    return {"format": GRAPH_FORMAT, "index": index.uid, "model": index.model.get("sha256"),
            "rows": rows}


def write_graph(path: Path, index: TrackletIndex, ids: np.ndarray, found: VectorSearch) -> None:
    """The file: a JSON header line, the row ids (int64), then faiss's own serialisation;
    written under a temporary name of its own (two searches may save at once) and renamed,
    so readers see a whole file or none."""
    faiss = _faiss()
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".part", delete=False) as f:
            try:
                f.write(json.dumps(graph_header(index, len(ids))).encode() + b"\n")
                f.write(np.asarray(ids, "<i8").tobytes())
                faiss.write_index(found.index, faiss.PyCallbackIOWriter(f.write))
                f.close()
                shutil.copymode(index.path, f.name)  # readable by whoever reads the index
                publish(f.name, path)
            finally:
                Path(f.name).unlink(missing_ok=True)
    except OSError as e:  # a read-only run folder: search on, without saving
        log.warning("cannot save the search graph %s (%s); it is rebuilt next time", path, e)


def read_graph(path: Path, index: TrackletIndex) -> tuple[np.ndarray | None,
                                                          VectorSearch | None]:
    """The saved graph and the rows it covers, or (None, None) if it is not this index's
    or cannot be read."""
    faiss = _faiss()
    want = graph_header(index, 0)
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if any(header.get(k) != want[k] for k in ("format", "index", "model")):
                log.info("%s was made from another index or model; rebuilding it", path)
                return None, None
            rows = int(header["rows"])
            ids = np.frombuffer(f.read(8 * rows), "<i8")
            graph = faiss.read_index(faiss.PyCallbackIOReader(f.read))
        if len(ids) != rows or graph.ntotal != rows or graph.d != index.dim or \
                ids[-1] > index.last_id():
            raise ValueError("it does not hold the rows its header names")
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        why = ("faiss cannot read it: cut short or corrupt" if isinstance(e, RuntimeError)
               else " ".join(str(e).split())[:160] or type(e).__name__)  # one line
        log.warning("search graph %s is damaged (%s); rebuilding it", path, why)
        return None, None
    return ids, VectorSearch(index=graph)


def group(indexes: list[TrackletIndex], best: dict[tuple[int, int], float], top: int,
          skip: tuple[int, int] | None) -> list[Hit]:
    """Tracklet distances -> one hit per (run, identity) at its best distance."""
    hits: dict[tuple[int, int], Hit] = {}
    for (n, row), d in sorted(best.items(), key=lambda kv: kv[1]):
        (_, t), = indexes[n].tracklets("id = ?", (row,))
        key = (n, t.global_id)
        if key == skip or key in hits:
            continue
        hits[key] = Hit(t.run, t.global_id, t.camera, d, t.track_id, t.thumb, index=n,
                        row=row)
        if len(hits) == top:
            break
    for (n, gid), hit in hits.items():
        spans = identity_tracklets(indexes[n], gid)
        hit.cameras = sorted({t.camera for t in spans})
        hit.start_s, hit.end_s = min(t.start_s for t in spans), max(t.end_s for t in spans)
    return list(hits.values())


def identity_tracklets(index: TrackletIndex, identity: int) -> list[Tracklet]:
    """Everything the index holds of one identity, in the order it was added."""
    return [t for _, t in index.tracklets("global_id = ?", (identity,))]


def identity_vectors(index: TrackletIndex, identity: int) -> np.ndarray:
    """The vectors of an identity's tracklets, to search from what is known of it."""
    spans = identity_tracklets(index, identity)
    if not spans:
        raise SearchError(f"identity {identity} is not in {index.path}")
    return np.stack([t.embedding for t in spans])


# --- the query photo ---------------------------------------------------------------------


def read_photo(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if Path(path).is_file() else None
    if image is None:
        raise SearchError(f"cannot read {path} as an image (missing, empty or corrupt)")
    return image


def parse_box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(round(float(v))) for v in text.split(","))
    except ValueError as e:
        raise SearchError(f"--box {text!r} must look like x,y,w,h (pixels)") from e
    if w < 8 or h < 8:
        raise SearchError(f"--box {text!r} is too small for a person")
    return x, y, w, h


def looks_like_frame(image: np.ndarray) -> bool:
    """A person crop is taller than wide and modest in size; anything else is a frame."""
    h, w = image.shape[:2]
    return w > FRAME_ASPECT * h or max(h, w) > FRAME_SIZE


def person_crop(image: np.ndarray, box: tuple[int, int, int, int] | None,
                detect: Callable[[np.ndarray], np.ndarray], name: str) -> np.ndarray:
    """The query person: the --box, else the largest confident person of a frame, else
    the photo itself (a crop)."""
    if box is None and not looks_like_frame(image):
        return image
    if box is None:
        people = [b for b in detect(image) if b[4] >= QUERY_CONF]
        if not people:
            raise SearchError(f"no person found in {name}; give a person crop or --box x,y,w,h")
        x1, y1, x2, y2, _ = max(people, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        box = int(x1), int(y1), int(x2 - x1), int(y2 - y1)
    x, y, w, h = box
    crop = image[max(0, y):y + h, max(0, x):x + w]
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        raise SearchError(f"--box {x},{y},{w},{h} lies outside the {image.shape[1]}x"
                          f"{image.shape[0]} image")
    return crop


# --- the results sheet -------------------------------------------------------------------

TILE = (96, 192)  # width, height of each image on the sheet
LABEL_H = 46


def results_sheet(query: np.ndarray | None, hits: list[Hit]) -> np.ndarray:
    """The query beside its hits' thumbnails, each labelled with rank, identity, camera and
    distance."""
    w, h = TILE
    tiles = [] if query is None else [(query, ["query", "", ""])]
    for rank, hit in enumerate(hits, 1):
        thumb = (cv2.imdecode(np.frombuffer(hit.thumb, np.uint8), cv2.IMREAD_COLOR)
                 if hit.thumb else None)
        tiles.append((thumb, [f"#{rank} id {hit.identity}", hit.camera[:12],
                              f"d {hit.distance:.3f}"]))
    sheet = np.full((h + LABEL_H, max(1, len(tiles)) * (w + 6), 3), 255, np.uint8)
    for i, (image, lines) in enumerate(tiles):
        x = i * (w + 6)
        if image is not None:
            fitted = fit(image, w, h)
            sheet[:fitted.shape[0], x:x + fitted.shape[1]] = fitted
        for j, text in enumerate(lines):
            cv2.putText(sheet, text, (x + 2, h + 14 + 15 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    scale = min(w / image.shape[1], h / image.shape[0])
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# --- the timeline ------------------------------------------------------------------------

LANE_H, AXIS_H, LANE_LABEL_W = 20, 26, 130


def timeline(people: list[tuple[int, list[Tracklet]]], span: tuple[float, float] | None = None,
             width: int = 760) -> np.ndarray:
    """Where and when each identity was seen: a lane per (identity, camera), a bar per
    tracklet, on one time axis in seconds (``span``, else the sightings' own)."""
    lanes = [(gid, cam, [t for t in ts if t.camera == cam])
             for gid, ts in people for cam in sorted({t.camera for t in ts})]
    spans = [t for _, ts in people for t in ts]
    t0, t1 = span or ((min(t.start_s for t in spans), max(t.end_s for t in spans))
                      if spans else (0.0, 1.0))
    t1 = max(t1, t0 + 1.0)
    left, right = LANE_LABEL_W, width - 12

    def x(t: float) -> int:
        return int(left + (t - t0) / (t1 - t0) * (right - left))

    img = np.full((AXIS_H + LANE_H * len(lanes) + 4, width, 3), 255, np.uint8)
    for i, (gid, cam, ts) in enumerate(lanes):
        y = 4 + i * LANE_H
        cv2.putText(img, f"id {gid}  {cam}"[:18], (4, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(img, (left, y + LANE_H // 2), (right, y + LANE_H // 2), (225, 225, 225), 1)
        for t in ts:
            cv2.rectangle(img, (x(t.start_s), y + 4), (max(x(t.end_s), x(t.start_s) + 2),
                                                       y + LANE_H - 4), color_of(gid), -1)
    axis_y = 4 + LANE_H * len(lanes) + 2
    cv2.line(img, (left, axis_y), (right, axis_y), (0, 0, 0), 1)
    step = tick_step(t1 - t0)
    for k in range(int(np.ceil(t0 / step)), int(t1 // step) + 1):
        tx = x(k * step)
        cv2.line(img, (tx, axis_y), (tx, axis_y + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{k * step:g}s", (tx - 10, axis_y + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def tick_step(length: float) -> float:
    """A round step giving about 4-10 ticks over ``length`` seconds."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if length / step <= 10:
            return step
    return 3600.0 * np.ceil(length / 36000)
