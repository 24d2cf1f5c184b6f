"""The embedder in other runtimes: the shipped checkpoint run by onnxruntime and OpenVINO, and
model files brought by a user (ONNX / OpenVINO IR + sidecar YAML), on real Market-1501 crops,
`reid eval`'s scoring and a real `track run`."""

import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from reid.data.datasets import ReidDataset
from reid.engine.evaluator import evaluate
from reid.inference import CheckpointError, FeatureExtractor, default_weights, exported_onnx
from reid.onnx_export import onnx_to_openvino
from reid.runtime import write_sidecar
from tests.conftest import need_shared
from tracking.config import UsageError, load_settings

onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("openvino", reason="the openvino extra: pip install -e '.[openvino]'")


@pytest.fixture(scope="module")
def crops(market_root, market):
    """32 real query crops (BGR) of different people; market_root points the export cache at
    a temporary folder, so the export is made afresh by this session."""
    return [cv2.imread(r.path) for r in market.query[::100][:32]]


@pytest.fixture(scope="module")
def torch_ext(crops):
    return FeatureExtractor(device="cpu", batch_size=32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, crops):
    """Our shipped model as a user would bring it: model.onnx and model.xml (+ .bin), each
    with its sidecar, as `reid export` writes them (export_onnx: the runtime's cached copy,
    since exporting is slow)."""
    out = tmp_path_factory.mktemp("export")
    src = exported_onnx(default_weights())
    for suffix in (".onnx", ".yaml"):
        shutil.copyfile(src.with_suffix(suffix), out / f"model{suffix}")
    onnx_to_openvino(out / "model.onnx", out / "ir" / "model.xml")
    return out


def cosines(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a * b).sum(1).numpy()


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_checkpoint_through_other_runtimes_matches_torch(runtime, crops, torch_ext):
    ext = FeatureExtractor(runtime=runtime, batch_size=32)
    want, got = torch_ext(crops), ext(crops)
    assert cosines(want, got).min() >= 0.999
    assert ext.identity["sha256"] == torch_ext.identity["sha256"]  # same model, same store
    assert (ext.identity["runtime"], ext.identity["arch"]) == (runtime, "osnet_x0_25")
    assert ext.dim == 512 and ext([]).shape == (0, 512)


@pytest.mark.parametrize("name", ["model.onnx", "ir/model.xml"])
def test_a_model_file_with_its_sidecar_matches_torch(name, exported, crops, torch_ext):
    ext = FeatureExtractor(exported / name)
    assert ext.runtime == ("onnx" if name.endswith(".onnx") else "openvino")
    assert cosines(torch_ext(crops), ext(crops)).min() >= 0.999
    assert ext.identity["weights"] == "model" + exported.joinpath(name).suffix


def test_colour_order_comes_from_the_sidecar(exported, tmp_path, crops, torch_ext):
    """A model that expects BGR (our ONNX graph behind a channel swap) embeds like ours when
    its sidecar says bgr (with mean/std in BGR order), and differently when it says rgb."""
    graph = onnx.load(str(exported / "model.onnx"))
    first = graph.graph.input[0]
    swap = onnx.helper.make_node("Gather", ["bgr", "order"], [first.name], axis=1)
    graph.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2, 1, 0]), "order"))
    graph.graph.node.insert(0, swap)
    first.name = "bgr"
    path = tmp_path / "bgr.onnx"
    onnx.save(graph, str(path))
    m, s = torch_ext.meta["mean"], torch_ext.meta["std"]
    write_sidecar(path, [256, 128], m[::-1], s[::-1], channels="bgr")
    want = torch_ext(crops)
    assert cosines(want, FeatureExtractor(path)(crops)).min() >= 0.999
    write_sidecar(path, [256, 128], m, s, channels="rgb")
    assert cosines(want, FeatureExtractor(path)(crops)).mean() < 0.99


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_a_model_with_a_fixed_batch_of_one_embeds_batches(runtime, exported, tmp_path, crops,
                                                          torch_ext):
    """Model zoos ship batch-1 models: onnxruntime is fed one crop at a time, OpenVINO is
    reshaped to any batch."""
    graph = onnx.load(str(exported / "model.onnx"))
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "one.onnx"
    onnx.save(graph, str(path))
    shutil.copyfile(exported / "model.yaml", tmp_path / "one.yaml")
    ext = FeatureExtractor(path, runtime=runtime, batch_size=5)
    assert cosines(torch_ext(crops[:7]), ext(crops[:7])).min() >= 0.999


def test_eval_of_the_exported_model_scores_like_torch(market, exported, torch_ext):
    """`reid eval`'s scoring on a subset (40 queries, the gallery of their people and 200
    others): the file's mAP within 0.1 of the checkpoint's. Full set: docs/BENCHMARKS.md."""
    query = market.query[:40]
    pids = {r.pid for r in query}
    gallery = [r for r in market.gallery if r.pid in pids] + market.gallery[::50][:200]
    subset = ReidDataset(train=[], query=query, gallery=gallery)
    cache: dict = {}
    scores = []
    for ext in (torch_ext, FeatureExtractor(exported / "model.onnx", batch_size=32)):
        r = evaluate(ext.model, subset, ext.size, ext.meta["mean"], ext.meta["std"],
                     ext.device, batch_size=32, cache=cache)
        scores.append(r["mAP"])
    assert scores[0] > 50 and abs(scores[0] - scores[1]) <= 0.1


def edit_sidecar(exported, tmp_path, **changes):
    """A copy of the exported ONNX with its sidecar changed (a key set to None is dropped)."""
    (tmp_path / "m.onnx").write_bytes((exported / "model.onnx").read_bytes())
    side = yaml.safe_load((exported / "model.yaml").read_text())
    side.update(changes)
    side = {k: v for k, v in side.items() if v is not None}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(side))
    return tmp_path / "m.onnx"


@pytest.mark.parametrize("changes, message", [
    ({"input_size": [384, 128]}, "takes inputs of shape"),
    ({"mean": None, "std": None}, "lacks mean, std"),
    ({"std": [0.229, 0.224, 0.225]}, "0-255 pixel units"),
    ({"channels": "grb"}, "channels must be rgb or bgr"),
])
def test_a_sidecar_that_does_not_fit_is_refused(changes, message, exported, tmp_path):
    with pytest.raises(CheckpointError, match=message):
        FeatureExtractor(edit_sidecar(exported, tmp_path, **changes))


def test_wrong_files_and_runtimes_are_refused(exported, tmp_path):
    bad = edit_sidecar(exported, tmp_path)
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        FeatureExtractor(bad)
    (tmp_path / "m.yaml").unlink()
    with pytest.raises(CheckpointError, match="needs its preprocessing in .*m.yaml"):
        FeatureExtractor(bad)
    with pytest.raises(CheckpointError, match="PyTorch cannot run it"):
        FeatureExtractor(exported / "model.onnx", runtime="torch")
    with pytest.raises(CheckpointError, match="only runtime openvino"):
        FeatureExtractor(exported / "ir" / "model.xml", runtime="onnx")
    with pytest.raises(CheckpointError, match="runs on the CPU"):
        FeatureExtractor(runtime="onnx", device="cuda")
    with pytest.raises(UsageError, match="did you mean 'onnx'"):
        load_settings(overrides=["reid.runtime=onxx"])


def test_reid_eval_with_a_wrong_file_is_one_line_and_exit_2(exported, tmp_path):
    path = edit_sidecar(exported, tmp_path, input_size=[384, 128])
    p = subprocess.run([sys.executable, "-m", "reid.cli", "eval", "--weights", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "input_size [384, 128]" in p.stderr


def track(video, out, *overrides):
    p = subprocess.run([sys.executable, "-m", "tracking.cli", "run", "--source", str(video),
                        "--output", str(out), "--no-video", "--max-frames", "25",
                        "reid.device=cpu", *overrides], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return np.loadtxt(out / f"{video.stem}.txt", delimiter=",")


def test_track_run_gives_the_same_ids_whichever_runtime(exported, tmp_path):
    video = need_shared("data", "video", "TUD-Campus", "TUD-Campus.mp4")
    need_shared("weights", "detector", "yolov8n_coco_reconstructed.pt")
    want = track(video, tmp_path / "torch")
    for name, overrides in (("onnx", ["reid.runtime=onnx"]),
                            ("file", [f"reid.weights={exported / 'ir' / 'model.xml'}"])):
        got = track(video, tmp_path / name, *overrides)
        assert len(np.unique(want[:, 1])) >= 3
        assert np.array_equal(got[:, :2], want[:, :2]), name  # frame, id of every box
        assert np.allclose(got[:, 2:6], want[:, 2:6], atol=0.01), name

