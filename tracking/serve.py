"""``track serve``: a local web page over indexed runs (tracking.index). It lists each run's
cameras and identities; an identity opens with its contact sheet, its timeline and its
sightings, and a sighting plays the camera's annotated video from that moment; a photo
uploaded to the page is searched with tracking.search, as ``track search`` does.

    track serve runs/terrace runs/hall                   # http://127.0.0.1:8080/
    track serve runs/terrace --host 0.0.0.0 --token T    # others open http://HOST:8080/?token=T

Nothing leaves the machine: the page is one HTML document with its CSS and script inline
(tracking.serve_page), and it binds 127.0.0.1 unless given another host and a token. A run's
video (RUN/<camera>.mp4, MPEG-4 part 2, which browsers do not decode) is converted once to
WebM (VP8) in RUN/web/ in the background; the page says when it is not ready yet. Each
server thread keeps the index open (tracking.serve.RunIndex), so a live run's tracklets show
as they are appended and a rebuilt index is picked up; answers carry validators (ETag) and
thumbnails, which never change under their URL, are cached by the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from reid.io import atomic_path
from tracking.index import INDEX_NAME, SearchError, TrackletIndex
from tracking.search import (
    check_query_model,
    identity_tracklets,
    open_indexes,
    parse_box,
    person_crop,
    search,
    timeline,
)
from tracking.sources import SourceError, VideoFile

log = logging.getLogger(__name__)

MAX_UPLOAD = 8 * 2**20       # bytes; a person photo is far smaller
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TOKEN_COOKIE = "mcreid_token"


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RunIndex:
    """A run's index as the server's threads read it. Each thread keeps its own connection
    (an SQLite connection belongs to one thread) and opens it again only when the file is
    replaced (track index wrote a new one): opening and closing it per request cost tens of
    milliseconds each, as the last connection to close folds and deletes the WAL file.
    Rows a live run appends show at the next read (WAL)."""

    def __init__(self, path: Path):
        self.path = path
        self.local = threading.local()

    def __call__(self) -> TrackletIndex:
        try:
            inode = self.path.stat().st_ino
        except OSError as e:
            raise RequestError(503, f"{self.path} is gone; rebuild it with track index") from e
        held = getattr(self.local, "held", None)
        if held is None or held[0] != inode:
            if held is not None:
                held[1].close()
            self.local.held = None
            try:
                held = self.local.held = (inode, TrackletIndex(self.path))
            except SearchError as e:
                raise RequestError(503, str(e)) from e
        return held[1]


@dataclass
class ServedRun:
    """One run folder on the page: its index and its cameras (run.json)."""

    number: int
    folder: Path
    cameras: dict[str, float] = field(default_factory=dict)  # name -> offset_s

    def __post_init__(self) -> None:
        self.index = RunIndex(self.folder / INDEX_NAME)

    @property
    def name(self) -> str:
        return self.folder.resolve().name

    def camera(self, name: str) -> str:
        if name not in self.cameras:
            raise RequestError(404, f"run {self.name} has no camera {name!r}")
        return name

    def video(self, camera: str) -> Path:
        return self.folder / f"{self.camera(camera)}.mp4"

    def videos(self) -> str:
        """Which cameras' videos are there (the page links them): a validator's part."""
        return "".join("1" if self.video(c).is_file() else "0" for c in self.cameras)

    def web_video(self, camera: str) -> Path:
        return self.folder / "web" / f"{self.camera(camera)}.webm"

    def sheet(self, identity: int) -> Path | None:
        """The identity's contact sheet: sheets/ for a site, <camera>_gallery/ for a video
        tracked with --gallery."""
        name = f"id_{identity:04d}.png"
        places = [self.folder / "sheets"] + [self.folder / f"{c}_gallery" for c in self.cameras]
        return next((p / name for p in places if (p / name).is_file()), None)


def open_runs(folders: list[str]) -> list[ServedRun]:
    """The runs to serve; a missing, unindexed or half-written run, or runs of different
    models, are one-line errors before the server starts."""
    for index in open_indexes(folders):  # same checks and messages as track search
        index.close()
    runs = []
    for n, folder in enumerate(map(Path, folders)):
        if not folder.is_dir():
            raise SearchError(f"{folder} is an index file; give its run folder to track serve")
        manifest = folder / "run.json"
        if manifest.is_file():
            try:
                cameras = {c["name"]: float(c.get("offset_s") or 0.0)
                           for c in json.loads(manifest.read_text())["cameras"]}
            except (ValueError, KeyError, TypeError) as e:
                raise SearchError(f"{manifest} is not a run manifest ({e}); it is written "
                                  "by track run --events") from e
        else:
            index = TrackletIndex(folder / INDEX_NAME)
            cameras = {c: 0.0 for i in index.identities() for c in i["cameras"]}
            index.close()
        runs.append(ServedRun(n, folder, cameras))
    return runs


# --- videos the browser can play ---------------------------------------------------------


class BrowserVideos:
    """Each camera's annotated video as WebM in RUN/web/, made in one background thread,
    one video at a time: when the server starts, and when the page asks for a video that is
    missing or older than its mp4 (a run that finished while the server was up)."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.busy: set[Path] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._work, daemon=True).start()

    def ready(self, run: ServedRun, camera: str) -> bool:
        """Whether the WebM is there and current; if not, it is queued."""
        src, dst = run.video(camera), run.web_video(camera)
        if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
            return True
        with self.lock:
            if dst not in self.busy:
                self.busy.add(dst)
                self.queue.put((src, dst))
        return False

    def _work(self) -> None:
        while True:
            src, dst = self.queue.get()
            try:
                to_webm(src, dst)
            except (OSError, SourceError, RuntimeError) as e:
                log.warning("cannot convert %s for the browser (%s)", src, e)
            with self.lock:
                self.busy.discard(dst)


def to_webm(src: Path, dst: Path) -> None:
    video = VideoFile(str(src))
    with atomic_path(dst) as tmp:
        writer = None
        for _, image in video:
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"),
                                         video.fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError("this OpenCV cannot write WebM (VP8)")
            writer.write(image)
        if writer is None:
            raise RuntimeError(f"{src} has no frames")
        writer.release()
    video.close()


# --- searching an upload -----------------------------------------------------------------


class PhotoSearch:
    """The query side of the page: the index's re-ID model (checked at start), the detector
    for whole frames (loaded at the first one), one search at a time."""

    def __init__(self, runs: list[ServedRun], reid_weights: str | None,
                 detector_weights: str | None):
        from reid.inference import FeatureExtractor

        self.runs, self.detector_weights = runs, detector_weights
        self.extractor = FeatureExtractor(reid_weights, device="cpu")
        check_query_model([r.index() for r in runs], self.extractor.identity)
        self.detector = None
        self.lock = threading.Lock()

    def detect(self, image: np.ndarray) -> np.ndarray:
        if self.detector is None:
            from tracking.config import load_settings
            from tracking.detector import Detector

            extra = [f"detector.weights={self.detector_weights}"] if self.detector_weights else []
            d = load_settings(None, extra).detector
            self.detector = Detector(d.weights, imgsz=d.imgsz, device="cpu")
        return self.detector([image])[0]

    def __call__(self, data: bytes, box: str | None, top: int) -> dict:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise RequestError(400, "the upload is not an image (or is corrupt): send a JPEG "
                               "or PNG photo of a person")
        indexes = [r.index() for r in self.runs]
        try:
            check_query_model(indexes, self.extractor.identity)  # an index rebuilt since start
            with self.lock:
                query = person_crop(image, parse_box(box) if box else None, self.detect,
                                    "the photo")
                hits = search(indexes, self.extractor([query]).numpy(), top)
        except SearchError as e:
            raise RequestError(422, str(e)) from e
        ok, jpg = cv2.imencode(".jpg", query)
        return {"query": "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode(),
                "hits": [{**h.to_json(), "run_number": h.index,
                          "thumb": thumb_url(h.index, indexes[h.index], h.row)
                          if h.thumb else None} for h in hits]}


def thumb_url(run: int, index: TrackletIndex, row: int) -> str:
    """A thumbnail's address, naming its index file: what it shows never changes, so the
    browser may keep it (a rebuilt index gives its thumbnails new addresses)."""
    return f"/runs/{run}/thumbs/{row}.png?v={index.uid}"


# --- HTTP caching ------------------------------------------------------------------------

FOREVER = "private, max-age=31536000, immutable"  # private: the page may be behind a token


def cached(request: Request, tag: str, make, media_type: str,
           cache_control: str = "no-cache") -> Response:
    """An answer validated by ``tag`` (what it was made from): 304 with no body when the
    browser already has it, else ``make()``'s bytes. no-cache: asked again each time, as
    a live run's index grows."""
    etag = '"' + hashlib.sha1(tag.encode()).hexdigest()[:20] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(make(), media_type=media_type, headers=headers)


def index_tag(index: TrackletIndex) -> str:
    """Changes whenever the index's records do (rows are only appended)."""
    return f"{index.uid}:{index.last_id()}"


# --- the application ---------------------------------------------------------------------


def make_app(runs: list[ServedRun], photo_search: PhotoSearch, token: str | None = None,
             max_upload: int = MAX_UPLOAD) -> FastAPI:
    """The web application: the page, its JSON and its pictures and videos (their WebM
    copies are started at once)."""
    from tracking.serve_page import PAGE

    videos = BrowserVideos()
    for run in runs:
        for camera in run.cameras:
            if run.video(camera).is_file():
                videos.ready(run, camera)

    app = FastAPI(title="mcreid", docs_url=None, redoc_url=None, openapi_url=None)

    def run_of(number: int) -> ServedRun:
        if not 0 <= number < len(runs):
            raise RequestError(404, f"no run {number}: this server has runs 0-{len(runs) - 1}")
        return runs[number]

    @app.exception_handler(RequestError)
    async def refused(request: Request, e: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        given = (request.headers.get("authorization", "").removeprefix("Bearer ")
                 or request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE))
        if token and not hmac.compare_digest((given or "").encode(), token.encode()):
            return JSONResponse({"error": "this server needs its token: open the page as "
                                 "/?token=TOKEN (the --token it was started with)"}, 401)
        response = await call_next(request)
        if token and request.query_params.get("token"):  # later requests carry the cookie
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    async def page() -> Response:  # a constant: no thread needed
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})

    @app.get("/api/runs")
    def api_runs(request: Request) -> Response:
        tag = "|".join(f"{index_tag(r.index())}:{r.videos()}" for r in runs)
        return cached(request, tag, lambda: json.dumps([run_summary(r) for r in runs]).encode(),
                      "application/json")

    @app.get("/api/runs/{number}/identities/{identity}")
    def api_identity(request: Request, number: int, identity: int) -> Response:
        run = run_of(number)
        return cached(request, f"{index_tag(run.index())}:{run.videos()}:{identity}",
                      lambda: json.dumps(identity_detail(run, identity)).encode(),
                      "application/json")

    @app.get("/runs/{number}/thumbs/{row}.png")
    async def thumb(request: Request, number: int, row: int, v: str | None = None) -> Response:
        # on the event loop: one small read by row id (under a millisecond), where a hop to
        # the thread pool and back took longer than the read (a page asks for dozens at once)
        index = run_of(number).index()
        if v is not None and v != index.uid:
            raise RequestError(404, "this thumbnail's index was rebuilt; reload the page")
        data = index.thumb(row)
        if not data:
            raise RequestError(404, f"tracklet {row} has no thumbnail")
        return cached(request, f"{index.uid}:{row}", lambda: data, "image/png",
                      FOREVER if v else "no-cache")

    @app.get("/runs/{number}/sheets/{identity}.png")
    def sheet(number: int, identity: int) -> FileResponse:
        path = run_of(number).sheet(identity)
        if path is None:
            raise RequestError(404, f"identity {identity} has no contact sheet")
        return FileResponse(path, media_type="image/png")

    @app.get("/runs/{number}/timelines/{identity}.png")
    def timeline_png(request: Request, number: int, identity: int) -> Response:
        run = run_of(number)  # its axis is the whole run's: it changes as the index grows
        return cached(request, f"{index_tag(run.index())}:{identity}",
                      lambda: identity_timeline(run, identity), "image/png")

    @app.get("/runs/{number}/videos/{camera}.webm")
    def video(number: int, camera: str) -> FileResponse:
        run = run_of(number)
        if not run.video(camera).is_file():
            raise RequestError(404, f"camera {camera} has no video (run made with --no-video, "
                               "or still running)")
        if videos.ready(run, camera):
            return FileResponse(run.web_video(camera), media_type="video/webm")
        raise RequestError(503, f"camera {camera}'s video is being converted for the "
                           "browser; try again in a moment")

    @app.post("/api/search")
    async def api_search(request: Request, top: int = 10, box: str | None = None) -> dict:
        if not 1 <= top <= 100:
            raise RequestError(400, "top must be 1-100")
        data = await read_upload(request, max_upload)
        return await run_in_threadpool(photo_search, data, box, top)

    return app


async def read_upload(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass ``limit`` bytes."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise RequestError(413, f"the upload is over {limit // 2**20} MB; send a smaller photo")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise RequestError(413, f"the upload is over {limit // 2**20} MB; send a smaller "
                               "photo")
    return bytes(data)


def run_summary(run: ServedRun) -> dict:
    index = run.index()
    people = index.identities()
    for p in people:
        p["thumb"] = thumb_url(run.number, index, p["thumb"]) if p["thumb"] is not None else None
    return {"number": run.number, "name": run.name,
            "cameras": [{"name": c, "video": run.video(c).is_file()} for c in run.cameras],
            "identities": people}


def identity_detail(run: ServedRun, identity: int) -> dict:
    """What the page shows of one identity: its sheet, timeline and each sighting, with the
    moment of the camera's video it starts at."""
    index = run.index()
    spans = index.tracklets("global_id = ?", (identity,))
    if not spans:
        raise RequestError(404, f"identity {identity} is not in run {run.name}")
    base = f"/runs/{run.number}"
    return {"run": run.name, "identity": identity,
            "sheet": f"{base}/sheets/{identity}.png" if run.sheet(identity) else None,
            "timeline": f"{base}/timelines/{identity}.png",
            "sightings": [{"camera": t.camera, "start_s": t.start_s, "end_s": t.end_s,
                           "track_id": t.track_id,
                           "thumb": thumb_url(run.number, index, row) if t.thumb else None,
                           "video": (f"{base}/videos/{t.camera}.webm"
                                     if run.video(t.camera).is_file() else None),
                           "video_t": max(0.0, t.start_s - run.cameras.get(t.camera, 0.0))}
                          for row, t in sorted(spans, key=lambda s: s[1].start_s)]}


def identity_timeline(run: ServedRun, identity: int) -> bytes:
    """The identity's timeline picture, on the axis of the whole run so far."""
    index = run.index()
    spans = identity_tracklets(index, identity)
    everyone = index.identities()
    if not spans:
        raise RequestError(404, f"identity {identity} is not in run {run.name}")
    span = (min(p["start_s"] for p in everyone), max(p["end_s"] for p in everyone))
    return cv2.imencode(".png", timeline([(identity, spans)], span))[1].tobytes()


def serve(folders: list[str], host: str = "127.0.0.1", port: int = 8080,
          token: str | None = None, reid_weights: str | None = None,
          detector_weights: str | None = None) -> None:
    """Check the runs, start converting their videos, and serve until Ctrl-C."""
    import uvicorn

    if host not in LOCAL_HOSTS and not token:
        raise SearchError(f"--host {host} lets other machines in: give --token SECRET too "
                          "(or keep the default --host 127.0.0.1)")
    runs = open_runs(folders)
    photo_search = PhotoSearch(runs, reid_weights, detector_weights)
    app = make_app(runs, photo_search, token)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {len(runs)} run(s) at http://{shown}:{port}/"
          + ("?token=..." if token else "") + " (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
