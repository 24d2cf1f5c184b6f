"""track index and track search on a real run: a real clip tracked with the real detector and
re-ID model, indexed, and searched with a crop cut from the same video."""

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tracking import search as search_mod
from tracking.cli import main
from tracking.index import SearchError, TrackletIndex

FRAMES = 30


@pytest.fixture(scope="module")
def run(tud_run):
    """TUD-Campus, first FRAMES frames, tracked with --events and indexed (conftest)."""
    return tud_run


def frame_of(video, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    for _ in range(index):
        ok, image = cap.read()
    cap.release()
    return image


def tracks_at(run_dir, index: int) -> list[dict]:
    for line in (run_dir / "TUD-Campus.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["frame"] == index:
            return entry["tracks"]
    raise AssertionError(f"no frame {index}")


def indexed_ids(run_dir) -> set[int]:
    index = TrackletIndex(run_dir / "index.sqlite")
    ids = {t.global_id for _, t in index.tracklets()}
    index.close()
    return ids


def search(tmp_path, *args) -> tuple[int, list[dict]]:
    out = tmp_path / "hits.json"
    rc = main(["search", *args, "--json", str(out)])
    return rc, json.loads(out.read_text())["hits"] if rc == 0 else []


def test_index_holds_each_tracklet_with_thumbnail_and_model(run):
    run_dir, _ = run
    db = sqlite3.connect(run_dir / "index.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute("SELECT camera, first_frame, last_frame, thumb_frame, thumb FROM "
                      "tracklets").fetchall()
    assert rows and all(c == "TUD-Campus" and 1 <= first <= best <= last <= FRAMES
                        for c, first, last, best, _ in rows)
    thumb = cv2.imdecode(np.frombuffer(rows[0][4], np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape[0] == 128
    from reid.inference import FeatureExtractor

    assert TrackletIndex(run_dir / "index.sqlite").model == FeatureExtractor().identity
    assert not list(run_dir.glob(".*part*"))


def test_a_crop_finds_its_own_track(run, tmp_path, capsys):
    run_dir, video = run
    frame = 20
    ids = indexed_ids(run_dir)
    track = max((t for t in tracks_at(run_dir, frame) if t["id"] in ids),
                key=lambda t: t["score"])
    x1, y1, x2, y2 = (int(v) for v in track["box"])
    cv2.imwrite(str(tmp_path / "crop.png"), frame_of(video, frame)[y1:y2, x1:x2])
    rc, hits = search(tmp_path, "--index", str(run_dir), "--photo", str(tmp_path / "crop.png"))
    assert rc == 0 and hits[0]["identity"] == track["id"]
    assert hits[0]["camera"] == "TUD-Campus" and hits[0]["distance"] < hits[1]["distance"]
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    assert len({h["identity"] for h in hits}) == len(hits)  # one hit per identity
    assert all({"identity", "camera", "start_s", "end_s", "distance"} <= set(h) for h in hits)
    sheet = cv2.imread(str(tmp_path / "hits.png"))
    assert sheet.shape[1] > 96 * (len(hits) + 1)  # the query and every hit
    lanes = sum(len(h["cameras"]) for h in hits)  # one per (identity, camera)
    timeline = cv2.imread(str(tmp_path / "hits_timeline.png"))
    assert timeline.shape[0] == search_mod.AXIS_H + search_mod.LANE_H * lanes + 4
    assert f"{track['id']:8d}  TUD-Campus" in capsys.readouterr().out


def test_a_whole_frame_searches_for_its_largest_person(run, tmp_path):
    run_dir, video = run
    frame = 20
    ids = indexed_ids(run_dir)
    largest = max(tracks_at(run_dir, frame),
                  key=lambda t: (t["box"][2] - t["box"][0]) * (t["box"][3] - t["box"][1]))
    assert largest["id"] in ids
    cv2.imwrite(str(tmp_path / "frame.png"), frame_of(video, frame))
    rc, hits = search(tmp_path, "--index", str(run_dir), "--photo", str(tmp_path / "frame.png"),
                      "--top", "2")
    assert rc == 0 and len(hits) == 2 and hits[0]["identity"] == largest["id"]
    other = max((t for t in tracks_at(run_dir, frame) if t["id"] in ids - {largest["id"]}),
                key=lambda t: t["score"])
    x1, y1, x2, y2 = other["box"]
    box = f"{x1:.0f},{y1:.0f},{x2 - x1:.0f},{y2 - y1:.0f}"
    rc, hits = search(tmp_path, "--index", str(run_dir), "--photo", str(tmp_path / "frame.png"),
                      "--box", box)
    assert rc == 0 and hits[0]["identity"] == other["id"]


def test_an_identity_searches_for_others_like_it(run, tmp_path):
    run_dir, _ = run
    some = min(indexed_ids(run_dir))
    rc, hits = search(tmp_path, "--index", str(run_dir), "--identity", str(some))
    assert rc == 0 and hits and some not in {h["identity"] for h in hits}


def test_several_runs_are_searched_together(run, tmp_path):
    """Another day's run (here a copy of the same one under another name): an identity of
    the first run finds itself in the second, at distance 0, first."""
    run_dir, _ = run
    other = tmp_path / "next_day"
    shutil.copytree(run_dir, other)
    assert main(["index", str(other)]) == 0
    some = min(indexed_ids(run_dir))
    rc, hits = search(tmp_path, "--index", str(run_dir), str(other), "--identity", str(some))
    assert rc == 0 and (hits[0]["run"], hits[0]["identity"]) == ("next_day", some)
    assert hits[0]["distance"] < 1e-4 and {h["run"] for h in hits} == {"next_day", run_dir.name}


def fails(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if "error:" in line][0]


def test_bad_photos_are_one_line_errors(run, tmp_path, capsys):
    run_dir, _ = run
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert "cannot read" in fails(capsys, "search", "--index", str(run_dir), "--photo",
                                  str(tmp_path / "bad.jpg"))
    cv2.imwrite(str(tmp_path / "empty.png"), np.full((480, 640, 3), 128, np.uint8))
    assert "no person found" in fails(capsys, "search", "--index", str(run_dir), "--photo",
                                      str(tmp_path / "empty.png"))
    assert "x,y,w,h" in fails(capsys, "search", "--index", str(run_dir), "--photo",
                              str(tmp_path / "empty.png"), "--box", "1,2")
    assert "outside" in fails(capsys, "search", "--index", str(run_dir), "--photo",
                              str(tmp_path / "empty.png"), "--box", "900,900,50,100")
    assert "--box marks" in fails(capsys, "search", "--index", str(run_dir), "--identity", "1",
                                  "--box", "1,2,30,60")
    assert "is not in" in fails(capsys, "search", "--index", str(run_dir), "--identity", "9999")


def test_runs_without_finished_events_are_refused(run, tmp_path, capsys):
    run_dir, _ = run
    assert "track index" in fails(capsys, "search", "--index", str(tmp_path), "--photo", "x")
    assert "--events" in fails(capsys, "index", str(tmp_path))
    (tmp_path / ".events.part.jsonl").write_text("[]\n")
    assert "still being written" in fails(capsys, "index", str(tmp_path))
    (tmp_path / "index.sqlite").write_text("not a database, long enough to be read as one" * 3)
    assert "not a search index" in fails(capsys, "search", "--index", str(tmp_path),
                                         "--identity", "1")


def test_a_failed_rebuild_leaves_the_index_whole(run, tmp_path, capsys):
    run_dir, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = (copy / "index.sqlite").read_bytes()
    with open(copy / "events.jsonl", "a") as f:
        f.write("[{\"kind\": \"upd")  # a line cut short
    assert "not a tracklet event list" in fails(capsys, "index", str(copy))
    assert (copy / "index.sqlite").read_bytes() == before
    assert not list(copy.glob(".*part*"))


def test_models_are_never_mixed(run, tmp_path, capsys):
    run_dir, _ = run
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run_dir / "index.sqlite", other / "index.sqlite")
    db = sqlite3.connect(other / "index.sqlite")
    model = {**TrackletIndex(run_dir / "index.sqlite").model, "sha256": "0123456789abcdef"}
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'model'", (json.dumps(model),))
    db.close()
    cv2.imwrite(str(tmp_path / "person.png"), np.full((128, 64, 3), 90, np.uint8))
    assert "query model is" in fails(capsys, "search", "--index", str(other), "--photo",
                                     str(tmp_path / "person.png"))
    assert "different re-ID models" in fails(capsys, "search", "--index", str(run_dir),
                                             str(other), "--identity", "1")
    with pytest.raises(SearchError, match="cannot be mixed"):
        TrackletIndex(other / "index.sqlite", model=TrackletIndex(run_dir / "index.sqlite").model)


def test_large_collections_use_an_approximate_graph(monkeypatch):
    monkeypatch.setattr(search_mod, "EXACT_MAX", 100)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(500, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    found = search_mod.VectorSearch(vecs)
    assert "HNSW" in type(found.index).__name__
    dist, rows = found(vecs[:20], 3)
    assert (rows[:, 0] == np.arange(20)).all() and np.allclose(dist[:, 0], 0, atol=1e-4)


def test_a_site_run_is_indexed_by_its_identities_table():
    """Several cameras: one tracklet per row of identities.json, so a local track the
    offline pass cut in two is two tracklets, each with its own id, frames and best box."""
    from tracking.events import TrackletEnded, TrackletUpdated
    from tracking.index import tracklets_of, tracks_of

    vec = np.ones(4, np.float32)
    steps = [[TrackletUpdated(cam, 1, f / 10, f, (f, 0, f + 10, 20), score)]
             for cam in ("a", "b") for f, score in ((1, 0.5), (2, 0.9), (3, 0.6), (4, 0.8))]
    steps += [[TrackletEnded("a", 1, 9.0, vec), TrackletEnded("b", 1, 9.0, vec)]]
    table = [{"global_id": 7, "camera": "a", "local_id": 1, "first_s": 0.1, "last_s": 0.2},
             {"global_id": 9, "camera": "a", "local_id": 1, "first_s": 0.3, "last_s": 0.4},
             {"global_id": 7, "camera": "b", "local_id": 1, "first_s": 0.1, "last_s": 0.4}]
    got = [(t.camera, t.global_id, t.first_frame, t.last_frame, t.thumb_frame, t.end_s)
           for t in tracklets_of("site", tracks_of(steps), table)]
    assert got == [("a", 7, 1, 2, 2, 0.2), ("a", 9, 3, 4, 4, 0.4), ("b", 7, 1, 4, 2, 0.4)]


def test_a_live_run_is_searchable_while_it_goes_on(run, tmp_path):
    """LiveIndex fed a real run's events and frames in the order a live run feeds them
    (a step's events, then its frames): a reader opened before the first record sees the
    records as they are added, and they are the records track index makes afterwards."""
    from tracking.camera_run import Row
    from tracking.events import Ids, TrackletUpdated, read_events
    from tracking.identities import LocalIds
    from tracking.index import LiveIndex
    from tracking.sources import Frame, VideoFile

    run_dir, video = run
    offline = TrackletIndex(run_dir / "index.sqlite")
    live = LiveIndex(tmp_path, offline.model)
    reader = TrackletIndex(tmp_path / "index.sqlite")
    frames, ids, service, seen = iter(VideoFile(str(video))), Ids(), LocalIds(), []
    probe = offline.tracklets()[0][1].embedding[None]
    for step in read_events(run_dir / "events.jsonl"):
        for d in service.consume(step):
            ids.apply(d)
        live.consume(step, ids)
        updates = [e for e in step if isinstance(e, TrackletUpdated)]
        if updates:
            (index,) = {u.frame for u in updates}  # one frame per step (one camera)
            image = next(image for n, image in frames if n == index)
            live.write("TUD-Campus", Frame(index, updates[0].time, image, 0.0),
                       [Row(u.camera, u.frame, u.time, u.track_id, list(u.box), u.score)
                        for u in updates], ids)
        seen.append(len(reader.tracklets()))
        people = len({t.global_id for _, t in reader.tracklets()})
        assert len(search_mod.search([reader], probe, 3)) == min(3, people)  # not a stale graph
    assert seen[-1] == len(offline.tracklets()) > 0 and seen == sorted(seen)
    live.close(ids)

    def records(index):
        return sorted((t.track_id, t.global_id, t.first_frame, t.last_frame, t.thumb_frame,
                       t.start_s, t.end_s, t.box, t.thumb, t.embedding.tobytes())
                      for _, t in index.tracklets())

    assert records(reader) == records(offline)


def add_synthetic(folder, model: dict, first: int, n: int) -> np.ndarray:
    """Append n tracklets (three per identity) with random unit vectors to folder's index."""
    from tracking.index import Tracklet

    rng = np.random.default_rng(first)
    vecs = rng.normal(size=(n, int(model["embedding_dim"]))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = TrackletIndex(folder / "index.sqlite", model=model)
    index.add(Tracklet("synthetic", "cam", i, i // 3 + 1, float(i), i + 1.0, i, i, i,
                       (0, 0, 1, 1), None, vecs[i - first]) for i in range(first, first + n))
    index.close()
    return vecs


def graph_rows(folder) -> int:
    return json.loads((folder / "index.hnsw").read_bytes().split(b"\n")[0])["rows"]


def test_the_graph_is_saved_and_reused_until_the_index_changes(run, tmp_path, monkeypatch,
                                                               caplog, capsys):
    """Above EXACT_MAX the graph is kept in RUN/index.hnsw: the next process reads it
    instead of building it, rows a live run appended are added to it, and a damaged or
    foreign graph file is rebuilt (damaged: with a one-line warning), never a traceback."""
    monkeypatch.setattr(search_mod, "EXACT_MAX", 100)
    caplog.set_level(logging.INFO, logger="tracking.search")
    model = TrackletIndex(run[0] / "index.sqlite").model
    add_synthetic(tmp_path, model, 0, 300)
    graph = tmp_path / "index.hnsw"
    rc, first = search(tmp_path, "--index", str(tmp_path), "--identity", "5")
    assert rc == 0 and first and graph_rows(tmp_path) == 300
    stamp = graph.stat().st_mtime_ns

    def again() -> list[int]:
        search_mod._KEPT.clear()  # as a new process starts
        caplog.clear()
        rc, hits = search(tmp_path, "--index", str(tmp_path), "--identity", "5")
        assert rc == 0 and "Traceback" not in capsys.readouterr().err
        return [h["identity"] for h in hits]

    def exact() -> list[int]:
        with monkeypatch.context() as m:
            m.setattr(search_mod, "EXACT_MAX", 10**9)
            return again()

    assert again() == [h["identity"] for h in first] == exact()
    assert graph.stat().st_mtime_ns == stamp and "building" not in caplog.text

    newer = add_synthetic(tmp_path, model, 300, 60)  # a live run appends
    want = exact()
    assert again() == want and graph_rows(tmp_path) == 360 and "building" not in caplog.text
    index = TrackletIndex(tmp_path / "index.sqlite")
    (hit,) = search_mod.search([index], newer[-1][None], 1)
    assert hit.identity == 359 // 3 + 1 and hit.distance < 1e-4
    index.close()

    whole = graph.read_bytes()
    graph.write_bytes(whole[:len(whole) // 2])  # cut short
    assert again() == want and graph_rows(tmp_path) == 360
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "damaged" in warned[0].getMessage()
    assert "\n" not in warned[0].getMessage()
    graph.write_bytes(b"\x00garbage" * 100)
    assert again() == want and "damaged" in caplog.text

    db = sqlite3.connect(tmp_path / "index.sqlite")  # the index is another file now
    with db:
        db.execute("UPDATE meta SET value = 'another' WHERE key = 'uid'")
    db.close()
    assert again() == want and "building" in caplog.text
    assert json.loads(graph.read_bytes().split(b"\n")[0])["index"] == "another"


def tracked(events_part, updates: int = 5) -> bool:
    """Whether a live run's events so far show a track updated this many times."""
    if not events_part.is_file():
        return False
    counts: dict = {}
    for line in events_part.read_text().splitlines():
        for e in json.loads(line) if line.endswith("]") else []:
            if e["kind"] == "updated":
                counts[e["track_id"]] = counts.get(e["track_id"], 0) + 1
    return max(counts.values(), default=0) >= updates


def test_a_live_stream_run_is_searchable_while_it_runs(tmp_path, capsys):
    """track run on a real RTSP stream (GStreamer's server, tests/test_rtsp.py) with
    --events, as its own process. Once someone has been tracked a while, the stream goes down
    and comes back from its start, where nobody is in view yet: the tracks of before end
    (tracker.max_lost_s=0.1: two frames unseen) while the run goes on. Then, while it still
    runs, its index holds them and track search finds them (by identity, and by the
    thumbnail cut from the live frame); stopped (Ctrl-C), its index holds a record for
    every track that ended with a vector, the records track index makes from its events.
    The INT8 detector at 320 pixels (the clip is 360 x 288) and one thread (no spinning
    threads fighting the other loads) keep a few frames a second on a busy CPU, so that
    tracks form."""
    from tests.conftest import ROOT, need_shared
    from tests.test_rtsp import PACKAGES, Server, free_port, gstreamer_missing
    from tracking.events import read_events
    from tracking.index import build_index, tracks_of

    reason = gstreamer_missing()
    if reason:
        pytest.skip(f"{reason}: apt-get install {PACKAGES}")
    clip = need_shared("data", "video", "EPFL-terrace1", "terrace1-c1.mp4")
    detector = need_shared("weights", "detector", "yolo11n_int8_openvino_model")
    stream = Server(free_port(), "hall", clip)
    out, log_file = tmp_path / "live", open(tmp_path / "run.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "tracking.cli", "run", "--source", stream.url,
                            "--output", str(out), "--events", "--no-video", "--duration", "150",
                            "--detector", str(detector), "detector.imgsz=320",
                            "tracker.max_lost_s=0.1", "reid.device=cpu"],
                           cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    started = time.monotonic()
    try:
        while not tracked(out / ".events.part.jsonl") and run.poll() is None:
            assert time.monotonic() < started + 90, "nobody tracked in 90 s"
            time.sleep(0.5)
        stream.kill()
        time.sleep(1)
        stream.start()  # from the clip's start: nobody in view for its first 6 s
        while run.poll() is None and time.monotonic() < started + 120:
            if (out / "index.sqlite").is_file() and indexed_ids(out):
                break
            time.sleep(0.5)
        assert run.poll() is None, "no track ended while the run went on"
        print(f"first record {time.monotonic() - started:.1f} s after the run started")
        someone = min(indexed_ids(out))
        index = TrackletIndex(out / "index.sqlite")
        thumb = next(t.thumb for _, t in index.tracklets("global_id = ?", (someone,)))
        index.close()
        (tmp_path / "thumb.png").write_bytes(thumb)
        rc, hits = search(tmp_path, "--index", str(out), "--photo", str(tmp_path / "thumb.png"))
        assert rc == 0 and someone in {h["identity"] for h in hits}  # (not always first:
        # a small thumbnail against the track's mean look, among similar people)
        assert {h["run"] for h in hits} == {"live"}
        rc, _ = search(tmp_path, "--index", str(out), "--identity", str(someone))
        assert rc == 0
        assert run.poll() is None, "the searches should have run while the stream was live"
        run.send_signal(signal.SIGINT)  # Ctrl-C: the run ends its tracks and outputs
        assert run.wait(timeout=120) == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        stream.kill()
        log_file.close()
    index = TrackletIndex(out / "index.sqlite")
    live = {(t.camera, t.track_id, t.global_id, t.first_frame, t.last_frame,
             t.embedding.tobytes()) for _, t in index.tracklets()}
    index.close()
    ended = {key for key, seen in tracks_of(list(read_events(out / "events.jsonl"))).items()
             if seen.embedding is not None and seen.updates}
    assert {(c, tid) for c, tid, *_ in live} == ended
    build_index(out, tmp_path / "rebuilt.sqlite")  # no thumbnails: the stream is gone
    rebuilt = TrackletIndex(tmp_path / "rebuilt.sqlite")
    assert live == {(t.camera, t.track_id, t.global_id, t.first_frame, t.last_frame,
                     t.embedding.tobytes()) for _, t in rebuilt.tracklets()}


def test_a_replaced_index_is_not_read_through_the_old_ones_wal(tmp_path):
    """A reader (a server) keeps the old index open, so rows appended to it stay in its
    -wal file; the new file that takes its name must not show them."""
    from tracking.index import Tracklet, write_index

    path, model = tmp_path / "index.sqlite", {"sha256": "m", "embedding_dim": 4}

    def tracklet(n: int) -> Tracklet:
        return Tracklet("r", "c", n, n, 0.0, 1.0, 1, 1, 1, (0, 0, 1, 1), None,
                        np.full(4, 0.5, np.float32))

    write_index(path, model, [tracklet(1)])
    reader = TrackletIndex(path)
    writer = TrackletIndex(path, model=model)
    writer.add([tracklet(2)])
    writer.close()
    assert (tmp_path / "index.sqlite-wal").stat().st_size > 0
    write_index(path, model, [tracklet(5)])
    fresh = TrackletIndex(path)
    assert [t.track_id for _, t in fresh.tracklets()] == [5] and fresh.uid != reader.uid
    assert [t.track_id for _, t in reader.tracklets()] == [1, 2]  # the old file, whole
