"""PoseC3D: pseudo heatmaps against PYSKL's GeneratePoseTarget written per pixel, PoseCompact, SlowOnly shapes,
gradients, bf16, fused eval, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.layouts import get_layout
from finetec.models import create_model, list_models
from finetec.models.backbones.posec3d import (SIGMA_GRID, PoseC3D, joint_heatmaps, limb_heatmaps, pose_compact,
                                              pseudo_heatmap_volume)
from model_helpers import randomize

FAST = dict(width="slim", grid=16, stage_blocks=(1, 1, 1))  # small and quick; the architecture is tested below


def _x(N, M, T, V, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, M, T, V, C, generator=g) * 1.6 - 0.8
    if C == 3:
        x[..., 2] = torch.rand(N, M, T, V, generator=g) * 0.9 + 0.1
    return x


# ---------------------------------------------------------------------------------------------- PYSKL reference
def ref_joint(mu, value, grid, sigma):
    """PYSKL generate_a_heatmap for one keypoint, pixel by pixel."""
    out = torch.zeros(grid, grid, dtype=torch.float64)
    if value < 1e-3:
        return out
    st_x, ed_x = max(int(mu[0] - 3 * sigma), 0), min(int(mu[0] + 3 * sigma) + 1, grid)
    st_y, ed_y = max(int(mu[1] - 3 * sigma), 0), min(int(mu[1] + 3 * sigma) + 1, grid)
    for y in range(st_y, ed_y):
        for x in range(st_x, ed_x):
            out[y, x] = math.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / 2 / sigma**2) * value
    return out


def ref_limb(a, b, va, vb, grid, sigma):
    """PYSKL generate_a_limb_heatmap for one limb, pixel by pixel."""
    coeff = min(va, vb)
    if coeff < 1e-3:
        return torch.zeros(grid, grid, dtype=torch.float64)
    d2_ab = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    if d2_ab < 1:
        return ref_joint(a, va, grid, sigma)
    out = torch.zeros(grid, grid, dtype=torch.float64)
    min_x, max_x = max(int(min(a[0], b[0]) - 3 * sigma), 0), min(int(max(a[0], b[0]) + 3 * sigma) + 1, grid)
    min_y, max_y = max(int(min(a[1], b[1]) - 3 * sigma), 0), min(int(max(a[1], b[1]) + 3 * sigma) + 1, grid)
    for y in range(min_y, max_y):
        for x in range(min_x, max_x):
            d2a = (x - a[0]) ** 2 + (y - a[1]) ** 2
            d2b = (x - b[0]) ** 2 + (y - b[1]) ** 2
            c = (d2a - d2b + d2_ab) / 2 / d2_ab
            if c <= 0:
                d2 = d2a
            elif c >= 1:
                d2 = d2b
            else:
                px, py = a[0] + c * (b[0] - a[0]), a[1] + c * (b[1] - a[1])
                d2 = (x - px) ** 2 + (y - py) ** 2
            out[y, x] = math.exp(-d2 / 2 / sigma**2) * coeff
    return out


def test_joint_heatmap_matches_pyskl_per_pixel():
    g = torch.Generator().manual_seed(1)
    grid, sigma = 24, 1.3
    uv = torch.rand(6, 2, generator=g) * 28 - 2  # some joints just outside the image
    value = torch.tensor([0.9, 0.5, 0.0, 0.0005, 1.0, 0.3])
    out = joint_heatmaps(uv, value, grid, sigma)
    assert out.shape == (6, grid, grid)
    for k in range(6):
        ref = ref_joint(uv[k].tolist(), value[k].item(), grid, sigma)
        assert torch.allclose(out[k].double(), ref, atol=1e-6), k
    assert out[2].abs().sum() == 0 and out[3].abs().sum() == 0  # score 0 / below 1e-3 -> empty channel


def test_limb_heatmap_matches_pyskl_per_pixel():
    g = torch.Generator().manual_seed(2)
    grid, sigma = 20, 1.1
    uv = torch.rand(8, 2, generator=g) * 22 - 1
    uv[7] = uv[6] + torch.tensor([0.4, 0.5])  # shorter than one pixel: joint heatmap of the first joint
    value = torch.tensor([0.9, 0.5, 0.7, 0.0, 1.0, 0.3, 0.8, 0.2])
    limbs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5), (6, 7), (7, 6)]
    out = limb_heatmaps(uv, value, limbs, grid, sigma)
    assert out.shape == (len(limbs), grid, grid)
    for k, (a, b) in enumerate(limbs):
        ref = ref_limb(uv[a].tolist(), uv[b].tolist(), value[a].item(), value[b].item(), grid, sigma)
        assert torch.allclose(out[k].double(), ref, atol=1e-6), (k, a, b)
    assert out[2].sum() == 0 and out[3].sum() == 0  # a joint with score 0 -> no limb
    # a limb shorter than a pixel is the Gaussian of its first joint with that joint's score
    assert torch.allclose(out[6], joint_heatmaps(uv[6:7], value[6:7], grid, sigma)[0])
    assert torch.allclose(out[7], joint_heatmaps(uv[7:8], value[7:8], grid, sigma)[0])


def test_heatmaps_have_no_denormal_values():
    # narrow Gaussians reach exp(-87)..exp(-103) at the window's edge: denormal floats slow CPU convolutions a lot
    g = torch.Generator().manual_seed(0)
    uv = torch.rand(300, 2, generator=g) * 8
    value = torch.rand(300, generator=g) * 0.9 + 0.1
    tiny = torch.finfo(torch.float32).tiny
    for hm in (joint_heatmaps(uv, value, 8, 0.15), limb_heatmaps(uv, value, [(i, i + 1) for i in range(299)], 8, 0.15)):
        assert not ((hm > 0) & (hm < tiny)).any()
        assert (hm > 0).sum() > 300


def test_single_joint_peaks_at_its_pixel_weighted_by_score():
    layout = get_layout("coco17")
    grid = 32
    x = torch.zeros(1, 1, 2, 17, 3)
    # pixel (row 20, col 10): u = (x' + 1) / 2 * grid
    x[0, 0, :, 3] = torch.tensor([10 / 16 - 1, 20 / 16 - 1, 0.7])
    x[0, 0, 1, 5] = torch.tensor([0.2, 0.3, 0.0])  # placed but score 0
    hm = pseudo_heatmap_volume(x, grid, mode="joint", compact=False)
    assert hm.shape == (1, layout.num_joints, 2, grid, grid)
    assert hm.is_contiguous(memory_format=torch.channels_last_3d)
    ch = hm[0, 3, 0]
    assert divmod(int(ch.argmax()), grid) == (20, 10)
    assert ch[20, 10] == pytest.approx(0.7)
    s = 0.6 * grid / SIGMA_GRID
    assert ch[20, 11] == pytest.approx(0.7 * math.exp(-1 / (2 * s * s)), rel=1e-5)
    assert ch[21, 11] == pytest.approx(0.7 * math.exp(-2 / (2 * s * s)), rel=1e-4)
    assert ch[20, 12] == 0 and ch[20, 7] == 0 and ch[23, 10] == 0  # outside the 3-sigma window
    others = torch.ones(17, dtype=torch.bool)
    others[3] = False
    assert hm[0, others].abs().sum() == 0  # every other joint (score 0) gives an empty channel


def test_limb_heatmap_of_a_horizontal_bone():
    layout = get_layout("coco17")
    model = PoseC3D(4, layout, heatmap="limb", compact=False, width="slim", stage_blocks=(1, 1, 1))
    assert len(model.limbs) == 16 and (9, 7) in model.limbs and all(a != b for a, b in model.limbs)
    k = model.limbs.index((9, 7))
    x = torch.zeros(1, 1, 1, 17, 3)
    # wrist (9) at pixel (row 6, col 12), elbow (7) at (row 6, col 3) on the 32-pixel grid
    x[0, 0, 0, 9] = torch.tensor([12 / 16 - 1, 6 / 16 - 1, 0.9])
    x[0, 0, 0, 7] = torch.tensor([3 / 16 - 1, 6 / 16 - 1, 0.6])
    hm = model.heatmaps(x)[0, :, 0]
    assert hm.shape == (16, 32, 32)
    s = 0.6 * 32 / SIGMA_GRID
    lm = hm[k]
    assert torch.allclose(lm[6, 3:13], torch.full((10,), 0.6))  # on the segment: min of the two scores
    assert lm[7, 8] == pytest.approx(0.6 * math.exp(-1 / (2 * s * s)), rel=1e-5)  # one pixel below
    assert lm[6, 13] == pytest.approx(0.6 * math.exp(-1 / (2 * s * s)), rel=1e-5)  # one pixel beyond the end
    assert lm[6, 14] == 0 and lm[8, 8] == 0 and lm[6, 0] == 0  # outside the segment's box +- 3 sigma
    # limbs touching joints 7 or 9 (elbow-shoulder, ...) need both scores: only this one is drawn
    assert hm.flatten(1).amax(1).nonzero().flatten().tolist() == [k]


def test_persons_are_combined_by_maximum():
    x = torch.zeros(1, 2, 1, 17, 3)
    x[0, 0, 0, 0] = torch.tensor([-0.5, -0.5, 0.4])
    x[0, 1, 0, 0] = torch.tensor([0.5, 0.5, 0.9])
    x[0, :, 0, 1] = torch.tensor([0.0, 0.25, 0.3])  # same spot, two persons
    x[0, 1, 0, 1, 2] = 0.8
    hm = pseudo_heatmap_volume(x, 16, mode="joint", compact=False)[0, :, 0]
    assert hm[0, 4, 4] == pytest.approx(0.4) and hm[0, 12, 12] == pytest.approx(0.9)
    assert hm[1].max() == pytest.approx(0.8)  # max, not 0.3 + 0.8


def test_pose_compact_box_and_mapping():
    x = torch.zeros(3, 1, 2, 17, 3)
    x[0, 0, 0, 0] = torch.tensor([-0.5, -0.2, 1.0])
    x[0, 0, 1, 1] = torch.tensor([0.3, 0.2, 1.0])
    x[0, 0, 1, 2] = torch.tensor([0.9, 0.9, 0.0])  # missing: ignored by the box
    x[1, 0, 0, 0] = torch.tensor([0.3, 0.3, 1.0])  # a single point: too small, whole image
    valid = x[..., 2] > 0  # sample 2 has no valid joint: whole image
    centre, half = pose_compact(x[..., :2], valid, padding=0.25)
    assert torch.allclose(centre, torch.tensor([[-0.1, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    assert torch.allclose(half, torch.tensor([0.5, 1.0, 1.0]))  # max(0.4, 0.2) * 1.25
    hm = pseudo_heatmap_volume(x, 20, mode="joint", compact=True)
    # joint 0 of sample 0: x' = (-0.5 + 0.1) / 0.5 = -0.8 -> col 2; y' = -0.4 -> row 6
    assert divmod(int(hm[0, 0, 0].argmax()), 20) == (6, 2)
    assert divmod(int(hm[1, 0, 0].argmax()), 20) == (13, 13)  # uncompacted: (0.3 + 1) * 10
    assert hm[2].abs().sum() == 0


def test_two_channel_input_and_use_score_false():
    layout = get_layout("penn13")
    x = torch.zeros(1, 1, 1, 13, 3)
    x[0, 0, 0, 2] = torch.tensor([0.0, 0.0, 0.4])  # a valid joint exactly at the centre
    x[0, 0, 0, 4] = torch.tensor([0.5, 0.0, 0.0])
    hm = pseudo_heatmap_volume(x, 16, use_score=False, compact=False)[0, :, 0]
    assert hm[2, 8, 8] == 1.0 and hm[4].sum() == 0  # value 1 for valid joints, 0 for missing
    hm2 = pseudo_heatmap_volume(x[..., :2], 16, compact=False)[0, :, 0]
    assert hm2[4, 8, 12] == 1.0 and hm2[2].sum() == 0  # without scores a joint at the exact origin is missing
    model = PoseC3D(3, layout, in_channels=2, **FAST)
    assert model(_x(2, 1, 8, 13, C=2)).shape == (2, 3)


# ---------------------------------------------------------------------------------------------- model
def test_registry_and_sizes():
    assert {"posec3d", "posec3d_limb"} <= set(list_models())
    std = create_model("posec3d", num_classes=99, layout="coco17")
    assert (std.grid, std.out_channels, std.heatmap_channels, std.head.dropout.p) == (56, 512, 17, 0.5)
    assert 2_000_000 < std.num_parameters() < 2_100_000  # PYSKL reports 2.0M for SlowOnly-R50 PoseC3D
    assert [len(s) for s in std.backbone.stages] == [4, 6, 3]
    assert std.backbone.stages[0][0].conv1.conv.kernel_size == (1, 1, 1)
    assert std.backbone.stages[1][0].conv1.conv.kernel_size == (3, 1, 1)
    limb = create_model("posec3d_limb", num_classes=99, layout="coco17", width="slim")
    assert (limb.heatmap, limb.grid, limb.out_channels, limb.heatmap_channels) == ("limb", 32, 128, 16)
    assert limb.name == "posec3d_limb" and limb.needs_mask is False and limb.returns_aux is False


@pytest.mark.parametrize("name,layout,M", [("posec3d", "coco17", 2), ("posec3d_limb", "penn13", 1)])
def test_shapes_and_gradients(name, layout, M):
    torch.manual_seed(0)
    V = get_layout(layout).num_joints
    model = create_model(name, num_classes=5, layout=layout, width="slim", grid=24, stage_blocks=(1, 2, 1))
    x = _x(2, M, 10, V)
    assert model.extract_features(x).shape == (2, 128, 5, 3, 3)  # T/2 in the last stage, 24 / 8 pixels
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    randomize(model)  # zero-initialised residual BNs block the gradient at init, as in PYSKL
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 3])).backward()
    for n, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, n


def test_bf16_autocast_matches_fp32():
    torch.manual_seed(0)
    model = create_model("posec3d", num_classes=4, layout="coco17", **FAST)
    randomize(model)
    model.eval()
    x = _x(2, 1, 8, 17)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x).float().logsumexp(-1).mean()
    loss.backward()
    assert model.backbone.stem.conv.weight.grad is not None


def test_fused_inference_equals_eval():
    torch.manual_seed(0)
    model = create_model("posec3d_limb", num_classes=6, layout="coco17", **FAST)
    randomize(model)
    model.eval()
    x = _x(3, 2, 8, 17)
    with torch.inference_mode():
        plain = model(x)
        fused = model.fuse_for_inference()(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused_bf16 = model(x)
    assert torch.allclose(fused, plain, atol=1e-4 * plain.abs().max().item() + 1e-5, rtol=1e-4)
    assert torch.allclose(fused_bf16.float(), plain, atol=0.05 * plain.abs().max().item() + 1e-3)
    with torch.no_grad():  # folded weights follow parameter changes
        model.backbone.stem.bn.weight.mul_(2)
        plain2 = model.fuse_for_inference(False)(x)
        fused2 = model.fuse_for_inference()(x)
    assert not torch.allclose(plain2, plain)
    assert torch.allclose(fused2, plain2, atol=1e-4 * plain2.abs().max().item() + 1e-5, rtol=1e-4)


def test_bad_input_and_options():
    model = create_model("posec3d", num_classes=3, layout="coco17", **FAST)
    with pytest.raises(ValueError, match=r"V=17 joints and C=3 .* \(1, 1, 4, 13, 3\)"):
        model(torch.zeros(1, 1, 4, 13, 3))
    with pytest.raises(ValueError, match=r"C=3 channels"):
        model(torch.zeros(1, 1, 4, 17, 2))
    with pytest.raises(ValueError, match=r"\[N, M, T, V, C\] tensor, got \(1, 4, 17, 3\)"):
        model(torch.zeros(1, 4, 17, 3))
    with pytest.raises(ValueError, match="empty input"):
        model(torch.zeros(1, 1, 0, 17, 3))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(1, 1, 4, 17, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="in_channels must be 2 .* got 6"):
        create_model("posec3d", num_classes=3, layout="coco17", in_channels=6)
    with pytest.raises(ValueError, match="heatmap must be 'joint' or 'limb'"):
        create_model("posec3d", num_classes=3, layout="coco17", heatmap="bone")
    with pytest.raises(ValueError, match="unknown width"):
        create_model("posec3d", num_classes=3, layout="coco17", width="huge")
    with pytest.raises(ValueError, match=r"joints in 0..16"):
        create_model("posec3d_limb", num_classes=3, layout="coco17", limbs=[(0, 17)])
    with pytest.raises(ValueError, match="one entry per stage"):
        create_model("posec3d", num_classes=3, layout="coco17", stage_blocks=(1, 1))
    with pytest.raises(TypeError, match="unknown option"):
        create_model("posec3d_limb", num_classes=3, layout="coco17", heatmap="joint")
