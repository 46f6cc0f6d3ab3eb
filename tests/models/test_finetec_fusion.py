"""Cross-attention / MLP fusion of S_pred and the acceleration a (FineTec recognition stage)."""

from __future__ import annotations

import pytest
import torch

from finetec.models.finetec.fusion import CrossAttentionFusion, MLPFusion, sinusoidal_encoding


def inputs(B=2, T=7, V=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, V, 2, generator=g), torch.randn(B, T, V, 2, generator=g)


@pytest.mark.parametrize("cls", [CrossAttentionFusion, MLPFusion])
def test_output_shape_and_out_channels(cls):
    m = cls(channels_in=2, dim=12)
    S, a = inputs()
    out = m(S, a)
    assert out.shape == (2, 7, 5, 12) and m.out_channels == 12
    assert torch.isfinite(out).all()


def test_sinusoidal_encoding_values():
    pe = sinusoidal_encoding(3, 4)
    assert pe.shape == (3, 4)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert pe[2, 0].item() == pytest.approx(torch.sin(torch.tensor(2.0)).item())
    assert pe[1, 3].item() == pytest.approx(torch.cos(torch.tensor(0.01)).item(), abs=1e-6)
    assert sinusoidal_encoding(2, 5).shape == (2, 5)


def test_attention_runs_along_time_per_joint():
    torch.manual_seed(0)
    m = CrossAttentionFusion(dim=8, heads=2).eval()
    S, a = inputs()
    out = m(S, a)
    a2 = a.clone()
    a2[1, 3, 2] += 5.0  # another acceleration at joint 2, frame 3 of sequence 1
    diff = (m(S, a2) - out).abs().amax(-1)  # [B, T, V]
    assert (diff[1, :, 2] > 1e-4).all(), "every frame of that joint attends to the changed key"
    diff[1, :, 2] = 0
    assert diff.max() < 1e-6, "other joints/sequences must not see it"


@pytest.mark.parametrize("cls", [CrossAttentionFusion, MLPFusion])
def test_a_masked_key_does_not_change_the_output(cls):
    torch.manual_seed(0)
    m = cls(dim=8).eval()
    S, a = inputs()
    score = torch.ones(2, 7, 5)
    score[0, 4, 1] = 0
    score[1, 0, 3] = 0
    out = m(S, a, score)
    a2 = a.clone()
    a2[0, 4, 1] = 100.0
    a2[1, 0, 3] = -50.0
    assert torch.allclose(m(S, a2, score), out, atol=1e-6)
    a3 = a.clone()
    a3[0, 5, 1] += 3.0  # an unmasked key does change it
    assert (m(S, a3, score) - out).abs().max() > 1e-4
    assert torch.allclose(m(S, a2, score > 0), out, atol=1e-6)  # bool masks work too


def test_all_keys_masked_gives_the_normalised_query():
    torch.manual_seed(0)
    m = CrossAttentionFusion(dim=8).eval()
    S, a = inputs()
    score = torch.ones(2, 7, 5)
    score[0, :, 2] = 0
    out = m(S, a, score)
    assert torch.isfinite(out).all()
    q = m.embed_q(S[0, :, 2]) + sinusoidal_encoding(7, 8)
    assert torch.allclose(out[0, :, 2], m.norm(q + m.proj.bias), atol=1e-5)


@pytest.mark.parametrize("cls", [CrossAttentionFusion, MLPFusion])
def test_gradients_reach_every_parameter_and_inputs(cls):
    torch.manual_seed(0)
    m = cls(dim=8)
    S, a = inputs()
    S.requires_grad_(True)
    a.requires_grad_(True)
    (m(S, a, torch.ones(2, 7, 5)) * torch.randn(2, 7, 5, 8)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert S.grad.abs().sum() > 0 and a.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [CrossAttentionFusion, MLPFusion])
def test_bf16_autocast_and_all_zero_input(cls):
    m = cls(dim=8)
    S, a = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(S, a, torch.ones(2, 7, 5))
    assert torch.isfinite(out.float()).all()
    assert torch.allclose(out.float(), m(S, a), atol=0.1)
    z = torch.zeros(2, 7, 5, 2)
    out = m(z, z, torch.zeros(2, 7, 5))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_bad_inputs_raise():
    m = CrossAttentionFusion(dim=8)
    S, a = inputs()
    with pytest.raises(ValueError, match="differ in shape"):
        m(S, a[:, :5])
    with pytest.raises(ValueError, match=r"a must be \[B, T, V, 2\]"):
        m(S, a[..., :1])
    with pytest.raises(ValueError, match="score"):
        m(S, a, torch.ones(2, 7))
    with pytest.raises(ValueError, match="divisible"):
        CrossAttentionFusion(dim=10, heads=3)
