"""The offline identity pass's clustering (tracking.offline) on hand-made pieces."""

import numpy as np

from tracking.multicam import IdentityConfig, Tracklet
from tracking.offline import camera_aware, persons, piece_look


def unit(*v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


RED, GREEN, BLUE = unit(1, 0.05, 0), unit(0, 1, 0.05), unit(0.05, 0, 1)
SITE = IdentityConfig(max_distance=0.3, overlapping={frozenset("ab")}, ground_gate=1.0,
                      ground_speed=1.0)


def piece(camera, track, start, end, look, at=None):
    """A piece seen from ``start`` to ``end`` s, standing at ``at`` (x, y) on the ground
    the whole time (no ground position when None)."""
    ground = {} if at is None else {k: at for k in range(round(start * 10), round(end * 10) + 1)}
    return Tracklet(camera, track, start, end, look, int((end - start) * 10) + 1, ground)


def grouped(pieces, cfg=SITE):
    return persons(pieces, np.stack([p.embedding for p in pieces]), cfg)


def test_seen_together_in_overlapping_views_is_one_person_whatever_the_looks():
    """Two views of one person differ (light, angle); standing in one place at one time
    outweighs that. A third person elsewhere stays apart though dressed like one of them."""
    labels = grouped([piece("a", 1, 0, 3, RED, (0, 0)), piece("b", 1, 0, 3, GREEN, (0.2, 0)),
                      piece("b", 2, 0, 3, RED, (9, 9))])
    assert labels[0] == labels[1] != labels[2]


def test_two_places_at_once_is_never_one_person():
    """Identical looks, but one camera shows both at the same time: two people."""
    labels = grouped([piece("a", 1, 0, 3, RED), piece("a", 2, 1, 4, RED)])
    assert labels[0] != labels[1]


def test_one_close_look_does_not_pull_in_a_whole_person():
    """u and v are one person seen by two views at once, looking different; w, a minute
    later, looks like u only: the mean over the pair decides, so w stays apart (single
    linkage would merge it). Without v, w joins u."""
    u, v = piece("a", 1, 0, 2, RED, (0, 0)), piece("b", 1, 0, 2, GREEN, (0.2, 0))
    w = piece("b", 3, 60, 62, RED)
    labels = grouped([u, v, w])
    assert labels[0] == labels[1] != labels[2]
    assert grouped([u, w]) == [0, 0]


def test_persons_are_numbered_in_order_of_appearance():
    labels = grouped([piece("a", 1, 10, 12, GREEN), piece("a", 2, 0, 2, BLUE),
                      piece("b", 3, 20, 22, BLUE)])
    assert labels == [1, 0, 0]
    assert persons([], np.empty((0, 3)), SITE) == []


def test_camera_change_shift_is_taken_off_cross_camera_distances():
    """Within each camera pieces are 0.2 apart, across cameras 0.5 (the same people seen
    from another side): the 0.3 shift comes off the cross-camera pairs only."""
    dist = np.array([[0, .2, .5, .5], [.2, 0, .5, .5], [.5, .5, 0, .2], [.5, .5, .2, 0]])
    out = camera_aware(dist, ["a", "a", "b", "b"])
    assert np.allclose(out[:2, :2], dist[:2, :2]) and np.allclose(out[2:, 2:], dist[2:, 2:])
    assert np.allclose(out[:2, 2:], 0.2) and np.allclose(out[2:, :2], 0.2)
    assert np.allclose(camera_aware(dist, ["a", "b", "c", "d"]), dist)  # nothing to compare


def test_a_piece_looks_like_the_looks_reported_inside_it():
    p = piece("a", 1, 2.0, 5.0, BLUE)
    looks = [(1.5, RED, 9), (3.0, GREEN, 3), (4.0, GREEN, 3), (6.0, RED, 9)]
    assert np.allclose(piece_look(p, looks, 1.0), GREEN)
    assert np.allclose(piece_look(p, [(1.5, RED, 9)], 1.0), BLUE)  # none inside: its own


def test_the_only_way_on_is_followed_by_position_alone():
    """Someone turns round (another look) where nobody else is: still one person."""
    labels = grouped([piece("a", 1, 0, 2, RED, (0, 0)), piece("a", 2, 2.3, 4, GREEN, (0.2, 0))])
    assert labels == [0, 0]


def test_where_two_people_cross_the_looks_decide_who_goes_on():
    """Two tracks end at one spot and two begin there: position cannot tell who is who."""
    ended = [piece("a", 1, 0, 2, RED, (0, 0)), piece("a", 2, 0, 2, GREEN, (0.1, 0))]
    began = [piece("a", 3, 2.3, 4, GREEN, (0.05, 0)), piece("a", 4, 2.3, 4, RED, (0.1, 0))]
    labels = grouped(ended + began)
    assert labels[0] == labels[3] != labels[1] == labels[2]
