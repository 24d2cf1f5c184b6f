import time

import numpy as np
import pytest

from reid.metrics import evaluate_rank


def test_hand_example():
    # one query (pid 1, cam 0); gallery sorted by distance:
    # g0 pid1 cam0 (removed), g1 pid2, g2 pid1 cam1 (hit at rank 2), g3 pid3, g4 pid1 cam2 (rank 4)
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    r = evaluate_rank(dist, np.array([1]), np.array([1, 2, 1, 3, 1]), np.array([0]),
                      np.array([0, 1, 1, 1, 2]), max_rank=4)
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r["cmc"].tolist() == [0, 1, 1, 1]
    assert r["mINP"] == pytest.approx(2 / 4)


def test_parity_with_torchreid_on_real_market_labels(market):
    from torchreid.reid.metrics.rank import eval_market1501

    q_pids = np.array([r.pid for r in market.query])
    q_cams = np.array([r.camid for r in market.query])
    g_pids = np.array([r.pid for r in market.gallery])
    g_cams = np.array([r.camid for r in market.gallery])
    rng = np.random.default_rng(0)
    # a realistic-looking distance matrix: true matches are closer on average
    dist = rng.random((len(q_pids), len(g_pids)))
    dist[q_pids[:, None] == g_pids[None]] -= 0.4
    start = time.perf_counter()
    ours = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    elapsed = time.perf_counter() - start
    # torchreid's python path is slow (about a minute): compare on a third of the queries
    sub = slice(0, 1100)
    ours_sub = evaluate_rank(dist[sub], q_pids[sub], g_pids, q_cams[sub], g_cams)
    cmc, mAP = eval_market1501(dist[sub], q_pids[sub], g_pids, q_cams[sub], g_cams, 50)
    assert ours_sub["mAP"] == pytest.approx(mAP, abs=1e-6)
    assert np.abs(ours_sub["cmc"] - cmc).max() < 1e-6
    assert ours["num_valid"] == 3368
    print(f"full Market matrix evaluated in {elapsed:.2f}s")


def test_no_valid_query_is_an_error():
    with pytest.raises(ValueError, match="no query"):
        evaluate_rank(np.zeros((1, 2)), np.array([5]), np.array([1, 2]), np.array([0]),
                      np.array([0, 0]))


def test_rerank_on_real_features_improves_map(market):
    import torch

    from reid.inference import FeatureExtractor
    from reid.metrics import compute_distance_matrix, re_ranking

    pids = sorted({r.pid for r in market.query})[:30]
    query = [next(r for r in market.query if r.pid == p) for p in pids]
    gallery = [r for r in market.gallery if r.pid in set(pids)]
    gallery += [r for r in market.gallery if r.pid not in set(pids)][:300]
    ext = FeatureExtractor(device="cpu", batch_size=32)
    qf, gf = ext([r.path for r in query]), ext([r.path for r in gallery])
    labels = [np.array([r.pid for r in rs]) for rs in (query, gallery)]
    cams = [np.array([r.camid for r in rs]) for rs in (query, gallery)]
    plain = evaluate_rank(compute_distance_matrix(qf, gf), labels[0], labels[1], cams[0],
                          cams[1])
    reranked_dist = re_ranking(torch.as_tensor(qf), torch.as_tensor(gf))
    assert reranked_dist.shape == (len(query), len(gallery))
    assert np.isfinite(reranked_dist).all()
    reranked = evaluate_rank(reranked_dist, labels[0], labels[1], cams[0], cams[1])
    assert reranked["mAP"] > plain["mAP"]
