"""SF-Head module (Eq. 1-9): shapes, SSTE at initialisation, AC-FA against the paper's rotate-pool-rotate form,
group sharing, channel shuffle, ablation switches, bad input."""

from __future__ import annotations

import pytest
import torch

from finetec.models.sfhead.module import SFHead, channel_shuffle, z_pool


def _randomize(m: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize("C,g", [(32, 8), (64, 8), (128, 8), (256, 8), (16, 4), (8, 1)])
def test_output_shape_equals_input(C, g):
    x = torch.randn(3, C, 7, 13)
    assert SFHead(C, g)(x).shape == x.shape


def test_channels_must_divide():
    with pytest.raises(ValueError, match="divisible by 4 \\* groups"):
        SFHead(24, 8)
    with pytest.raises(ValueError, match="unknown AC-FA branch"):
        SFHead(32, 8, branches=("acda", "xyz"))
    with pytest.raises(ValueError, match=r"expected \[B, 32, T, V\]"):
        SFHead(32, 8)(torch.randn(2, 16, 5, 13))


def test_channel_shuffle_and_z_pool():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    y = torch.tensor([[[1.0, 5.0], [3.0, -1.0]]])  # [1, 2, 2]
    zp = z_pool(y, 1)
    assert zp.shape == (1, 2, 2) and zp[0, 0].tolist() == [3.0, 5.0] and zp[0, 1].tolist() == [2.0, 2.0]


def test_sste_equation_1_with_trained_parameters():
    head = SFHead(8, 1)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in (head.sste.t_weight, head.sste.t_bias, head.sste.s_weight, head.sste.s_bias):
            p.copy_(torch.randn(p.shape, generator=g))
    x1, x3 = torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 5, 4, generator=g)
    f_t, f_s = head.sste(x1, x3)
    gp = x1.mean((2, 3), keepdim=True)  # global average pool over time and joints
    gn = (x3 - x3.mean((2, 3), keepdim=True)) / torch.sqrt(x3.var((2, 3), unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(f_t, torch.sigmoid(head.sste.t_weight * gp + head.sste.t_bias) * x1, atol=1e-6)
    assert torch.allclose(f_s, torch.sigmoid(head.sste.s_weight * gn + head.sste.s_bias) * x3, atol=1e-5)


def test_sste_at_init_is_constant_gate():
    head = SFHead(8, 1)
    x1, x3 = torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    f_t, f_s = head.sste(x1, x3)
    s = torch.sigmoid(torch.tensor(1.0))  # phi starts at weight 0, bias 1
    assert torch.allclose(f_t, s * x1) and torch.allclose(f_s, s * x3)


def _acfa_reference(head: SFHead, f_c, f_t, f_s):
    """The paper's wording: rotate so the aggregated dimension comes first, Z-pool it, gate, rotate back."""
    g = head.gates
    y_c = f_c * g["acda"](torch.cat((f_c.amax(1, keepdim=True), f_c.mean(1, keepdim=True)), 1))
    ft_hat = f_t.permute(0, 2, 1, 3)  # [B, T, C', V]
    w_t = g["atda"](torch.cat((ft_hat.amax(1, keepdim=True), ft_hat.mean(1, keepdim=True)), 1))  # [B, 1, C', V]
    y_t = (ft_hat * w_t).permute(0, 2, 1, 3)
    fs_hat = f_s.permute(0, 3, 2, 1)  # [B, V, T, C']
    w_s = g["asda"](torch.cat((fs_hat.amax(1, keepdim=True), fs_hat.mean(1, keepdim=True)), 1))  # [B, 1, T, C']
    y_s = (fs_hat * w_s).permute(0, 3, 2, 1)
    eta = torch.softmax(head.eta, 0)
    return eta[0] * y_t + eta[1] * y_s + eta[2] * y_c + eta[3] * f_c


@pytest.mark.parametrize("training", [True, False])
def test_acfa_equals_rotate_pool_rotate(training):
    torch.manual_seed(0)
    head = SFHead(16, 2)
    _randomize(head)
    head.train(training)
    f_c, f_t, f_s = (torch.randn(4, 2, 6, 5) for _ in range(3))
    assert torch.allclose(head.aggregate(f_c, f_t, f_s), _acfa_reference(head, f_c, f_t, f_s), atol=1e-6)


def test_forward_layout_and_group_sharing():
    torch.manual_seed(0)
    C, g = 16, 2
    head = SFHead(C, g).eval()
    _randomize(head)
    x = torch.randn(2, C, 6, 5)
    out, feats = head(x, return_features=True)
    cg = C // (4 * g)
    # per group [f_t, f_s, f_a, f_o] concatenated, then shuffled with 2 groups
    per_group = torch.cat((feats.f_t, feats.f_s, feats.f_a, feats.f_o), 1).reshape(2, C, 6, 5)
    assert torch.equal(out, channel_shuffle(per_group, 2))
    assert torch.equal(feats.f_o, x.reshape(2 * g, C // g, 6, 5)[:, 3 * cg:])
    # groups share parameters and do not mix: changing group 1's channels leaves group 0's outputs alone
    x2 = x.clone()
    x2[:, C // g:] += 1.0
    _, feats2 = head(x2, return_features=True)
    assert torch.equal(feats2.f_a.view(2, g, cg, 6, 5)[:, 0], feats.f_a.view(2, g, cg, 6, 5)[:, 0])
    assert not torch.equal(feats2.f_a.view(2, g, cg, 6, 5)[:, 1], feats.f_a.view(2, g, cg, 6, 5)[:, 1])


def test_ablation_switches():
    x = torch.randn(2, 8, 5, 4)
    plain = SFHead(8, 1, sste=False, acfa=False).eval()
    assert plain.eta is None and not list(plain.parameters())  # nothing left to train
    _, f = plain(x, return_features=True)
    assert torch.equal(f.f_t, x[:, 0:2]) and torch.equal(f.f_s, x[:, 4:6]) and torch.equal(f.f_a, x[:, 2:4])
    only_t = SFHead(8, 1, branches=("atda",))
    assert set(only_t.gates) == {"atda"}
    assert sum(p.numel() for p in only_t.parameters()) < sum(p.numel() for p in SFHead(8, 1).parameters())


def test_bf16_autocast_and_gradients():
    head = SFHead(32, 8)
    x = torch.randn(2, 32, 8, 13, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = head(x)
    assert torch.isfinite(y.float()).all()
    y.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
    assert torch.isfinite(x.grad).all()
