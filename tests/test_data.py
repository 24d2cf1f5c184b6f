import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from reid.data import (
    AugmentConfig,
    DatasetError,
    PKSampler,
    augment,
    csv_records,
    image_folder,
    load_images,
    market1501,
)


def test_market_official_counts(market):
    assert (len(market.train), market.num_train_pids) == (12936, 751)
    assert (len(market.query), len({r.pid for r in market.query})) == (3368, 750)
    assert len(market.gallery) == 15913
    assert not any(r.pid == -1 for r in market.gallery)
    assert sum(r.pid == 0 for r in market.gallery) == 2798  # distractors kept
    # the release names some images *.jpg.jpg: every one that is not junk is kept
    from pathlib import Path

    base = Path(market.query[0].path).parent.parent
    on_disk = [p for p in base.rglob("*.jpg.jpg") if not p.name.startswith("-1_")]
    read = [r for r in market.train + market.gallery + market.query
            if r.path.endswith(".jpg.jpg")]
    assert len(read) == len(on_disk) > 0
    assert {r.camid for r in market.query} == set(range(6))
    assert sorted({r.pid for r in market.train}) == list(range(751))  # relabelled


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        market1501(tmp_path / "nowhere")


def test_wrong_layout_is_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DatasetError, match="not a Market-1501 folder"):
        market1501(tmp_path)


def test_partial_folder_is_a_clear_error(market_root, tmp_path):
    from reid.data.datasets import find_market_root

    base = find_market_root(market_root)
    part = tmp_path / "Market"
    (part / "query").mkdir(parents=True)
    for f in sorted((base / "query").iterdir())[:50]:
        shutil.copy(f, part / "query" / f.name)
    with pytest.raises(DatasetError, match="no bounding_box_train"):
        market1501(part)
    with pytest.raises(DatasetError, match="official release has 3368"):
        market1501(part, splits=("query",))
    assert len(market1501(part, splits=("query",), strict=False).query) == 50


def test_corrupt_image_names_the_file(market, tmp_path):
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"not a jpeg")
    from reid.data import Record

    with pytest.raises(DatasetError, match=str(bad)):
        load_images([Record(str(bad), 0, 0)], (128, 64))


def test_folder_and_csv_readers(market, tmp_path):
    root = tmp_path / "mine"
    for r in market.query[:6]:
        d = root / str(r.pid)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.path, d / f"cam{r.camid}_{len(list(d.iterdir()))}.jpg")
    recs = image_folder(root)
    assert len(recs) == 6 and {r.pid for r in recs} == {r.pid for r in market.query[:6]}
    csv = tmp_path / "list.csv"
    csv.write_text("path,pid,camid\n" + "".join(f"{r.path},{r.pid},{r.camid}\n"
                                                for r in market.query[:4]))
    assert [r.pid for r in csv_records(csv)] == [r.pid for r in market.query[:4]]
    (tmp_path / "bad.csv").write_text("file,id\nx.jpg,1\n")
    with pytest.raises(DatasetError, match="path,pid,camid"):
        csv_records(tmp_path / "bad.csv")


def test_pk_sampler_guarantee(market):
    pids = [r.pid for r in market.train]
    sampler = PKSampler(pids, p=16, k=4, seed=3)
    batches = sampler.batches(0)
    assert len(batches) > 150
    for b in batches:
        counts = Counter(pids[i] for i in b)
        assert len(counts) == 16 and set(counts.values()) == {4}
    assert sampler.batches(0) == batches  # reproducible for resume
    assert sampler.batches(1) != batches
    with pytest.raises(ValueError, match="lower sampler.p"):
        PKSampler([0, 0, 1, 1], p=4, k=2)


def test_augment_shapes_and_effects(market):
    x = load_images(market.train[:8], (128, 64))
    assert x.dtype == torch.uint8 and x.shape == (8, 3, 128, 64)
    g = torch.Generator().manual_seed(0)
    out = augment(x, (256, 128), AugmentConfig(flip=1.0, pad=0, erase=0.0), g)
    plain = augment(x, (256, 128), AugmentConfig(flip=0.0, pad=0, erase=0.0), g)
    assert out.shape == (8, 3, 256, 128)
    assert torch.allclose(out, plain.flip(3))
    erased = augment(x, (256, 128), AugmentConfig(flip=0.0, pad=0, erase=1.0), g)
    zero_frac = (erased == 0).all(1).float().mean(dim=(1, 2))
    assert ((zero_frac > 0.015) & (zero_frac < 0.45)).all()
    cropped = augment(x, (256, 128), AugmentConfig(flip=0.0, pad=10, erase=0.0), g)
    assert cropped.shape == plain.shape and not torch.allclose(cropped, plain)
    assert np.isfinite(cropped.numpy()).all()
