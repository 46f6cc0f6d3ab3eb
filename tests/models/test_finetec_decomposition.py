"""Skeleton-based spatial decomposition (FineTec Eq. 2-3): hand-made trajectories and replacement bookkeeping."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.layouts import get_layout
from finetec.models.finetec.decomposition import (
    SpatialDecomposition,
    average_frame_displacement,
    dynamic_regions,
    regional_motion_intensity,
    strong_perturbation,
    weak_perturbation,
)

COCO = get_layout("coco17")
# a 6-joint toy skeleton: joint 5 belongs to no region; 1 <-> 2 and 3 <-> 4 are left/right pairs
TOY_REGIONS = torch.tensor([0, 1, 2, 3, 4, -1])
TOY_FLIP = torch.tensor([0, 2, 1, 4, 3, 5])


def test_eq2_average_displacement_by_hand():
    S = torch.zeros(1, 4, 3, 2)
    S[0, :, 0] = torch.tensor([[0, 0], [3, 4], [3, 4], [6, 8]], dtype=torch.float32)  # steps 5, 0, 5
    S[0, :, 1] = torch.tensor([[0, 0], [1, 0], [99, 99], [1, 1]], dtype=torch.float32)
    w = torch.ones(1, 4, 3)
    w[0, 2, 1] = 0  # joint 1 invisible at t=2: only the step 0->1 (length 1) counts
    w[0, :, 2] = 0  # joint 2 never visible
    D = average_frame_displacement(S, w)
    assert torch.allclose(D, torch.tensor([[10 / 3, 1.0, 0.0]]))
    # without weights every step counts: joint 1 = (1 + |(98, 99)| + |(98, 98)|) / 3
    D_all = average_frame_displacement(S)
    expected = (1 + math.hypot(98, 99) + math.hypot(98, 98)) / 3
    assert D_all[0, 1].item() == pytest.approx(expected, rel=1e-6)


def test_eq2_single_frame_and_zero_motion_have_zero_displacement_and_finite_grad():
    S = torch.zeros(2, 1, 3, 2)
    assert torch.equal(average_frame_displacement(S), torch.zeros(2, 3))
    S = torch.zeros(2, 5, 3, 2, requires_grad=True)
    average_frame_displacement(S).sum().backward()
    assert torch.isfinite(S.grad).all()


def test_eq3_regional_intensity_by_hand():
    D = torch.tensor([[1.0, 3.0, 5.0, 7.0, 100.0, 2.0]])
    region = torch.tensor([0, 0, 1, 2, -1, 4])  # region 3 has no joint, joint 4 is in no region
    out = regional_motion_intensity(D, region)
    assert torch.allclose(out, torch.tensor([[2.0, 5.0, 7.0, 0.0, 2.0]]))


def test_top2_ties_go_to_the_lower_region_index():
    out = dynamic_regions(torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]]), k=2)
    assert out.tolist() == [[False, True, True, False, False], [True, True, False, False, False]]
    assert dynamic_regions(torch.rand(3, 5), k=0).sum() == 0


def test_top2_regions_of_a_hand_made_motion():
    # coco17: the left wrist moves 3 units per frame (left-arm mean 1.0), the right ankle 6 (right-leg mean 2.0),
    # the nose 1 (head mean 0.2); everything else is still.
    T = 6
    S = torch.zeros(1, T, 17, 2)
    t = torch.arange(T, dtype=torch.float32)
    S[0, :, COCO.index("left_wrist"), 0] = 3 * t
    S[0, :, COCO.index("right_ankle"), 1] = 6 * t
    S[0, :, COCO.index("nose"), 0] = t
    inten = regional_motion_intensity(average_frame_displacement(S), COCO.region_index)
    assert torch.allclose(inten, torch.tensor([[0.2, 1.0, 0.0, 0.0, 2.0]]))
    dec = SpatialDecomposition(COCO.region_index, COCO.flip_index)
    _, parts = dec(S)
    assert parts["dynamic"].tolist() == [[False, True, False, False, True]]


def _toy_input(B=6, T=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(B, T, 6, 2, generator=g)
    return S


@pytest.mark.parametrize("branch", ["dyna", "stat"])
def test_region_replacement_touches_exactly_the_chosen_regions(branch):
    torch.manual_seed(1)
    S = _toy_input()
    dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP, use_dyna=branch == "dyna", use_stat=branch == "stat")
    dec.train()
    S_pred, parts = dec(S)
    dyn = parts["dynamic"]  # [B, 5]
    chosen = dyn if branch == "dyna" else ~dyn
    joint_chosen = torch.cat([chosen, torch.zeros(len(S), 1, dtype=torch.bool)], 1)  # joint v <-> region v
    changed = (parts[f"S_{branch}"] != S).any(-1).any(1)  # [B, V]
    assert not (changed & ~joint_chosen).any(), "a joint outside the chosen regions was replaced"
    assert changed[joint_chosen].float().mean() > 0.9, "the chosen regions were (almost) never perturbed"
    assert not changed[:, 5].any()  # the joint in no region is never touched
    other = "stat" if branch == "dyna" else "dyna"
    assert parts[f"S_{other}"] is S  # the disabled branch stays S_base
    assert dyn.sum(1).eq(2).all()


def test_eval_mode_returns_s_base_exactly():
    S = _toy_input()
    dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP).eval()
    S_pred, parts = dec(S, torch.ones(S.shape[:3]))
    assert torch.equal(S_pred, S) and torch.equal(parts["S_dyna"], S) and torch.equal(parts["S_stat"], S)
    assert parts["dynamic"].shape == (len(S), 5)


def test_s_pred_is_one_enabled_variant_per_sequence():
    torch.manual_seed(3)
    S = _toy_input(B=64)
    for kw, allowed in ((dict(), {0, 1, 2}), (dict(use_dyna=False), {0, 2}), (dict(use_stat=False), {0, 1})):
        dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP, **kw).train()
        S_pred, parts = dec(S)
        choice = parts["choice"]
        assert set(choice.tolist()) == allowed  # 64 draws: every enabled variant appears
        stacked = torch.stack([parts["S_base"], parts["S_dyna"], parts["S_stat"]])
        assert torch.equal(S_pred, stacked[choice, torch.arange(len(S))])


def test_strong_perturbation_identity_settings_and_linear_motion():
    S = _toy_input(B=4, T=9)
    out, w = strong_perturbation(S, crop_range=(1.0, 1.0), p_crop=1.0)
    assert torch.allclose(out, S, atol=1e-6) and torch.equal(w, torch.ones(4, 9, 6))
    out, _ = strong_perturbation(S, drop_rate=0.0, p_crop=0.0)
    assert torch.equal(out, S)
    # linear motion stays linear: dropped frames are refilled on the line, crops are affine in t
    t = torch.arange(9, dtype=torch.float32)
    lin = t[None, :, None, None].expand(64, 9, 6, 2).contiguous()
    torch.manual_seed(0)
    out, _ = strong_perturbation(lin, drop_rate=0.5, p_crop=0.0)
    assert torch.allclose(out, lin, atol=1e-5)
    out, _ = strong_perturbation(lin, p_crop=1.0)
    second = out[:, 2:] - 2 * out[:, 1:-1] + out[:, :-2]
    assert second.abs().max() < 1e-4
    span = out[:, -1, 0, 0] - out[:, 0, 0, 0]
    assert (span >= 0.7 * 8 - 1e-4).all() and (span <= 8 + 1e-4).all() and span.std() > 0


def test_strong_perturbation_visibility_follows_the_interpolation():
    S = torch.arange(5, dtype=torch.float32)[None, :, None, None].repeat(1, 1, 1, 2) + 1
    w = torch.ones(1, 5, 1)
    w[0, 2, 0] = 0
    out, w_out = strong_perturbation(S, w, crop_range=(0.5, 0.5), p_crop=1.0,
                                     generator=torch.Generator().manual_seed(0))
    # window of 2 frames resampled to 5: every output frame interpolates inside [start, start + 2]
    assert (w_out == 0).any()
    assert torch.all(out[w_out == 0] == 0)
    assert torch.all(out[w_out > 0] > 0)


def test_weak_perturbation_flip_and_scale_by_hand():
    S = torch.zeros(1, 2, 6, 2)
    S[0, 0, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    S[0, 1, :, 0] = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    S[0, :, :, 1] = 2.0
    centre_x = (15 + 6) / 12
    out, w = weak_perturbation(S, TOY_FLIP, p_flip=1.0, scale_range=(1.0, 1.0))
    expect = S[:, :, TOY_FLIP].clone()
    expect[..., 0] = 2 * centre_x - expect[..., 0]
    assert torch.allclose(out, expect, atol=1e-6)
    assert out[0, 0, 1, 0].item() == pytest.approx(2 * centre_x - 2.0)  # left joint now holds the right one
    out, _ = weak_perturbation(S, TOY_FLIP, p_flip=0.0, scale_range=(2.0, 2.0))
    c = torch.tensor([centre_x, 2.0])
    assert torch.allclose(out, c + 2 * (S - c), atol=1e-6)
    with pytest.raises(ValueError, match="permutation"):
        weak_perturbation(S, [0, 0, 1, 2, 3, 4])


def test_randomness_follows_the_global_seed_and_differs_per_sequence():
    S = _toy_input(B=8)
    dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP).train()
    torch.manual_seed(7)
    a, _ = dec(S)
    torch.manual_seed(7)
    b, _ = dec(S)
    assert torch.equal(a, b)
    flips = weak_perturbation(S, TOY_FLIP, scale_range=(1.0, 1.0), generator=torch.Generator().manual_seed(0))[0]
    flipped = ~torch.isclose(flips, S).all(-1).all(-1).all(-1)
    assert 0 < flipped.sum() < 8


def test_gradients_reach_logits_and_s_base():
    torch.manual_seed(0)
    # one sequence per region pair so that every region is dynamic in one sequence and static in another
    S = torch.zeros(5, 8, 6, 2)
    t = torch.arange(8, dtype=torch.float32)
    for b in range(5):
        S[b, :, b, 0] = 2 * t
        S[b, :, (b + 1) % 5, 1] = t
    S = (S + 0.1 * torch.randn_like(S)).requires_grad_(True)
    dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP).train()
    S_pred, parts = dec(S)
    assert parts["dynamic"].any(0).all() and (~parts["dynamic"]).any(0).all()
    (S_pred ** 2).sum().backward()
    assert S.grad is not None and torch.isfinite(S.grad).all()


def test_all_zero_sequences_and_bf16_autocast():
    dec = SpatialDecomposition(COCO.region_index, COCO.flip_index).train()
    S = torch.zeros(3, 10, 17, 2)
    S_pred, parts = dec(S, torch.zeros(3, 10, 17))
    assert torch.isfinite(S_pred).all() and torch.equal(S_pred, S)
    x = torch.randn(2, 10, 17, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        S_pred, _ = dec(x)
        S_pred16, _ = dec(x.bfloat16())
    assert S_pred.dtype == torch.float32 and torch.isfinite(S_pred).all()
    assert S_pred16.dtype == torch.bfloat16 and torch.isfinite(S_pred16.float()).all()


def test_bad_inputs_raise_clear_errors():
    dec = SpatialDecomposition(TOY_REGIONS, TOY_FLIP)
    with pytest.raises(ValueError, match=r"\[B, T, V, 2\]"):
        dec(torch.zeros(2, 5, 6, 3))
    with pytest.raises(ValueError, match="6 joints|built for 6"):
        dec(torch.zeros(2, 5, 7, 2))
    with pytest.raises(ValueError, match="weight"):
        dec(torch.zeros(2, 5, 6, 2), torch.ones(2, 5))
    with pytest.raises(ValueError, match="region_index"):
        SpatialDecomposition([0, 1, 7], [0, 1, 2])
    with pytest.raises(ValueError, match="flip_index"):
        SpatialDecomposition([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="k must"):
        SpatialDecomposition(TOY_REGIONS, TOY_FLIP, k=6)
    with pytest.raises(ValueError, match="crop_range"):
        strong_perturbation(torch.zeros(1, 4, 2, 2), crop_range=(0.9, 0.5))
    with pytest.raises(ValueError, match="joints"):
        regional_motion_intensity(torch.zeros(2, 4), TOY_REGIONS)
