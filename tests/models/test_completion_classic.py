"""Classic completers (copy, interpolation, duplication), the compact placement rule and the registry."""

from __future__ import annotations

import pytest
import torch

from finetec.models.completion import (
    SiMLPe, create_completer, duplicate, get_completer, linear_interp, list_completers, lr_copy, place_on_time_axis,
    rl_copy,
)

FILLS = (lr_copy, rl_copy, linear_interp, duplicate)


def ramp(B: int, T: int, V: int = 1, C: int = 1) -> torch.Tensor:
    return torch.arange(T, dtype=torch.float32).view(1, T, 1, 1).repeat(B, 1, V, C)


def test_compact_placement_rule():
    T = 10
    x = ramp(4, T) + 100
    mask = torch.zeros(4, T, dtype=torch.bool)
    for b, n in enumerate((4, 3, 1, T)):
        mask[b, :n] = True
    y, obs = place_on_time_axis(x, mask, "compact")
    # n=4: k*9/3 -> 0,3,6,9; n=3: k*9/2 -> 0, 4.5 (rounds up to 5), 9; n=1 -> 0; n=T -> identity
    assert obs[0].nonzero().flatten().tolist() == [0, 3, 6, 9]
    assert obs[1].nonzero().flatten().tolist() == [0, 5, 9]
    assert obs[2].nonzero().flatten().tolist() == [0]
    assert obs[3].all()
    assert y[0, [0, 3, 6, 9], 0, 0].tolist() == [100, 101, 102, 103]  # survivors in order
    assert y[1, [0, 5, 9], 0, 0].tolist() == [100, 101, 102]
    assert torch.equal(y[3], x[3])
    assert (y[0, [1, 2, 4, 5, 7, 8]] == 0).all()
    y2, obs2 = place_on_time_axis(x, mask | True, "inplace")
    assert y2 is x and obs2.all()


def test_compact_fills_hand_worked():
    x = ramp(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    # row 0: survivors 0,1,2 placed at 0,3 (2.5 rounds up),5; row 1: survivors 0,1 at 0,5
    assert lr_copy(x, mask)[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 1, 2], [0, 0, 0, 0, 0, 1]]
    assert rl_copy(x, mask)[:, :, 0, 0].tolist() == [[0, 1, 1, 1, 2, 2], [0, 1, 1, 1, 1, 1]]
    expect = torch.tensor([[0, 1 / 3, 2 / 3, 1, 1.5, 2], [0, 0.2, 0.4, 0.6, 0.8, 1]])
    torch.testing.assert_close(linear_interp(x, mask)[:, :, 0, 0], expect)
    assert duplicate(x, mask)[:, :, 0, 0].tolist() == [[0, 1, 2, 0, 1, 2], [0, 1, 0, 1, 0, 1]]


def test_inplace_fills_hand_worked_and_duplication_order():
    x = ramp(2, 6)
    mask = torch.tensor([[1, 0, 0, 1, 0, 1], [0, 1, 0, 0, 1, 0]], dtype=torch.bool)
    assert lr_copy(x, mask, "inplace")[:, :, 0, 0].tolist() == [[0, 0, 0, 3, 3, 5], [1, 1, 1, 1, 4, 4]]
    assert rl_copy(x, mask, "inplace")[:, :, 0, 0].tolist() == [[0, 3, 3, 3, 5, 5], [1, 1, 4, 4, 4, 4]]
    assert linear_interp(x, mask, "inplace")[:, :, 0, 0].tolist() == [[0, 1, 2, 3, 4, 5], [1, 1, 2, 3, 4, 4]]
    # survivors in time order, looped: PYSKL's duplication
    assert duplicate(x, mask, "inplace")[:, :, 0, 0].tolist() == [[0, 3, 5, 0, 3, 5], [1, 4, 1, 4, 1, 4]]


def test_interpolation_exact_on_linear_trajectory():
    g = torch.Generator().manual_seed(0)
    B, T, V, C = 3, 12, 5, 2
    a, v = torch.randn(B, 1, V, C, generator=g), torch.randn(B, 1, V, C, generator=g)
    traj = a + v * torch.arange(T, dtype=torch.float32).view(1, T, 1, 1)
    mask = torch.rand(B, T, generator=g) > 0.5
    mask[:, 0] = mask[:, -1] = True  # interior gaps only: recovered exactly
    mask[0, 1:-1] = False  # a long gap too
    out = linear_interp(traj * mask[..., None, None], mask, "inplace")
    torch.testing.assert_close(out, traj, atol=1e-5, rtol=1e-5)
    # compact survivors that were in fact evenly spread (every 3rd of 13 frames) are recovered exactly as well
    T = 13
    traj = a + v * torch.arange(T, dtype=torch.float32).view(1, T, 1, 1)
    surv = traj[:, ::3]  # 5 survivors at 0,3,6,9,12 = k*(T-1)/(n-1)
    x = torch.zeros_like(traj)
    x[:, :5] = surv
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, :5] = True
    torch.testing.assert_close(linear_interp(x, mask, "compact"), traj, atol=1e-5, rtol=1e-5)


def test_interpolation_extrapolates_constant():
    x = ramp(1, 6)
    mask = torch.tensor([[0, 1, 0, 1, 0, 0]], dtype=torch.bool)
    assert linear_interp(x, mask, "inplace")[0, :, 0, 0].tolist() == [1, 1, 2, 3, 3, 3]


def _reference(name: str, x: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Loop implementation of the definitions (test only)."""
    B, T = mask.shape
    out = torch.zeros_like(x)
    for b in range(B):
        obs = mask[b].nonzero().flatten().tolist()
        n = len(obs)
        if name == "duplicate":
            src = list(range(n)) if mode == "compact" else obs
            for t in range(T):
                out[b, t] = x[b, src[t % n]]
            continue
        if mode == "compact":
            times = [0] if n == 1 else [int(k * (T - 1) / (n - 1) + 0.5) for k in range(n)]
            frames = {times[k]: x[b, k] for k in range(n)}
        else:
            frames = {t: x[b, t] for t in obs}
        ts = sorted(frames)
        for t in range(T):
            before = [s for s in ts if s <= t]
            after = [s for s in ts if s >= t]
            p = before[-1] if before else after[0]
            q = after[0] if after else before[-1]
            if name == "lr_copy":
                out[b, t] = frames[p] if before else frames[q]
            elif name == "rl_copy":
                out[b, t] = frames[q] if after else frames[p]
            else:
                a = 0.0 if q == p else (t - p) / (q - p)
                out[b, t] = frames[p] + a * (frames[q] - frames[p])
    return out


@pytest.mark.parametrize("mode", ["compact", "inplace"])
def test_vectorised_fills_match_loop_reference(mode):
    g = torch.Generator().manual_seed(3)
    B, T, V, C = 6, 9, 3, 2
    x = torch.randn(B, T, V, C, generator=g)
    if mode == "compact":
        n = torch.tensor([1, 2, 3, 5, 8, 9])
        mask = torch.arange(T)[None] < n[:, None]
    else:
        mask = torch.rand(B, T, generator=g) > 0.6
        mask[torch.arange(B), torch.randint(0, T, (B,), generator=g)] = True
    x = x * mask[..., None, None]
    for fn, name in zip(FILLS, ("lr_copy", "rl_copy", "interp", "duplicate")):
        out = fn(x, mask, mode)
        assert out.shape == x.shape and out.dtype == x.dtype
        torch.testing.assert_close(out, _reference(name, x, mask, mode), atol=1e-6, rtol=1e-5, msg=name)
        if mode == "inplace" and fn is not duplicate:  # observed frames stay unchanged
            assert torch.equal(out[mask], x[mask]), name


def test_dtype_and_grad():
    x = torch.randn(2, 5, 3, 2, dtype=torch.bfloat16)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    for fn in FILLS:
        assert fn(x, mask).dtype == torch.bfloat16
    xf = torch.randn(2, 5, 3, 2, requires_grad=True)
    linear_interp(xf, mask).sum().backward()
    assert xf.grad is not None and xf.grad[:, 2:].abs().sum() == 0 and xf.grad[0, :2].abs().sum() > 0


def test_bad_input_messages():
    x = torch.randn(3, 4, 2, 2)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    for fn in FILLS:
        with pytest.raises(ValueError, match="sequence 1 has no observed frame"):
            fn(x, mask, "inplace")
    gap = torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="prefix.*row 0"):
        lr_copy(x, gap, "compact")
    with pytest.raises(ValueError, match="mode"):
        lr_copy(x, gap, "shifted")
    with pytest.raises(TypeError, match="bool"):
        rl_copy(x, gap.float(), "inplace")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        duplicate(x, gap[:, :3], "inplace")
    with pytest.raises(ValueError, match=r"\[B, T, V, C\]"):
        linear_interp(x[0], gap[0], "inplace")


def test_registry():
    names = list_completers()
    assert {"lr_copy", "rl_copy", "interpolation", "duplication", "simlpe"} <= set(names)
    assert create_completer("interpolation") is linear_interp
    assert create_completer("Duplication") is duplicate
    assert get_completer("rl_copy") is rl_copy
    with pytest.raises(TypeError, match="takes no options"):
        create_completer("lr_copy", clip_len=4)
    with pytest.raises(KeyError, match="available completers"):
        create_completer("cubic")
    model = create_completer("simlpe", clip_len=6, num_joints=3, hidden_blocks=1)
    assert isinstance(model, SiMLPe) and model.clip_len == 6 and model.num_joints == 3
    with pytest.raises(TypeError, match="unknown option"):
        create_completer("simlpe", clip_len=6, num_joints=3, blocks=2)


def test_fill_missing_joints_interpolates_each_joint_inside_observed_frames():
    from finetec.models.completion.classic import fill_missing_joints

    T, V = 5, 3
    t = torch.arange(T, dtype=torch.float32)
    x = torch.stack([t[:, None].expand(T, V), -t[:, None].expand(T, V)], -1)[None].clone()  # [1, T, V, 2]
    vis = torch.ones(1, T, V, dtype=torch.bool)
    vis[0, 2, 1] = False  # joint 1 hidden in frame 2
    vis[0, :, 2] = False  # joint 2 never seen
    frames = torch.tensor([[True, True, True, True, False]])  # frame 4 is a missing frame: left alone
    x_in = x.clone()
    x_in[~vis] = 0
    x_in[0, 4] = 0
    out = fill_missing_joints(x_in, vis, frames)
    assert torch.equal(out[0, 2, 1], torch.tensor([2.0, -2.0]))  # linear between frames 1 and 3
    assert torch.equal(out[0, :, 2], torch.zeros(T, 2))  # never visible: stays 0
    assert torch.equal(out[0, 4], torch.zeros(V, 2))  # not an observed frame
    keep = vis & frames[..., None]
    assert torch.equal(out[keep], x_in[keep])  # visible joints untouched


def test_observed_sequences_keeps_compact_slots_of_empty_frames():
    from finetec.models.finetec.model import observed_sequences

    x = torch.randn(1, 1, 6, 4, 3)
    x[..., 2] = 1.0
    x[0, 0, 1, :, 2] = 0.0  # a surviving frame in which nobody was detected
    x[0, 0, 4:] = 0.0
    mask = torch.tensor([[True, True, True, True, False, False]])
    S, obs, w = observed_sequences(x, mask, "compact")
    assert obs.tolist() == [[True, True, True, True, False, False]]  # a prefix: slot 1 keeps its place
    assert torch.allclose(S[0, 1], (x[0, 0, 0, :, :2] + x[0, 0, 2, :, :2]) / 2)  # filled from its neighbours
    assert w[0, 1].sum() == 0 and w[0, 0].sum() == 4
    _, obs_i, _ = observed_sequences(x, mask, "inplace")
    assert obs_i.tolist() == [[True, False, True, True, False, False]]
