"""GlobalIdentities finds by place the identities a new tracklet could continue (Places
and the recent tracklets), across cameras and long after, as the rules say."""

import numpy as np

from tracking.multicam import RECENT_S, GlobalIdentities, IdentityConfig, Tracklet

CFG = IdentityConfig(ground_gate=40, ground_speed=60, ground_gap_s=2.0)


def walker(camera: str, x: float, start: float, end: float, look: int) -> Tracklet:
    """Someone standing at (x, 0), placed every 0.04 s, with a look of their own."""
    v = np.random.default_rng(look).normal(size=16)
    t = Tracklet(camera, look, start, end, v / np.linalg.norm(v))
    for s in np.arange(start, end, 0.04):
        t.place(float(s), (x, 0.0))
    return t


def test_a_tracklet_continues_one_that_ended_nearby_in_another_camera():
    ids = GlobalIdentities(CFG)
    (a,) = ids.assign([walker("c0", 0.0, 0.0, 1.0, look=1)])
    # a moment later, 10 units away, in a camera that does not overlap: the same person
    # (looks differ entirely); 500 units away: someone else
    b, c = ids.assign([walker("c1", 10.0, 1.5, 2.5, look=2),
                       walker("c2", 500.0, 1.5, 2.5, look=3)])
    assert b == a and c != a


def test_a_tracklet_ready_late_still_finds_what_ended_before_the_recent_ones():
    ids = GlobalIdentities(CFG)
    (a,) = ids.assign([walker("c0", 0.0, 0.0, 1.0, look=1)])
    later = 3 * RECENT_S  # others come and go: the recent tracklets move on past a's end
    ids.assign([walker("c3", 900.0, later, later + 1.0, look=4)])
    # a track that started right after a ended, but got enough clean crops only now
    (b,) = ids.assign([walker("c1", 10.0, 1.5, later + 2.0, look=2)])
    assert b == a
