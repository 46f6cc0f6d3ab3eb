"""SkeletonBank: S_prior, nearest / sample, loading checks, state-dict round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finetec.models.finetec.bank import SkeletonBank


def _bank(K=3, T=2, V=2):
    seq = torch.stack([torch.full((T, V, 2), float(k)) for k in range(K)])  # entry k is constant k
    return SkeletonBank(K, T, V).load(seq, torch.ones(K, T, V))


def test_prior_is_weighted_mean_per_time_step():
    seq = torch.tensor([[[[1.0, 2.0], [5.0, 5.0]], [[3.0, 3.0], [1.0, 1.0]]],
                        [[[3.0, 4.0], [7.0, 9.0]], [[0.0, 0.0], [2.0, 2.0]]]])  # [K=2, T=2, V=2, 2]
    w = torch.tensor([[[1.0, 1.0], [1.0, 0.0]],
                      [[1.0, 0.0], [0.0, 0.0]]])
    bank = SkeletonBank(2, 2, 2).load(seq, w)
    expect = torch.tensor([[[2.0, 3.0], [5.0, 5.0]],  # t=0: mean of both / only entry 0 sees joint 1
                           [[3.0, 3.0], [0.0, 0.0]]])  # t=1: only entry 0 / nobody sees joint 1 -> 0
    assert torch.equal(bank.prior, expect)
    # invisible joints are filled per joint from the joint's visible frames (like query inputs); never seen -> 0
    assert bank.sequences[0, 1, 1].tolist() == [5.0, 5.0] and bank.sequences[1, 0, 1].tolist() == [0.0, 0.0]
    assert bank.sequences[1, 1, 0].tolist() == [3.0, 4.0]
    assert not bank.is_empty and bank.size == 2


def test_nearest_and_weighting():
    bank = _bank(K=3)
    q = torch.stack([torch.full((2, 2, 2), v) for v in (2.2, 0.4, 1.1)])
    assert bank.nearest(q).tolist() == [2, 0, 1]
    # with weights only joint 1 of frame 0 counts: there the query equals entry 2
    q2 = torch.zeros(1, 2, 2, 2)
    q2[0, 0, 1] = 2.0
    qw = torch.zeros(1, 2, 2)
    qw[0, 0, 1] = 1.0
    assert bank.nearest(q2, qw).tolist() == [2]
    assert bank.nearest(q2).tolist() == [0]  # unweighted: mostly zeros -> entry 0


def test_nearest_ignores_entries_without_overlap_and_bf16():
    seq = torch.zeros(2, 2, 2, 2)
    seq[1] = 5.0
    w = torch.zeros(2, 2, 2)
    w[0, :, 0] = 1.0  # entry 0 only sees joint 0
    w[1] = 1.0
    bank = SkeletonBank(2, 2, 2).load(seq, w)
    q = torch.full((1, 2, 2, 2), 4.0)
    qw = torch.zeros(1, 2, 2)
    qw[..., 1] = 1.0  # the query only sees joint 1: entry 0 shares nothing
    assert bank.nearest(q, qw).tolist() == [1]
    far = SkeletonBank(2, 2, 2).load(torch.stack([torch.full((2, 2, 2), 100.0), torch.full((2, 2, 2), 100.5)]),
                                     torch.ones(2, 2, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # cancellation in q^2 + s^2 - 2qs needs float32
        assert far.nearest(torch.full((3, 2, 2, 2), 100.4)).tolist() == [1, 1, 1]
        assert far.nearest(torch.full((1, 2, 2, 2), 100.1)).tolist() == [0]


def test_sample_and_empty_bank():
    bank = SkeletonBank(4, 3, 2)
    assert bank.is_empty
    with pytest.raises(RuntimeError, match=r"model\.bank\.load.*build_skeleton_bank"):
        bank.sample(2)
    with pytest.raises(RuntimeError, match="empty"):
        bank.nearest(torch.zeros(1, 3, 2, 2))
    bank.load(np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32), np.ones((4, 3, 2), np.float32))
    a = bank.sample(50, torch.Generator().manual_seed(1))
    assert torch.equal(a, bank.sample(50, torch.Generator().manual_seed(1)))
    assert a.min() >= 0 and a.max() <= 3 and a.dtype == torch.long and len(set(a.tolist())) > 1


def test_load_checks():
    bank = SkeletonBank(2, 3, 2)
    with pytest.raises(ValueError, match=r"\[K, T=3, V=2, 2\]"):
        bank.load(torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 2))
    with pytest.raises(ValueError, match="weights must be"):
        bank.load(torch.zeros(2, 3, 2, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="no visible joint"):
        bank.load(torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="finite"):
        bank.load(torch.full((2, 3, 2, 2), float("nan")), torch.ones(2, 3, 2))
    with pytest.raises(ValueError, match=">= 1"):
        SkeletonBank(0, 3, 2)


def test_state_dict_round_trip_into_fresh_bank_of_other_size():
    src = SkeletonBank(8, 3, 2).load(torch.randn(5, 3, 2, 2), torch.rand(5, 3, 2).round() + (torch.arange(2) == 0))
    dst = SkeletonBank(8, 3, 2)
    dst.load_state_dict(src.state_dict())
    assert dst.size == 5
    for name in ("sequences", "weights", "prior"):
        assert torch.equal(getattr(dst, name), getattr(src, name))
    assert not dst.is_empty
    wrong = SkeletonBank(8, 4, 2)
    with pytest.raises(RuntimeError, match="size mismatch"):
        wrong.load_state_dict(src.state_dict())
