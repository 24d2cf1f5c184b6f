"""Tracker parts on hand-made inputs: Kalman filter, assignment, life cycle, re-activation."""

import numpy as np
import pytest

from tracking.association import assign, iou_matrix
from tracking.motion import BoxKalman
from tracking.tracker import CONFIRMED, LOST, TENTATIVE, Tracker, TrackerConfig


def box(x, y, w=40, h=100):
    return np.array([x, y, x + w, y + h], np.float32)


def test_kalman_learns_constant_velocity():
    kf = BoxKalman(box(0, 0))
    for t in range(1, 15):
        kf.predict()
        kf.update(box(5 * t, 2 * t))
    kf.predict()  # frame 15, no measurement
    assert np.allclose(kf.box, box(75, 30), atol=1.5)
    assert kf.mahalanobis2(np.stack([box(75, 30), box(300, 30)]))[0] < 1
    assert kf.mahalanobis2(np.stack([box(300, 30)]))[0] > 100


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    assert iou_matrix(a, b)[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0])


def test_assign_hand_made_costs():
    cost = np.array([[0.9, 0.1, 0.5],
                     [0.2, 0.3, 0.9],
                     [0.95, 0.99, 0.97]])
    matches, um_rows, um_cols = assign(cost, limit=0.8)
    assert sorted(matches) == [(0, 1), (1, 0)]
    assert um_rows == [2] and um_cols == [2]
    # the greedy choice (0,1) then (1,0) is also optimal here; a case where it is not:
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    matches, _, _ = assign(cost, limit=1.0)
    assert sorted(matches) == [(0, 1), (1, 0)]
    assert assign(np.zeros((0, 3)), 0.5) == ([], [], [0, 1, 2])


def test_life_cycle_tentative_confirmed_lost_removed():
    tr = Tracker(TrackerConfig(min_hits=3, max_lost_s=0.2), fps=25)  # 5 frames
    tr.update(np.zeros((0, 5)))  # frame 1 empty, so new tracks start tentative
    out = tr.update(np.array([[*box(100, 100), 0.9]]))
    assert out == [] and tr.tracks[0].state == TENTATIVE and tr.tracks[0].track_id == 0
    tr.update(np.array([[*box(102, 100), 0.9]]))
    out = tr.update(np.array([[*box(104, 100), 0.9]]))
    assert [t.track_id for t in out] == [1] and out[0].state == CONFIRMED
    tr.update(np.zeros((0, 5)))
    assert tr.tracks[0].state == LOST
    for _ in range(5):
        tr.update(np.zeros((0, 5)))
    assert tr.tracks == []
    # a tentative track that misses a frame dies without using an id
    tr.update(np.array([[*box(300, 100), 0.9]]))
    tr.update(np.zeros((0, 5)))
    assert tr.tracks == [] and tr.ids_issued == 1


def test_coasting_between_detections_keeps_the_track():
    """Detection stride 3: the two frames between detections are predicted, not missed."""
    tr = Tracker(TrackerConfig(min_hits=1))
    ids = set()
    for f in range(12):
        if f % 3:
            out = tr.coast()
        else:
            out = tr.update(np.array([[*box(100 + 6 * f, 100), 0.9]]))
        assert len(out) == 1 and out[0].state == CONFIRMED
        ids.add(out[0].track_id)
    assert ids == {1}
    assert out[0].box[0] == pytest.approx(166, abs=6)  # frame 11 predicted at x = 100 + 66


def test_low_score_boxes_keep_a_track_alive():
    tr = Tracker(TrackerConfig(min_hits=1))
    tr.update(np.array([[*box(100, 100), 0.9]]))
    out = tr.update(np.array([[*box(101, 100), 0.3]]))  # occluded: weak detection
    assert [t.track_id for t in out] == [1]
    out = tr.update(np.array([[*box(102, 100), 0.3], [*box(400, 100), 0.3]]))
    assert [t.track_id for t in out] == [1] and len(tr.tracks) == 1  # no track from weak box


@pytest.fixture(scope="module")
def two_people(market):
    """Real embeddings of two people, 4 crops each from one camera, by the shipped model."""
    from reid.inference import FeatureExtractor

    ext = FeatureExtractor(device="cpu")
    by_pid = {}
    for r in market.gallery:
        if r.pid > 0 and r.camid == 0:
            by_pid.setdefault(r.pid, []).append(r.path)
    a, b = [p for p, v in by_pid.items() if len(v) >= 4][:2]
    return ext(by_pid[a][:4]).numpy(), ext(by_pid[b][:4]).numpy()


def test_reactivation_after_gap_by_appearance(two_people):
    feats_a, feats_b = two_people
    step = {"i": 0}

    def embed(_frame, boxes):  # person A walks on the left, B on the right
        out = []
        for x1, *_ in boxes:
            f = feats_a if x1 < 300 else feats_b
            out.append(f[step["i"] % 4])
        return np.stack(out)

    tr = Tracker(TrackerConfig(min_hits=1, max_lost_s=1.6, selective_reid=False), embed,
                 fps=25)
    frame = np.zeros((10, 10, 3), np.uint8)
    for t in range(10):
        step["i"] = t
        tr.update(np.array([[*box(100 + 3 * t, 100), 0.9], [*box(500, 100), 0.9]]), frame)
    ids_before = {round(float(t.box[0]) / 100): t.track_id for t in tr.tracks}
    for _ in range(25):  # A is hidden; B stands still
        tr.update(np.array([[*box(500, 100), 0.9]]), frame)
    # A comes back 90 px from where it vanished, beyond the motion gate
    out = tr.update(np.array([[*box(220, 140), 0.9], [*box(500, 100), 0.9]]), frame)
    ids_after = sorted(t.track_id for t in out)
    assert ids_after == sorted(ids_before.values())  # same two identities, no new one
    assert tr.ids_issued == 2


@pytest.mark.parametrize("fps, ids", [(10, [2]), (25, [1])])
def test_max_lost_is_respected_in_seconds(two_people, fps, ids):
    """Hidden for 10 frames with max_lost_s 0.5: gone at 10 fps (5 frames), kept at 25 fps
    (12 frames)."""
    feats_a, _ = two_people

    def embed(_frame, boxes):
        return np.stack([feats_a[0]] * len(boxes))

    tr = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.5, selective_reid=False), embed,
                 fps=fps)
    frame = np.zeros((10, 10, 3), np.uint8)
    tr.update(np.array([[*box(100, 100), 0.9]]), frame)
    for _ in range(10):
        tr.update(np.zeros((0, 5)), frame)
    out = tr.update(np.array([[*box(100, 100), 0.9]]), frame)
    assert [t.track_id for t in out] == ids


@pytest.mark.parametrize("keep", [True, False])
def test_lost_track_keeps_walking(keep):
    """Hidden for 6 frames, a walker reappears where their pace takes them (42 px past the
    last box, no overlap with it): found again only if the lost track keeps its velocity."""
    tr = Tracker(TrackerConfig(min_hits=1, lost_keeps_velocity=keep))
    for f in range(10):
        tr.update(np.array([[*box(100 + 6 * f, 100), 0.9]]))
    for _ in range(6):
        tr.update(np.zeros((0, 5)))
    out = tr.update(np.array([[*box(100 + 6 * 16, 100), 0.9]]))
    assert [t.track_id for t in out] == ([1] if keep else [2])


@pytest.mark.parametrize("sure_cost", [0.3, 1.0])
def test_sure_continuation_beats_a_lost_lookalike(sure_cost):
    """Everyone looks alike (same embedding). A stands at x=100; B, lost last frame, stood at
    x=115. Boxes appear at x=113 (A's continuation, IoU 0.5; B's old place) and x=76. One
    joint round gives A's id to x=76 and B's to x=113 (cheaper in sum); the sure round first
    lets A keep its continuation."""
    unit = np.eye(8, dtype=np.float32)[0]
    cfg = TrackerConfig(min_hits=1, selective_reid=False, memory_overlap=1.0,
                        sure_cost=sure_cost)
    tr = Tracker(cfg, lambda _frame, boxes: np.stack([unit] * len(boxes)))
    frame = np.zeros((10, 10, 3), np.uint8)
    for _ in range(5):
        tr.update(np.array([[*box(100, 100), 0.9], [*box(115, 100), 0.9]]), frame)
    ids = {round(float(t.box[0])): t.track_id for t in tr.tracks}
    tr.update(np.array([[*box(100, 100), 0.9]]), frame)  # B is hidden
    out = tr.update(np.array([[*box(113.3, 100), 0.9], [*box(76, 100), 0.9]]), frame)
    at = {round(float(t.box[0]) / 10): t.track_id for t in out}
    if sure_cost < cfg.match_cost:
        assert at[11] == ids[100]
    else:
        assert at[11] == ids[115] and at[8] == ids[100]


def test_refound_track_reports_its_missed_frames():
    """Lost for 3 frames, found again: the 3 missed boxes lie evenly between the last box
    seen and the new one; only in that frame, and not at all with fill_gaps off."""
    for fill in (True, False):
        tr = Tracker(TrackerConfig(min_hits=1, fill_gaps=fill))
        tr.update(np.array([[*box(100, 100), 0.9]]))
        tr.update(np.array([[*box(100, 100), 0.9]]))
        for _ in range(3):
            tr.update(np.zeros((0, 5)))
        (t,) = tr.update(np.array([[*box(108, 100), 0.9]]))
        found = t.box[0]
        xs = [float(b[0]) for b in t.gap]
        if fill:
            assert xs == pytest.approx([100 + (found - 100) * k / 4 for k in (1, 2, 3)], abs=0.5)
        else:
            assert xs == []
        (t,) = tr.update(np.array([[*box(109, 100), 0.9]]))
        assert t.gap == []
