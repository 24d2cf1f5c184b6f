"""Real detector, real re-ID model, real clip, real metric libraries."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import need_shared
from tracking.evaluation import evaluate_mot


def run_track(*args):
    return subprocess.run([sys.executable, "-m", "tracking.cli", *args], capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def tud_campus_run(tmp_path_factory):
    video = need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")
    need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    out = tmp_path_factory.mktemp("track")
    p = run_track("run", "--source", str(video), "--output", str(out), "--gallery")
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p.stdout


def test_run_writes_three_outputs(tud_campus_run):
    out, stdout = tud_campus_run
    assert "71 frames" in stdout
    mot = np.loadtxt(out / "TUD-Campus.txt", delimiter=",")
    assert mot.shape[1] == 10 and mot[:, 0].min() >= 1 and mot[:, 0].max() <= 71
    assert (mot[:, 4] > 0).all() and (mot[:, 5] > 0).all()
    assert (np.diff(mot[:, 0]) >= 0).all()  # late rows (re-found tracks' gaps) sorted in
    assert len({(f, i) for f, i in mot[:, :2]}) == len(mot)  # one box per id and frame
    lines = (out / "TUD-Campus.jsonl").read_text().splitlines()
    assert len(lines) == 71 and json.loads(lines[0])["frame"] == 1
    import cv2

    cap = cv2.VideoCapture(str(out / "TUD-Campus.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 71
    assert not list(out.glob(".*part*"))  # no temp file left behind
    ids = {t["id"] for line in lines for t in json.loads(line)["tracks"]}
    sheets = sorted(out.glob("TUD-Campus_gallery/id_*.png"))
    assert {int(p.stem[3:]) for p in sheets} == ids
    assert cv2.imread(str(sheets[0])).shape[0] > 100  # a row of 64x128 crops


def test_eval_scores_real_ground_truth(tud_campus_run, tmp_path):
    out, _ = tud_campus_run
    gt = need_shared("data", "video")
    p = run_track("eval", "--pred", str(out), "--gt", str(gt), "--json", str(tmp_path / "s.json"))
    assert p.returncode == 0, p.stderr[-2000:]
    scores = json.loads((tmp_path / "s.json").read_text())
    assert set(scores) == {"TUD-Campus", "COMBINED"}
    s = scores["TUD-Campus"]
    assert s == pytest.approx(evaluate_mot(out, gt)["TUD-Campus"])  # the file says what it scored
    # the same boxes with every track cut into one-frame pieces keep their detection score
    # but lose their identity score
    mot = np.loadtxt(out / "TUD-Campus.txt", delimiter=",")
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    np.savetxt(pieces / "TUD-Campus.txt", np.c_[mot[:, :1], np.arange(1, len(mot) + 1),
                                                mot[:, 2:]], delimiter=",", fmt="%.2f")
    worse = evaluate_mot(pieces, gt)["TUD-Campus"]
    assert worse["DetA"] == pytest.approx(s["DetA"], abs=2)  # HOTA matching shifts a little
    assert worse["IDF1"] < s["IDF1"] / 2 and worse["HOTA"] < s["HOTA"] - 10


def test_ground_truth_scores_perfectly(tmp_path):
    gt_root = need_shared("data", "video")
    pred = tmp_path / "pred"
    pred.mkdir()
    gt = np.loadtxt(gt_root / "TUD-Campus" / "gt" / "gt.txt", delimiter=",")
    np.savetxt(pred / "TUD-Campus.txt", np.c_[gt[:, :6], np.ones(len(gt)), -np.ones((len(gt), 3))],
               delimiter=",", fmt="%.2f")
    s = evaluate_mot(pred, gt_root)["TUD-Campus"]
    assert s["HOTA"] == pytest.approx(100) and s["MOTA"] == pytest.approx(100)
    assert s["IDF1"] == pytest.approx(100) and s["IDsw"] == 0


def test_trackeval_agrees_with_motmetrics(tud_campus_run, monkeypatch):
    """Cross-check MOTA and IDF1 of TrackEval against py-motmetrics on our real output."""
    # motmetrics 1.4.0 (the latest release) still calls np.asfarray, gone in NumPy 2
    monkeypatch.setattr(np, "asfarray", lambda a, dtype=float: np.asarray(a, dtype=dtype),
                        raising=False)
    import motmetrics as mm

    out, _ = tud_campus_run
    gt_root = need_shared("data", "video")
    ours = evaluate_mot(out, gt_root)["TUD-Campus"]
    gt = mm.io.loadtxt(str(gt_root / "TUD-Campus" / "gt" / "gt.txt"), fmt="mot15-2D")
    pred = mm.io.loadtxt(str(out / "TUD-Campus.txt"), fmt="mot15-2D")
    acc = mm.utils.compare_to_groundtruth(gt, pred, "iou", distth=0.5)
    mh = mm.metrics.create()
    summary = mh.compute(acc, metrics=["mota", "idf1", "num_switches"], name="x")
    assert 100 * summary["mota"].iloc[0] == pytest.approx(ours["MOTA"], abs=0.5)
    assert 100 * summary["idf1"].iloc[0] == pytest.approx(ours["IDF1"], abs=0.5)


def test_bad_inputs_fail_cleanly(tmp_path):
    weights = need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    p = run_track("run", "--source", str(tmp_path / "missing.mp4"), "--output", str(tmp_path))
    assert p.returncode == 2 and "not found" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "empty.mp4").write_bytes(b"")
    p = run_track("run", "--source", str(tmp_path / "empty.mp4"), "--output", str(tmp_path))
    assert p.returncode == 2 and "empty.mp4" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(50000))
    p = run_track("run", "--source", str(tmp_path / "junk.mp4"), "--output", str(tmp_path))
    assert p.returncode == 2 and "junk.mp4" in p.stderr and "Traceback" not in p.stderr
    p = run_track("run", "--source", str(weights), "--output", str(tmp_path),
                  "--detector", str(tmp_path / "nope.pt"))
    assert p.returncode == 2 and "nope.pt" in p.stderr
    p = run_track("run", "--source", str(weights), "--output", str(tmp_path),
                  "tracker.max_lots_s=3")
    assert p.returncode == 2 and "unknown key tracker.max_lots_s" in p.stderr
    assert "did you mean 'max_lost_s'" in p.stderr


def test_truncated_videos_say_what_happened(tmp_path):
    """An mp4 cut short loses its index (moov atom at the end): a clear error. An AVI cut
    short keeps what decodes, and the run says the file ended early."""
    mp4 = Path(need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(mp4[: len(mp4) * 2 // 3])
    p = run_track("run", "--source", str(tmp_path / "cut.mp4"), "--output", str(tmp_path / "o"),
                  "--no-video", "reid.enabled=false")
    assert p.returncode == 2 and "cut.mp4" in p.stderr and "Traceback" not in p.stderr
    avi = Path(need_shared("data", "video", "PETS09-S2L1", "PETS09-S2L1.avi")).read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[:300_000])
    p = run_track("run", "--source", str(tmp_path / "cut.avi"), "--output", str(tmp_path / "o"),
                  "--no-video", "reid.enabled=false")
    assert p.returncode == 0, p.stderr[-2000:]
    frames = len((tmp_path / "o" / "cut.jsonl").read_text().splitlines())
    assert 0 < frames < 795
    assert f"the file ended early, after {frames} of the 795 frames" in p.stdout


def test_openvino_int8_detector_finds_people():
    pytest.importorskip("openvino", reason="the OpenVINO detector needs the openvino extra")
    import cv2

    from tracking.detector import Detector

    folder = need_shared("weights", "detector", "yolo11n_int8_openvino_model")
    video = need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")
    ok, frame = cv2.VideoCapture(str(video)).read()
    assert ok
    det = Detector(folder, conf=0.3, batch=4)
    assert det.batch == 1
    boxes = det([frame, frame])
    assert len(boxes) == 2 and len(boxes[0]) >= 3  # TUD-Campus opens on several people
    assert np.allclose(boxes[0], boxes[1])
    assert (boxes[0][:, 4] >= 0.3).all()


def test_detector_leaves_torch_threads_alone():
    """ultralytics' device set-up caps torch at cpu_count - 1 threads; the detector must
    give them back, or re-ID and the next detections run on one thread of two."""
    import torch

    from tracking.detector import Detector

    weights = need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Detector(weights)([np.zeros((288, 360, 3), np.uint8)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
