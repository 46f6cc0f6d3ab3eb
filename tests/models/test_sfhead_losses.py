"""SF-Head losses (Eq. 10-14) against hand-computed values on tiny tensors, including d at its extremes."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.models.sfhead.losses import (compensation_term, feature_consistency_loss, feature_redundancy_loss,
                                          modified_cosine_distance, pairwise_modified_cosine_distance)


def test_modified_cosine_distance_hand_values():
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    v = torch.tensor([[0.0, 1.0], [3.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    d = modified_cosine_distance(u, v, alpha=0.5)
    # cos = 0, 1, -1, 0 (a zero vector has cosine 0)
    expect = [1 - math.exp(-0.5), 1 - math.exp(-1.0), 0.0, 1 - math.exp(-0.5)]
    assert torch.allclose(d, torch.tensor(expect), atol=1e-6)


def test_pairwise_matches_paired():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(3, 2, 4, generator=g), torch.randn(3, 2, 4, generator=g)
    D = pairwise_modified_cosine_distance(u, v, alpha=1.3)
    for i in range(3):
        for j in range(3):
            assert torch.allclose(D[i, j], modified_cosine_distance(u[i:i + 1], v[j:j + 1], 1.3)[0], atol=1e-6)


def test_feature_redundancy_loss_hand_value():
    f_s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f_t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    alpha, tau, m = 1.0, 0.5, 0.4
    # cos(f_s_i, f_t_j) = [[1, 1], [0, 0]]
    a = m * (1 - math.exp(-2 * alpha)) / tau  # logit for cos 1
    b = m * (1 - math.exp(-alpha)) / tau  # logit for cos 0
    rows = math.log(2)  # each row is constant: -log(1/2)
    cols = (-math.log(math.exp(a) / (math.exp(a) + math.exp(b))) - math.log(math.exp(b) / (math.exp(a) + math.exp(b)))) / 2
    expect = 0.5 * (rows + cols)
    got = feature_redundancy_loss(f_s, f_t, alpha=alpha, tau=tau, m=m)
    assert got.item() == pytest.approx(expect, rel=1e-5)


def test_feature_redundancy_loss_prefers_matched_pairs():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(6, 10, generator=g)
    matched = feature_redundancy_loss(f, f.clone())
    shuffled = feature_redundancy_loss(f, f.roll(1, 0))
    assert matched < shuffled
    with pytest.raises(ValueError, match="tau"):
        feature_redundancy_loss(f, f, tau=0.0)


def test_compensation_term_hand_values_and_extremes():
    d = torch.tensor([0.0, 0.005, 0.3, 0.995, 1.0], requires_grad=True)
    phi = compensation_term(d, gamma=2.0, eps=0.01)
    expect = torch.tensor([0.0, 0.0, -(0.7 ** 2) * math.log(0.3), 0.0, 0.0])  # focal form, >= 0
    assert torch.allclose(phi, expect, atol=1e-6)
    phi.sum().backward()
    assert torch.isfinite(d.grad).all()
    assert d.grad[0] == 0 and d.grad[-1] == 0


def test_feature_consistency_loss_hand_value():
    # two samples: sample 0 has cos 1 and 0 with the two originals, sample 1 has cos 0 and -1
    f_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    originals = [torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, -1.0]])]
    alpha, m, gamma, eps = 1.0, 0.4, 2.0, 0.01

    def term(cos):
        d = 1 - math.exp(-alpha * (cos + 1))
        phi = -((1 - d) ** gamma) * math.log(d) if min(d, 1 - d) > eps else 0.0
        return math.log(math.exp(m) + (1 - math.exp(m)) * d) + phi

    expect = ((term(1.0) + term(0.0)) + (term(0.0) + term(-1.0))) / 2  # sum over F, mean over samples
    got = feature_consistency_loss(f_a, originals, alpha=alpha, m=m, gamma=gamma, eps=eps)
    assert got.item() == pytest.approx(expect, rel=1e-5)


def test_minimising_consistency_aligns_the_aggregated_feature():
    g = torch.Generator().manual_seed(0)
    orig = torch.randn(4, 16, generator=g)
    f_a = (torch.randn(4, 16, generator=g) * 0.5).requires_grad_(True)
    cos0 = torch.nn.functional.cosine_similarity(f_a, orig).mean().item()
    opt = torch.optim.SGD([f_a], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        feature_consistency_loss(f_a, [orig]).backward()
        opt.step()
    assert torch.nn.functional.cosine_similarity(f_a, orig).mean().item() > max(0.5, cos0 + 0.5)


def test_feature_consistency_at_d_extremes_is_finite():
    # alpha large: parallel features give d -> 1 (loss term -> log 1 = 0, phi off); opposite give d = 0 (term m)
    f = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    same = feature_consistency_loss(f, [f.detach().clone()], alpha=50.0, m=0.4)
    opposite = feature_consistency_loss(f, [-f.detach().clone()], alpha=50.0, m=0.4)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    assert opposite.item() == pytest.approx(0.4, abs=1e-6)
    (same + opposite).backward()
    assert torch.isfinite(f.grad).all()


def test_losses_on_zero_features_are_finite():
    z = torch.zeros(3, 5, requires_grad=True)
    loss = feature_redundancy_loss(z, z) + feature_consistency_loss(z, [z, z])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="shapes differ"):
        modified_cosine_distance(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no original"):
        feature_consistency_loss(torch.zeros(2, 3), [])
