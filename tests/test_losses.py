"""Losses against values computed by hand on tiny batches."""

import math

import pytest
import torch

from reid.losses import CrossEntropyLabelSmooth, QuadrupletLoss, TripletLoss, euclidean_dist
from reid.losses.quadruplet import adaptive_margin, hardest_foreign_negative_pair

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


def test_foreign_negative_pair_by_hand():
    d = euclidean_dist(X, X)
    hf = hardest_foreign_negative_pair(d, P)
    # anchors of id 0: closest pair among ids {1, 2} across ids -> 10 - 3.5 = 6.5
    # anchors of id 1: pairs between ids 0 and 2 -> 10 - 1 = 9
    # anchors of id 2: pairs between ids 0 and 1 -> 3 - 1 = 2
    assert hf.tolist() == pytest.approx([6.5, 6.5, 9, 9, 2, 2], abs=1e-4)


def test_quadruplet_fixed_margins_by_hand():
    dp = torch.tensor([1, 1, 0.5, 0.5, 2, 2])
    dn = torch.tensor([3, 2, 2, 2.5, 6.5, 8.5])
    hf = torch.tensor([6.5, 6.5, 9, 9, 2, 2])
    want = (torch.relu(dp - dn + 1.6).mean() + torch.relu(dp - hf + 0.5).mean()).item()
    got = QuadrupletLoss(margin1=1.6, margin2=0.5)(X, P).item()
    assert got == pytest.approx(want, abs=1e-4)


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


def test_quadruplet_step_reduces_loss_and_needs_three_ids():
    x = X.clone().requires_grad_(True)
    loss_fn = QuadrupletLoss(margin1=1.6, margin2=0.5)
    loss = loss_fn(x, P)
    loss.backward()
    assert loss_fn(x.detach() - 0.05 * x.grad, P) < loss
    with pytest.raises(ValueError, match="3 identities"):
        loss_fn(X[:4], P[:4])


def test_cross_entropy_label_smoothing_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    target = torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    eps = 0.1
    want = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    assert CrossEntropyLabelSmooth(eps)(logits, target).item() == pytest.approx(want.item(),
                                                                                 abs=1e-6)
