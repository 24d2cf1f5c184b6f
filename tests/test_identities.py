"""The seam: a per-camera run turns frames into tracklet events, the identity service turns
events into decisions, and sinks write from the decisions. Hand-made event sequences and
small synthetic frames; no video, no model."""

import json

import numpy as np
import pytest

from tracking.camera_run import CameraRun, Row
from tracking.events import (
    Decision,
    EventsFile,
    Ids,
    TrackletEnded,
    TrackletStarted,
    TrackletUpdated,
    from_json,
    read_events,
    to_json,
)
from tracking.identities import LocalIds, OfflineIdentities, OnlineIdentities, identity_service
from tracking.multicam import Camera, IdentityConfig
from tracking.replay import rows_of
from tracking.sinks import IdentitiesFile, JsonlFile, MotFile
from tracking.sources import Frame
from tracking.tracker import Tracker, TrackerConfig


def unit(*v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


RED, GREEN, BLUE = unit(1, 0.05, 0), unit(0, 1, 0.05), unit(0.05, 0, 1)


def seen(camera, track, t, embedding=None, ground=None):
    """A track seen at time t (one frame per 0.1 s), optionally carrying its embedding."""
    return TrackletUpdated(camera, track, t, int(round(t * 10)) + 1, (0, 0, 10, 20), 0.9,
                           ground, embedding)


def test_local_ids_decide_at_start():
    service = LocalIds()
    decisions = service.consume([TrackletStarted("cam", 3, 0.0), seen("cam", 3, 0.0),
                                 TrackletStarted("cam", 4, 0.0)])
    assert decisions == [Decision("cam", 3, 3), Decision("cam", 4, 4)]
    assert service.consume([seen("cam", 3, 0.1)]) == []


def test_identity_service_picks_its_strategy():
    assert isinstance(identity_service(IdentityConfig(), ["a"], recorded=True), LocalIds)
    assert isinstance(identity_service(IdentityConfig(), ["a", "b"], recorded=False),
                      OnlineIdentities)
    auto = IdentityConfig(offline="auto")
    assert isinstance(identity_service(auto, ["a", "b"], recorded=True), OfflineIdentities)
    assert isinstance(identity_service(auto, ["a", "b"], recorded=False), OnlineIdentities)
    never = IdentityConfig(offline="never")
    assert isinstance(identity_service(never, ["a", "b"], recorded=True), OnlineIdentities)


def test_online_identity_waits_for_an_embedding_then_matches_across_cameras():
    service = OnlineIdentities(IdentityConfig(max_distance=0.3))
    assert service.consume([TrackletStarted("a", 1, 0.0), seen("a", 1, 0.0)]) == []
    assert service.consume([seen("a", 1, 0.5, RED)]) == [Decision("a", 1, 1)]
    assert service.consume([seen("a", 1, 1.0)]) == []  # decided once
    service.consume([TrackletEnded("a", 1, 3.0, RED)])
    # later, in the other camera: the same look is the same person, another look is new
    got = service.consume([seen("b", 7, 10.0, RED), seen("b", 8, 10.0, GREEN)])
    assert got == [Decision("b", 7, 1), Decision("b", 8, 2)]


def test_one_person_is_never_in_two_places_at_once():
    service = OnlineIdentities(IdentityConfig(max_distance=0.3))
    assert service.consume([seen("a", 1, 0.0, BLUE)]) == [Decision("a", 1, 1)]
    # the same look at the same time in a camera whose view does not overlap is someone
    # else, and so is a second track of the same camera
    got = service.consume([seen("a", 1, 0.1), seen("b", 1, 0.1, BLUE), seen("a", 2, 0.1, BLUE)])
    assert got == [Decision("b", 1, 2), Decision("a", 2, 3)]


def test_overlapping_views_entered_in_one_step_share_an_identity():
    cfg = IdentityConfig(max_distance=0.3, overlapping={frozenset(("a", "b"))})
    service = OnlineIdentities(cfg)
    got = service.consume([seen("a", 1, 0.0, RED), seen("b", 5, 0.0, RED)])
    assert got == [Decision("a", 1, 1), Decision("b", 5, 1)]


def test_ground_plane_decides_between_lookalikes():
    cfg = IdentityConfig(max_distance=0.3, overlapping={frozenset(("a", "b"))},
                         ground_gate=1.0, ground_samples=2)
    service = OnlineIdentities(cfg)
    for k in range(3):
        service.consume([seen("a", 1, k / 10, RED if k == 2 else None, ground=(0.0, 0.0))])
    # a look-alike standing 5 units away in the other view at the same times
    for k in range(3):
        got = service.consume([seen("b", 9, k / 10, RED if k == 2 else None, ground=(5.0, 0))])
    assert got == [Decision("b", 9, 2)]


def test_ended_tracks_free_what_matching_no_longer_needs():
    service = OnlineIdentities(IdentityConfig(max_distance=0.3))
    service.consume([seen("a", 1, 0.0, RED, ground=(0, 0)), seen("a", 1, 0.1, None, (1, 0)),
                     seen("a", 2, 0.1, None, (5, 5))])
    service.consume([TrackletEnded("a", 1, 0.2), TrackletEnded("a", 2, 0.2)])
    assert ("a", 2) not in service.tracklets  # never identified: forgotten
    assert list(service.tracklets[("a", 1)].ground.values()) == [(1, 0)]  # last place only


def colour_embedder(frame, boxes):
    """A real, if crude, appearance: the mean colour of each crop, unit length."""
    out = []
    for x1, y1, x2, y2 in boxes.astype(int):
        v = frame[y1:y2, x1:x2].reshape(-1, 3).mean(0) + 1e-3
        out.append(v / np.linalg.norm(v))
    return np.array(out, np.float32)


def frames_with_one_person(n, fps=10.0, gone_after=None):
    """A red person walking right on a grey background; absent after ``gone_after``."""
    for i in range(1, n + 1):
        img = np.full((120, 200, 3), 90, np.uint8)
        x = 10 + 3 * i
        dets = np.zeros((0, 5), np.float32)
        if gone_after is None or i <= gone_after:
            img[30:90, x:x + 25] = (0, 0, 220)
            dets = np.array([[x, 30, x + 25, 90, 0.95]], np.float32)
        yield Frame(i, (i - 1) / fps, img, 0.0), dets


def test_camera_run_reports_start_embedding_once_and_end():
    tracker = Tracker(TrackerConfig(max_lost_s=0.3, selective_reid=False), colour_embedder,
                      fps=10.0)
    run = CameraRun(Camera("door", "door.mp4"), tracker, min_crops=3)
    events, rows = [], []
    for frame, dets in frames_with_one_person(20, gone_after=10):
        r, e = run.step(frame, dets)
        rows += r
        events += e
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "TrackletStarted" and kinds[-1] == "TrackletEnded"
    assert kinds.count("TrackletStarted") == 1 and kinds.count("TrackletEnded") == 1
    with_embedding = [e for e in events if isinstance(e, TrackletUpdated) and
                      e.embedding is not None]
    assert len(with_embedding) == 1  # sent once, when the track has 3 crops
    assert np.linalg.norm(with_embedding[0].embedding) == pytest.approx(1.0)
    assert {e.track_id for e in events} == {1} and {r.track_id for r in rows} == {1}
    assert run.finish(2.0) == []  # already ended: nothing left to end


def test_camera_run_reports_recent_looks_every_interval():
    """Looks come at most every look_every_s, each from the crops memorised since the last
    one (their count says how many), so every clean crop is in exactly one look."""
    tracker = Tracker(TrackerConfig(max_lost_s=0.3, selective_reid=False), colour_embedder,
                      fps=10.0)
    run = CameraRun(Camera("door", "door.mp4"), tracker, min_crops=3, look_every_s=0.5)
    events = []
    for frame, dets in frames_with_one_person(20):
        events += run.step(frame, dets)[1]
    looks = [e for e in events if isinstance(e, TrackletUpdated) and e.look is not None]
    assert len(looks) >= 3
    assert all(b.time - a.time >= 0.5 - 1e-9 for a, b in zip(looks, looks[1:]))
    assert sum(e.look_crops for e in looks) <= tracker.tracks[0].memorised
    assert all(np.linalg.norm(e.look) == pytest.approx(1.0) for e in looks)
    again = [e for e in events if isinstance(e, TrackletUpdated)]
    assert [e.look_crops for e in again] == [e.look_crops for e in
                                             map(from_json, map(to_json, again))]


def test_camera_run_ends_live_tracks_when_the_source_ends():
    run = CameraRun(Camera("door", "door.mp4"), Tracker(TrackerConfig(), None, fps=10.0))
    for frame, dets in frames_with_one_person(5):
        run.step(frame, dets)
    ended = run.finish(0.5)
    assert [(type(e), e.track_id) for e in ended] == [(TrackletEnded, 1)]


def test_files_are_written_from_the_final_decisions(tmp_path):
    """MOT and the identities table use the ids decided by the end of the run, rows from
    before a track's decision included; JSONL is followed live with the ids known at the
    time, then rewritten with the final ones."""
    mot, jsonl, table = (MotFile(tmp_path / "a.txt", "a"), JsonlFile(tmp_path / "a.jsonl", "a"),
                         IdentitiesFile(tmp_path))
    ids = Ids()
    img = np.zeros((4, 4, 3), np.uint8)
    for i in (3, 1, 2):  # a late row (frame 1) is sorted in
        frame = Frame(i, i / 10, img, 0.0)
        rows = [Row("a", i, i / 10, 5, [0, 0, 2, 2], 0.9), Row("a", i, i / 10, 6, [1, 1, 3, 3],
                                                              0.8)]
        if i == 2:
            ids.apply(Decision("a", 5, 42))
        for sink in (mot, jsonl, table):
            sink.write("a", frame, rows, ids)
    live = [json.loads(line)["tracks"][0]["id"] for line in jsonl.tmp.read_text().splitlines()]
    assert live == [None, None, 42]  # frames 3 and 1 were written before the decision
    for sink in (mot, jsonl, table):
        sink.close(ids)
    lines = (tmp_path / "a.txt").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines] == [["1", "42"], ["2", "42"], ["3", "42"]]
    final = [json.loads(line)["tracks"]
             for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [[(t["id"], t["track"]) for t in tracks] for tracks in final] == [[(42, 5)]] * 3
    assert [(r["global_id"], r["local_id"], r["frames"]) for r in table.table(ids)] == \
        [(42, 5, 3)]


def test_a_later_decision_relabels_a_track_from_its_frame_on():
    ids = Ids()
    ids.apply(Decision("a", 1, 7))
    ids.apply(Decision("a", 1, 8, from_frame=20))
    assert [ids.get("a", 1, f) for f in (1, 19, 20, 99)] == [7, 7, 8, 8]
    ids.apply(Decision("a", 1, 9))  # a decision for the whole track replaces both
    assert [ids.get("a", 1, f) for f in (1, 20)] == [9, 9]
    assert ids.get("a", 2, 1) is None


def crossing(swap_in_a=True):
    """Two people 3 m apart walk side by side for 4 s (frames 1-41) past two overlapping
    cameras. Camera b follows each one with one track; camera a's tracker swaps them at
    2 s, so its track 1 is RED's first half and GREEN's second, and its final appearance
    (the last crops) is GREEN's."""
    steps = []
    for i in range(41):
        t = i / 10
        red, green = (t, 0.0), (t, 3.0)
        a1, a2 = (red, green) if t < 2 or not swap_in_a else (green, red)
        steps.append([seen("a", 1, t, RED if i == 5 else None, a1),
                      seen("a", 2, t, GREEN if i == 5 else None, a2),
                      seen("b", 1, t, RED if i == 5 else None, red),
                      seen("b", 2, t, GREEN if i == 5 else None, green)])
    last = (GREEN, RED) if swap_in_a else (RED, GREEN)
    steps.append([TrackletEnded("a", 1, 4.1, last[0]), TrackletEnded("a", 2, 4.1, last[1]),
                  TrackletEnded("b", 1, 4.1, RED), TrackletEnded("b", 2, 4.1, GREEN)])
    return steps


def run_offline(steps):
    service = OfflineIdentities(IdentityConfig(max_distance=0.3, overlapping={frozenset("ab")},
                                               ground_gate=1.0, ground_speed=1.0))
    ids = Ids()
    for events in steps:
        for d in service.consume(events):
            ids.apply(d)
    final = service.finish()
    for d in final:
        ids.apply(d)
    return ids, final


def test_offline_pass_cuts_a_track_where_its_partner_in_the_other_view_changes():
    """Frame 11 is 1 s, frame 31 is 3 s: before and after camera a's swap."""
    ids, final = run_offline(crossing())
    red, green = ids.get("b", 1, 11), ids.get("b", 2, 11)
    assert red != green
    assert (ids.get("a", 1, 11), ids.get("a", 1, 31)) == (red, green)
    assert (ids.get("a", 2, 11), ids.get("a", 2, 31)) == (green, red)
    assert (ids.get("b", 1, 31), ids.get("b", 2, 31)) == (red, green)  # b's tracks stay whole
    cut = [d.from_frame for d in final if d.camera == "a" and d.track_id == 1]
    assert cut[0] == 0 and 20 <= cut[1] <= 23  # the swap is at 2 s (frame 21)


def test_offline_pass_leaves_tracks_whole_when_nothing_changes():
    ids, final = run_offline(crossing(swap_in_a=False))
    assert all(d.from_frame == 0 for d in final)
    assert ids.get("a", 1, 31) == ids.get("b", 1, 11) != ids.get("a", 2, 31)


def test_identities_table_has_a_row_per_person_in_a_cut_track(tmp_path):
    table, ids = IdentitiesFile(tmp_path), Ids()
    img = np.zeros((4, 4, 3), np.uint8)
    for i in range(1, 5):
        table.write("a", Frame(i, i / 10, img, 0.0),
                    [Row("a", i, i / 10, 5, [0, 0, 2, 2], 0.9)], ids)
    ids.apply(Decision("a", 5, 1))
    ids.apply(Decision("a", 5, 2, from_frame=3))
    assert [(r["global_id"], r["local_id"], r["first_s"], r["frames"])
            for r in table.table(ids)] == [(1, 5, 0.1, 2), (2, 5, 0.3, 2)]


def test_events_survive_the_file_they_are_recorded_in(tmp_path):
    steps = crossing()
    f = EventsFile(tmp_path / "events.jsonl")
    for events in steps:
        f.write(events)
    f.close()
    back = list(read_events(tmp_path / "events.jsonl"))
    assert len(back) == len(steps)
    for a, b in zip(steps[5] + steps[-1], back[5] + back[-1]):
        assert (type(a), a.camera, a.track_id, a.time) == (type(b), b.camera, b.track_id, b.time)
        assert (a.embedding is None) == (b.embedding is None)
        if a.embedding is not None:
            assert np.allclose(a.embedding, b.embedding, atol=1e-6)
    assert back[3][0].ground == steps[3][0].ground and back[3][0].box == steps[3][0].box


def test_track_identities_decides_a_recorded_run_again(tmp_path, capsys):
    """The same events replayed online and offline: offline cuts camera a's swapped
    tracks, online cannot; both write MOT files from the events' boxes."""
    from tracking.cli import main

    f = EventsFile(tmp_path / "events.jsonl")
    for events in crossing():
        f.write(events)
    f.close()
    site = tmp_path / "site.yaml"
    site.write_text("identity: {max_distance: 0.3, overlapping: [[a, b]], ground_gate: 1.0, "
                    "ground_speed: 1.0}\n")
    for mode in ("never", "always"):
        assert main(["identities", "--events", str(tmp_path / "events.jsonl"), "--config",
                     str(site), "--output", str(tmp_path / mode),
                     f"identity.offline={mode}"]) == 0
    mot = {m: np.loadtxt(tmp_path / m / "a.txt", delimiter=",") for m in ("never", "always")}
    assert len(mot["never"]) == len(mot["always"]) == 82  # 41 frames x 2 tracks
    table = {m: json.loads((tmp_path / m / "identities.json").read_text()) for m in mot}
    assert len([r for r in table["never"] if r["camera"] == "a"]) == 2
    assert len([r for r in table["always"] if r["camera"] == "a"]) == 4  # each cut once


def test_track_identities_refuses_what_is_not_an_events_file(tmp_path, capsys):
    from tracking.cli import main

    assert main(["identities", "--events", str(tmp_path / "none.jsonl"),
                 "--output", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["identities", "--events", str(tmp_path / "bad.jsonl"),
                 "--output", str(tmp_path / "out")]) == 2
    assert "line 1 is not a tracklet event list" in capsys.readouterr().err
    f = EventsFile(tmp_path / "events.jsonl")
    f.write(crossing()[0])
    f.close()
    assert main(["identities", "--events", str(tmp_path / "events.jsonl"), "--config",
                 "configs/cameras/epfl_terrace.yaml", "--output", str(tmp_path / "out")]) == 2
    assert "has cameras ['a', 'b'] that" in capsys.readouterr().err


def test_replayed_rows_fill_the_frames_a_track_was_lost():
    last = {}
    rows_of([seen("a", 1, 0.0)], last)
    rows = rows_of([TrackletUpdated("a", 1, 0.3, 4, (3, 0, 13, 20), 0.9)], last)["a"]
    assert [(r.frame, r.box[0], r.late) for r in rows] == [(4, 3, False), (2, 1, True),
                                                           (3, 2, True)]


def test_a_recording_is_drawn_with_the_final_ids(tmp_path):
    """Rows come while nobody has an id yet; the video is drawn at close, from the source
    file, with the ids decided at the end (a track cut at frame 4 changes colour)."""
    import cv2

    from tracking.sinks import AnnotatedVideo, ContactSheets, color_of

    src = tmp_path / "src.avi"
    out = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(6):
        out.write(np.full((48, 64, 3), 40, np.uint8))
    out.release()
    video = AnnotatedVideo(tmp_path / "a.mp4", "a", 10, (64, 48), source=src)
    sheets = ContactSheets(tmp_path / "sheets", every_s=0.0)
    ids = Ids()
    for i in range(1, 6):  # the run stops after frame 5 of 6
        frame = Frame(i, i / 10, np.full((48, 64, 3), 200, np.uint8), 0.0)
        for sink in (video, sheets):
            sink.write("a", frame, [Row("a", i, i / 10, 3, [10, 10, 40, 40], 0.9)], ids)
    ids.apply(Decision("a", 3, 7))
    ids.apply(Decision("a", 3, 8, from_frame=4))
    video.close(ids)
    sheets.close(ids)
    cap, edges = cv2.VideoCapture(str(tmp_path / "a.mp4")), []
    while (got := cap.read())[0]:
        edges.append(got[1][25, 10].astype(int))  # a pixel of the box's left edge
    assert len(edges) == 5
    for k, gid in enumerate([7, 7, 7, 8, 8]):
        assert np.abs(edges[k] - color_of(gid)).max() < 60, (k, edges[k], color_of(gid))
    assert sorted(p.name for p in (tmp_path / "sheets").iterdir()) == ["id_0007.png",
                                                                       "id_0008.png"]


def test_a_camera_never_shows_one_id_on_two_tracks():
    """Track 1 is lost at 1.0 s; track 2 starts where it was and continues its id; then
    track 1 comes back at 1.5 s while track 2 goes on: track 1 gets a new id from the frame
    after it was lost, so no frame has the id twice (its gap rows included)."""
    service = OnlineIdentities(IdentityConfig(max_distance=0.3, ground_gate=1.0,
                                              ground_speed=1.0))
    ids = Ids()
    steps = [[seen("a", 1, i / 10, RED if i == 0 else None, (i / 10, 0))] for i in range(11)]
    steps += [[seen("a", 2, 1.2, GREEN, (1.1, 0))], [seen("a", 2, 1.3, None, (1.2, 0))]]
    steps += [[seen("a", 1, 1.5, None, (1.4, 0)), seen("a", 2, 1.5, None, (1.4, 0))]]
    for events in steps:
        for d in service.consume(events):
            ids.apply(d)
    assert ids.get("a", 2, 13) == ids.get("a", 1, 5)  # the continuation by position
    for frame in range(12, 17):  # track 1 missed 12-15 (rows filled in later) and is seen at 16
        assert ids.get("a", 1, frame) != ids.get("a", 2, frame)


def test_position_joins_two_views_that_look_different_in_one_step():
    """A person entering two overlapping views at once, looking different in each (light,
    angle): the second view joins the identity the first one opened in the same call, by
    position alone."""
    cfg = IdentityConfig(max_distance=0.3, overlapping={frozenset(("a", "b"))},
                         ground_gate=1.0, ground_samples=2)
    service = OnlineIdentities(cfg)
    for k in range(2):
        service.consume([seen("a", 1, k / 10, None, (0.0, 0.0)),
                         seen("b", 5, k / 10, None, (0.2, 0.0))])
    got = service.consume([seen("a", 1, 0.2, RED, (0.0, 0.0)),
                           seen("b", 5, 0.2, GREEN, (0.2, 0.0))])
    assert got == [Decision("a", 1, 1), Decision("b", 5, 1)]
