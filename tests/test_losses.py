"""Losses against values computed by hand on tiny batches."""

import math

import pytest
import torch

from reid.engine.config import load_config
from reid.engine.trainer import make_losses
from reid.losses import CrossEntropyLabelSmooth, QuadrupletLoss, TripletLoss, euclidean_dist
from reid.losses.quadruplet import adaptive_margin, mine_quadruplets

# Points on a line: identities 0, 0, 1, 1, 2, 2 at x = 0, 1, 3, 3.5, 10, 12.
X = torch.tensor([[0.0], [1.0], [3.0], [3.5], [10.0], [12.0]])
P = torch.tensor([0, 0, 1, 1, 2, 2])


def test_euclidean_dist():
    d = euclidean_dist(X, X)
    assert d[0, 2].item() == pytest.approx(3.0, abs=1e-5)
    assert d[4, 5].item() == pytest.approx(2.0, abs=1e-5)


def test_triplet_batch_hard_by_hand():
    # hardest positive / negative per anchor:
    # a0: dp 1, dn 3 ; a1: dp 1, dn 2 ; a2: dp .5, dn 2 ; a3: dp .5, dn 2.5
    # a4: dp 2, dn 6.5 ; a5: dp 2, dn 8.5
    gaps = [1 - 3, 1 - 2, 0.5 - 2, 0.5 - 2.5, 2 - 6.5, 2 - 8.5]
    want = sum(max(0.0, g + 1.6) for g in gaps) / 6
    assert TripletLoss(1.6)(X, P).item() == pytest.approx(want, abs=1e-5)
    soft = sum(math.log1p(math.exp(g)) for g in gaps) / 6
    assert TripletLoss(None)(X, P).item() == pytest.approx(soft, abs=1e-5)


def test_triplet_gradient_pulls_positive_and_pushes_negative():
    x = X.clone().requires_grad_(True)
    loss = TripletLoss(1.6)(x, P)
    loss.backward()
    # anchor 1 (x=1): its positive is at 0 and its hardest negative at 3, so descent moves it
    # left; the negative at 3 is pushed right, away from it.
    assert -x.grad[1, 0] < 0
    assert -x.grad[2, 0] > 0
    with torch.no_grad():
        assert TripletLoss(1.6)(x - 0.1 * x.grad, P) < loss


# Quadruplet batch in 2-D, identities A, B, C in two columns x = 0 and x = 4:
#   A0 (0,0) A1 (4,0) | B0 (0,3) B1 (4,3) | C0 (0,8) C1 (4,8)
# Same column: A-B 3, B-C 5, A-C 8. Across columns: same id 4, A-B 5, B-C sqrt(41) = 6.40,
# A-C sqrt(80) = 8.94. Per anchor: p, n1 (closest other id), n2 (3rd id closest to n1):
#   A0: p A1 4, n1 B0 3, n2 C0 d(B0,C0) 5 | A1: p A0 4, n1 B1 3, n2 C1 5
#   B0: p B1 4, n1 A0 3, n2 C0 d(A0,C0) 8 | B1: p B0 4, n1 A1 3, n2 C1 8
#   C0: p C1 4, n1 B0 5, n2 A0 d(B0,A0) 3 | C1: p C0 4, n1 B1 5, n2 A1 3
Q = torch.tensor([[0.0, 0], [4, 0], [0, 3], [4, 3], [0, 8], [4, 8]])
QP = torch.tensor([0, 0, 1, 1, 2, 2])


def test_quadruplet_mining_by_hand_gives_each_anchor_its_own_pair():
    q = mine_quadruplets(euclidean_dist(Q, Q), QP)
    assert q.pos.tolist() == [1, 0, 3, 2, 5, 4]
    assert q.neg.tolist() == [2, 3, 0, 1, 2, 3]
    assert q.neg2.tolist() == [4, 5, 4, 5, 0, 1]
    # the two anchors of each identity push on different pairs; all six pairs differ
    pairs = {frozenset(p) for p in zip(q.neg.tolist(), q.neg2.tolist(), strict=True)}
    assert len(pairs) == 6


def test_quadruplet_value_by_hand():
    # m1 = 2: triplet gaps d(a,p) - d(a,n1) + 2 = 3, 3, 3, 3, 1, 1 -> mean 14/6
    # m2 = 1.5: pair gaps d(a,p) - d(n1,n2) + 1.5 = .5, .5, -2.5, -2.5, 2.5, 2.5 -> mean 6/6
    loss = QuadrupletLoss(margin1=2.0, margin2=1.5, weight=0.5)(Q, QP)
    assert loss.item() == pytest.approx(14 / 6 + 0.5 * 1.0, abs=1e-5)


def test_quadruplet_zero_when_margins_hold():
    # tight identities (spread 1) 10 apart: every gap is below -9
    x = torch.tensor([[0.0, 0], [0, 1], [10, 0], [10, 1], [0, 20], [0, 21]], requires_grad=True)
    loss = QuadrupletLoss()(x, QP)
    loss.backward()
    assert loss.item() == 0.0
    assert not x.grad.any()


def test_quadruplet_gradient_pulls_positive_and_pushes_negative():
    x = Q.clone().requires_grad_(True)
    loss_fn = QuadrupletLoss(margin1=2.0, margin2=1.5, weight=0.5)
    loss = loss_fn(x, QP)
    loss.backward()
    # A0 at (0,0): descent moves it right, towards its positive A1 (4,0), and down, away from
    # B0 (0,3), its own n1, C0's n2 partner and B0's n1
    step = -x.grad[0]
    assert step[0] > 0 and step[1] < 0
    with torch.no_grad():
        moved = x - 0.05 * x.grad
        d_before, d_after = euclidean_dist(Q, Q), euclidean_dist(moved, moved)
        assert (d_after[[0, 2, 4], [1, 3, 5]] < d_before[[0, 2, 4], [1, 3, 5]]).all()
        assert loss_fn(moved, QP) < loss


def test_quadruplet_needs_three_identities():
    with pytest.raises(ValueError, match="at least 3 identities per batch, got 2"):
        QuadrupletLoss()(Q[:4], QP[:4])
    cfg = load_config(None, ["loss.quadruplet=1", "sampler.p=2"])
    with pytest.raises(ValueError, match="at least 3 identities per batch, got 2; raise sampler.p"):
        make_losses(cfg)
    with pytest.raises(ValueError, match="quad_margin2 .* smaller"):
        QuadrupletLoss(margin1=0.2, margin2=0.3)


def test_quadruplet_warmup_zeroes_the_pair_term():
    loss_fn = make_losses(load_config(None, [
        "loss.quadruplet=1", "loss.quad_margin1=2", "loss.quad_margin2=1.5",
        "loss.quad_weight=0.5", "loss.quad_warmup=2"]))["quadruplet"][1]
    triplet_only = TripletLoss(2.0)(Q, QP).item()
    for epoch, want in [(0, triplet_only), (1, triplet_only), (2, 14 / 6 + 0.5)]:
        loss_fn.set_epoch(epoch)
        assert loss_fn(Q, QP).item() == pytest.approx(want, abs=1e-5)
    assert triplet_only == pytest.approx(14 / 6, abs=1e-5)


def test_adaptive_margin_is_mean_gap_weighted():
    d = euclidean_dist(X, X)
    same = P[:, None] == P[None]
    eye = torch.eye(6, dtype=torch.bool)
    gap = d[~same].mean() - d[same & ~eye].mean()
    assert adaptive_margin(d, P, 0.5).item() == pytest.approx(0.5 * gap.item(), abs=1e-5)
    # the adaptive margin is a constant for the gradient
    x = X.clone().requires_grad_(True)
    QuadrupletLoss(adaptive=True)(x, P).backward()
    assert torch.isfinite(x.grad).all()


def test_quadruplet_training_steps_reduce_the_loss():
    # a linear embedding of noisy points around 4 centres, 4 ids x 2, trained for 20 steps
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g)
    pids = torch.arange(4).repeat_interleave(2)
    inputs = centres[pids] + 0.5 * torch.randn(8, 16, generator=g)
    net = torch.nn.Linear(16, 8)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = QuadrupletLoss()
    losses = []
    for _ in range(20):
        loss = loss_fn(net(inputs), pids)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cross_entropy_label_smoothing_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    target = torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    eps = 0.1
    want = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    assert CrossEntropyLabelSmooth(eps)(logits, target).item() == pytest.approx(want.item(),
                                                                                 abs=1e-6)
