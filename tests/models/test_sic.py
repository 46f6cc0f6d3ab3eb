"""Skeleton-in-Context baselines (SiC-Stat / SiC-Dyna): registry, prompt choice, training, bf16, state dict."""

from __future__ import annotations

import pytest
import torch

from finetec.corruption.batched import apply_keep, drop_keep_masks
from finetec.models.completion import create_completer, list_completers
from finetec.models.completion.sic import SiCDyna, SiCStat, SkeletonInContext


def _waves(N: int, T: int, V: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)[None, :, None, None] / T
    return (0.2 + 0.3 * torch.rand(N, 1, V, 2, generator=g)) * torch.sin(6.2832 * t + 6.28 * torch.rand(N, 1, V, 2,
                                                                                                      generator=g))


def _model(prompt="static", K=6, T=10, V=3, seed=0) -> SkeletonInContext:
    torch.manual_seed(seed)
    m = SkeletonInContext(T, V, prompt=prompt, bank_size=K, dim=32, depth=2, heads=4, dropout=0.0)
    m.bank.load(_waves(K, T, V, seed=50), torch.ones(K, T, V))
    return m


def _corrupt(S, ratio=0.5, pattern="random", mode="compact", seed=0):
    g = torch.Generator().manual_seed(seed)
    keep = drop_keep_masks(torch.ones(S.shape[:2], dtype=torch.bool), ratio, pattern, g)
    return apply_keep(S, keep, mode)


def test_registry():
    assert {"sic_stat", "sic_dyna"} <= set(list_completers())
    a = create_completer("sic_stat", clip_len=8, num_joints=2, dim=16, heads=2, depth=1)
    b = create_completer("sic_dyna", clip_len=8, num_joints=2, dim=16, heads=2, depth=1)
    assert isinstance(a, SiCStat) and a.prompt == "static" and (a.clip_len, a.num_joints) == (8, 2)
    assert isinstance(b, SiCDyna) and b.prompt == "dynamic"


def test_prompt_choice_static_and_dynamic():
    T, V = 10, 3
    seq = torch.stack([torch.full((T, V, 2), float(k) / 4) for k in range(4)])
    q = torch.full((2, T, V, 2), 0.5)  # equal to entry 2
    q[1] = 0.26  # nearest entry 1
    mask = torch.ones(2, T, dtype=torch.bool)
    stat, dyna = _model("static").eval(), _model("dynamic").eval()
    for m in (stat, dyna):
        m.bank.load(seq, torch.ones(4, T, V))
    assert stat.prompt_index(q, mask, "inplace").tolist() == [0, 0]
    assert dyna.prompt_index(q, mask, "inplace").tolist() == [2, 1]
    dyna.train()  # in training the dynamic prompt is random: the nearest entry may be the query's own clip
    torch.manual_seed(0)
    drawn = {tuple(dyna.prompt_index(q, mask, "inplace").tolist()) for _ in range(20)}
    assert len(drawn) > 1
    dyna.eval()
    # compact input with survivors 0 and T-1 of a constant sequence: the interpolation is the same constant
    xc, mc = apply_keep(q, torch.arange(T)[None].expand(2, T).eq(0) | torch.arange(T)[None].expand(2, T).eq(T - 1),
                        "compact")
    assert dyna.prompt_index(xc, mc, "compact").tolist() == [2, 1]


@pytest.mark.parametrize("mode", ["compact", "inplace"])
def test_forward_reads_prompt_and_trains(mode):
    m = _model("dynamic").train()
    S = _waves(16, 10, 3, seed=1)
    x, mask = _corrupt(S, mode=mode)
    m.eval()
    a = m(x, mask, mode)
    assert a.shape == S.shape and a.dtype == torch.float32
    with torch.no_grad():
        m.bank.sequences.add_(0.3)
    assert not torch.allclose(m(x, mask, mode), a)  # the query reads the prompt pair
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    w = torch.ones(16, 10, 3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        _, parts = m.compute_loss(x, mask, mode, S, w, generator=torch.Generator().manual_seed(0))
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    assert losses[-1] < 0.5 * losses[0]
    assert set(parts) == {"loss", "loss_query"}


def test_bf16_padding_and_state_dict():
    m = _model("dynamic").train()
    S = _waves(2, 10, 3, seed=2)
    x, mask = _corrupt(S, ratio=0.75, pattern="prefix")
    x = torch.cat([x, torch.zeros(1, 10, 3, 2)])
    mask = torch.cat([mask, torch.zeros(1, 10, dtype=torch.bool)])  # a padding person: no observed frame
    target = torch.cat([S, torch.zeros(1, 10, 3, 2)])
    w = torch.cat([torch.ones(2, 10, 3), torch.zeros(1, 10, 3)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, parts = m.compute_loss(x, mask, "compact", target, w)
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and torch.isfinite(parts["loss"])
    parts["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    m.eval()
    fresh = SkeletonInContext(10, 3, prompt="dynamic", bank_size=2, dim=32, depth=2, heads=4).eval()
    fresh.load_state_dict(m.state_dict())
    assert fresh.bank.size == 6 and torch.equal(fresh(x, mask), m(x, mask))


def test_errors():
    with pytest.raises(ValueError, match="static' or 'dynamic"):
        SkeletonInContext(10, 3, prompt="moving")
    with pytest.raises(ValueError, match="divisible"):
        SkeletonInContext(10, 3, dim=30, heads=4)
    empty = SkeletonInContext(10, 3, dim=16, heads=2, depth=1)
    x, mask = torch.zeros(1, 10, 3, 2), torch.ones(1, 10, dtype=torch.bool)
    with pytest.raises(RuntimeError, match=r"model\.bank\.load"):
        empty(x, mask)
    m = _model()
    with pytest.raises(ValueError, match=r"T=10, V=3"):
        m(torch.zeros(1, 9, 3, 2), mask[:, :9])
    with pytest.raises(ValueError, match="mode"):
        m(x, mask, "sideways")
    with pytest.raises(ValueError, match="target must be"):
        m.compute_loss(x, mask, "compact", x[..., :1], torch.ones(1, 10, 3))
