"""Global identity manager on real embeddings of real people, and its scores."""

import sys

import numpy as np
import pytest

from tracking.association import mean_direction
from tracking.multicam import GlobalIdentities, IdentityConfig, Tracklet


@pytest.fixture(scope="module")
def people(market):
    """Tracklet embeddings of 3 people, one per camera view: {pid: {camid: unit vector}}."""
    from reid.inference import FeatureExtractor

    ext = FeatureExtractor(device="cpu", batch_size=32)
    by = {}
    for r in market.gallery:
        if r.pid > 0:
            by.setdefault(r.pid, {}).setdefault(r.camid, []).append(r.path)
    pids = [p for p, cams in by.items()
            if len(cams) >= 2 and all(len(v) >= 3 for v in cams.values())][:3]
    out = {}
    for p in pids:
        cams = sorted(by[p])[:2]
        out[p] = {c: mean_direction(ext(by[p][c][:3]).numpy()) for c in cams}
    return out


def tracklets_for(people, start_a, start_b):
    """Each person seen first in their first camera, then in their second."""
    first, second = [], []
    for n, views in enumerate(people.values()):
        (ca, fa), (cb, fb) = sorted(views.items())
        first.append(Tracklet(f"cam{ca}", n, start_a, start_a + 5, fa))
        second.append(Tracklet(f"cam{cb}", n, start_b, start_b + 5, fb))
    return first, second


def test_same_people_get_the_same_ids_across_cameras(people):
    first, second = tracklets_for(people, 0, 20)
    manager = GlobalIdentities(IdentityConfig(max_distance=0.6))
    ids_a = manager.assign(first)
    ids_b = manager.assign(second)
    assert len(set(ids_a)) == 3
    assert ids_a == ids_b


def test_one_person_cannot_be_in_two_cameras_at_once(people):
    first, second = tracklets_for(people, 0, 2)  # second view overlaps the first in time
    manager = GlobalIdentities(IdentityConfig(max_distance=0.6))
    ids_a = manager.assign(first)
    ids_b = manager.assign(second)
    assert not set(ids_a) & set(ids_b)
    # unless the configuration says those views overlap
    cams = {frozenset((a.camera, b.camera)) for a, b in zip(first, second)}
    manager = GlobalIdentities(IdentityConfig(max_distance=0.6, overlapping=cams))
    assert manager.assign(first) == manager.assign(second)


def test_transit_window(people):
    first, second = tracklets_for(people, 0, 100)  # 95 s after leaving the first camera
    windows = {(a.camera, b.camera): (0.0, 60.0) for a, b in zip(first, second)}
    manager = GlobalIdentities(IdentityConfig(max_distance=0.6, transit=windows))
    assert not set(manager.assign(first)) & set(manager.assign(second))


def test_scores_by_hand():
    from tracking.evaluation import clustering_scores as scores

    true = np.array([1, 1, 1, 2, 2, 3])
    pred = np.array([7, 7, 8, 8, 8, 9])
    s = scores(true, pred)
    assert s["IDF1"] == pytest.approx(100 * 5 / 6)  # 7->1 (2 images), 8->2 (2), 9->3 (1)
    # predicted pairs: (7:1) + (8:3) = 4, of which together in truth: 1 + 1 = 2
    assert s["pair_precision"] == pytest.approx(50.0)
    # true pairs: (1:3) + (2:1) = 4, kept together: 2
    assert s["pair_recall"] == pytest.approx(50.0)


def test_two_real_cameras_end_to_end(tmp_path):
    import json
    import subprocess

    from tests.conftest import ROOT, need_shared

    c0 = need_shared("data", "video", "EPFL-terrace1", "terrace1-c0.mp4")
    c1 = need_shared("data", "video", "EPFL-terrace1", "terrace1-c1.mp4")
    need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    site = ROOT / "configs" / "cameras" / "epfl_terrace.yaml"
    cmd = [sys.executable, "-m", "tracking.cli", "run", "--config", str(site), "--output",
           str(tmp_path), "--max-frames", "200", "--no-video", "--gt",
           str(ROOT / "data" / "epfl_terrace1")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "across cameras c0, c1: IDF1" in p.stdout  # scored on our own ground truth
    identities = json.loads((tmp_path / "identities.json").read_text())
    assert identities and {r["camera"] for r in identities} <= {"c0", "c1"}
    known = {r["global_id"] for r in identities}
    for cam in ("c0", "c1"):
        rows = np.loadtxt(tmp_path / f"{cam}.txt", delimiter=",", ndmin=2)
        assert len(rows) and set(rows[:, 1].astype(int)) <= known
        frames = [json.loads(line) for line in (tmp_path / f"{cam}.jsonl").read_text()
                  .splitlines()]
        assert len(frames) == 200
        in_jsonl = {(f["frame"], t["id"]) for f in frames for t in f["tracks"]}
        in_mot = {(int(f), int(g)) for f, g in rows[:, :2]}
        assert in_jsonl and in_jsonl <= in_mot  # both written from the final decisions
    assert (tmp_path / "identities.csv").read_text().startswith("global_id,camera,local_id")
    sheets = sorted((tmp_path / "sheets").glob("id_*.png"))
    assert {int(s.stem[3:]) for s in sheets} == known
    dup = subprocess.run([sys.executable, "-m", "tracking.cli", "run", "--camera", f"a={c0}",
                          "--camera", f"a={c1}", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert dup.returncode == 2 and "used twice" in dup.stderr


def test_forget_drops_old_tracklets_and_empty_identities_but_ids_keep_counting():
    ids = GlobalIdentities(IdentityConfig(max_distance=0.3))
    old, recent = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    ids.assign([Tracklet("a", 1, 0.0, 5.0, old), Tracklet("a", 2, 0.0, 50.0, recent)])
    gone = ids.forget(before=10.0)
    assert [t.track_id for t in gone] == [1]
    assert [i.global_id for i in ids.identities] == [2]
    assert ids.assign([Tracklet("b", 3, 60.0, 61.0, old)]) == [3]  # a new id, never 1 again
