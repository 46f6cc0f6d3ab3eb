"""siMLPe completion baseline: shapes, zero-init = L-R copy, DCT, loss, training, bf16 autocast."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.models.completion import SiMLPe, lr_copy
from finetec.models.completion.simlpe import dct_matrix

T, V, C = 8, 3, 2


def batch(B: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32).view(1, T, 1, 1)
    phase = torch.rand(B, 1, V, C, generator=g) * 6.28
    target = 0.5 * torch.sin(0.6 * t + phase)
    n = torch.randint(2, T, (B,), generator=g)
    keep = torch.rand(B, T, generator=g).argsort(1) < n[:, None]  # n random frames survive
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
    compact = torch.zeros_like(target)
    idx = order[:, :, None, None].expand(B, T, V, C)
    compact = torch.where((torch.arange(T)[None] < n[:, None])[..., None, None], target.gather(1, idx), compact)
    mask_c = torch.arange(T)[None] < n[:, None]
    inplace = target * keep[..., None, None]
    weight = torch.ones(B, T, V)
    return target, keep, inplace, compact, mask_c, weight


def randomize(model: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def test_dct_is_orthonormal_dct2():
    d = dct_matrix(5)
    torch.testing.assert_close(d @ d.t(), torch.eye(5), atol=1e-6, rtol=0)
    assert d[0].tolist() == pytest.approx([1 / math.sqrt(5)] * 5)
    assert d[1, 0].item() == pytest.approx(math.sqrt(2 / 5) * math.cos(math.pi / 10))


@pytest.mark.parametrize("mode", ["compact", "inplace"])
def test_shape_and_zero_init_equals_lr_copy(mode):
    target, keep, inplace, compact, mask_c, _ = batch()
    x, mask = (compact, mask_c) if mode == "compact" else (inplace, keep)
    model = SiMLPe(T, V, C, hidden_blocks=2)
    out = model(x, mask, mode)
    assert out.shape == (4, T, V, C) and out.dtype == torch.float32
    torch.testing.assert_close(out, lr_copy(x, mask, mode), atol=0, rtol=0)
    randomize(model)
    assert not torch.allclose(model(x, mask, mode), lr_copy(x, mask, mode))


def test_output_depends_on_mask_channel_and_mixes_time():
    target, keep, inplace, _, _, _ = batch()
    model = SiMLPe(T, V, C, hidden_blocks=2)
    randomize(model)
    x = inplace.clone().requires_grad_(True)
    out = model(x, keep, "inplace")
    out[:, 0].sum().backward()
    assert x.grad[:, 1:].abs().sum() > 0  # frame 0's output sees later frames
    # same filled input, different observed indicator -> different output
    full = lr_copy(inplace, keep, "inplace")
    a = model(full, torch.ones_like(keep), "inplace")
    b = model(full, keep, "inplace")
    assert not torch.allclose(a, b)


def test_loss_parts_hand_checked_at_init():
    target, keep, inplace, _, _, weight = batch()
    model = SiMLPe(T, V, C, hidden_blocks=1, velocity_weight=0.5)
    s, parts = model.compute_loss(inplace, keep, "inplace", target, weight)
    fill = lr_copy(inplace, keep, "inplace")
    pos = ((fill - target) ** 2).mean()
    vel = (((fill[:, 1:] - fill[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2).mean()
    assert parts["loss_pos"].item() == pytest.approx(pos.item(), rel=1e-5)
    assert parts["loss_vel"].item() == pytest.approx(vel.item(), rel=1e-5)
    assert parts["loss"].item() == pytest.approx(pos.item() + 0.5 * vel.item(), rel=1e-5)
    assert parts["loss"].requires_grad and s.shape == target.shape


def test_weights_exclude_and_no_nan_for_empty_weight():
    target, keep, inplace, _, _, weight = batch()
    model = SiMLPe(T, V, C, hidden_blocks=1)
    bad = target.clone()
    bad[:, :, 0] = float("nan")
    w = weight.clone()
    w[:, :, 0] = 0
    _, parts = model.compute_loss(inplace, keep, "inplace", bad, w)
    assert torch.isfinite(parts["loss"])
    _, parts = model.compute_loss(inplace, keep, "inplace", target, torch.zeros_like(weight))
    assert parts["loss"].item() == 0.0
    parts["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_loss_decreases_with_adam():
    torch.manual_seed(0)
    target, keep, inplace, compact, mask_c, weight = batch(B=8)
    model = SiMLPe(T, V, C, hidden_blocks=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        _, parts = model.compute_loss(compact, mask_c, "compact", target, weight)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_backward_under_bf16_autocast():
    target, keep, inplace, compact, mask_c, weight = batch()
    model = SiMLPe(T, V, C, hidden_blocks=2)
    randomize(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s, parts = model.compute_loss(compact, mask_c, "compact", target, weight)
    assert s.dtype == torch.float32 and torch.isfinite(parts["loss"])
    parts["loss"].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.fc_in.weight.grad.abs().sum() > 0


def test_bad_input():
    model = SiMLPe(T, V, C, hidden_blocks=1)
    x = torch.zeros(2, T + 1, V, C)
    with pytest.raises(ValueError, match="clip_len"):
        model(x, torch.ones(2, T + 1, dtype=torch.bool))
    x = torch.zeros(2, T, V, C)
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[0] = False
    with pytest.raises(ValueError, match="sequence 0 has no observed frame"):
        model(x, mask, "inplace")
    with pytest.raises(ValueError, match="target must be"):
        model.compute_loss(x, mask | True, "inplace", torch.zeros(2, T, V, 3), torch.ones(2, T, V))
    with pytest.raises(ValueError, match="weight must be"):
        model.compute_loss(x, mask | True, "inplace", x, torch.ones(2, T))
    with pytest.raises(ValueError, match="clip_len"):
        SiMLPe(1, V)
    with pytest.raises(ValueError, match="num_joints"):
        SiMLPe(T, 0)
    assert "dct" not in model.state_dict()  # derived from clip_len, not stored
