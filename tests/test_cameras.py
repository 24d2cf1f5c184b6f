"""Cameras: timestamp alignment of real files, ground-plane matching (site config checks:
tests/test_config.py)."""

import numpy as np
import pytest

from tests.conftest import need_shared
from tracking.multicam import Camera, GlobalIdentities, IdentityConfig, Tracklet


def test_files_are_aligned_by_timestamp():
    """A 25 fps camera and a 10 fps camera that starts 1 s later: each step holds frames of
    one moment, the late camera joins at 1 s, and the short file ending stops nothing."""
    from tracking.pipeline import offline_steps
    from tracking.sources import FileReader

    campus = need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")  # 71 frames, 25 fps
    pets = need_shared("data", "video", "PETS09-S2L1", "PETS09-S2L1.avi")  # 10 fps
    readers = {"a": FileReader("a", campus).start(),
               "b": FileReader("b", pets, offset_s=1.0).start()}
    steps = []
    try:
        for batch in offline_steps(readers):
            steps.append({n: f.time for n, f in batch.items()})
            if len(steps) == 120:
                break
    finally:
        for r in readers.values():
            r.close()
    for step in steps:
        assert max(step.values()) - min(step.values()) <= 0.5 / 25 + 1e-9
    b_times = [s["b"] for s in steps if "b" in s]
    assert b_times[0] == pytest.approx(1.0) and np.allclose(np.diff(b_times), 0.1)
    assert sum("a" in s for s in steps) == 71  # every frame of the short file, once
    assert "a" not in steps[-1] and "b" in steps[-1]  # the 10 fps camera goes on alone


def unit(seed):
    v = np.random.default_rng(seed).normal(size=16)
    return v / np.linalg.norm(v)


def walker(camera, track_id, x0, seconds=(0.0, 1.0), look=0):
    """A tracklet of someone standing at (x0, 0) on the ground, placed every 0.04 s."""
    t = Tracklet(camera, track_id, seconds[0], seconds[1], unit(look))
    for s in np.arange(seconds[0], seconds[1], 0.04):
        t.place(float(s), (x0, 0.0))
    return t


def test_overlapping_views_match_by_ground_position_not_look():
    cfg = IdentityConfig(overlapping={frozenset(("c0", "c1"))}, ground_gate=40)
    manager = GlobalIdentities(cfg)
    a, b = manager.assign([walker("c0", 1, 0, look=1), walker("c0", 2, 200, look=2)])
    # the same two people seen from the other side: their looks differ entirely
    c, d = manager.assign([walker("c1", 1, 205, look=3), walker("c1", 2, 10, look=4)])
    assert (c, d) == (b, a)
    # someone standing 100 units from anyone is a new person, however similar they look
    (e,) = manager.assign([walker("c1", 3, 100, look=1)])
    assert e not in (a, b)


def test_new_tracklets_of_one_person_in_two_views_join_in_one_step():
    cfg = IdentityConfig(overlapping={frozenset(("c0", "c1"))}, ground_gate=40)
    ids = GlobalIdentities(cfg).assign([walker("c0", 1, 0, look=1), walker("c1", 1, 5, look=2),
                                        walker("c0", 2, 300, look=3)])
    assert ids[0] == ids[1] != ids[2]


def test_camera_ground_point_is_the_feet():
    shift = np.array([[1.0, 0, 384], [0, 1, 0], [0, 0, 1]])
    cam = Camera("right", "x.mp4", homography=shift)
    assert cam.ground([10, 20, 30, 100]) == (404.0, 100.0)
    assert Camera("plain", "x.mp4").ground([10, 20, 30, 100]) is None
