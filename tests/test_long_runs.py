"""A long live run keeps on disk, not in memory, what its outputs need of the tracks that
ended: their decisions (Ids with a store) and their rows of the identities table."""

import pickle

import numpy as np

from tracking.camera_run import Row
from tracking.events import Decision, Ids, TrackletEnded
from tracking.sinks import IdentitiesFile
from tracking.sources import Frame


def decided(ids: Ids) -> Ids:
    ids.apply(Decision("a", 1, 7))
    ids.apply(Decision("a", 1, 8, from_frame=20))  # relabelled from frame 20
    ids.apply(Decision("a", 2, 9))
    ids.apply(Decision("b", 1, 7))
    return ids


def answers(ids: Ids) -> list:
    return [ids.get(c, t, f) for c, t in (("a", 1), ("a", 2), ("b", 1), ("b", 5))
            for f in (1, 19, 20, 99)]


def test_settled_decisions_leave_memory_and_are_read_back(tmp_path):
    plain, stored = decided(Ids()), decided(Ids(tmp_path / "decisions.sqlite"))
    stored.settle_ended([TrackletEnded("a", 1, 3.0), TrackletEnded("b", 1, 3.0)])
    assert len(stored) == 1 and len(plain) == 3  # only a/2, still open, in memory
    assert answers(stored) == answers(plain)
    assert sorted(stored.items()) == sorted(plain.items())
    stored.commit()
    again = pickle.loads(pickle.dumps(stored))  # a restarted service's checkpoint
    assert answers(again) == answers(plain)
    for ids in (again, plain):  # a settled track decided again, from frame 30 on
        ids.apply(Decision("a", 1, 5, from_frame=30))
    assert answers(again) == answers(plain) and again.get("a", 1, 30) == 5


def test_identities_table_is_the_same_with_ended_tracks_on_disk(tmp_path):
    ids, img = Ids(), np.zeros((2, 2, 3), np.uint8)
    kept, settled = IdentitiesFile(tmp_path / "kept"), IdentitiesFile(tmp_path / "settled")
    for i in range(1, 9):
        rows = [Row("a", i, i / 10, 1 if i <= 4 else 3, [0, 0, 1, 1], 0.9),
                Row("b", i, i / 10, 2, [0, 0, 1, 1], 0.9)]  # same person, same time
        if i == 2:
            for d in (Decision("a", 1, 1), Decision("b", 2, 1)):
                ids.apply(d)
        if i == 6:
            ids.apply(Decision("a", 3, 2))
        for table in (kept, settled):
            table.write("a", Frame(i, i / 10, img, 0.0), rows, ids)
        if i == 4:
            settled.settle("a", 1, ids)  # ended: its rows go to disk
    assert ("a", 1) not in settled.seen and ("a", 1) in kept.seen
    assert settled.table(ids) == kept.table(ids)
    settled.close(ids)
    kept.close(ids)
    for name in ("identities.json", "identities.csv"):
        assert (tmp_path / "settled" / name).read_text() == (tmp_path / "kept" / name).read_text()
    assert not settled.spill.exists()
