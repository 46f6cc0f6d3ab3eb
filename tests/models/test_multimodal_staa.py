"""STAA (Sec. 3.2): Motion Attention (Eq. 3-5) and Temporal Aggregation (Eq. 6-8) on [N*T, C, H, W] features."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from finetec.models.multimodal.staa import STAA, MotionAttention, TemporalAggregation
from model_helpers import randomize


def _clip(N=2, T=4, C=8, H=5, W=5, seed=0):
    return torch.randn(N * T, C, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["staa", "ma"])
def test_shapes_and_modes(mode):
    m = STAA(8, mode)
    x = _clip()
    assert m(x, 4).shape == x.shape
    assert (m.ta is None) == (mode == "ma")
    assert MotionAttention(6)(_clip(C=6), 2).shape == (8, 6, 5, 5)
    assert TemporalAggregation(12)(_clip(C=12, H=3, W=7), 8).shape == (8, 12, 3, 7)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="multiple of 4"):
        TemporalAggregation(6)
    with pytest.raises(ValueError, match="mode"):
        STAA(8, "ta")
    m = STAA(8)
    with pytest.raises(ValueError, match="multiple of num_frames=3"):
        m(_clip(N=2, T=4), 3)
    with pytest.raises(ValueError, match=r"C=8 channels, input .*\(8, 4, 5, 5\)"):
        m(_clip(C=4), 4)
    with pytest.raises(ValueError, match=r"\[N\*T, C, H, W\]"):
        m(torch.zeros(8, 8, 5), 4)
    with pytest.raises(ValueError, match="num_frames"):
        m(_clip(), 0)


def test_eq3_difference_and_eq4_mask_by_hand():
    # one clip, T=3, C=4, 2x2 pixels
    M = torch.zeros(1, 3, 4, 2, 2)
    M[0, :, 0] = 5.0  # constant in time: no motion
    M[0, 1, 1, 0, 1] = 2.0  # +2 at one pixel from t=1 to t=2 (then back: -2)
    M[0, :, 2] = torch.tensor([3.0, 2.0, 0.5])[:, None, None]  # decreasing everywhere: all differences < 0
    M[0, 1, 3, 0, 0] = 1.0  # t=2 -> t=3: -1 at one pixel and +3 at another
    M[0, 2, 3, 1, 1] = 3.0
    f = MotionAttention.motion(M)
    assert f.shape == M.shape
    assert torch.equal(f[:, :2], M[:, 1:] - M[:, :2])
    assert torch.equal(f[:, 2], torch.zeros(1, 4, 2, 2))  # F(T) padded with zeros
    ma = MotionAttention(4)
    x = M.view(3, 4, 2, 2)
    expected = torch.sigmoid(torch.tensor([[0.0, 2.0, 0.0, 3.0]]))  # decreasing channel: max is the zero pad
    assert torch.allclose(ma.mask(x, 3), expected)
    # at initialisation phi's BN weight is 0: Eq. 5 reduces to M * F_mask
    assert torch.allclose(ma(x, 3), x * expected.view(1, 4, 1, 1))


def test_eq5_residual_phi():
    torch.manual_seed(0)
    ma = MotionAttention(6)
    randomize(ma)
    ma.eval()
    x = _clip(C=6)
    mask = ma.mask(x, 4)  # [N, C]
    ref = x * mask.repeat_interleave(4, 0)[:, :, None, None] + ma.phi_bn(F.conv2d(x, ma.phi.weight, padding=1))
    assert torch.allclose(ma(x, 4), ref, atol=1e-5)
    assert ma.phi_bn.weight.abs().sum() > 0  # randomize made phi matter


@pytest.mark.parametrize("module", [lambda: MotionAttention(8), lambda: TemporalAggregation(8), lambda: STAA(8)])
def test_clips_do_not_leak(module):
    torch.manual_seed(0)
    m = module()
    randomize(m)
    m.eval()
    x = _clip(N=2, T=4)
    y = x.clone()
    y[4:] = torch.randn(4, 8, 5, 5) * 10  # the second clip only
    a, b = m(x, 4), m(y, 4)
    assert torch.equal(a[:4], b[:4])
    assert not torch.allclose(a[4:], b[4:])


def _identity_split_ta(C=8, seed=0):
    torch.manual_seed(seed)
    ta = TemporalAggregation(C)
    randomize(ta)
    torch.nn.init.dirac_(ta.split.weight)  # v_i = fragment i of the input
    return ta.eval()


def test_eq7_hierarchy():
    ta = _identity_split_ta(8)
    x = _clip(N=1, T=6, C=8)
    q = ta(x, 6).split(2, dim=1)
    v = ta.channel_split(x)
    assert torch.equal(q[0], v[0])  # q1 = v1 exactly
    # q2..q4 by hand: each fragment's Conv_dep(Conv_sc(.)) then BN, ReLU; Conv_dep frame by frame
    def frag(i, inp):
        fr = ta.fragments[i]
        y = F.conv2d(inp, fr.conv_sc.weight, padding=1)
        w = fr.conv_dep.weight[:, 0, :, 0]  # [c, 3]
        z = torch.zeros_like(y)
        for t in range(6):
            for k, dt in enumerate((-1, 0, 1)):
                if 0 <= t + dt < 6:
                    z[t] += w[:, k, None, None] * y[t + dt]
        return F.relu(fr.bn(z))
    q2 = frag(0, v[1])
    q3 = frag(1, v[2] + q2)
    q4 = frag(2, v[3] + q3)
    for got, ref in zip(q[1:], (q2, q3, q4)):
        assert torch.allclose(got, ref, atol=1e-5)
    # changing v2 changes q2, q3, q4 but not q1; changing v4 changes only q4
    for frag_idx, changed in ((1, (False, True, True, True)), (3, (False, False, False, True))):
        y = x.clone()
        y[:, 2 * frag_idx:2 * frag_idx + 2] += 1.5
        r = ta(y, 6).split(2, dim=1)
        assert tuple(not torch.equal(a, b) for a, b in zip(q, r)) == changed


def test_temporal_conv_mixes_only_neighbours_and_receptive_field_grows():
    ta = _identity_split_ta(8, seed=1)
    T = 8
    x = _clip(N=2, T=T, C=8)
    base = ta(x, T).split(2, dim=1)
    fr = ta.fragments[0]
    y0 = torch.randn(2 * T, 2, 5, 5)
    y1 = y0.clone()
    y1[3] += 1.0  # clip 0, frame 3
    d = (fr.temporal(y1, T) - fr.temporal(y0, T)).abs().amax(dim=(1, 2, 3))
    assert (d > 0).nonzero().flatten().tolist() == [2, 3, 4]
    # a change at frame 0 of fragment 2: q2 sees frames 0-1, q3 0-2, q4 0-3 (Res2Net-style growing field)
    x1 = x.clone()
    x1[0, 2:4] += 2.0
    new = ta(x1, T).split(2, dim=1)
    for qi, last in ((1, 1), (2, 2), (3, 3)):
        d = (new[qi] - base[qi]).abs().amax(dim=(1, 2, 3))
        assert (d > 0).nonzero().flatten().tolist() == list(range(last + 1))


def test_ta_initialisation_passes_features():
    ta = TemporalAggregation(8).eval()
    x = _clip(C=8).abs()  # non-negative, as after ReLU
    q = ta(x, 4).split(2, dim=1)
    v = x.split(2, dim=1)
    s = 1 / math.sqrt(1 + 1e-5)  # fresh BN in eval
    assert torch.equal(q[0], v[0])
    assert torch.allclose(q[1], v[1] * s, atol=1e-5)
    assert torch.allclose(q[2], (v[2] + q[1]) * s, atol=1e-5)
    assert torch.allclose(q[3], (v[3] + q[2]) * s, atol=1e-5)


def test_gradients_and_bf16():
    torch.manual_seed(0)
    m = STAA(8)
    randomize(m, scale=0.1)
    x = _clip(C=8).requires_grad_()
    ref = m(x, 4)
    ref.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0
    m.eval()
    with torch.no_grad():
        ref = m(x, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x, 4)
    assert torch.isfinite(out.float()).all()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item())
