"""Multi-camera identity scoring and sampled ground truth, on hand-made boxes whose scores
can be worked out by hand (TrackEval does the matching)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tracking.evaluation import EvalError, evaluate_mot, evaluate_multi_camera


def rows(frames, pid, x):
    return [[f, pid, x, 50, 40, 100, 1, -1, -1, -1] for f in frames]


def write(folder, name, boxes, length=20, every=None):
    """A camera's ground truth (folder/<name>/gt/gt.txt + seqinfo.ini) or, with length=None,
    a run's prediction file folder/<name>.txt."""
    if length is None:
        path = folder / f"{name}.txt"
    else:
        path = folder / name / "gt" / "gt.txt"
        ini = f"[Sequence]\nname={name}\nseqLength={length}\n"
        if every:
            ini += f"annotatedEvery={every}\n"
        path.parent.mkdir(parents=True)
        (folder / name / "seqinfo.ini").write_text(ini)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.array(boxes, float).reshape(-1, 10), delimiter=",", fmt="%g")


@pytest.fixture
def site(tmp_path):
    """Person 7 walks through camera a (frames 1-10), then camera b (frames 11-20)."""
    gt = tmp_path / "gt"
    write(gt, "a", rows(range(1, 11), 7, 100))
    write(gt, "b", rows(range(11, 21), 7, 300))
    return tmp_path, gt


def test_one_global_id_in_both_views_scores_perfectly(site):
    tmp, gt = site
    run = tmp / "run"
    write(run, "a", rows(range(1, 11), 1, 100), length=None)
    write(run, "b", rows(range(11, 21), 1, 300), length=None)
    m = evaluate_multi_camera(run, gt)
    assert (m["IDF1"], m["IDP"], m["IDR"]) == pytest.approx((100, 100, 100))
    assert m["cameras"] == ["a", "b"]


def test_a_person_split_across_views_loses_half(site):
    tmp, gt = site
    run = tmp / "run"
    write(run, "a", rows(range(1, 11), 1, 100), length=None)
    write(run, "b", rows(range(11, 21), 2, 300), length=None)
    # each view alone is perfect; across them only one of the two ids can be person 7
    assert evaluate_mot(run, gt)["a"]["IDF1"] == pytest.approx(100)
    assert evaluate_multi_camera(run, gt)["IDF1"] == pytest.approx(50)


def test_sampled_ground_truth_is_scored_on_its_samples(tmp_path):
    gt, run = tmp_path / "gt", tmp_path / "run"
    write(gt, "a", rows(range(1, 21, 5), 7, 100), every=5)
    # the run also boxes a second person on frames that were not annotated: not counted
    write(run, "a", rows(range(1, 21), 1, 100) + rows(range(2, 21, 5), 2, 200), length=None)
    s = evaluate_mot(run, gt)["a"]
    assert s["MOTA"] == pytest.approx(100) and s["IDF1"] == pytest.approx(100)


def test_bad_ground_truth_is_a_clear_error(site, tmp_path):
    _, gt = site
    run = tmp_path / "run"
    write(run, "a", rows(range(1, 11), 1, 100), length=None)
    with pytest.raises(EvalError, match="multi-camera scoring needs"):
        evaluate_multi_camera(run, gt)
    write(run, "door", rows(range(1, 11), 1, 100), length=None)
    with pytest.raises(EvalError, match=r"\['door'\] .* no ground truth .* \['a', 'b'\]"):
        evaluate_multi_camera(run, gt)
    write(run, "b", rows(range(11, 31), 1, 100), length=None)
    with pytest.raises(EvalError, match="frames outside 1..20"):
        evaluate_mot(run, gt)


def test_eval_command_writes_the_multi_camera_scores(site):
    tmp, gt = site
    run = tmp / "run"
    write(run, "a", rows(range(1, 11), 1, 100), length=None)
    write(run, "b", rows(range(11, 21), 1, 300), length=None)
    (run / "identities.json").write_text("[]")  # a site run: scored across cameras
    p = subprocess.run([sys.executable, "-m", "tracking.cli", "eval", "--pred", str(run), "--gt",
                        str(gt), "--json", str(tmp / "s.json")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "across cameras a, b: IDF1 100.0" in p.stdout
    scores = json.loads((tmp / "s.json").read_text())
    assert scores["multi_camera"]["IDF1"] == pytest.approx(100)
    assert {"a", "b", "COMBINED"} <= set(scores)


def test_a_run_that_stopped_early_is_scored_on_what_it_covered(site):
    tmp, gt = site
    run = tmp / "run"
    write(run, "a", rows(range(1, 6), 1, 100), length=None)  # stopped after frame 5
    assert evaluate_mot(run, gt)["a"]["IDF1"] == pytest.approx(100 * 2 * 5 / 15)
    assert evaluate_mot(run, gt, until=5)["a"]["IDF1"] == pytest.approx(100)


def test_sampled_ground_truth_up_to_a_frame(tmp_path):
    gt, run = tmp_path / "gt", tmp_path / "run"
    write(gt, "a", rows(range(1, 21, 5), 7, 100), every=5)
    write(run, "a", rows(range(1, 9), 1, 100), length=None)  # stopped after frame 8
    assert evaluate_mot(run, gt, until=8)["a"]["IDF1"] == pytest.approx(100)
