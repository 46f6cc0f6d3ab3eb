"""Restoration metrics (MPJPE, N-MPJPE, MPJVE) on hand-worked examples, and the accumulator."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.metrics import RestorationMetrics, mpjpe, mpjve, n_mpjpe, optimal_scale


def two_by_two():
    """T = 2 frames, V = 2 joints, C = 2; per-joint errors 5, 0 (frame 0) and 2, 1 (frame 1)."""
    gt = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]]])  # [1, 2, 2, 2]
    offset = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]], [[0.0, 2.0], [1.0, 0.0]]]])
    return gt + offset, gt


def test_mpjpe_hand_worked():
    pred, gt = two_by_two()
    assert mpjpe(pred, gt).item() == pytest.approx((5 + 0 + 2 + 1) / 4)
    assert mpjpe(pred, gt, frames=torch.tensor([[False, True]])).item() == pytest.approx(1.5)
    w = torch.ones(1, 2, 2)
    w[0, 0, 0] = 0  # exclude the joint with error 5
    assert mpjpe(pred, gt, weight=w).item() == pytest.approx(1.0)
    total, count = mpjpe(pred, gt, weight=w, reduction="sum")
    assert total.item() == pytest.approx(3.0) and count.item() == 3 and total.dtype == torch.float64


def test_mpjve_hand_worked():
    pred, gt = two_by_two()
    # velocity errors: joint 0 |(0,2) - (3,4)| = sqrt(13), joint 1 |(1,0) - (0,0)| = 1
    assert mpjve(pred, gt).item() == pytest.approx((math.sqrt(13) + 1) / 2, rel=1e-6)
    w = torch.ones(1, 2, 2)
    w[0, 0, 0] = 0  # joint 0 invalid at t=0 -> its velocity does not count
    assert mpjve(pred, gt, weight=w).item() == pytest.approx(1.0)
    # a velocity counts when t or t+1 is selected
    assert mpjve(pred, gt, frames=torch.tensor([[False, True]])).item() == pytest.approx((math.sqrt(13) + 1) / 2)
    with pytest.raises(ValueError, match="nothing to average"):
        mpjve(pred, gt, frames=torch.tensor([[False, False]]))


def test_mpjve_selection_on_longer_sequence():
    gt = torch.zeros(1, 4, 1, 1)
    pred = torch.tensor([0.0, 1.0, 3.0, 6.0]).view(1, 4, 1, 1)  # velocity errors 1, 2, 3
    frames = torch.tensor([[False, False, False, True]])  # only the velocity 2->3 touches frame 3
    assert mpjve(pred, gt, frames=frames).item() == pytest.approx(3.0)
    frames = torch.tensor([[False, True, False, False]])  # velocities 0->1 and 1->2
    assert mpjve(pred, gt, frames=frames).item() == pytest.approx(1.5)


def test_n_mpjpe_hand_worked_and_scale_invariance():
    gt = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    pred = torch.tensor([2.0, 2.0]).view(1, 1, 1, 2)  # s = 2 / 8 = 0.25 -> (0.5, 0.5) vs (1, 0)
    assert n_mpjpe(pred, gt).item() == pytest.approx(math.sqrt(0.5))
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(3, 5, 4, 2, generator=g)
    pred = gt + 0.3 * torch.randn(3, 5, 4, 2, generator=g)
    base = n_mpjpe(pred, gt)
    assert n_mpjpe(2.5 * pred, gt).item() == pytest.approx(base.item(), rel=1e-5)
    assert n_mpjpe(3.0 * gt, gt).item() == pytest.approx(0.0, abs=1e-6)
    assert base.item() <= mpjpe(pred, gt).item() + 1e-6  # the optimal scale can only help


def test_n_mpjpe_scale_fitted_on_whole_sequence():
    gt = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    pred = torch.tensor([1.0, 1.0]).view(1, 2, 1, 1)
    s = (1 * 1 + 1 * 2) / (1 + 1)  # sequence scale 1.5 from both frames
    frames = torch.tensor([[False, True]])
    assert n_mpjpe(pred, gt, frames=frames).item() == pytest.approx(abs(s * 1 - 2))
    assert optimal_scale(pred, gt).flatten().tolist() == pytest.approx([1.5])
    # per-frame scale fits each frame exactly
    assert n_mpjpe(pred, gt, frames=frames, scale_per="frame").item() == pytest.approx(0.0, abs=1e-7)
    # excluded joints do not enter the scale: drop frame 0 -> s = 2
    w = torch.tensor([[[0.0], [1.0]]])
    assert optimal_scale(pred, gt, w).item() == pytest.approx(2.0)


def test_excluded_entries_cannot_leak_nan():
    pred, gt = two_by_two()
    pred = pred.clone()
    pred[0, 0, 0] = float("nan")
    w = torch.ones(1, 2, 2)
    w[0, 0, 0] = 0
    for fn in (mpjpe, n_mpjpe, mpjve):
        assert torch.isfinite(fn(pred, gt, weight=w)), fn.__name__
    # an all-zero padding person (weight 0 everywhere) changes nothing
    pad_pred = torch.cat([pred, torch.zeros_like(pred)])
    pad_gt = torch.cat([gt, torch.zeros_like(gt)])
    pad_w = torch.cat([w, torch.zeros_like(w)])
    assert mpjpe(pad_pred, pad_gt, pad_w).item() == pytest.approx(mpjpe(pred, gt, w).item())
    assert n_mpjpe(pad_pred, pad_gt, pad_w).item() == pytest.approx(n_mpjpe(pred, gt, w).item())


def test_bad_input_messages():
    pred, gt = two_by_two()
    with pytest.raises(ValueError, match="differs from pred"):
        mpjpe(pred, gt[:, :1])
    with pytest.raises(ValueError, match=r"\[B, T, V, C\]"):
        mpjpe(pred[0], gt[0])
    with pytest.raises(ValueError, match="weight must be"):
        mpjpe(pred, gt, weight=torch.ones(1, 2))
    with pytest.raises(ValueError, match=">= 0"):
        mpjpe(pred, gt, weight=-torch.ones(1, 2, 2))
    with pytest.raises(TypeError, match="bool"):
        mpjpe(pred, gt, frames=torch.ones(1, 2))
    with pytest.raises(ValueError, match="reduction"):
        mpjpe(pred, gt, reduction="max")
    with pytest.raises(ValueError, match="nothing to average"):
        mpjpe(pred, gt, weight=torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="scale_per"):
        n_mpjpe(pred, gt, scale_per="clip")


def test_dtypes():
    pred, gt = two_by_two()
    assert mpjpe(pred.double(), gt.double()).dtype == torch.float64
    out = mpjpe(pred.bfloat16(), gt.bfloat16())
    assert out.dtype == torch.float32 and out.item() == pytest.approx(2.0)


def _batches():
    g = torch.Generator().manual_seed(1)
    out = []
    for B in (2, 3):
        gt = torch.randn(B, 6, 4, 2, generator=g)
        pred = gt + 0.2 * torch.randn(B, 6, 4, 2, generator=g)
        w = (torch.rand(B, 6, 4, generator=g) > 0.2).float()
        kept = torch.rand(B, 6, generator=g) > 0.5
        out.append((pred, gt, w, kept))
    return out


def test_accumulator_matches_functions_on_concatenation():
    batches = _batches()
    m = RestorationMetrics()
    for b in batches:
        m.update(*b)
    res = m.compute()
    assert sorted(res) == sorted(f"{k}_{s}" for k in ("mpjpe", "n_mpjpe", "mpjve") for s in ("all", "missing"))
    pred, gt, w, kept = (torch.cat(t) for t in zip(*batches))
    for name, fn in (("mpjpe", mpjpe), ("n_mpjpe", n_mpjpe), ("mpjve", mpjve)):
        assert res[f"{name}_all"] == pytest.approx(fn(pred, gt, w).item(), rel=1e-5)
        assert res[f"{name}_missing"] == pytest.approx(fn(pred, gt, w, ~kept).item(), rel=1e-5)
    assert all(isinstance(v, float) for v in res.values())


def test_accumulator_merge_is_a_sum_and_missing_is_nan_without_kept():
    a, b = _batches()
    m1, m2, ref = RestorationMetrics(), RestorationMetrics(), RestorationMetrics()
    m1.update(*a)
    m2.update(*b)
    ref.update(*a)
    ref.update(*b)
    m1.merge_state(m2)  # what DDP's sync does with sum states
    assert m1.compute() == pytest.approx(ref.compute())
    m = RestorationMetrics()
    m.update(a[0], a[1], a[2])
    res = m.compute()
    assert math.isnan(res["mpjpe_missing"]) and math.isfinite(res["mpjpe_all"])
    with pytest.raises(ValueError, match="kept"):
        m.update(a[0], a[1], a[2], a[3].float())
